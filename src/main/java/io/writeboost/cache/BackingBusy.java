package io.writeboost.cache;

import io.writeboost.format.Layout;

/**
 * How long each backing store has had at least one of the engine's requests in flight, in
 * milliseconds since start, counted twice: all requests, and all but writeback's own. The
 * engine's view of the store's busy time, as iostat's %util is the kernel's view of a disk.
 *
 * <p>Why the engine's view: the kernel counts a request from when the device takes it. A
 * throttle (the blkio cgroup), a network block device or a disk shared with other hosts holds
 * requests before any local counter sees them; the disk under a file then reads idle while
 * every request waits. Why twice: writeback by load ({@link Writeback}) is there to leave the
 * store to the cache's users, so it must not hold itself back for its own requests; the status
 * shows the figure with them.
 *
 * <p>Thread-safe: its own monitor, held for a few arithmetic steps per request.
 */
final class BackingBusy {
    private static final int ALL = 0, OTHERS = 1;
    private final int[][] inFlight = new int[2][Layout.MAX_DEVICE_ID + 1];
    private final long[][] busySince = new long[2][Layout.MAX_DEVICE_ID + 1];
    private final long[][] busyNanos = new long[2][Layout.MAX_DEVICE_ID + 1];

    /** A request to {@code dev} starts; {@code writeback}: one of writeback's own. */
    synchronized void begin(int dev, boolean writeback) {
        long now = System.nanoTime();
        start(ALL, dev, now);
        if (!writeback) {
            start(OTHERS, dev, now);
        }
    }

    /** A request to {@code dev} ended (after its {@link #begin}, whatever its outcome). */
    synchronized void end(int dev, boolean writeback) {
        long now = System.nanoTime();
        stop(ALL, dev, now);
        if (!writeback) {
            stop(OTHERS, dev, now);
        }
    }

    /** Milliseconds {@code dev} has had a request in flight (writeback's too, or not), counting one under way now. */
    synchronized long busyMillis(int dev, boolean withWriteback) {
        int k = withWriteback ? ALL : OTHERS;
        long n = busyNanos[k][dev];
        if (inFlight[k][dev] > 0) {
            n += System.nanoTime() - busySince[k][dev];
        }
        return n / 1_000_000;
    }

    private void start(int k, int dev, long now) {
        if (inFlight[k][dev]++ == 0) {
            busySince[k][dev] = now;
        }
    }

    private void stop(int k, int dev, long now) {
        if (--inFlight[k][dev] == 0) {
            busyNanos[k][dev] += now - busySince[k][dev];
        }
    }
}
