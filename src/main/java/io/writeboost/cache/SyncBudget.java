package io.writeboost.cache;

import io.writeboost.format.Layout;

/**
 * How many bytes writeback may leave in the backing stores' page cache before it syncs them:
 * as many as the last syncs wrote out in {@link #TARGET_NANOS}.
 *
 * <p>Writeback writes single lines through the page cache and syncs once per group, so that
 * the kernel can queue a group's random writes together. But the sync hands the disk all of
 * them at once, and every other request to that disk then waits behind them: a bypassed or
 * staged write, and with it each fsync of the volume that needs that write durable (a file
 * system's journal commit, so every writer above it). On a 200-IOPS disk a group of 90
 * segments written in two seconds of page-cache speed took over 20 seconds to sync. Bounding
 * the group by what the disk syncs in half a second bounds that wait the same way.
 *
 * <p>The rate is measured, not configured: bytes synced over the sync's duration. It falls at
 * once to a slower measurement and rises only a quarter of the way to a faster one: a sync
 * looks fast when the kernel had already written part of the group out on its own, and a
 * budget set by that sync would hand the disk more than it writes in the target time. A
 * sync's fixed cost (the disk's cache flush) makes a small sync look slow, so the budget
 * starts low and grows with each sync until the sync takes the target time; on a fast disk
 * that is a dozen syncs. Owned by {@link Writeback}; used under its batch lock only.
 */
final class SyncBudget {
    static final long TARGET_NANOS = 500_000_000L;
    /** Never less: one segment's worth of single lines, so that a batch always fits. */
    static final long MIN_BYTES = Layout.SEGMENT_SIZE;
    /** Below this a sync says too little about the disk's rate to count. */
    private static final long MEASURE_MIN_BYTES = 64 << 10;

    private double bytesPerSecond = MIN_BYTES * 1e9 / TARGET_NANOS;

    /** Bytes the next group may leave in the page cache. */
    long bytes() {
        return Math.max(MIN_BYTES, (long) (bytesPerSecond * TARGET_NANOS / 1e9));
    }

    /** A sync of {@code bytes} written through the page cache took {@code nanos}. */
    void synced(long bytes, long nanos) {
        if (bytes < MEASURE_MIN_BYTES || nanos <= 0) {
            return;
        }
        double rate = bytes * 1e9 / nanos;
        bytesPerSecond = rate < bytesPerSecond ? rate : bytesPerSecond + (rate - bytesPerSecond) / 4;
    }

    long bytesPerSecond() {
        return (long) bytesPerSecond;
    }
}
