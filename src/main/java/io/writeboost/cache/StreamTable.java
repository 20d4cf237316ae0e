package io.writeboost.cache;

import io.writeboost.format.Layout;

/**
 * The sequential streams of each volume, for sequential_cutoff: per volume a few contiguous
 * sector ranges written recently. A write that starts where a stream ends, or ends where one
 * starts, grows it (and joins two streams it bridges); any other write starts a new stream in
 * place of the least recently used one. Keyed by position rather than by writer (bcache tracks
 * per task) because FUSE requests carry no useful task: the kernel splits one large direct
 * write into 128 KiB requests that several server threads take in any order, so the pieces
 * arrive out of order and are stitched together here.
 *
 * <p>A stream is contiguous, so its length counts every sector once: rewriting a hot region
 * in place never grows one past that region.
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held.
 */
final class StreamTable {
    /** Streams tracked per volume: the pieces of a few large requests in flight, plus a stream or two of other writers. */
    static final int STREAMS = 8;
    /**
     * A piece that arrives ahead of its predecessors (they are still in flight) starts a
     * fragment; it counts as part of a stream that ends at most this many sectors before it
     * (2 MiB: two 1 MiB requests' worth of 128 KiB pieces), so that it bypasses with the
     * stream instead of landing in the cache. The fragment joins the stream once the gap fills.
     */
    static final long REORDER_SECTORS = (2 << 20) >> Layout.SECTOR_SHIFT;

    private final long[] start = new long[(Layout.MAX_DEVICE_ID + 1) * STREAMS];
    private final long[] end = new long[start.length];
    private final long[] used = new long[start.length];
    private long clock;

    /**
     * Records a write of sectors [sector, sector + n) of volume {@code dev}; returns the
     * length in sectors of the stream it is now part of.
     */
    long observe(int dev, long sector, int n) {
        int base = dev * STREAMS;
        long e = sector + n;
        int pred = -1, succ = -1;
        for (int i = base; i < base + STREAMS; i++) {
            if (end[i] > start[i]) {
                if (end[i] == sector) {
                    pred = i;
                } else if (start[i] == e) {
                    succ = i;
                }
            }
        }
        int s;
        if (pred >= 0) {
            s = pred;
            if (succ >= 0) {
                end[pred] = end[succ];
                start[succ] = end[succ] = 0;
            } else {
                end[pred] = e;
            }
        } else if (succ >= 0) {
            s = succ;
            start[succ] = sector;
        } else {
            s = base;
            for (int i = base; i < base + STREAMS; i++) {
                if (end[i] <= start[i]) {
                    s = i;
                    break;
                }
                if (used[i] < used[s]) {
                    s = i;
                }
            }
            start[s] = sector;
            end[s] = e;
        }
        used[s] = ++clock;
        long length = end[s] - start[s];
        if (pred < 0) {
            long behind = 0;
            for (int i = base; i < base + STREAMS; i++) {
                if (i != s && end[i] > start[i] && end[i] < start[s] && start[s] - end[i] <= REORDER_SECTORS) {
                    behind = Math.max(behind, end[i] - start[i]);
                }
            }
            length += behind;
        }
        return length;
    }

    /**
     * A flush: forgets every stream shorter than {@code cutoffSectors}. A writer that flushes
     * every few KiB of a sequential range is a log (a database's WAL, a file system's journal);
     * the cache exists to absorb exactly that, and a bypassed log write would cost a sync of
     * the backing store at every flush. A copy writes megabytes between flushes and keeps its
     * stream.
     */
    void forgetShort(long cutoffSectors) {
        for (int i = STREAMS; i < start.length; i++) {
            if (end[i] - start[i] < cutoffSectors) {
                start[i] = end[i] = 0;
            }
        }
    }
}
