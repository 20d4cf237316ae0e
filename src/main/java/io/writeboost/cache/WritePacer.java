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
 * second over the last few seconds of wall time, {@link #RATE_TAU_NANOS}). At half of {@code paceStart} free slots writers
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
    /**
     * Time constant of the writeback rate: ring room freed is counted with a weight that
     * decays with its age. Wall time, not the time writeback spent per commit: a commit of
     * slots that held only superseded lines takes no time, so a rate per commit can be many
     * times what the disk writes back, and writers then run into a full ring unpaced.
     * Decaying between commits also tightens pacing as soon as writeback stalls.
     */
    static final double RATE_TAU_NANOS = 4e9;

    /** Lines freed, each weighted by exp(-age / tau), as of {@link #freedAtNanos}. */
    private double freedLines;
    private long freedAtNanos;
    private long firstFreedNanos;
    private boolean freedAny;
    private long nextNanos;
    private long pausedWrites;
    private long pausedNanos;
    private long lastPauseNanos;
    private long lastAllowedLinesPerSec;

    /** Free ring slots below which writers are paced: a quarter of the ring, at least 2. */
    static int paceStart(int nrSegments) {
        return Math.max(2, nrSegments / 4);
    }

    /** Writeback gave up {@code slots} ring slots just now. */
    synchronized void slotsFreed(long slots) {
        slotsFreed(slots, System.nanoTime());
    }

    synchronized void slotsFreed(long slots, long nowNanos) {
        if (slots <= 0) {
            return;
        }
        decay(nowNanos);
        freedLines += (double) slots * Layout.LINES_PER_SEGMENT;
        if (!freedAny) {
            firstFreedNanos = nowNanos;
            freedAny = true;
        }
    }

    private void decay(long nowNanos) {
        if (freedAny && nowNanos > freedAtNanos) {
            freedLines *= Math.exp(-(nowNanos - freedAtNanos) / RATE_TAU_NANOS);
        }
        freedAtNanos = Math.max(freedAtNanos, nowNanos);
    }

    /**
     * Lines a second writeback has freed lately; 0 before its first commit. For the first
     * {@link #RATE_TAU_NANOS} the decayed count covers less time than tau, and dividing by
     * tau would pace writers far below writeback's rate while the ring is still full of a
     * load written before the first commit: divide by the time the count covers (at least a
     * second, for the first commit's sake).
     */
    private double freedLinesPerSec(long nowNanos) {
        decay(nowNanos);
        double covered = RATE_TAU_NANOS * -Math.expm1(-(nowNanos - firstFreedNanos) / RATE_TAU_NANOS);
        return freedLines * 1e9 / Math.max(1e9, covered);
    }

    /**
     * A write took ring room for {@code lines} lines with {@code freeSlots} of {@code nrSegments}
     * ring slots free: returns how long its writer should pause (nanoseconds, 0 for none).
     */
    synchronized long charge(int lines, long freeSlots, int nrSegments) {
        return charge(lines, freeSlots, nrSegments, System.nanoTime());
    }

    synchronized long charge(int lines, long freeSlots, int nrSegments, long now) {
        int start = paceStart(nrSegments);
        if (lines <= 0 || freeSlots >= start || !freedAny) {
            nextNanos = now;
            lastAllowedLinesPerSec = 0;
            return 0;
        }
        double allowed = 2 * freedLinesPerSec(now) * Math.max(freeSlots, 0) / start;
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
        return new Status.Pacing(ringSlotsInUse, ringUsePercent, writebackByLevel, (long) freedLinesPerSec(System.nanoTime()), lastAllowedLinesPerSec,
                pausedWrites, pausedNanos, lastPauseNanos, capWaitedNanos);
    }
}
