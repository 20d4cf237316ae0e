package io.writeboost.cache;

import io.writeboost.format.Layout;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The order of changes to the backing stores outside writeback (a bypassed write, a discard's
 * punch) against writeback's batches and read admissions, so that neither a batch's older copy
 * nor a read miss's stale one lands over a change (docs/ENGINE.md, "Bypass" and "Read caching").
 * A change goes through these steps, each a named operation here:
 *
 * <ol>
 *   <li>{@link #beginChange}: its lines count as changing for {@link ReadAdmission}, before its
 *       first backing-store I/O;
 *   <li>its backing I/O (the bypass's write; a discard's first punch, {@link #punchBetweenBatches});
 *   <li>under the engine lock, before it drops cached lines: {@link #syncBeforeDrops} when the
 *       I/O is not durable yet and a line is cached (a tombstone may reach the cache device
 *       before any flush asks for it); the caller drops the lines (the index is
 *       {@link WritePath}'s); then {@link #dropsDone} counts its drops as unsettled and tells
 *       whether it must wait a turn between batches;
 *   <li>{@link #settle}: if so, waits for that turn and there repeats its backing I/O when a
 *       batch may have written an older copy over it; then its drops count as settled;
 *   <li>{@link #endChange}: reads planned before it can no longer admit what they read.
 * </ol>
 *
 * <p>Owns the count of drops not yet settled. Thread-safe: methods documented "lock held"
 * expect the {@link EngineLock} (and check it); the others are called without it.
 */
final class BackingOrder {
    private final EngineLock lock;
    private final Health health;
    private final BackingStores backings;
    private final ReadAdmission admission;
    private final BatchBoundaries batches;
    /**
     * Changes that dropped cached lines and have not yet had their turn between writeback
     * batches (guarded by the lock). While one is pending, a batch may still hold an older copy
     * of a line that is no longer in the index, so every change settles after a batch that ran
     * (see {@link #dropsDone}).
     */
    private int unsettledDrops;

    BackingOrder(EngineLock lock, Health health, BackingStores backings, ReadAdmission admission, BatchBoundaries batches) {
        this.lock = lock;
        this.health = health;
        this.backings = backings;
        this.admission = admission;
        this.batches = batches;
    }

    /** Lock held: lines [first, first + n) of {@code dev} are about to change on the backing store (see {@link ReadAdmission}). */
    void beginChange(int dev, long first, long n) {
        lock.assertHeld();
        admission.beginChange(dev, first, n);
    }

    /** Lock held: the change {@link #beginChange} announced is complete on the backing store (written, not necessarily synced). */
    void endChange(int dev, long first, long n) {
        lock.assertHeld();
        admission.endChange(dev, first, n);
    }

    /**
     * Lock held: the first half of {@link #endChange} ({@link ReadAdmission#releaseChange}); in
     * the same lock hold, the caller asks {@link ReadAdmission#allowed} whether anything else
     * changed its lines, then calls {@link #markChanged}.
     */
    void releaseChange(int dev, long first, long n) {
        lock.assertHeld();
        admission.releaseChange(dev, first, n);
    }

    /** Lock held: the second half of {@link #endChange}. */
    void markChanged(int dev, long first, long n) {
        lock.assertHeld();
        admission.markChanged(dev, first, n);
    }

    /** Lock held: whether a change that dropped cached lines has not yet had its turn between batches. */
    boolean dropsUnsettled() {
        lock.assertHeld();
        return unsettledDrops > 0;
    }

    /** Writeback batches completed so far: a change reads it before its backing I/O and passes it to {@link #dropsDone}. */
    long batchesDone() {
        return batches.batchesDone();
    }

    /**
     * Called without the lock: a discard's first punch of sectors [sector, sector + n) of
     * {@code dev}, between batches, so that it cannot land between a batch's copy of a line and
     * its write. Returns {@link #batchesDone()} as it was then.
     */
    long punchBetweenBatches(int dev, long sector, long n) throws IOException {
        long done = batches.beginTurn();
        try {
            backings.punch(dev, sector, n);
            return done;
        } finally {
            batches.endTurn();
        }
    }

    /**
     * Lock held (released while it syncs): makes the change's backing I/O on {@code dev} durable
     * before the caller drops cached lines over it. A tombstone may reach the cache device
     * before the next flush asks for it (another flush's append, a seal), and the backing data
     * it lets reads through to must be durable first, or a crash would bring back what the
     * store held before the dropped line's data, older than a flush acknowledged.
     */
    void syncBeforeDrops(int dev) throws IOException {
        lock.assertHeld();
        lock.unlock();
        try {
            backings.sync(dev, false);
        } finally {
            lock.lock();
        }
        health.checkUsable();
    }

    /**
     * Lock held, after the change dropped (or superseded) the cached lines of its range:
     * {@code dropped} counts as unsettled until {@link #settle} returns. Returns whether the
     * change must wait its turn between batches: when it dropped lines, when a group commit is
     * clearing lines whose record is not durable yet, or when a batch started since
     * {@code batchesBefore} (or was in flight then: it may have taken its snapshot before a line
     * left the index and not yet written that older copy) and the change may have an older copy
     * in a batch: {@code mayBeInBatch} (a line of its range was cached when it was decided) or a
     * drop is unsettled.
     *
     * <p>With neither, no batch can hold an older copy of the range that it has yet to write: a
     * batch copies only cached dirty lines, and one that copied a line before it left the index
     * had finished writing it by then (a group commit clears lines after its batches' writes
     * are synced; a drop counts as unsettled until its change has waited for the batch). So a
     * batch that merely ran meanwhile is no reason to wait for the next batch boundary (on a
     * slow disk, seconds per bypassed piece while writeback empties a full ring).
     */
    boolean dropsDone(boolean dropped, boolean mayBeInBatch, long batchesBefore) {
        lock.assertHeld();
        if (dropped) {
            unsettledDrops++;
        }
        return dropped || batches.committing()
                || ((mayBeInBatch || unsettledDrops > 0) && batches.batchesStarted() != batchesBefore);
    }

    /**
     * Called without the lock after {@link #dropsDone}, with what it returned ({@code turn}) and
     * was given ({@code dropped}): waits for the turn if asked, and there repeats the change
     * on sectors [sector, sector + n) of {@code dev}: a write of {@code data} (from
     * {@code dataPos}) when a batch completed since {@code batchesBefore}, a punch
     * ({@code data} null) at every turn it waits. The write costs a backing write of the
     * range, the punch next to nothing. Then the change's drops count as settled, however it
     * ends.
     */
    void settle(boolean turn, boolean dropped, long batchesBefore, int dev, long sector, long n, ByteBuffer data,
                int dataPos) throws IOException {
        try {
            if (turn) {
                long done = batches.beginTurn();
                try {
                    if (data == null) {
                        backings.punch(dev, sector, n);
                    } else if (done != batchesBefore) {
                        ByteBuffer again = data.duplicate();
                        again.limit(dataPos + (int) (n << Layout.SECTOR_SHIFT)).position(dataPos);
                        backings.write(dev, again, sector, false, false);
                        backings.changed(dev);
                    }
                } finally {
                    batches.endTurn();
                }
            }
        } finally {
            if (dropped) {
                lock.lock();
                try {
                    unsettledDrops--;
                } finally {
                    lock.unlock();
                }
            }
        }
    }
}
