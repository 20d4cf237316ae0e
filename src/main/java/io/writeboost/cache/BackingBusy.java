package io.writeboost.cache;

import io.writeboost.format.Layout;

/**
 * How long each backing store has had at least one of the engine's requests in flight (reads,
 * writes, punches, syncs), in milliseconds since start: the engine's own view of the store's
 * busy time, as iostat's %util is the kernel's view of a disk.
 *
 * <p>Why both: the kernel counts a request from when the device takes it. A throttle (the blkio
 * cgroup), a network block device or a disk shared with other hosts holds requests before any
 * local counter sees them; the disk under a file then reads idle while the engine waits on
 * every request. {@link Writeback} takes the higher of the two figures.
 *
 * <p>Thread-safe: its own monitor, held for a few arithmetic steps per request.
 */
final class BackingBusy {
    private final int[] inFlight = new int[Layout.MAX_DEVICE_ID + 1];
    private final long[] busySince = new long[Layout.MAX_DEVICE_ID + 1];
    private final long[] busyNanos = new long[Layout.MAX_DEVICE_ID + 1];

    /** A request to {@code dev} starts. */
    synchronized void begin(int dev) {
        if (inFlight[dev]++ == 0) {
            busySince[dev] = System.nanoTime();
        }
    }

    /** A request to {@code dev} ended (after its {@link #begin}, whatever its outcome). */
    synchronized void end(int dev) {
        if (--inFlight[dev] == 0) {
            busyNanos[dev] += System.nanoTime() - busySince[dev];
        }
    }

    /** Milliseconds {@code dev} has had a request of the engine's in flight, counting one under way now. */
    synchronized long busyMillis(int dev) {
        long n = busyNanos[dev];
        if (inFlight[dev] > 0) {
            n += System.nanoTime() - busySince[dev];
        }
        return n / 1_000_000;
    }
}
