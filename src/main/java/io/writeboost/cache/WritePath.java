package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Writes and discards: copies a request's sectors into the open RAM segment line by line and
 * indexes them, or drops cached lines and punches the backing store. No device I/O happens on
 * the write path except the rare read of an older copy's sectors a partial write must keep.
 *
 * <p>Thread-safe: {@link #write} and {@link #discard} take the {@link EngineLock} themselves;
 * the scratch buffers are guarded by it.
 */
final class WritePath {
    private static final int LPS = Layout.LINES_PER_SEGMENT;
    private static final ByteBuffer ZERO_LINE = ByteBuffer.allocateDirect(Layout.LINE_SIZE);

    private final EngineLock lock;
    private final Health health;
    private final LineTable lines;
    private final SegmentLog segments;
    private final SegmentVerification verification;
    private final BlockDevice cacheDevice;
    private final BackingStores backings;
    private final Writeback writeback;
    private final Stats stats;
    /** One-line buffers for older sectors fetched from the cache device (guarded by the lock). */
    private final ArrayDeque<ByteBuffer> lineScratch = new ArrayDeque<>();

    WritePath(EngineLock lock, Health health, LineTable lines, SegmentLog segments, SegmentVerification verification,
              BlockDevice cacheDevice, BackingStores backings, Writeback writeback, Stats stats) {
        this.lock = lock;
        this.health = health;
        this.lines = lines;
        this.segments = segments;
        this.verification = verification;
        this.cacheDevice = cacheDevice;
        this.backings = backings;
        this.writeback = writeback;
        this.stats = stats;
    }

    /** See {@link CacheEngine#write}; the request is already checked. */
    void write(int deviceId, long sector, int nSectors, ByteBuffer src) throws IOException {
        lock.lock();
        try {
            health.checkUsable();
            long end = sector + nSectors;
            int srcPos = src.position();
            for (long s = sector; s < end; ) {
                int first = (int) (s & 7);
                int count = (int) Math.min(8 - first, end - s);
                writeLine(deviceId, s >>> 3, first, count, src, srcPos + (int) ((s - sector) << Layout.SECTOR_SHIFT));
                s += count;
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * One line's share of a write, lock held (may be released while waiting or fetching).
     *
     * <p>Key in the open segment and not yet frozen for a device write: copy the sectors in
     * place. Otherwise take the next line of
     * the open segment, copy the new sectors in, and if an older copy of the key has dirty
     * sectors this write does not cover, copy those too: from RAM when the older copy's
     * segment is still in a buffer, else from the cache device (read without the lock, then
     * the lookup is redone and the fetched copy used only if it is still current).
     */
    private void writeLine(int dev, long lineNo, int first, int count, ByteBuffer src, int srcPos) throws IOException {
        long key = LineKey.of(dev, lineNo);
        int mask = ((1 << count) - 1) << first;
        boolean fullsize = mask == Layout.FULL_DIRTY;
        ByteBuffer fetched = null;
        int fetchedLine = -1;
        long fetchedSegment = 0;
        try {
            while (true) {
                int line = lines.lookup(key);
                if (line >= 0 && segments.mutable(line)) {
                    stats.count(true, true, true, fullsize);
                    copy(src, srcPos, segments.openData(), SegmentBuffer.lineOffset(line % LPS) + (first << Layout.SECTOR_SHIFT),
                            count << Layout.SECTOR_SHIFT);
                    lines.addDirty(line, mask);
                    return;
                }
                int keep = line >= 0 ? lines.dirtyBits(line) & ~mask : 0;
                SegmentBuffer oldBuffer = line >= 0 ? segments.ramCopy(line / LPS) : null;
                boolean haveOld = keep == 0 || oldBuffer != null
                        || (fetchedLine == line && fetchedSegment == segments.segmentIn(line / LPS));
                if (!haveOld) {
                    // Older dirty sectors this write does not cover live only on the cache
                    // device; fetch them without the lock, then look again.
                    if (fetched == null) {
                        fetched = takeScratch();
                    }
                    fetchedLine = line;
                    fetchedSegment = segments.segmentIn(line / LPS);
                    long at = SegmentBuffer.deviceOffset(line);
                    lock.unlock();
                    try {
                        verification.ensureVerified(line / LPS);
                        fetched.clear();
                        cacheDevice.read(fetched, at);
                    } finally {
                        lock.lock();
                    }
                    health.checkUsable();
                    continue;
                }
                if (!segments.hasOpenRoom()) {
                    segments.makeRoom(health);
                    continue;
                }
                stats.count(true, line >= 0, line >= 0 && segments.inOpen(line), fullsize);
                int fresh = segments.appendLine(key);
                ByteBuffer open = segments.openData();
                int dst = SegmentBuffer.lineOffset(fresh % LPS);
                if (keep != 0) {
                    ByteBuffer from = oldBuffer != null ? oldBuffer.data() : fetched;
                    int fromBase = oldBuffer != null ? SegmentBuffer.lineOffset(line % LPS) : 0;
                    for (int i = 0; i < Layout.SECTORS_PER_LINE; i++) {
                        if ((keep & (1 << i)) != 0) {
                            copy(from, fromBase + (i << Layout.SECTOR_SHIFT), open, dst + (i << Layout.SECTOR_SHIFT),
                                    Layout.SECTOR_SIZE);
                        }
                    }
                }
                copy(src, srcPos, open, dst + (first << Layout.SECTOR_SHIFT), count << Layout.SECTOR_SHIFT);
                if (line >= 0) {
                    lines.supersede(line, segments.openId(), fresh / LPS);
                }
                lines.makeCurrent(fresh, mask | keep);
                return;
            }
        } finally {
            if (fetched != null) {
                lineScratch.push(fetched);
            }
        }
    }

    /**
     * See {@link CacheEngine#discard}; the range is already checked. The backing range is
     * punched first, then cached lines wholly inside the range leave the index with a
     * tombstone logged so replay cannot bring them back, and cached lines partly inside get
     * zeros written over the range; if any cached line was dropped, or a writeback batch ran
     * in between (it may have copied a line of the range to the backing store and let it go),
     * the range is punched again. Punching first means a concurrent reader sees the data as it
     * was or zeros, never the older backing copy of a line that is still cached.
     */
    void discard(int deviceId, long sector, long nSectors) throws IOException {
        long batchesBefore = writeback.punchBetweenBatches(backings, deviceId, sector, nSectors);
        long end = sector + nSectors;
        boolean dropped = false;
        lock.lock();
        try {
            health.checkUsable();
            for (long s = sector; s < end; ) {
                int first = (int) (s & 7);
                int n = (int) Math.min(8 - first, end - s);
                long lineNo = s >>> 3;
                long key = LineKey.of(deviceId, lineNo);
                if (lines.lookup(key) >= 0) {
                    dropped = true;
                    if (n == Layout.SECTORS_PER_LINE) {
                        dropLine(key);
                    } else {
                        ByteBuffer zeros = ZERO_LINE.duplicate();
                        zeros.limit(n << Layout.SECTOR_SHIFT);
                        writeLine(deviceId, lineNo, first, n, zeros, 0);
                    }
                }
                s += n;
            }
        } finally {
            lock.unlock();
        }
        if (dropped || writeback.batchesDone() != batchesBefore) {
            writeback.punchBetweenBatches(backings, deviceId, sector, nSectors);
        }
    }

    /** Lock held: the key's cached line leaves the index, and a tombstone keeps replay from bringing it back. */
    private void dropLine(long key) throws IOException {
        while (true) {
            int line = lines.lookup(key);
            if (line < 0) {
                return;
            }
            if (segments.mutable(line)) {
                lines.turnIntoTombstone(line);
                return;
            }
            if (!segments.hasOpenRoom()) {
                segments.makeRoom(health);
                continue;
            }
            int tomb = segments.appendLine(key | LineKey.TOMBSTONE);
            lines.unindex(key, line);
            lines.supersede(line, segments.openId(), tomb / LPS);
            return;
        }
    }

    private ByteBuffer takeScratch() {
        ByteBuffer b = lineScratch.poll();
        return b != null ? b : ByteBuffer.allocateDirect(Layout.LINE_SIZE);
    }

    private static void copy(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int length) {
        dst.put(dstPos, src, srcPos, length);
    }
}
