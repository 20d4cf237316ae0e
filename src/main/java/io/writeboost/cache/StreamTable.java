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
 * in place never grows one past that region. A stream that starts shortly after another one
 * ends (pieces ahead of their predecessors, a fragment a flush forgot, a small hole) counts
 * with that stream for as long as it grows, and keeps it from being forgotten or evicted
 * meanwhile. Only one level: a stream counts the span of the one behind it, not what that one
 * counted in turn, so random writes can never chain their way up to a cutoff. Were only the
 * first piece after such a gap to count the stream behind it, each forgotten or overtaken
 * fragment would restart the count and send the next 4 MiB through the cache (a copy onto
 * ext4 would fill the ring; docs/PERFORMANCE.md has the figures). What still goes through the
 * cache is the 4 MiB after each hole larger than the window (ext4's backup superblocks and
 * reserved blocks, the journal, a flex group's tables).
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held (and checks it).
 */
final class StreamTable {
    private final EngineLock lock;
    /** Streams tracked per volume: the pieces of a few large requests in flight, plus a stream or two of other writers. */
    static final int STREAMS = 8;
    /**
     * A piece that arrives ahead of its predecessors (they are still in flight) starts a
     * fragment; it counts as part of a stream that ends at most this many sectors before it
     * (2 MiB: two 1 MiB requests' worth of 128 KiB pieces), so that it bypasses with the
     * stream instead of landing in the cache. The fragment joins the stream once the gap fills.
     */
    static final long REORDER_SECTORS = (2 << 20) >> Layout.SECTOR_SHIFT;
    /**
     * Only a stream this long (64 KiB) counts the one behind it: the pieces of a large request
     * are FUSE requests of 128 KiB (120 KiB at an extent's end), while small random writes in
     * the 2 MiB after some stream must neither add its span to theirs (under ring pressure the
     * cutoff is 64 KiB) nor keep a finished copy's stream alive in the table.
     */
    static final long MIN_CONTINUATION_SECTORS = (64 << 10) >> Layout.SECTOR_SHIFT;

    private final long[] start = new long[(Layout.MAX_DEVICE_ID + 1) * STREAMS];
    private final long[] end = new long[start.length];
    private final long[] used = new long[start.length];
    private long clock;

    StreamTable(EngineLock lock) {
        this.lock = lock;
    }

    /**
     * Records a write of sectors [sector, sector + n) of volume {@code dev}; returns the
     * length in sectors of the stream it is now part of.
     */
    long observe(int dev, long sector, int n) {
        lock.assertHeld();
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
        int b = countedBehind(base, s);
        if (b < 0) {
            return end[s] - start[s];
        }
        used[b] = ++clock; // it carries this stream's count: kept as long as this one is written
        return end[s] - start[s] + end[b] - start[b];
    }

    /** The stream whose span stream {@code s} counts with its own: {@link #behind}, if {@code s} is long enough to count one; else -1. */
    private int countedBehind(int base, int s) {
        lock.assertHeld();
        return end[s] - start[s] >= MIN_CONTINUATION_SECTORS ? behind(base, s) : -1;
    }

    /**
     * The longest other stream of the volume that ends at most {@link #REORDER_SECTORS} before
     * stream {@code s} starts, or -1.
     */
    private int behind(int base, int s) {
        lock.assertHeld();
        int best = -1;
        for (int i = base; i < base + STREAMS; i++) {
            if (i != s && end[i] > start[i] && end[i] < start[s] && start[s] - end[i] <= REORDER_SECTORS
                    && (best < 0 || end[i] - start[i] > end[best] - start[best])) {
                best = i;
            }
        }
        return best;
    }

    /**
     * A flush: forgets every stream shorter than {@code cutoffSectors}. A writer that flushes
     * every few KiB of a sequential range is a log (a database's WAL, a file system's journal);
     * the cache exists to absorb exactly that, and a bypassed log write would cost a sync of
     * the backing store at every flush. A copy writes megabytes between flushes and keeps its
     * stream.
     */
    void forgetShort(long cutoffSectors) {
        lock.assertHeld();
        for (int base = STREAMS; base < start.length; base += STREAMS) {
            int active = 0;
            for (int i = base; i < base + STREAMS; i++) {
                if (end[i] > start[i]) {
                    active |= 1 << (i - base);
                }
            }
            if (active == 0) {
                continue;
            }
            // Decided first, cleared after: a short stream may keep the one ahead of it long.
            int keep = 0;
            for (int i = base; i < base + STREAMS; i++) {
                if ((active >> (i - base) & 1) == 0) {
                    continue;
                }
                int b = countedBehind(base, i);
                long length = end[i] - start[i] + (b < 0 ? 0 : end[b] - start[b]);
                if (length >= cutoffSectors) {
                    keep |= 1 << (i - base);
                    if (b >= 0) {
                        keep |= 1 << (b - base);
                    }
                }
            }
            for (int i = base; i < base + STREAMS; i++) {
                if ((keep >> (i - base) & 1) == 0) {
                    start[i] = end[i] = 0;
                }
            }
        }
    }
}
