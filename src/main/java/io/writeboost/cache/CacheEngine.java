package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.Superblock;
import io.writeboost.format.SuperblockRecord;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobException;
import io.writeboost.recovery.Recovery;
import io.writeboost.recovery.RecoveryResult;
import io.writeboost.recovery.ReplaySegment;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The segment-log write-back cache: one cache device shared by up to 127 backing stores.
 *
 * <p>Writes are copied into the open RAM segment and acknowledged; full segments are sealed
 * and handed to the {@link Flusher}, which writes each as one sequential write into its ring
 * slot; {@link Writeback} later copies dirty sectors to the backing stores. One lock guards
 * the index and line metadata; it is held for index work and RAM copies, never across device
 * I/O. Reads of the cache device happen outside it and are validated afterwards against the
 * slot's segment id, which changes whenever a slot is reused.
 *
 * <p>Line metadata lives in primitive arrays indexed by line number ({@code slot * 255 + k}):
 * a key (device, backing line) and 8 per-sector dirty bits. A line is in the index while it
 * holds the newest copy of any dirty sector of its key; its dirty bits then say which sectors
 * the cache holds. Sectors that are not dirty are read from the backing store.
 */
public final class CacheEngine implements Closeable {
    private static final Logger log = LogManager.getLogger(CacheEngine.class);
    static final int LPS = Layout.LINES_PER_SEGMENT;

    final BlockDevice cacheDevice;
    final Superblock superblock;
    final int nrSegments;
    final long nonce;
    final BlockDevice[] backing = new BlockDevice[Layout.MAX_DEVICE_ID + 1];
    private final long[] volumeSectors = new long[Layout.MAX_DEVICE_ID + 1];

    final ReentrantLock lock = new ReentrantLock();
    /** Signalled on every state change the I/O path waits for: space, flushes, durability, flusher work. */
    final Condition changed = lock.newCondition();
    /**
     * Wakes the writeback and periodic daemons, only for what they act on: a writer needs a
     * ring slot, a drain, a flushed segment while writeback is allowed, a knob, a stop or a
     * failure. Waking them on every flush as well cost two needless wake-ups per fsync.
     */
    final Condition background = lock.newCondition();

    // Line table (guarded by lock).
    final long[] keys;
    final byte[] dirty;
    final LineIndex index;
    // Per ring slot (guarded by lock).
    final long[] slotSegmentId;
    final int[] slotLines;
    /** Newest segment that invalidated a line of this slot; it must be durable before the slot counts as written back. */
    final long[] slotInvalidatedBy;
    final SegmentBuffer[] slotBuffer;

    // Log state (guarded by lock).
    SegmentBuffer open;
    long openSinceNanos;
    long nextId;
    long lastFlushedId;
    long lastDurableId;
    long lastMigratedId;
    long syncRequestedId;
    /** When nonzero, the open segment with id {@link #sealDeadlineFor} is sealed at this System.nanoTime(). */
    long sealDeadlineNanos;
    long sealDeadlineFor;
    final ArrayDeque<SegmentBuffer> flushQueue = new ArrayDeque<>();
    /** Taken by the one thread writing segments to or syncing the cache device (the flusher or a waiting flush). */
    boolean deviceBusy;
    private final ArrayDeque<SegmentBuffer> freeBuffers = new ArrayDeque<>();
    private int buffersAllocated;
    private final int maxBuffers;
    /** Writers blocked because the next ring slot still holds data not written back: writeback must run. */
    int writersWaitingForSlot;
    /** Number of drains in progress; writeback runs while it is above 0. */
    int drainRequested;
    volatile boolean closing;
    volatile Throwable failure;

    final long[] dirtyLines = new long[Layout.MAX_DEVICE_ID + 1];
    /** Writeback failures since start, and the last one's message while writeback keeps failing (null once it succeeds). */
    volatile long writebackErrors;
    /** Last measured busy percent of each backing store (written by writeback), and whether that load holds writeback back. */
    final int[] backingLoad = new int[Layout.MAX_DEVICE_ID + 1];
    volatile boolean writebackPausedByLoad;
    volatile String writebackFailing;
    private final Stats stats = new Stats();
    /** One plan per reading thread (FUSE threads live long): reads take no lock just to get scratch space. */
    private final ThreadLocal<ReadPlan> readPlan = ThreadLocal.withInitial(ReadPlan::new);
    private final ArrayDeque<ByteBuffer> lineScratch = new ArrayDeque<>();
    private static final ByteBuffer ZERO_LINE = ByteBuffer.allocateDirect(Layout.LINE_SIZE);

    private final AtomicLongArray knobValues = new AtomicLongArray(Knob.values().length);
    private final long[] migrateThreshold = new long[Layout.MAX_DEVICE_ID + 1];

    // Superblock record writes are serialised; the recorded last_migrated id only grows.
    private final Object recordLock = new Object();
    private long recordSequence;
    private long recordedMigratedId;
    /** last_flushed_segment_id of the newest record written: what a start after a crash may take on trust. */
    volatile long recordedDurableId;

    /** Held by writeback across a batch and by discard across its backing punch. */
    final ReentrantLock writebackLock = new ReentrantLock();
    /** Bytes written to the cache device in segments, and dirty bytes written back, since start (for status and benchmarks). */
    volatile long flushedBytes, writtenBackBytes;
    /** Writeback batches that wrote something, counted under writebackLock. */
    volatile long writebackBatches;
    /** Backing stores punched by a discard since their last sync; the next flush syncs them. */
    private final java.util.concurrent.atomic.AtomicIntegerArray punchedSinceSync =
            new java.util.concurrent.atomic.AtomicIntegerArray(Layout.MAX_DEVICE_ID + 1);

    private final Flusher flusher;
    private final Writeback writeback;
    private final Periodic periodic;
    private final RecoveryResult recovery;
    /**
     * Replayed segments whose checksum is still unchecked, by slot: recovery took their
     * headers on the record's word that they were written completely (a full read of a large
     * cache takes longer than a start should). Each is verified before its data is first read,
     * by {@link Verifier} in the background, and all of them before any flush is acknowledged
     * or any writeback starts, so a segment the device corrupted at rest costs nothing that
     * was acknowledged in this run and nothing already on the backing stores.
     */
    private final boolean[] slotUnverified;
    /** Slots still unverified; read without the lock by the read path, which skips all checks at 0. */
    volatile int unverifiedSlots;
    /** Highest segment id the superblock record may vouch for as completely written (lowered when one fails). */
    private long vouchLimit = Long.MAX_VALUE;
    private final java.util.concurrent.ConcurrentLinkedQueue<ByteBuffer> verifyBuffers = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final long startedNanos = System.nanoTime();
    private final Verifier verifier;

    // ---------------------------------------------------------------- format and open

    /**
     * Writes a fresh superblock and record to {@code cache}: an empty cache for the given
     * volumes. Whatever the device held becomes unreachable (segments carry the format nonce).
     */
    public static Superblock format(BlockDevice cache, int cacheId, List<VolumeEntry> volumes) throws IOException {
        return format(cache, cacheId, volumes, new SecureRandom().nextLong(), System.currentTimeMillis());
    }

    /** {@link #format(BlockDevice, int, List)} with a given nonce and time, for reproducible images. */
    public static Superblock format(BlockDevice cache, int cacheId, List<VolumeEntry> volumes, long nonce, long timeMillis)
            throws IOException {
        long segments = Layout.segmentsFor(cache.size());
        if (segments < 2) {
            throw new FormatException(cache.name() + ": " + cache.size() + " bytes hold " + segments
                    + " segment(s); a cache needs at least 2 (" + (Layout.SUPERBLOCK_REGION_SIZE + 2L * Layout.SEGMENT_SIZE) + " bytes)");
        }
        if (segments * LPS > Integer.MAX_VALUE - 16) {
            segments = (Integer.MAX_VALUE - 16) / LPS;
        }
        for (VolumeEntry v : volumes) {
            checkVolume(v.deviceId(), v.sizeBytes(), v.name());
        }
        Superblock sb = new Superblock((int) segments, cacheId, nonce, timeMillis, volumes);
        cache.write(sb.encode(), 0);
        SuperblockRecord first = new SuperblockRecord(0, nonce, 0, 0, true);
        cache.write(first.encode(), first.offset());
        cache.write(ByteBuffer.allocateDirect(SuperblockRecord.SIZE), SuperblockRecord.OFFSET_B);
        cache.sync();
        log.info("formatted cache {} on {}: {} segments ({} MiB of lines), {} volume(s)", cacheId, cache.name(), segments,
                segments * LPS * Layout.LINE_SIZE >> 20, volumes.size());
        return sb;
    }

    /** The rule {@link #format} applies to each volume; public so that a request can be refused before anything is written. */
    public static void checkVolume(int deviceId, long size, String name) throws FormatException {
        if (deviceId < Layout.MIN_DEVICE_ID || deviceId > Layout.MAX_DEVICE_ID) {
            throw new FormatException("device id " + deviceId + " of " + name + " is outside 1.." + Layout.MAX_DEVICE_ID);
        }
        if (size <= 0 || size % Layout.SECTOR_SIZE != 0) {
            throw new FormatException(name + ": size " + size + " is not a positive multiple of " + Layout.SECTOR_SIZE + " bytes");
        }
    }

    /**
     * Opens a formatted cache: checks that {@code backings} (device id to store) match the
     * superblock's volume table, recovers, and starts the daemons. Nothing is written to
     * any device when the check fails.
     */
    public static CacheEngine open(BlockDevice cache, Map<Integer, BlockDevice> backings, EngineConfig config) throws IOException {
        Superblock sb = Recovery.readSuperblock(cache);
        if (sb.volumes().size() != backings.size()) {
            throw new FormatException(cache.name() + " was formatted for " + sb.volumes().size() + " volume(s), "
                    + backings.size() + " given");
        }
        for (VolumeEntry v : sb.volumes()) {
            BlockDevice b = backings.get(v.deviceId());
            if (b == null) {
                throw new FormatException(cache.name() + " caches device id " + v.deviceId() + " (" + v.path() + "), which was not given");
            }
            if (b.size() != v.sizeBytes()) {
                throw new FormatException("backing store " + b.name() + " has " + b.size() + " bytes but cache " + cache.name()
                        + " was formatted for device id " + v.deviceId() + " of " + v.sizeBytes() + " bytes (" + v.path() + ")");
            }
            if (!v.path().isEmpty() && !v.path().equals(b.name())) {
                log.warn("device id {} was formatted with backing {}, now opened as {} (same size; accepted)", v.deviceId(), v.path(), b.name());
            }
        }
        for (Map.Entry<Knob, Long> e : config.knobs().entrySet()) {
            if (e.getKey().scope != Knob.Scope.CACHE && e.getKey() != Knob.MIGRATE_THRESHOLD) {
                throw new IllegalArgumentException(e.getKey().fileName + " cannot be set at start");
            }
            try {
                e.getKey().parse(Long.toString(e.getValue()));
            } catch (KnobException ex) {
                throw new IllegalArgumentException(ex.getMessage());
            }
        }
        RecoveryResult rec = Recovery.run(cache, sb);
        CacheEngine engine = new CacheEngine(cache, sb, backings, config, rec);
        try {
            // Until the clean stop's record, the cache counts as in use: a crash is seen as one.
            engine.writeRecord(rec.lastMigratedId(), false);
        } catch (IOException e) {
            engine.fail(e);
            engine.close();
            throw e;
        }
        return engine;
    }

    private CacheEngine(BlockDevice cache, Superblock sb, Map<Integer, BlockDevice> backings, EngineConfig config,
                        RecoveryResult rec) {
        this.cacheDevice = cache;
        this.superblock = sb;
        this.nrSegments = sb.nrSegments();
        this.nonce = sb.nonce();
        this.recovery = rec;
        for (Map.Entry<Integer, BlockDevice> e : backings.entrySet()) {
            backing[e.getKey()] = e.getValue();
            volumeSectors[e.getKey()] = e.getValue().size() / Layout.SECTOR_SIZE;
        }
        for (Knob k : Knob.values()) {
            knobValues.set(k.ordinal(), k.defaultValue);
        }
        java.util.Arrays.fill(migrateThreshold, Knob.MIGRATE_THRESHOLD.defaultValue);
        for (Map.Entry<Knob, Long> e : config.knobs().entrySet()) {
            if (e.getKey() == Knob.MIGRATE_THRESHOLD) {
                java.util.Arrays.fill(migrateThreshold, e.getValue());
            } else {
                knobValues.set(e.getKey().ordinal(), e.getValue());
            }
        }
        int lines = nrSegments * LPS;
        keys = new long[lines];
        dirty = new byte[lines];
        index = new LineIndex(keys, 0.75);
        slotSegmentId = new long[nrSegments];
        slotLines = new int[nrSegments];
        slotInvalidatedBy = new long[nrSegments];
        slotBuffer = new SegmentBuffer[nrSegments];
        slotUnverified = new boolean[nrSegments];
        maxBuffers = Math.min(config.ramBuffers(), nrSegments);

        applyReplay(rec);
        recordSequence = rec.recordSequence();
        recordedMigratedId = rec.lastMigratedId();

        log.info("cache {} on {}: {} segments, {} volume(s); start {} took {} ms: loaded {} segment(s) not yet written back, "
                        + "{} line(s), {} dirty; last migrated {}, next segment {}{}{}",
                sb.cacheId(), cache.name(), nrSegments, sb.volumes().size(),
                rec.cleanShutdown() ? "after a clean stop" : "after a crash (log replay)", rec.millis(), rec.replay().size(),
                rec.replayedLines(), totalDirty(), lastMigratedId, nextId,
                rec.torn() ? "; the segment after them was torn" : "",
                unverifiedSlots > 0 ? "; " + unverifiedSlots + " of them to verify in the background (flushes wait for it)" : "");

        flusher = new Flusher(this);
        writeback = new Writeback(this, config.writebackGroupSegments());
        periodic = new Periodic(this, config.vouchSegments());
        verifier = unverifiedSlots > 0 && config.backgroundVerification() ? new Verifier(this, rec.replay()) : null;
        flusher.start();
        writeback.start();
        periodic.start();
        if (verifier != null) {
            verifier.start();
        }
    }

    private void applyReplay(RecoveryResult rec) {
        lastMigratedId = rec.lastMigratedId();
        for (ReplaySegment s : rec.replay()) {
            slotSegmentId[s.slot()] = s.id();
            slotLines[s.slot()] = s.nrLines();
            if (!s.verified()) {
                slotUnverified[s.slot()] = true;
                unverifiedSlots++;
            }
            int base = s.slot() * LPS;
            for (int k = 0; k < s.nrLines(); k++) {
                long key = s.keys()[k];
                int line = base + k;
                if (key == 0) {
                    continue;
                }
                int dev = LineKey.device(key);
                if (backing[dev] == null) {
                    log.warn("segment {} line {} names device id {}, which this cache does not have; ignored", s.id(), k, dev);
                    continue;
                }
                long live = key & ~LineKey.TOMBSTONE;
                int older = index.get(live);
                if (older >= 0) {
                    setDirty(older, 0);
                    index.remove(live, older);
                }
                keys[line] = key;
                if (!LineKey.isTombstone(key) && s.dirty()[k] != 0) {
                    setDirty(line, s.dirty()[k] & 0xFF);
                    index.put(line);
                }
            }
        }
        long last = rec.nextId() - 1;
        nextId = rec.nextId();
        lastFlushedId = last;
        lastDurableId = last;
        syncRequestedId = last;
    }

    // ---------------------------------------------------------------- write path

    /**
     * Writes {@code nSectors} sectors at {@code sector} of volume {@code deviceId} from
     * {@code src} (position to position + nSectors * 512; position unchanged). Returns once the
     * data is in a RAM segment; it is durable after the next {@link #flush()}.
     */
    public void write(int deviceId, long sector, int nSectors, ByteBuffer src) throws IOException {
        checkRequest(deviceId, sector, nSectors, src);
        lock.lock();
        try {
            checkUsable();
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

    /** One line's share of a write; called and returns with the lock held, may drop it while waiting. */
    private void writeLine(int dev, long lineNo, int first, int count, ByteBuffer src, int srcPos) throws IOException {
        long key = LineKey.of(dev, lineNo);
        int mask = ((1 << count) - 1) << first;
        boolean fullsize = mask == Layout.FULL_DIRTY;
        ByteBuffer fetched = null;
        int fetchedLine = -1;
        long fetchedSegment = 0;
        try {
            while (true) {
                int line = index.get(key);
                if (line >= 0 && open != null && slotBuffer[line / LPS] == open) {
                    stats.count(true, true, true, fullsize);
                    copyIn(src, srcPos, open.data, SegmentBuffer.lineOffset(line % LPS) + (first << Layout.SECTOR_SHIFT),
                            count << Layout.SECTOR_SHIFT);
                    setDirty(line, (dirty[line] & 0xFF) | mask);
                    return;
                }
                int keep = line >= 0 ? (dirty[line] & 0xFF) & ~mask : 0;
                SegmentBuffer oldBuffer = line >= 0 ? slotBuffer[line / LPS] : null;
                boolean haveOld = keep == 0 || oldBuffer != null
                        || (fetchedLine == line && fetchedSegment == slotSegmentId[line / LPS]);
                if (!haveOld) {
                    // Older dirty sectors this write does not cover live only on the cache
                    // device; fetch them without the lock, then look again.
                    if (fetched == null) {
                        fetched = takeScratch();
                    }
                    fetchedLine = line;
                    fetchedSegment = slotSegmentId[line / LPS];
                    long at = lineDeviceOffset(line);
                    lock.unlock();
                    try {
                        ensureVerified(line / LPS);
                        fetched.clear();
                        cacheDevice.read(fetched, at);
                    } finally {
                        lock.lock();
                    }
                    checkUsable();
                    continue;
                }
                if (open == null || open.full()) {
                    makeRoom();
                    continue;
                }
                stats.count(true, line >= 0, false, fullsize);
                int fresh = allocateLine(key);
                int dst = SegmentBuffer.lineOffset(fresh % LPS);
                if (keep != 0) {
                    ByteBuffer from = oldBuffer != null ? oldBuffer.data : fetched;
                    int fromBase = oldBuffer != null ? SegmentBuffer.lineOffset(line % LPS) : 0;
                    for (int i = 0; i < Layout.SECTORS_PER_LINE; i++) {
                        if ((keep & (1 << i)) != 0) {
                            copyBetween(from, fromBase + (i << Layout.SECTOR_SHIFT), open.data,
                                    dst + (i << Layout.SECTOR_SHIFT), Layout.SECTOR_SIZE);
                        }
                    }
                }
                copyIn(src, srcPos, open.data, dst + (first << Layout.SECTOR_SHIFT), count << Layout.SECTOR_SHIFT);
                if (line >= 0) {
                    invalidate(line);
                }
                setDirty(fresh, mask | keep);
                index.put(fresh);
                return;
            }
        } finally {
            if (fetched != null) {
                lineScratch.push(fetched);
            }
        }
    }

    /** Takes the next line of the open segment for {@code key}; the caller fills data and dirty bits. */
    private int allocateLine(long key) {
        int k = open.nrLines++;
        slotLines[open.slot] = open.nrLines;
        int line = open.slot * LPS + k;
        keys[line] = key;
        dirty[line] = 0;
        if (k == 0) {
            openSinceNanos = System.nanoTime();
        }
        return line;
    }

    /** An older copy of a key lost to a newer line: no longer indexed, no longer dirty. */
    private void invalidate(int line) {
        setDirty(line, 0);
        int slot = line / LPS;
        slotInvalidatedBy[slot] = Math.max(slotInvalidatedBy[slot], open.id);
    }

    /**
     * Seals a full open segment and opens the next one, waiting (lock released) while no RAM
     * buffer is free or the next ring slot still holds data not written back. Nothing is
     * dropped: writers wait for the flusher, and for writeback, which runs whenever a writer
     * waits for a slot.
     */
    private void makeRoom() throws IOException {
        if (open != null && open.full()) {
            seal();
        }
        while (open == null) {
            checkUsable();
            boolean slotFree = nextId - nrSegments <= lastMigratedId;
            if (slotFree) {
                SegmentBuffer buf = freeBuffers.poll();
                if (buf == null && buffersAllocated < maxBuffers) {
                    buf = new SegmentBuffer();
                    buffersAllocated++;
                }
                if (buf != null) {
                    int slot = Layout.slotOf(nextId, nrSegments);
                    reclaimSlot(slot);
                    buf.open(nextId, slot);
                    slotSegmentId[slot] = nextId;
                    slotBuffer[slot] = buf;
                    open = buf;
                    nextId++;
                    return;
                }
            }
            if (!slotFree) {
                writersWaitingForSlot++;
                background.signalAll();
            }
            try {
                changed.signalAll();
                changed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for cache space", e);
            } finally {
                if (!slotFree) {
                    writersWaitingForSlot--;
                }
            }
        }
    }

    /** Forgets what a ring slot held before it takes a new segment. Every line in it is clean by now. */
    private void reclaimSlot(int slot) {
        int base = slot * LPS;
        for (int k = 0; k < slotLines[slot]; k++) {
            int line = base + k;
            long key = keys[line];
            if (key > 0) {
                if (dirty[line] != 0) {
                    log.error("reusing slot {} while line {} is still dirty; this is a bug", slot, line);
                    setDirty(line, 0);
                }
                index.remove(key, line);
            }
            keys[line] = 0;
        }
        slotLines[slot] = 0;
        slotInvalidatedBy[slot] = 0;
    }

    /** Closes the open segment: encodes its header and queues it for the flusher. */
    void seal() {
        SegmentBuffer s = open;
        if (s == null) {
            return;
        }
        open = null;
        if (sealDeadlineFor == s.id) {
            sealDeadlineNanos = 0;
        }
        SegmentHeader.encode(s.data, s.id, nonce, s.nrLines, keys, dirty, s.slot * LPS);
        flushQueue.add(s);
        changed.signalAll();
    }

    /** Seals the open segment a flush waits for once its deadline has passed and the device is free. */
    void sealWaitedFor() {
        if (open != null && open.id == sealDeadlineFor && open.nrLines > 0) {
            seal();
        }
        sealDeadlineNanos = 0;
    }

    /** Called by the flusher once {@code s} is on the cache device: its RAM buffer is free again. */
    void flushed(SegmentBuffer s) {
        lastFlushedId = s.id;
        if (slotBuffer[s.slot] == s) {
            slotBuffer[s.slot] = null;
        }
        freeBuffers.push(s);
        changed.signalAll();
        if (knob(Knob.ALLOW_MIGRATE) == 1 || knob(Knob.FORCE_MIGRATE) == 1) {
            background.signalAll();
        }
    }

    void setDirty(int line, int bits) {
        int before = dirty[line];
        dirty[line] = (byte) bits;
        if ((before == 0) != (bits == 0)) {
            dirtyLines[LineKey.device(keys[line])] += bits == 0 ? -1 : 1;
        }
    }

    // ---------------------------------------------------------------- read path

    /**
     * Reads {@code nSectors} sectors at {@code sector} of volume {@code deviceId} into
     * {@code dst} (position to position + nSectors * 512; position unchanged): the newest data
     * written, from RAM, the cache device, the backing store, or a merge of them.
     */
    public void read(int deviceId, long sector, int nSectors, ByteBuffer dst) throws IOException {
        checkRequest(deviceId, sector, nSectors, dst);
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
            checkUsable();
            for (long s = sector; s < end; ) {
                int first = (int) (s & 7);
                int n = (int) Math.min(8 - first, end - s);
                int mask = ((1 << n) - 1) << first;
                long lineNo = s >>> 3;
                int dstLine = base + (int) (((lineNo << 3) - sector) << Layout.SECTOR_SHIFT); // may be negative for the first line
                int line = index.get(LineKey.of(dev, lineNo));
                int cached = line >= 0 ? (dirty[line] & 0xFF) & mask : 0;
                if (count) {
                    stats.count(false, line >= 0, line >= 0 && open != null && slotBuffer[line / LPS] == open, mask == Layout.FULL_DIRTY);
                }
                if (cached != 0) {
                    SegmentBuffer buf = slotBuffer[line / LPS];
                    if (buf != null) {
                        int from = SegmentBuffer.lineOffset(line % LPS);
                        for (int i = SectorRuns.start(cached, 0); i < 8; ) {
                            int to = SectorRuns.end(cached, i);
                            copyBetween(buf.data, from + (i << Layout.SECTOR_SHIFT), dst,
                                    dstLine + (i << Layout.SECTOR_SHIFT), (to - i) << Layout.SECTOR_SHIFT);
                            i = SectorRuns.start(cached, to);
                        }
                    } else {
                        plan.addCacheLine(line, slotSegmentId[line / LPS], cached, dstLine);
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
            if (unverifiedSlots != 0) {
                ensureVerified(line / LPS);
            }
            long at = lineDeviceOffset(line);
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
            backing[dev].read(view, (sector + plan.runStart[i]) << Layout.SECTOR_SHIFT);
            view.clear();
        }
        if (plan.cacheLines == 0) {
            return true;
        }
        lock.lock();
        try {
            for (int i = 0; i < plan.cacheLines; i++) {
                int line = plan.lines[i];
                if (slotSegmentId[line / LPS] != plan.segments[i] || index.get(keys[line]) != line) {
                    return false;
                }
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    private long lineDeviceOffset(int line) {
        return Layout.slotOffset(line / LPS) + SegmentBuffer.lineOffset(line % LPS);
    }

    // ---------------------------------------------------------------- discard

    /**
     * Drops {@code nSectors} sectors at {@code sector}: later reads return zeros. The backing
     * range is punched first, then cached lines wholly inside the range leave the index with a
     * tombstone logged so replay cannot bring them back, and cached lines partly inside get
     * zeros written over the range; if any cached line was dropped, or a writeback batch ran in
     * between (it may have copied a line of the range to the backing store and let it go), the
     * range is punched again.
     * Punching first means a concurrent reader sees the data as it was or zeros, never the
     * older backing copy of a line that is still cached.
     */
    public void discard(int deviceId, long sector, long nSectors) throws IOException {
        if (nSectors == 0) {
            return;
        }
        checkRange(deviceId, sector, nSectors);
        long batchesBefore = punch(deviceId, sector, nSectors);
        long end = sector + nSectors;
        boolean dropped = false;
        lock.lock();
        try {
            checkUsable();
            for (long s = sector; s < end; ) {
                int first = (int) (s & 7);
                int n = (int) Math.min(8 - first, end - s);
                long lineNo = s >>> 3;
                long key = LineKey.of(deviceId, lineNo);
                if (index.get(key) >= 0) {
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
        if (dropped || writebackBatches != batchesBefore) {
            punch(deviceId, sector, nSectors);
        }
    }

    /**
     * Punches the backing range once no writeback batch is in flight (one that copied older
     * data must land first); returns the number of batches completed so far.
     */
    private long punch(int deviceId, long sector, long nSectors) throws IOException {
        writebackLock.lock();
        try {
            backing[deviceId].discard(sector << Layout.SECTOR_SHIFT, nSectors << Layout.SECTOR_SHIFT);
            punchedSinceSync.set(deviceId, 1);
            return writebackBatches;
        } finally {
            writebackLock.unlock();
        }
    }

    private void dropLine(long key) throws IOException {
        while (true) {
            int line = index.get(key);
            if (line < 0) {
                return;
            }
            if (open != null && slotBuffer[line / LPS] == open) {
                setDirty(line, 0);
                index.remove(key, line);
                keys[line] = key | LineKey.TOMBSTONE;
                return;
            }
            if (open == null || open.full()) {
                makeRoom();
                continue;
            }
            int tomb = allocateLine(key | LineKey.TOMBSTONE);
            index.remove(key, line);
            invalidate(line);
            dirty[tomb] = 0;
            return;
        }
    }

    // ---------------------------------------------------------------- durability

    /**
     * Returns once every write acknowledged before the call is on the cache device and the
     * device is synced. The open segment is sealed barrier_deadline_ms after the first flush
     * waiting for it, or when it fills; with the default 0, as soon as the flusher has no
     * segment write or sync under way. Flushes arriving before the seal share the segment, and
     * those arriving during its write and sync share the next one (group commit).
     */
    public void flush() throws IOException {
        sealAndAwait(false);
        syncPunchedBackings();
    }

    /** Like {@link #flush()} but seals the open segment at once (flush_current_buffer). */
    public void flushNow() throws IOException {
        sealAndAwait(true);
        syncPunchedBackings();
    }

    /** A discard is durable once its tombstones are (cache device) and its punch is (backing store). */
    private void syncPunchedBackings() throws IOException {
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            if (punchedSinceSync.getAndSet(dev, 0) != 0) {
                try {
                    backing[dev].sync();
                } catch (IOException e) {
                    punchedSinceSync.set(dev, 1);
                    throw e;
                }
            }
        }
    }

    private void sealAndAwait(boolean now) throws IOException {
        lock.lock();
        try {
            checkUsable();
            long target;
            if (open != null && open.nrLines > 0) {
                target = open.id;
                if (now) {
                    seal();
                } else {
                    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(knob(Knob.BARRIER_DEADLINE_MS));
                    deadline = deadline == 0 ? 1 : deadline; // 0 means "no deadline set"
                    if (sealDeadlineFor != open.id || sealDeadlineNanos == 0 || deadline - sealDeadlineNanos < 0) {
                        sealDeadlineFor = open.id;
                        sealDeadlineNanos = deadline;
                    }
                }
            } else {
                target = (open != null ? open.id : nextId) - 1;
            }
            awaitDurable(target);
            awaitVerified();
        } finally {
            lock.unlock();
        }
    }

    /**
     * With the lock held: waits until every segment recovery left unverified is verified. A
     * flush acknowledged before that could be lost after all: if one of them failed, the next
     * start would replay the log only up to it, dropping everything written after.
     */
    private void awaitVerified() throws IOException {
        // Verifies what is left itself, alongside the verifier (two readers finish sooner).
        for (int slot = 0; unverifiedSlots > 0 && slot < nrSegments; slot++) {
            checkUsable();
            if (slotUnverified[slot]) {
                lock.unlock();
                try {
                    ensureVerified(slot);
                } finally {
                    lock.lock();
                }
            }
        }
        checkFailure();
    }

    /**
     * Called without the lock before data is read from the cache device in {@code slot}:
     * verifies the slot's segment first when recovery left it unverified.
     */
    void ensureVerified(int slot) throws IOException {
        if (unverifiedSlots == 0) {
            return;
        }
        long id;
        int lines;
        lock.lock();
        try {
            if (!slotUnverified[slot]) {
                return;
            }
            id = slotSegmentId[slot];
            lines = slotLines[slot];
        } finally {
            lock.unlock();
        }
        ByteBuffer buf = verifyBuffers.poll();
        if (buf == null) {
            buf = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE);
        }
        try {
            buf.clear().limit(SegmentHeader.usedBytes(lines));
            cacheDevice.read(buf, Layout.slotOffset(slot));
            buf.flip();
            SegmentHeader h = SegmentHeader.decode(buf);
            if (h == null || h.id != id || h.nrLines != lines || !SegmentHeader.crcValid(buf)) {
                // Another thread may have verified this slot while we read it, and writeback
                // reused it since: only a slot still flagged still holds the segment we meant.
                lock.lock();
                try {
                    if (!slotUnverified[slot] || slotSegmentId[slot] != id) {
                        return;
                    }
                } finally {
                    lock.unlock();
                }
                segmentCorrupt(id, slot);
            }
        } finally {
            verifyBuffers.offer(buf);
        }
        lock.lock();
        try {
            if (slotUnverified[slot]) {
                slotUnverified[slot] = false;
                if (--unverifiedSlots == 0) {
                    log.info("cache {}: every segment replayed at start verified, {} ms after start; flushes and writeback go ahead",
                            superblock.cacheId(), (System.nanoTime() - startedNanos) / 1_000_000);
                    changed.signalAll();
                    background.signalAll();
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * A replayed segment fails its checksum: the device changed it after it was written. The
     * record stops vouching for it, so that the next start verifies it and replays the log up
     * to the segment before it; this run fails, before any flush was acknowledged.
     */
    private void segmentCorrupt(long id, int slot) throws IOException {
        IOException ex = new IOException("segment " + id + " (slot " + slot + ") on " + cacheDevice.name()
                + " fails its checksum: it changed on the device after it was written. The cache stops; the next start "
                + "replays the log up to the segment before it, and the data of this segment and later ones is lost");
        synchronized (recordLock) {
            vouchLimit = Math.min(vouchLimit, id - 1);
        }
        try {
            writeRecord(lastMigratedIdLocked(), false);
        } catch (IOException e) {
            ex.addSuppressed(e);
        }
        fail(ex);
        throw ex;
    }

    private long lastMigratedIdLocked() {
        lock.lock();
        try {
            return lastMigratedId;
        } finally {
            lock.unlock();
        }
    }

    /** With the lock held: waits until segment {@code target} and all before it are durable. */
    void awaitDurable(long target) throws IOException {
        if (target <= lastDurableId) {
            return;
        }
        if (syncRequestedId < target) {
            syncRequestedId = target;
        }
        changed.signalAll();
        while (lastDurableId < target) {
            checkFailure();
            if (open != null && open.id <= target) {
                if (sealDeadlineNanos == 0) {
                    seal(); // nobody set a deadline for it (the request came from inside the engine)
                } else if (!deviceBusy && System.nanoTime() - sealDeadlineNanos >= 0) {
                    sealWaitedFor();
                }
            }
            if (!deviceBusy && (open == null || open.id > target)) {
                deviceBusy = true;
                try {
                    flusher.runFor(target);
                } finally {
                    deviceBusy = false;
                    changed.signalAll();
                }
                continue;
            }
            try {
                changed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for a flush", e);
            }
        }
    }

    /**
     * Writes the superblock record (last_migrated_segment_id) and syncs the cache device.
     * The recorded id never goes backwards, whoever calls.
     */
    public void commitSuperblock() throws IOException {
        writeRecord(lastMigratedIdLocked(), false);
    }

    /**
     * Makes every flushed segment durable (one sync) and writes a record vouching for them,
     * so that a start after a crash need not read them in full.
     */
    void vouchForFlushed() throws IOException {
        long migrated;
        lock.lock();
        try {
            awaitDurable(lastFlushedId);
            migrated = lastMigratedId;
        } finally {
            lock.unlock();
        }
        writeRecord(migrated, false);
    }

    void writeRecord(long migratedId, boolean clean) throws IOException {
        synchronized (recordLock) {
            recordedMigratedId = Math.max(recordedMigratedId, migratedId);
            // Vouch only for segments a completed sync made durable before this record: one
            // merely written could be torn by a crash during the sync that follows.
            long flushedId;
            lock.lock();
            try {
                flushedId = lastDurableId;
            } finally {
                lock.unlock();
            }
            SuperblockRecord r = new SuperblockRecord(++recordSequence, nonce, recordedMigratedId, Math.min(flushedId, vouchLimit),
                    clean);
            cacheDevice.write(r.encode(), r.offset());
            cacheDevice.sync();
            recordedDurableId = r.lastFlushedId();
        }
    }

    /**
     * Safe detach: writes every dirty line back (sealing the open segment first), syncs the
     * backing stores, writes the superblock record, and returns once the cache holds no dirty
     * data, so that the backing stores alone hold the volumes. Writes arriving meanwhile are
     * drained too; progress goes to the log every few seconds and to {@link Status#draining()}.
     */
    public void drain() throws IOException {
        long t0 = System.nanoTime();
        long lastReport = t0;
        long startDirty = totalDirtyLocked();
        log.info("drain: writing back {} dirty line(s)", startDirty);
        flushNow();
        lock.lock();
        try {
            drainRequested++;
            changed.signalAll();
            background.signalAll();
            while (lastMigratedId < lastFlushedId || open != null && open.nrLines > 0 || !flushQueue.isEmpty()) {
                checkUsable();
                if (open != null && open.nrLines > 0) {
                    seal();
                }
                try {
                    changed.await(100, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while draining", e);
                }
                long now = System.nanoTime();
                if (now - lastReport > TimeUnit.SECONDS.toNanos(2)) {
                    lastReport = now;
                    log.info("drain: {} dirty line(s) left in {} segment(s)", totalDirty(), lastFlushedId - lastMigratedId);
                }
            }
        } finally {
            drainRequested--;
            lock.unlock();
        }
        commitSuperblock();
        log.info("drain: done in {} ms; the cache holds no dirty data and the backing stores hold the volumes",
                (System.nanoTime() - t0) / 1_000_000);
    }

    private long totalDirtyLocked() {
        lock.lock();
        try {
            return totalDirty();
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- knobs and status

    public long knob(Knob k) {
        return knobValues.get(k.ordinal());
    }

    /** Sets a writable cache knob or runs an action knob; the value is checked against the knob's range. */
    public void setKnob(Knob k, long value) throws KnobException, IOException {
        if (k.scope != Knob.Scope.CACHE) {
            throw new KnobException(k.fileName + " is a volume knob");
        }
        k.parse(Long.toString(value));
        switch (k) {
            case COMMIT_SUPER_BLOCK -> commitSuperblock();
            case FLUSH_CURRENT_BUFFER -> flushNow();
            case CLEAR_STAT -> clearStats();
            case DRAIN -> drain();
            default -> {
                knobValues.set(k.ordinal(), value);
                lock.lock();
                try {
                    changed.signalAll();
                    background.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    public long migrateThreshold(int deviceId) {
        return migrateThreshold[deviceId];
    }

    public void setMigrateThreshold(int deviceId, long value) throws KnobException {
        Knob.MIGRATE_THRESHOLD.parse(Long.toString(value));
        migrateThreshold[deviceId] = value;
    }

    public Status status() {
        lock.lock();
        try {
            long[] perDevice = dirtyLines.clone();
            return new Status(superblock.cacheId(), nrSegments, open != null ? open.id : nextId, open != null ? open.nrLines : 0,
                    lastFlushedId, lastDurableId, lastMigratedId, perDevice, totalDirty(), index.size(),
                    (long) buffersAllocated * Layout.SEGMENT_SIZE, maxBuffers, flushQueue.size(), stats.snapshot(),
                    drainRequested > 0, writebackErrors, writebackFailing, backingLoad.clone(), writebackPausedByLoad,
                    failure == null ? null : failure.toString(), flushedBytes, writtenBackBytes);
        } finally {
            lock.unlock();
        }
    }

    public void clearStats() {
        lock.lock();
        try {
            stats.clear();
        } finally {
            lock.unlock();
        }
    }

    public long nrDirtyLines(int deviceId) {
        lock.lock();
        try {
            return dirtyLines[deviceId];
        } finally {
            lock.unlock();
        }
    }

    private long totalDirty() {
        long n = 0;
        for (long d : dirtyLines) {
            n += d;
        }
        return n;
    }

    public Superblock superblock() {
        return superblock;
    }

    /** Name of the cache device, for status output. */
    public String superblockDevice() {
        return cacheDevice.name();
    }

    public RecoveryResult recovery() {
        return recovery;
    }

    /** Heap bytes the per-line metadata and index take, divided by the number of cache lines. */
    public double heapBytesPerLine() {
        long bytes = (long) keys.length * Long.BYTES + dirty.length + (long) index.capacity() * Integer.BYTES
                + (long) nrSegments * (Long.BYTES * 2 + Integer.BYTES + 8 + 1);
        return (double) bytes / keys.length;
    }

    // ---------------------------------------------------------------- lifecycle

    void fail(Throwable t) {
        lock.lock();
        try {
            if (failure == null) {
                failure = t;
                log.error("cache {} failed; further I/O is refused: {}", superblock.cacheId(), t.toString());
                log.debug("cause of the failure", t);
            }
            changed.signalAll();
            background.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private void checkFailure() throws IOException {
        if (failure != null) {
            throw new IOException("cache " + superblock.cacheId() + " has failed: " + failure, failure);
        }
    }

    private void checkUsable() throws IOException {
        checkFailure();
        if (closing) {
            throw new IOException("cache " + superblock.cacheId() + " is stopping");
        }
    }

    /**
     * Stops the daemons without flushing anything, as a crash would: nothing more reaches the
     * devices. For tests that simulate a power cut, and for giving up on a failed device.
     */
    public void abort() {
        fail(new IOException("aborted"));
        stopDaemons();
    }

    /** Sets the closing flag the daemons watch for, wakes them, and waits until they have ended. */
    private void stopDaemons() {
        lock.lock();
        try {
            closing = true;
            changed.signalAll();
            background.signalAll();
        } finally {
            lock.unlock();
        }
        periodic.join();
        writeback.join();
        flusher.join();
        if (verifier != null) {
            verifier.join();
        }
    }

    /**
     * Clean stop: seals and writes the open segment, syncs, stops the daemons and writes the
     * superblock record marked clean. Dirty data stays in the cache for the next start.
     */
    @Override
    public void close() throws IOException {
        IOException error = null;
        try {
            if (failure == null) {
                flushNow();
            }
        } catch (IOException e) {
            error = e;
        }
        stopDaemons();
        try {
            if (failure == null) {
                writeRecord(lastMigratedId, error == null);
            }
        } catch (IOException e) {
            error = error == null ? e : error;
        }
        Status st = status();
        log.info("cache {} stopped {}: last flushed {}, last migrated {}, {} dirty line(s) kept in the cache",
                superblock.cacheId(), error == null && failure == null ? "cleanly" : "with errors", st.lastFlushedId(),
                st.lastMigratedId(), st.dirtyLines());
        if (error != null) {
            throw error;
        }
        if (failure != null) {
            throw new IOException("cache " + superblock.cacheId() + " stopped after a failure: " + failure, failure);
        }
    }

    // ---------------------------------------------------------------- helpers

    private void checkRequest(int dev, long sector, int nSectors, ByteBuffer buf) throws IOException {
        checkRange(dev, sector, nSectors);
        if (buf.remaining() < (long) nSectors << Layout.SECTOR_SHIFT) {
            throw new IllegalArgumentException("buffer holds " + buf.remaining() + " bytes, " + nSectors + " sectors asked");
        }
    }

    private void checkRange(int dev, long sector, long nSectors) throws IOException {
        if (dev < 0 || dev > Layout.MAX_DEVICE_ID || backing[dev] == null) {
            throw new IllegalArgumentException("no volume with device id " + dev);
        }
        if (sector < 0 || nSectors < 0 || sector + nSectors > volumeSectors[dev]) {
            throw new IOException("sectors [" + sector + ", " + (sector + nSectors) + ") are outside volume " + dev + " ("
                    + volumeSectors[dev] + " sectors)");
        }
    }

    private ByteBuffer takeScratch() {
        ByteBuffer b = lineScratch.poll();
        return b != null ? b : ByteBuffer.allocateDirect(Layout.LINE_SIZE);
    }

    private static void copyIn(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int length) {
        dst.put(dstPos, src, srcPos, length);
    }

    private static void copyBetween(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int length) {
        dst.put(dstPos, src, srcPos, length);
    }

}
