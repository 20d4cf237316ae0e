package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.BackingIdentity;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.Superblock;
import io.writeboost.format.SuperblockRecord;
import io.writeboost.format.VolumeEntry;
import io.writeboost.format.VolumeTable;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobException;
import io.writeboost.recovery.HeaderRewrite;
import io.writeboost.recovery.Recovery;
import io.writeboost.recovery.RecoveryResult;
import io.writeboost.recovery.ReplaySegment;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The segment-log write-back cache, front door: one cache device shared by up to 127 backing
 * stores. It formats and opens caches, checks requests, and hands them to the pieces that
 * own the state (docs/ENGINE.md has the map):
 *
 * <ul>
 *   <li>{@link LineTable}: keys, dirty bits, index, per-slot line use;
 *   <li>{@link SegmentLog}: ring slots, the open segment, the flush queue, the log's ids;
 *   <li>{@link RecordWriter}: the superblock record;
 *   <li>{@link SegmentVerification}: segments replayed at start, not yet checksummed;
 *   <li>{@link WritePath}, {@link ReadPath}, {@link Durability}: writes and discards, reads, flushes;
 *   <li>daemons: {@link Flusher}, {@link Writeback}, {@link Periodic}, {@link Verifier}, {@link CacheWatchdog}.
 * </ul>
 *
 * <p>Thread-safe. One {@link EngineLock} guards the line table and the log; it is held for
 * index work and RAM copies, never across device I/O. Every public method is called without it.
 */
public final class CacheEngine implements Closeable {
    private static final Logger log = LogManager.getLogger(CacheEngine.class);

    private final BlockDevice cacheDevice;
    private final VolumeChanges volumeChanges;
    private final RecoveryResult recovery;
    private final EngineLock lock = new EngineLock();
    private final Health health;
    private final KnobValues knobs;
    private final BackingStores backings;
    private final LineTable lines;
    private final SegmentLog segments;
    private final RecordWriter records;
    private final SegmentVerification verification;
    private final Stats stats = new Stats(lock);
    private final StreamTable streams = new StreamTable(lock);
    private final ReadAdmission admission;
    private final BypassWriter bypassWriter;
    private final StreamStaging staging;
    private final WritePath writePath;
    private final ReadPath readPath;
    private final Durability durability;
    private final Flusher flusher;
    private final Writeback writeback;
    private final CopyForward copyForward;
    private final WritePacer pacer = new WritePacer();
    private final Periodic periodic;
    private final Verifier verifier;
    private final CacheWatchdog watchdog;
    private final CacheDeviceErrors deviceErrors;
    private final Failover failover;
    /** Data loss accepted since the format: from the record, plus this start's. */
    private final long lostLines;
    private final long lostRangesTotal;
    /** Clean lines the start kept from the log. */
    private final long warmCleanLines;
    private final List<io.writeboost.format.LostRange> lostRanges;

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
        int lps = Layout.LINES_PER_SEGMENT;
        long segments = Layout.segmentsFor(cache.size());
        if (segments < 2) {
            throw new FormatException(cache.name() + ": " + cache.size() + " bytes hold " + segments
                    + " segment(s); a cache needs at least 2 (" + (Layout.SUPERBLOCK_REGION_SIZE + 2L * Layout.SEGMENT_SIZE) + " bytes)");
        }
        if (segments > LineTable.MAX_SEGMENTS) {
            log.info("{}: {} segments fit, {} are used: the most one cache's index serves", cache.name(), segments,
                    LineTable.MAX_SEGMENTS);
            segments = LineTable.MAX_SEGMENTS;
        }
        for (VolumeEntry v : volumes) {
            checkVolume(v.deviceId(), v.sizeBytes(), v.name());
        }
        Superblock sb = new Superblock((int) segments, cacheId, nonce, timeMillis, volumes);
        // The spare header of an earlier format goes first: this header torn must not let it stand in.
        HeaderRewrite.clearSpare(cache);
        cache.sync();
        cache.write(sb.encode(), 0);
        SuperblockRecord first = new SuperblockRecord(0, nonce, 0, 0, true);
        cache.write(first.encode(), first.offset());
        cache.write(ByteBuffer.allocateDirect(SuperblockRecord.SIZE), SuperblockRecord.OFFSET_B);
        // Both volume table copies, so that the header's table is the cache's until the first change.
        cache.write(ByteBuffer.allocateDirect((int) (VolumeTable.OFFSET_B + Superblock.REGION - VolumeTable.OFFSET_A)),
                VolumeTable.OFFSET_A);
        cache.sync();
        log.info("formatted cache {} on {}: {} segments ({} MiB of lines), {} volume(s)", cacheId, cache.name(), segments,
                segments * lps * Layout.LINE_SIZE >> 20, volumes.size());
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
        if (size > LineKeys.MAX_VOLUME_BYTES) {
            throw new FormatException(name + ": size " + size + " is above the " + (LineKeys.MAX_VOLUME_BYTES >> 50)
                    + " PiB a volume may have (the line table keeps 40 bits of each line number)");
        }
    }

    /**
     * Opens a formatted cache: checks that {@code backings} (device id to store) match the
     * superblock's volume table, recovers, and starts the daemons. Nothing is written to
     * any device when the check fails.
     */
    public static CacheEngine open(BlockDevice cache, Map<Integer, BlockDevice> backings, EngineConfig config) throws IOException {
        Superblock header = Recovery.readHeader(cache);
        VolumeTable table = Recovery.readVolumeTable(cache, header);
        Superblock sb = header.withVolumes(table.volumes());
        if (sb.nrSegments() > LineTable.MAX_SEGMENTS) {
            throw new FormatException(cache.name() + " was formatted with " + sb.nrSegments() + " segments; this build serves at most "
                    + LineTable.MAX_SEGMENTS + " (the index of its lines must fit one array)");
        }
        if (sb.volumes().size() != backings.size()) {
            throw new FormatException(cache.name() + " was formatted for " + sb.volumes().size() + " volume(s), "
                    + backings.size() + " given");
        }
        for (VolumeEntry v : sb.volumes()) {
            checkVolume(v.deviceId(), v.sizeBytes(), v.path());
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
                e.getKey().check(e.getValue());
            } catch (KnobException ex) {
                throw new IllegalArgumentException(ex.getMessage());
            }
        }
        RecoveryResult rec = Recovery.run(cache, sb, config.acceptDataLoss());
        CacheEngine engine = new CacheEngine(cache, sb, table, backings, config, rec);
        try {
            // Until the clean stop's record, the cache counts as in use: a crash is seen as one.
            engine.records.write(rec.lastMigratedId(), false);
            // From here a cache device error fails over; before, it fails the start.
            engine.health.failOverWith(engine.failover::begin);
        } catch (IOException e) {
            engine.health.fail(e);
            engine.close();
            throw e;
        }
        return engine;
    }

    private CacheEngine(BlockDevice cache, Superblock sb, VolumeTable table, Map<Integer, BlockDevice> backingMap,
                        EngineConfig config, RecoveryResult rec) {
        this.cacheDevice = cache;
        this.recovery = rec.withoutEntries();
        int cacheId = sb.cacheId();
        int nrSegments = sb.nrSegments();
        health = new Health(cacheId, lock);
        SuperblockRecord prior = rec.record();
        CacheMode recordedMode = CacheMode.of(prior == null ? 0 : prior.cacheMode());
        knobs = new KnobValues(config.knobs(), recordedMode);
        // Every component reads and writes the cache device through the error count.
        deviceErrors = new CacheDeviceErrors(cache, knobs, health);
        cache = deviceErrors;
        backings = new BackingStores(backingMap, health);
        bypassWriter = new BypassWriter(backings);
        lines = new LineTable(lock, nrSegments);
        admission = new ReadAdmission(lock, knobs, lines.lineCount());
        segments = new SegmentLog(lock, lines, sb.nonce(), nrSegments, Math.min(config.ramBuffers(), nrSegments));
        // Loss accepted at earlier starts stays in every record until the next format.
        List<io.writeboost.format.LostRange> lost = new java.util.ArrayList<>(prior == null ? List.of() : prior.lostRanges());
        long lostLines = prior == null ? 0 : prior.lostLines();
        long lostRangesTotal = prior == null ? 0 : prior.lostRangesTotal();
        if (rec.loss() != null) {
            lost.addAll(rec.loss().ranges());
            lostLines += rec.loss().dirtyLines();
            lostRangesTotal += rec.loss().ranges().size();
        }
        records = new RecordWriter(cache, sb.nonce(), lock, segments, rec.recordSequence(), rec.lastMigratedId(), lostLines,
                lostRangesTotal, lost, health, knobs);
        this.lostLines = lostLines;
        this.lostRangesTotal = lostRangesTotal;
        this.lostRanges = List.copyOf(lost.subList(0, Math.min(lost.size(), SuperblockRecord.MAX_STORED_RANGES)));
        if (rec.loss() != null) {
            logAcceptedLoss(rec.loss());
        }
        verification = new SegmentVerification(cache, cacheId, lock, segments, lines, records, health, rec.nextId());
        int[] unverified;
        // No other thread sees the state yet; held so that the tables' lock contracts hold as everywhere.
        lock.lock();
        try {
            unverified = applyReplay(rec, table.retiredAt());
            warmCleanLines = lines.cleanLines();
        } finally {
            lock.unlock();
        }

        flusher = new Flusher(cacheId, health, lock, segments, cache, knobs);
        copyForward = new CopyForward(lock, lines, segments, knobs, health);
        writeback = new Writeback(cacheId, health, lock, segments, lines, backings, cache, knobs, records, verification,
                config.writebackGroupSegments(), pacer, copyForward);
        durability = new Durability(lock, health, segments, verification, records, backings, knobs, flusher, streams);
        writeback.durability(durability);
        periodic = new Periodic(cacheId, health, lock, segments, records, durability, knobs, config.vouchSegments(), writeback);
        verifier = unverified.length > 0 && config.backgroundVerification()
                ? new Verifier(cacheId, health, verification, unverified) : null;
        BackingOrder order = new BackingOrder(lock, health, backings, admission, writeback);
        staging = new StreamStaging(lock, health, backings, order, bypassWriter, config.stagingQuietNanos());
        writePath = new WritePath(lock, health, lines, segments, verification, durability, cache, backings, order, stats,
                knobs, streams,
                bypassWriter, admission, pacer, staging);
        staging.settleWith(writePath);
        readPath = new ReadPath(lock, health, lines, segments, verification, cache, backings, stats, admission, staging);
        volumeChanges = new VolumeChanges(cache, sb, table, lock, health, lines, segments, backings, knobs, writeback, records,
                durability, staging);
        failover = new Failover(cacheId, sb.nonce(), health, lock, lines, segments, backings, deviceErrors, staging, records,
                knobs, this::joinDaemons);
        watchdog = new CacheWatchdog(cacheId, health, lock, deviceErrors, knobs);

        log.info("cache {} on {}: {} segments, {} volume(s), cache_mode {} ({}); start {} took {} ms: loaded {} segment(s) "
                        + "not yet written back, {} line(s), {} dirty; last migrated {}, next segment {}{}{}",
                cacheId, cache.name(), nrSegments, sb.volumes().size(), knobs.mode(),
                knobs.mode() == recordedMode ? "as recorded" : "set at start; recorded: " + recordedMode,
                rec.cleanShutdown() ? "after a clean stop" : "after a crash (log replay)", rec.millis(), rec.replay().size(),
                rec.replayedLines(), lock.read(lines::totalDirty), rec.lastMigratedId(), rec.nextId(),
                rec.torn() ? "; the segment after them was torn" : "",
                unverified.length > 0 ? "; " + unverified.length + " of them to verify in the background (flushes wait for it)" : "");

        flusher.start();
        writeback.start();
        periodic.start();
        staging.start(cacheId);
        watchdog.start();
        if (verifier != null) {
            verifier.start();
        }
    }

    /** Every lost range at ERROR: the log is where an operator looks for what to restore. */
    private static void logAcceptedLoss(io.writeboost.recovery.DataLoss loss) {
        log.error("cache {}: starting with acknowledged data lost, as --accept-data-loss allows: {}", loss.cacheId(), loss.cause());
        log.error("cache {}: lost segment(s) {}, {} dirty line(s){}", loss.cacheId(), loss.segments(), loss.dirtyLines(),
                loss.headersLost() ? " known (a lost header hides the rest: every volume is reported whole)" : "");
        for (io.writeboost.format.LostRange r : loss.ranges()) {
            log.error("cache {}: lost range: {}", loss.cacheId(), loss.describe(r));
        }
        log.error("cache {}: check the file system on each affected volume (fsck) and restore the ranges above from a backup",
                loss.cacheId());
    }

    /**
     * Loads recovery's segments, in id order: first those already written back, for their
     * clean entries, then those to replay. Returns the slots left to verify: the replayed ones
     * in id order (flushes wait for them), then the written-back ones that kept a clean line.
     * Lock held.
     */
    private int[] applyReplay(RecoveryResult rec, long[] retiredAt) {
        lock.assertHeld();
        boolean[] known = backings.knownDevices();
        int[] unverified = new int[rec.replay().size() + rec.warm().size()];
        int n = 0;
        int[] cleanOnly = new int[rec.warm().size()];
        int c = 0;
        for (ReplaySegment s : rec.warm()) {
            segments.placeReplayed(s.id(), s.slot());
            lines.replay(s.id(), s.slot(), s.nrLines(), s.keys(), s.dirty(), s.clean(), keep(s, rec.warmFloor(), retiredAt),
                    known, true);
            verification.markUnverified(s.slot(), s.seq(), true);
            cleanOnly[c++] = s.slot();
        }
        for (ReplaySegment s : rec.replay()) {
            segments.placeReplayed(s.id(), s.slot());
            if (!s.verified()) {
                verification.markUnverified(s.slot(), s.seq(), false);
                unverified[n++] = s.slot();
            }
            lines.replay(s.id(), s.slot(), s.nrLines(), s.keys(), s.dirty(), s.clean(), keep(s, rec.warmFloor(), retiredAt),
                    known, false);
        }
        System.arraycopy(cleanOnly, 0, unverified, n, c);
        segments.startAt(rec.lastMigratedId(), rec.nextId());
        return java.util.Arrays.copyOf(unverified, n + c);
    }

    /**
     * Which of segment {@code s}'s clean entries a start keeps (docs/FORMAT.md, "Clean
     * entries"): flagged warm, in a segment above {@code floor} (the ring's oldest slots may
     * hold segments the engine had evicted before a crash), and newer than the last detach of
     * their device id (a line of an earlier volume under the same id is not this one's).
     */
    private static boolean[] keep(ReplaySegment s, long floor, long[] retiredAt) {
        boolean[] keep = new boolean[s.nrLines()];
        if (s.id() <= floor) {
            return keep;
        }
        for (int k = 0; k < s.nrLines(); k++) {
            keep[k] = s.clean()[k] && s.warm()[k] && s.id() > retiredAt[io.writeboost.format.LineKey.device(s.keys()[k])];
        }
        return keep;
    }

    // ---------------------------------------------------------------- I/O

    /**
     * Writes {@code nSectors} sectors at {@code sector} of volume {@code deviceId} from
     * {@code src} (position to position + nSectors * 512; position unchanged). Returns once the
     * data is in a RAM segment; it is durable after the next {@link #flush()}.
     */
    public void write(int deviceId, long sector, int nSectors, ByteBuffer src) throws IOException {
        checkRequest(deviceId, sector, nSectors, src);
        if (!failover.started()) {
            try {
                writePath.write(deviceId, sector, nSectors, src);
                return;
            } catch (IOException e) {
                rethrowUnlessFailingOver(e);
            }
        }
        failover.awaitServing();
        failover.write(deviceId, sector, nSectors, src);
    }

    /**
     * A request that failed in the cache is served again from the backing stores once the
     * failover is done, if the failure is the failover's; any other error is the caller's. Doing
     * it again is sound: what it may have left in the cache was written back by the failover
     * before, and its own sectors go to the backing store after.
     */
    private void rethrowUnlessFailingOver(IOException e) throws IOException {
        if (!failover.started()) {
            throw e;
        }
    }

    /**
     * Reads {@code nSectors} sectors at {@code sector} of volume {@code deviceId} into
     * {@code dst} (position to position + nSectors * 512; position unchanged): the newest data
     * written, from RAM, the cache device, the backing store, or a merge of them.
     */
    public void read(int deviceId, long sector, int nSectors, ByteBuffer dst) throws IOException {
        checkRequest(deviceId, sector, nSectors, dst);
        if (!failover.started()) {
            try {
                readPath.read(deviceId, sector, nSectors, dst);
                return;
            } catch (IOException e) {
                rethrowUnlessFailingOver(e);
            }
        }
        if (failover.readWhileFailingOver(deviceId, sector, nSectors, dst)) {
            return;
        }
        failover.awaitServing();
        failover.read(deviceId, sector, nSectors, dst);
    }

    /**
     * Drops {@code nSectors} sectors at {@code sector}: later reads return zeros. Cached lines
     * leave the index (a tombstone keeps replay from bringing them back) and the backing range
     * is punched; the discard is durable after the next {@link #flush()}.
     */
    public void discard(int deviceId, long sector, long nSectors) throws IOException {
        if (nSectors == 0) {
            return;
        }
        backings.checkRange(deviceId, sector, nSectors);
        if (!failover.started()) {
            try {
                writePath.discard(deviceId, sector, nSectors);
                return;
            } catch (IOException e) {
                rethrowUnlessFailingOver(e);
            }
        }
        failover.awaitServing();
        failover.discard(deviceId, sector, nSectors);
    }

    /**
     * Returns once every write acknowledged before the call is on the cache device and the
     * device is synced (or, for a stream's staged lines, written out and durable on the
     * backing store: {@link StreamStaging} first, so that the log carries whatever tombstones
     * their write-out logged). The open segment is sealed barrier_deadline_ms after the first flush
     * waiting for it, or when it fills; with the default 0, as soon as the flusher has no
     * segment write or sync under way. Flushes arriving before the seal share the segment, and
     * those arriving during its write and sync share the next one (group commit).
     */
    public void flush() throws IOException {
        flush(false, Failover.EVERY_VOLUME);
    }

    /**
     * {@link #flush()} for an fsync of volume {@code deviceId}: the same, except that after a
     * failover that lost lines it reports the loss of that volume alone ({@link Failover#flush}).
     */
    public void flush(int deviceId) throws IOException {
        flush(false, deviceId);
    }

    /** Like {@link #flush()} but seals the open segment at once (flush_current_buffer). */
    public void flushNow() throws IOException {
        flush(true, Failover.EVERY_VOLUME);
    }

    /**
     * After a failover a flush syncs the backing stores: everything acknowledged before the
     * failover is on them (synced by it) or reported lost, and what came after went to them.
     * A flush that met the failover in the cache covered what it lost, if anything: it fails then.
     */
    private void flush(boolean now, int deviceId) throws IOException {
        boolean inFlight = false;
        if (!failover.started()) {
            try {
                staging.writeOutAll();
                if (now) {
                    durability.flushNow();
                } else {
                    durability.flush();
                }
                return;
            } catch (IOException e) {
                rethrowUnlessFailingOver(e);
                inFlight = true;
            }
        }
        failover.awaitServing();
        failover.flush(deviceId, inFlight);
    }

    /**
     * Writes the superblock record (last_migrated_segment_id) and syncs the cache device.
     * The recorded id never goes backwards, whoever calls.
     */
    public void commitSuperblock() throws IOException {
        if (failover.started()) {
            return; // the failover writes the last record this cache gets
        }
        durability.commitRecord();
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
        if (failover.started()) {
            failover.awaitServing(); // the failover wrote back what the cache device still held
            return;
        }
        log.info("drain: writing back {} dirty line(s)", totalDirty());
        flushNow();
        lock.lock();
        try {
            segments.beginDrain();
            while (!segments.drained()) {
                health.checkUsable();
                if (segments.openHasLines()) {
                    segments.seal();
                }
                try {
                    lock.awaitChangedNanos(TimeUnit.MILLISECONDS.toNanos(100));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while draining", e);
                }
                long now = System.nanoTime();
                if (now - lastReport > TimeUnit.SECONDS.toNanos(2)) {
                    lastReport = now;
                    log.info("drain: {} dirty line(s) left in {} segment(s)", lines.totalDirty(),
                            segments.lastFlushedId() - segments.lastMigratedId());
                }
            }
        } finally {
            segments.endDrain();
            lock.unlock();
        }
        commitSuperblock();
        log.info("drain: done in {} ms; the cache holds no dirty data and the backing stores hold the volumes",
                (System.nanoTime() - t0) / 1_000_000);
    }

    // ---------------------------------------------------------------- knobs and status

    public long knob(Knob k) {
        return knobs.get(k);
    }

    /** Sets a writable cache knob or runs an action knob; the value is checked against the knob's range. */
    public void setKnob(Knob k, long value) throws KnobException, IOException {
        if (k.scope != Knob.Scope.CACHE) {
            throw new KnobException(k.fileName + " is a volume knob");
        }
        k.check(value);
        switch (k) {
            case CACHE_MODE -> setMode(CacheMode.of(value));
            case WRITE_AROUND_MODE -> setMode(KnobValues.withWriteAround(knobs.mode(), value));
            case COMMIT_SUPER_BLOCK -> commitSuperblock();
            case FLUSH_CURRENT_BUFFER -> flushNow();
            case CLEAR_STAT -> clearStats();
            case DRAIN -> drain();
            default -> {
                knobs.set(k, value);
                lock.lock();
                try {
                    lock.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /**
     * Switches the cache mode, in any direction, at once: writes decided from now on follow the
     * new mode. Leaving write-back, writeback runs until no dirty line is left (whatever the
     * watermarks and allow_migrate say; {@link Writeback}). The superblock record is written
     * before this returns, so that the new mode survives a restart, crash included.
     */
    private void setMode(CacheMode mode) throws KnobException, IOException {
        if (failover.started()) {
            throw new KnobException("cache " + superblock().cacheId() + " failed over from its cache device and stays "
                    + "pass-through: format a new cache to use one again (status: state)");
        }
        CacheMode old = knobs.swapMode(mode);
        if (old == mode) {
            return;
        }
        long dirty = totalDirty();
        log.info("cache {}: cache_mode {} -> {}{}", superblock().cacheId(), old, mode, mode.writesAround() && dirty > 0
                ? "; writing back " + dirty + " dirty line(s) in the background (status: dirty_lines)" : "");
        lock.lock();
        try {
            lock.signalAll();
        } finally {
            lock.unlock();
        }
        records.write(lastMigratedId(), false);
    }

    /** The cache mode now (cache_mode). */
    public CacheMode mode() {
        return knobs.mode();
    }

    public long migrateThreshold(int deviceId) {
        return knobs.migrateThreshold(deviceId);
    }

    public void setMigrateThreshold(int deviceId, long value) throws KnobException {
        Knob.MIGRATE_THRESHOLD.check(value);
        knobs.setMigrateThreshold(deviceId, value);
    }

    public Status status() {
        lock.lock();
        try {
            Throwable failure = health.failure();
            boolean degraded = failover.state() == Failover.State.DEGRADED;
            long lost = lostLines + (degraded ? failover.lostLines() : 0);
            long lostTotal = lostRangesTotal + (degraded ? failover.lostRanges().size() : 0);
            List<io.writeboost.format.LostRange> ranges = lostRanges;
            if (degraded && !failover.lostRanges().isEmpty()) {
                ranges = new java.util.ArrayList<>(lostRanges);
                ranges.addAll(failover.lostRanges());
                ranges = ranges.subList(0, Math.min(ranges.size(), SuperblockRecord.MAX_STORED_RANGES));
            }
            return new Status(superblock().cacheId(), segments.nrSegments(), segments.currentId(), segments.currentLines(),
                    segments.lastFlushedId(), segments.lastDurableId(), segments.lastMigratedId(), lines.dirtyLinesByDevice(),
                    lines.totalDirty(), lines.indexedLines(), segments.ramBytesInUse(), segments.maxBuffers(),
                    segments.queuedCount(), stats.snapshot(), segments.draining(), writeback.errors(), writeback.failing(),
                    writeback.backingLoad(), writeback.pausedByLoad(), failure == null ? null : failure.toString(),
                    flusher.flushedBytes(), writeback.writtenBackBytes(), segments.sealedSegments(), segments.sealedLines(),
                    lost, lostTotal, ranges, bypassWriter.writes(), bypassWriter.bytes(), bypassWriter.requests(),
                    writeback.engineBusy(), lines.cleanLines(), admission.admitted(), admission.cleanHits(),
                    flushedSegmentsWithDirtyLines(),
                    pacer.figures(segments.slotsInUse(), segments.slotsInUse() * 100 / segments.nrSegments(), writeback.aboveWatermark(),
                            writeback.budgetWaitedNanos()), knobs.mode(), deviceErrors.errors(), knobs.get(Knob.IO_ERROR_LIMIT),
                    degradedReason(), warmCleanLines, bypassWriter.stagedLinesCachedAtFlush(), copyForward.copiedLines(),
                    copyForward.writeAmplification());
        } finally {
            lock.unlock();
        }
    }

    /** Why the engine serves from the backing stores, or null while it uses its cache device. */
    private String degradedReason() {
        Throwable cause = health.cacheLost();
        if (cause == null) {
            return null;
        }
        if (failover.state() != Failover.State.DEGRADED) {
            return "failing over: the cache device failed (" + cause.getMessage() + "); writing its dirty lines back";
        }
        return "failed over: the cache device failed (" + cause.getMessage() + "); every volume is served from its backing "
                + "store (pass-through): " + failover.writtenBackLines() + " dirty line(s) written back, "
                + failover.lostLines() + " lost" + (failover.marked() ? "; the cache device is marked abandoned"
                : "; READ-ONLY (fsync fails too) until the cache device takes the abandoned mark (retried every second)")
                + "; format a new cache to use one again";
    }

    /** Lock held: flushed segments not yet written back that still hold a dirty line (a walk over at most the ring). */
    private long flushedSegmentsWithDirtyLines() {
        lock.assertHeld();
        long n = 0;
        for (long id = segments.lastMigratedId() + 1; id <= segments.lastFlushedId(); id++) {
            if (lines.dirtyLinesIn(Layout.slotOf(id, segments.nrSegments())) > 0) {
                n++;
            }
        }
        return n;
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
            return lines.dirtyLines(deviceId);
        } finally {
            lock.unlock();
        }
    }

    /** The superblock header with the current volume table. */
    public Superblock superblock() {
        return volumeChanges.superblock();
    }

    /**
     * Adds a backing store as a new volume while running (docs/FORMAT.md, "Volume table
     * copies"): returns its entry, with a device id no line in the cache names, once the table
     * naming it is durable. Refused with a {@link VolumeRefusedException}, changing nothing,
     * for a bad name or size, a name in use, or no free id. The caller checks that the store is
     * not in use elsewhere nor a volume already, and keeps it open until {@link #detach}.
     */
    public VolumeEntry attach(String name, String path, BackingIdentity identity, BlockDevice store) throws IOException {
        refuseChangeAfterFailover();
        return volumeChanges.attach(name, path, identity, store);
    }

    /**
     * Removes volume {@code deviceId} while running, once nobody uses it: writes its dirty
     * lines back, syncs its store, drops its clean lines, and returns its entry once the table
     * without it is durable; then the caller may close the store. Refused for the only volume
     * and for an unknown id. Other volumes are served throughout.
     */
    public VolumeEntry detach(int deviceId) throws IOException {
        refuseChangeAfterFailover();
        return volumeChanges.detach(deviceId);
    }

    /** The volume table lives on the cache device, which a failover gave up. */
    private void refuseChangeAfterFailover() throws IOException {
        if (failover.started()) {
            throw new IOException("cache " + superblock().cacheId() + " failed over from its cache device: volumes cannot be "
                    + "attached or detached until a new cache is formatted");
        }
    }

    /** Name of the cache device, for status output. */
    public String superblockDevice() {
        return cacheDevice.name();
    }

    /** What recovery found at start, without the replayed segments' entries: the line table holds those. */
    public RecoveryResult recovery() {
        return recovery;
    }

    /** Heap bytes the per-line metadata, the index and the per-slot arrays take, divided by the number of cache lines. */
    public double heapBytesPerLine() {
        long bytes = 0;
        for (long b : heapBytesByStructure().values()) {
            bytes += b;
        }
        return (double) bytes / lines.lineCount();
    }

    /**
     * Heap bytes of every structure the engine sizes by its number of lines or ring slots, by
     * name, from the arrays' lengths (object headers and the heap's own rounding left out).
     */
    public Map<String, Long> heapBytesByStructure() {
        Map<String, Long> bytes = new LinkedHashMap<>();
        lock.lock();
        try {
            lines.heapBytes(bytes);
            bytes.put("per slot: segment id, RAM buffer", segments.heapBytes());
            bytes.put("per slot: verification", verification.heapBytes());
            admission.heapBytes(bytes);
        } finally {
            lock.unlock();
        }
        return bytes;
    }

    /** Segments replayed at start whose checksum is not verified yet (tests watch it reach 0); not those written back before it. */
    int unverifiedSlots() {
        return verification.unverifiedReplayed();
    }

    // ---------------------------------------------------------------- lifecycle

    /**
     * Stops the daemons without flushing anything, as a crash would: nothing more reaches the
     * devices. For tests that simulate a power cut, and for giving up on a failed device.
     */
    public void abort() {
        health.fail(new IOException("aborted"));
        stopDaemons();
    }

    /**
     * Sets the closing flag the daemons watch for, wakes them, and waits until they have ended.
     * From here a cache device error (the stop's last record) is a plain failure: a failover
     * would run on after the stop returned, writing to devices its caller takes as released.
     */
    private void stopDaemons() {
        health.failOverWith(null);
        health.startClosing();
        joinDaemons();
        failover.stop();
    }

    /**
     * Waits until the daemons have ended; they end once {@link Health#stopped} (the failover
     * calls it too). Once the failover fenced the cache device, a daemon stuck in a device call
     * is left behind: it can act on nothing that call returns.
     */
    private void joinDaemons() {
        java.util.function.Predicate<Thread> stuck = deviceErrors::stuckBehindFence;
        staging.stop(stuck);
        periodic.join(stuck);
        writeback.join(stuck);
        flusher.join(stuck);
        watchdog.join(stuck);
        if (verifier != null) {
            verifier.join(stuck);
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
            if (!health.failed() || failover.started()) {
                flushNow();
            }
        } catch (IOException e) {
            error = e;
        }
        if (failover.started()) {
            stopDaemons();
            log.info("cache {} stopped, degraded: the backing stores hold the volumes{}", superblock().cacheId(),
                    failover.marked() ? "; the cache device is marked abandoned" : "");
            if (error != null) {
                throw error;
            }
            return;
        }
        stopDaemons();
        try {
            if (!health.failed()) {
                records.write(lastMigratedId(), error == null);
            }
        } catch (IOException e) {
            error = error == null ? e : error;
        }
        Status st = status();
        log.info("cache {} stopped {}: last flushed {}, last migrated {}, {} dirty line(s) kept in the cache",
                superblock().cacheId(), error == null && !health.failed() ? "cleanly" : "with errors", st.lastFlushedId(),
                st.lastMigratedId(), st.dirtyLines());
        if (error != null) {
            throw error;
        }
        Throwable failure = health.failure();
        if (failure != null) {
            throw new IOException("cache " + superblock().cacheId() + " stopped after a failure: " + failure, failure);
        }
    }

    // ---------------------------------------------------------------- helpers

    private void checkRequest(int dev, long sector, int nSectors, ByteBuffer buf) throws IOException {
        backings.checkRange(dev, sector, nSectors);
        if (buf.remaining() < (long) nSectors << Layout.SECTOR_SHIFT) {
            throw new IllegalArgumentException("buffer holds " + buf.remaining() + " bytes, " + nSectors + " sectors asked");
        }
    }

    private long totalDirty() {
        return lock.read(lines::totalDirty);
    }

    private long lastMigratedId() {
        return lock.read(segments::lastMigratedId);
    }
}
