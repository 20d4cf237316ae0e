package io.writeboost.cache;

/**
 * How many writes writeback may leave in the backing stores' page cache before it syncs them:
 * as many as the last syncs wrote out in {@link #TARGET_NANOS}.
 *
 * <p>Writeback writes single lines and short runs through the page cache, so that the kernel
 * can queue them together. But a sync hands the disk all of them at once, and every other
 * request to that disk then waits behind them: a bypassed or staged write, and with it each
 * fsync of the volume that needs that write durable (a file system's journal commit, so every
 * writer above it). Bounding what one sync sends by what the disk writes in half a second
 * bounds that wait the same way.
 *
 * <p>Counted in requests, not bytes: a disk that seeks (or a throttle that counts requests)
 * spends the same time on a 4 KiB line as on a 28 KiB run, so a byte budget measured on
 * syncs of long runs let through a sync of several times as many single lines, seconds of
 * them on a 200-IOPS disk. Writeback syncs in the middle of a batch when the budget is
 * reached, so the bound does not depend on how many lines a batch holds.
 *
 * <p>The rate is measured, not configured: requests synced over the sync's duration. It falls
 * at once to a slower measurement and rises only a quarter of the way to a faster one: a sync
 * looks fast when the kernel had already written part of it out on its own, and a budget set
 * by that sync would hand the disk more than it writes in the target time. A sync's fixed cost
 * (the disk's cache flush) makes a small sync look slow, so the budget starts low and grows
 * with each sync until the sync takes the target time; on a fast disk that is a dozen syncs.
 * Owned by {@link Writeback}; used under its batch lock only.
 */
final class SyncBudget {
    static final long TARGET_NANOS = 500_000_000L;
    /** Never less: the fixed cost of a sync would otherwise dominate on any disk. */
    static final int MIN_REQUESTS = 16;
    /** Below this a sync says too little about the disk's rate to count. */
    private static final int MEASURE_MIN_REQUESTS = 8;

    private double requestsPerSecond = MIN_REQUESTS * 1e9 / TARGET_NANOS;

    /** Writes the page cache may hold before the next sync. */
    long requests() {
        return Math.max(MIN_REQUESTS, (long) (requestsPerSecond * TARGET_NANOS / 1e9));
    }

    /** A sync of {@code requests} writes through the page cache took {@code nanos}. */
    void synced(long requests, long nanos) {
        if (requests < MEASURE_MIN_REQUESTS || nanos <= 0) {
            return;
        }
        double rate = requests * 1e9 / nanos;
        requestsPerSecond = rate < requestsPerSecond ? rate : requestsPerSecond + (rate - requestsPerSecond) / 4;
    }

    long requestsPerSecond() {
        return (long) requestsPerSecond;
    }
}
