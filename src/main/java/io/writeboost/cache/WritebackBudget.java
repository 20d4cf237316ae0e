package io.writeboost.cache;

import io.writeboost.knob.Knob;

import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * The cap on background writeback that users sharing the backing store ask for:
 * writeback_max_mbps and writeback_max_iops (0: none). Each backing request writeback sends
 * costs the longer of its bytes at the byte rate and one request at the request rate, on a
 * virtual clock that may run up to {@link #BURST_NANOS} behind real time (a short burst after
 * an idle spell). Writeback asks only while room is plentiful: once writers are paced or
 * waiting, a stalled writer is worse than a busy disk, and the cap is not applied. Nor once
 * the cache stops: a stop waits for the running batch, and at a cap of a few requests a
 * second that would hold it for minutes.
 *
 * <p>Not thread-safe: owned by the writeback thread ({@link #waitedNanos} may be read by any).
 */
final class WritebackBudget {
    static final long BURST_NANOS = 100_000_000L;

    /** Slices of a wait, so that a stop ends it soon. */
    private static final long SLICE_NANOS = 50_000_000L;

    private final KnobValues knobs;
    private final BooleanSupplier stopping;
    private long nextNanos;
    /** Written by the writeback thread only; read by the status. */
    private volatile long waitedNanos;

    WritebackBudget(KnobValues knobs, BooleanSupplier stopping) {
        this.knobs = knobs;
        this.stopping = stopping;
    }

    /** Whether a cap is set at all. */
    boolean capped() {
        return knobs.get(Knob.WRITEBACK_MAX_MBPS) > 0 || knobs.get(Knob.WRITEBACK_MAX_IOPS) > 0;
    }

    /** Waits, if the caps ask for it and the cache is not stopping, before a backing request of {@code bytes}. */
    void take(long bytes) {
        long mbps = knobs.get(Knob.WRITEBACK_MAX_MBPS);
        long iops = knobs.get(Knob.WRITEBACK_MAX_IOPS);
        long cost = Math.max(mbps > 0 ? bytes * 1_000L / mbps : 0, iops > 0 ? 1_000_000_000L / iops : 0);
        if (cost == 0) {
            return;
        }
        long now = System.nanoTime();
        long start = Math.max(now - BURST_NANOS, nextNanos);
        nextNanos = start + cost;
        long wait = nextNanos - now;
        if (wait > 0) {
            waitedNanos += wait;
            long deadline = now + wait;
            for (long left = wait; left > 0 && !stopping.getAsBoolean(); left = deadline - System.nanoTime()) {
                LockSupport.parkNanos(Math.min(left, SLICE_NANOS));
            }
        }
    }

    /** Time writeback waited for the caps since start. */
    long waitedNanos() {
        return waitedNanos;
    }
}
