package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.SectorRuns;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads: under the lock, for each line, copies cached sectors held in RAM and plans the rest
 * (cached sectors on the cache device, with the slot's segment id; every other sector as a
 * backing-store run, coalesced across lines). Without the lock, reads the plan straight into
 * the caller's buffer. Then, under the lock, checks that every cache-device line read is still
 * the current copy in a slot holding the same segment; if a slot was reused meanwhile, the
 * read is redone. Whole lines the read missed that {@link ReadAdmission} admits are then
 * appended to the open segment as clean lines, copied from the caller's buffer, if the guard
 * still allows it and the log has room without waiting (docs/ENGINE.md, "Read caching").
 *
 * <p>Thread-safe: takes the {@link EngineLock} itself; each reading thread has its own plan.
 */
final class ReadPath {
    private static final int LPS = Layout.LINES_PER_SEGMENT;

    private final EngineLock lock;
    private final Health health;
    private final LineTable lines;
    private final SegmentLog segments;
    private final SegmentVerification verification;
    private final BlockDevice cacheDevice;
    private final BackingStores backings;
    private final Stats stats;
    private final ReadAdmission admission;
    private final StreamStaging staging;
    /** One plan per reading thread (FUSE threads live long): reads take no lock just to get scratch space. */
    private final ThreadLocal<ReadPlan> readPlan = ThreadLocal.withInitial(ReadPlan::new);

    ReadPath(EngineLock lock, Health health, LineTable lines, SegmentLog segments, SegmentVerification verification,
             BlockDevice cacheDevice, BackingStores backings, Stats stats, ReadAdmission admission, StreamStaging staging) {
        this.lock = lock;
        this.health = health;
        this.lines = lines;
        this.segments = segments;
        this.verification = verification;
        this.cacheDevice = cacheDevice;
        this.backings = backings;
        this.stats = stats;
        this.admission = admission;
        this.staging = staging;
    }

    /** See {@link CacheEngine#read}; the request is already checked. */
    void read(int deviceId, long sector, int nSectors, ByteBuffer dst) throws IOException {
        ReadPlan plan = readPlan.get();
        boolean counted = false;
        while (!readOnce(deviceId, sector, nSectors, dst, plan, !counted)) {
            counted = true;
        }
    }

    /** One attempt; false when a cache-device line it read was reused meanwhile (then it is retried). */
    private boolean readOnce(int dev, long sector, int nSectors, ByteBuffer dst, ReadPlan plan, boolean count) throws IOException {
        plan.reset();
        int base = dst.position();
        long end = sector + nSectors;
        lock.lock();
        try {
            health.checkUsable();
            boolean admit = count && admission.mayAdmit(dev, sector, nSectors);
            boolean useClean = admission.servesReads();
            plan.ticket = admission.ticket();
            plan.durable = !backings.unsynced(dev);
            for (long s = sector; s < end; ) {
                int first = Layout.sectorInLine(s);
                int n = Layout.sectorsInLine(s, end);
                int mask = ((1 << n) - 1) << first;
                long lineNo = s >>> 3;
                int dstLine = base + (int) (((lineNo << 3) - sector) << Layout.SECTOR_SHIFT); // may be negative for the first line
                long key = LineKey.of(dev, lineNo);
                int line = lines.lookup(key);
                // In pass-through a clean line is passed over: the backing store holds the same.
                boolean used = line >= 0 && (useClean || !lines.isClean(line));
                int cached = used ? lines.cachedBits(line) & mask : 0;
                if (used && count) {
                    lines.markHot(line);
                }
                if (count) {
                    stats.count(false, used, used && segments.inOpen(line), mask == Layout.FULL_DIRTY);
                    if (used && lines.isClean(line)) {
                        admission.countCleanHit();
                    }
                }
                if (line < 0 && staging.read(dev, lineNo, first, n, dst, dstLine)) {
                    // Staged for the backing store and not written yet: the newest copy is in RAM.
                    plan.markBacking(s - sector, 0, first, n);
                    s += n;
                    continue;
                }
                if (line < 0 && admit && mask == Layout.FULL_DIRTY && admission.secondMiss(key)) {
                    plan.addCandidate(key, dstLine);
                }
                if (cached != 0) {
                    SegmentBuffer buf = segments.ramCopy(line / LPS);
                    if (buf != null) {
                        int from = SegmentBuffer.lineOffset(line % LPS);
                        for (int i = SectorRuns.start(cached, 0); i < 8; ) {
                            int to = SectorRuns.end(cached, i);
                            dst.put(dstLine + (i << Layout.SECTOR_SHIFT), buf.data(), from + (i << Layout.SECTOR_SHIFT),
                                    (to - i) << Layout.SECTOR_SHIFT);
                            i = SectorRuns.start(cached, to);
                        }
                    } else {
                        plan.addCacheLine(line, segments.segmentIn(line / LPS), cached, dstLine);
                    }
                }
                plan.markBacking(s - sector, mask & ~cached, first, n);
                s += n;
            }
            plan.closeBackingRun();
        } finally {
            lock.unlock();
        }
        ByteBuffer view = dst.duplicate();
        for (int i = 0; i < plan.cacheLines; i++) {
            int line = plan.lines[i];
            if (verification.unverifiedSlots() != 0) {
                verification.ensureVerified(line / LPS);
            }
            long at = SegmentBuffer.deviceOffset(line);
            int dstLine = plan.dstOffsets[i];
            int bits = plan.bits[i];
            for (int from = SectorRuns.start(bits, 0); from < 8; ) {
                int to = SectorRuns.end(bits, from);
                view.limit(dstLine + (to << Layout.SECTOR_SHIFT)).position(dstLine + (from << Layout.SECTOR_SHIFT));
                cacheDevice.read(view, at + ((long) from << Layout.SECTOR_SHIFT));
                view.clear();
                from = SectorRuns.start(bits, to);
            }
        }
        for (int i = 0; i < plan.backingRuns; i++) {
            int off = base + (int) (plan.runStart[i] << Layout.SECTOR_SHIFT);
            view.limit(off + (plan.runLength[i] << Layout.SECTOR_SHIFT)).position(off);
            backings.read(dev, view, sector + plan.runStart[i]);
            view.clear();
        }
        if (plan.cacheLines == 0 && plan.candidates == 0) {
            return true;
        }
        lock.lock();
        try {
            for (int i = 0; i < plan.cacheLines; i++) {
                int line = plan.lines[i];
                if (segments.segmentIn(line / LPS) != plan.segments[i] || !lines.isCurrent(line)) {
                    return false;
                }
            }
            if (plan.candidates > 0 && !health.failed()) {
                admit(plan, dst, dev);
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Lock held: appends the plan's admitted lines, read from the backing store into
     * {@code dst}, to the open segment as clean lines. A line is skipped when something may
     * have changed its backing-store copy since the plan (the guard), or when it is cached now
     * (a write got there first); admission stops when the log has no room without waiting.
     */
    private void admit(ReadPlan plan, ByteBuffer dst, int dev) {
        lock.assertHeld();
        // A start keeps the line only if what was read was durable on the backing store: no
        // change outside writeback was unsynced when the read was planned, nor now.
        boolean durable = plan.durable && !backings.unsynced(dev);
        for (int i = 0; i < plan.candidates; i++) {
            long key = plan.candidateKeys[i];
            if (!admission.allowed(key, plan.ticket) || lines.lookup(key) >= 0) {
                continue;
            }
            if (!segments.roomForClean()) {
                return;
            }
            segments.appendClean(key, dst, plan.candidateOffsets[i], durable);
            admission.countAdmitted();
        }
    }

    /**
     * Scratch state of one read, reused across reads: the lines to fetch from the cache device
     * (with the segment id to validate them against) and the sector runs to fetch from the
     * backing store, in request-relative sectors.
     */
    private static final class ReadPlan {
        int cacheLines;
        int[] lines = new int[32];
        long[] segments = new long[32];
        int[] bits = new int[32];
        int[] dstOffsets = new int[32];

        /** Whole missed lines to admit after the read: their keys and where they are in the caller's buffer. */
        int candidates;
        long[] candidateKeys = new long[32];
        int[] candidateOffsets = new int[32];
        long ticket;
        /** The backing store had no unsynced change outside writeback when this read was planned. */
        boolean durable;

        int backingRuns;
        long[] runStart = new long[16];
        int[] runLength = new int[16];
        private long openStart = -1;
        private int openLength;

        void reset() {
            cacheLines = 0;
            candidates = 0;
            backingRuns = 0;
            openStart = -1;
            openLength = 0;
        }

        void addCacheLine(int line, long segment, int lineBits, int dstOffset) {
            if (cacheLines == lines.length) {
                int n = lines.length * 2;
                lines = java.util.Arrays.copyOf(lines, n);
                segments = java.util.Arrays.copyOf(segments, n);
                bits = java.util.Arrays.copyOf(bits, n);
                dstOffsets = java.util.Arrays.copyOf(dstOffsets, n);
            }
            lines[cacheLines] = line;
            segments[cacheLines] = segment;
            bits[cacheLines] = lineBits;
            dstOffsets[cacheLines] = dstOffset;
            cacheLines++;
        }

        void addCandidate(long key, int dstOffset) {
            if (candidates == candidateKeys.length) {
                candidateKeys = java.util.Arrays.copyOf(candidateKeys, candidates * 2);
                candidateOffsets = java.util.Arrays.copyOf(candidateOffsets, candidates * 2);
            }
            candidateKeys[candidates] = key;
            candidateOffsets[candidates] = dstOffset;
            candidates++;
        }

        /**
         * Records which of sectors {@code first..first+n-1} of a line need the backing store;
         * {@code rel} is the request-relative index of sector {@code first}.
         */
        void markBacking(long rel, int needBits, int first, int n) {
            for (int i = first; i < first + n; i++) {
                long r = rel + (i - first);
                if ((needBits & (1 << i)) != 0) {
                    if (openStart >= 0 && openStart + openLength == r) {
                        openLength++;
                    } else {
                        closeBackingRun();
                        openStart = r;
                        openLength = 1;
                    }
                } else {
                    closeBackingRun();
                }
            }
        }

        void closeBackingRun() {
            if (openStart < 0) {
                return;
            }
            if (backingRuns == runStart.length) {
                runStart = java.util.Arrays.copyOf(runStart, backingRuns * 2);
                runLength = java.util.Arrays.copyOf(runLength, backingRuns * 2);
            }
            runStart[backingRuns] = openStart;
            runLength[backingRuns] = openLength;
            backingRuns++;
            openStart = -1;
            openLength = 0;
        }
    }
}
