package io.writeboost.cache;

import io.writeboost.format.Layout;

/**
 * Paces cached writes while the ring runs short of free slots, so that the write rate settles
 * at what writeback frees instead of the ring filling up and every writer then waiting for a
 * whole batch to reach the backing store. The idea is Linux's dirty-page throttling: many short
 * pauses, in proportion to how short room is, instead of one long wait.
 *
 * <p>With fewer than {@link #paceStart} free slots, writers together may take ring room at
 *
 * <pre>
 *   allowed = 2 * freed * free / paceStart        (lines per second)
 * </pre>
 *
 * where {@code freed} is the rate at which writeback has been freeing ring room (lines per
 * second, a moving average over its commits). At half of {@code paceStart} free slots writers
 * get exactly what writeback frees: that is the set point. With more room they get more, with
 * less they get less, and the ring never runs empty as long as writeback makes progress. A
 * shared virtual clock spreads the allowed rate over all writers whatever their number; one
 * pause is at most {@link #MAX_PAUSE_NANOS}, the clock runs at most {@link #MAX_DEBT_NANOS}
 * ahead, and the wait for a free slot in
 * {@link SegmentLog#makeRoom} stays the backstop. Before writeback has committed anything the
 * rate is unknown and nothing is paced.
 *
 * <p>Thread-safety: its own monitor guards everything; it never takes the {@link EngineLock}
 * and does no I/O, so it may be called with the engine lock held. Pauses are served by the
 * caller after it has released the engine lock ({@link #pause}).
 */
final class WritePacer {
    /**
     * Longest single pause, for latency (Linux's dirty throttling caps one at 200 ms). Longer
     * here: the kernel paces tasks, but here every FUSE request is a writer of its own, and
     * with dozens in flight a short cap would let them through far above the allowed rate.
     */
    static final long MAX_PAUSE_NANOS = 500_000_000L;
    /** How far ahead of real time the pacing clock may run: the debt many writers at once can build up. */
    static final long MAX_DEBT_NANOS = 2_000_000_000L;
    /** Weight of the newest commit in the writeback rate's moving average. */
    private static final double RATE_WEIGHT = 0.3;

    private double freedLinesPerSec;
    private long nextNanos;
    private long pausedWrites;
    private long pausedNanos;
    private long lastPauseNanos;
    private long lastAllowedLinesPerSec;

    /** Free ring slots below which writers are paced: a quarter of the ring, at least 2. */
    static int paceStart(int nrSegments) {
        return Math.max(2, nrSegments / 4);
    }

    /**
     * Writeback gave up {@code slots} ring slots after working {@code busyNanos} on them
     * (the time since its group started).
     */
    synchronized void slotsFreed(long slots, long busyNanos) {
        if (slots <= 0 || busyNanos <= 0) {
            return;
        }
        double sample = (double) slots * Layout.LINES_PER_SEGMENT * 1e9 / busyNanos;
        freedLinesPerSec = freedLinesPerSec == 0 ? sample : RATE_WEIGHT * sample + (1 - RATE_WEIGHT) * freedLinesPerSec;
    }

    /**
     * A write took ring room for {@code lines} lines with {@code freeSlots} of {@code nrSegments}
     * ring slots free: returns how long its writer should pause (nanoseconds, 0 for none).
     */
    synchronized long charge(int lines, long freeSlots, int nrSegments) {
        long now = System.nanoTime();
        int start = paceStart(nrSegments);
        if (lines <= 0 || freeSlots >= start || freedLinesPerSec == 0) {
            nextNanos = now;
            lastAllowedLinesPerSec = 0;
            return 0;
        }
        double allowed = 2 * freedLinesPerSec * Math.max(freeSlots, 0) / start;
        lastAllowedLinesPerSec = (long) allowed;
        long cost = allowed <= 0 ? MAX_PAUSE_NANOS : (long) Math.min(MAX_PAUSE_NANOS, lines * 1e9 / allowed);
        long begin = Math.max(now, nextNanos);
        nextNanos = Math.min(begin + cost, now + MAX_DEBT_NANOS);
        long pause = Math.min(nextNanos - now, MAX_PAUSE_NANOS);
        pausedWrites++;
        pausedNanos += pause;
        lastPauseNanos = pause;
        return pause;
    }

    /** Called without the engine lock: sleeps for a pause {@link #charge} returned. */
    static void pause(long nanos) {
        long deadline = System.nanoTime() + nanos;
        for (long left = nanos; left > 0; left = deadline - System.nanoTime()) {
            java.util.concurrent.locks.LockSupport.parkNanos(left);
        }
    }

    /** The pacing figures for the status, with what the caller knows: the ring's use, whether writeback runs by it, its waits for the cap. */
    synchronized Status.Pacing figures(long ringSlotsInUse, long ringUsePercent, boolean writebackByLevel, long capWaitedNanos) {
        return new Status.Pacing(ringSlotsInUse, ringUsePercent, writebackByLevel, (long) freedLinesPerSec, lastAllowedLinesPerSec,
                pausedWrites, pausedNanos, lastPauseNanos, capWaitedNanos);
    }
}
