package io.writeboost.cache;

/**
 * Writeback's batches as a change to the backing stores outside writeback sees them
 * ({@link BackingOrder}): how many have started and completed, whether a group commit is
 * clearing lines whose record is not durable yet, and a turn between batches. Writeback
 * implements it without knowing who waits; a test implements it to run batches by hand.
 *
 * <p>Thread-safe; called without the engine lock, except where a method says otherwise.
 */
interface BatchBoundaries {
    /** Batches that wrote something, completed or failed part-way. */
    long batchesDone();

    /**
     * Batches that have taken their snapshot of dirty lines, finished or not. A caller that
     * read {@link #batchesDone()} as {@code done} earlier and now finds this equal to
     * {@code done} knows that no batch was in flight at that moment nor has started since.
     */
    long batchesStarted();

    /**
     * Engine lock held: whether a group commit has cleared dirty lines whose record is not yet
     * durable. Such a line is no longer in the index, yet a crash now would replay it.
     */
    boolean committing();

    /**
     * Waits until no batch runs and no group commits, and keeps the next one from starting until
     * {@link #endTurn}: a batch that copied a line before the caller dropped it has landed on the
     * backing store, and a commit that cleared lines has written its record. Returns
     * {@link #batchesDone()} at that moment. Called without the engine lock; a waiting turn
     * comes before the writeback thread's next batch.
     */
    long beginTurn();

    /** Ends the calling thread's turn taken with {@link #beginTurn}. */
    void endTurn();
}
