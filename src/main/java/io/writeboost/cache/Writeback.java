package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.device.DeviceLoad;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.SectorRuns;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * dm-writeboost's migrate daemon. Takes the oldest flushed segments in batches of
 * nr_max_batched_migration, reads them sequentially from the cache device, sorts their dirty
 * lines by backing address, writes coalesced runs of dirty sectors to the backing stores,
 * syncs them, clears the dirty bits and only then advances last_migrated_segment_id in the
 * superblock record; a ring slot is reused only after that record is durable.
 *
 * <p>Runs while allow_migrate or force_migrate is 1, while a drain is asked for, and always
 * while a writer waits for a free ring slot. Otherwise, when read admission wants room
 * ({@link SegmentLog#cleanRoomWanted()}), it gives up the oldest segments that hold no dirty
 * line, a batch without backing-store I/O: clean lines are evicted oldest first, and dirty
 * data is not written back against allow_migrate's word.
 *
 * <p>Thread-safety: the batch and group state belong to the writeback thread. A batch runs
 * under {@link #batchLock} (so that a discard's punch cannot land between a batch's copy of a
 * line and its write), and takes the {@link EngineLock} only to snapshot dirty lines and to
 * clear them; no device I/O happens under the engine lock. The status figures are volatile
 * or atomic. The load probes and the time of the last sample are guarded by this object's
 * monitor ({@link #watchLoad}, {@link #unwatchLoad}, {@link #sampleLoadIfDue}; the periodic
 * daemon samples too). It is taken without the engine lock and the batch lock (a volume
 * change takes it under {@link VolumeChanges}' monitor), and inside it only the probes' own
 * monitors and {@link BackingBusy}'s are taken.
 */
final class Writeback extends Daemon implements BatchBoundaries {
    private static final Logger log = LogManager.getLogger(Writeback.class);
    /** Longest run written with one call: a contiguous stretch of dirty lines reaches the backing store in requests this large. */
    private static final int STAGING_BYTES = 4 << 20;
    /**
     * Runs at least this long bypass the page cache (O_DIRECT, where the backing store allows
     * it and the run is 4 KiB aligned). Written through a block device's page cache, a run
     * leaves as one request per 4 KiB block (buffer heads), and a throttled disk or a network
     * block device that counts requests takes a sequential stretch at its request rate times
     * 4 KiB. Single lines stay buffered: they are one request either way,
     * and the kernel can queue a batch's random writes before the group's sync instead of
     * waiting for each.
     */
    static final int DIRECT_RUN_BYTES = 32 << 10;
    private static final int LPS = Layout.LINES_PER_SEGMENT;

    private ByteBuffer batchBuffer;
    private final ByteBuffer staging = ByteBuffer.allocateDirect(STAGING_BYTES + Layout.LINE_SIZE).alignedSlice(Layout.LINE_SIZE);
    private int[] lines = new int[0];
    private long[] entryKeys = new long[0];
    private int[] entryBits = new int[0];
    private int[] entryOffsets = new int[0];
    private int[] order = new int[0];
    /** Entries of the batch that {@link CopyForward} picked: hot lines to copy forward rather than write back or evict. */
    private boolean[] entryCopy = new boolean[0];
    private final boolean[] touched = new boolean[Layout.MAX_DEVICE_ID + 1];
    private int consecutiveFailures;

    private final EngineLock lock;
    private final SegmentLog segments;
    private final LineTable lineTable;
    private final BackingStores backings;
    private final BlockDevice cacheDevice;
    private final KnobValues knobs;
    private final RecordWriter records;
    private final SegmentVerification verification;
    private final CopyForward copyForward;
    private Durability durability;

    /**
     * Held across a batch, and by a turn between batches ({@link #beginTurn}). Fair: one
     * waiting for its turn gets it before the writeback thread's next batch.
     */
    private final ReentrantLock batchLock = new ReentrantLock(true);
    /** Batches that wrote something, counted under batchLock: a change outside writeback asks whether one ran meanwhile. */
    private volatile long batches;
    /**
     * Batches that took a snapshot of dirty lines, counted under the engine lock when they
     * take it. Ahead of {@link #batches} while a batch is in flight: such a batch may hold an
     * older copy of a line that a bypass has since dropped, and has yet to write it.
     */
    private volatile long batchesStarted;
    /** Set under the engine lock before a commit clears dirty lines, cleared once its record is durable. */
    private volatile boolean committing;
    /** Dirty bytes written back and synced on the backing stores since start (counted when their group commits). */
    private volatile long writtenBackBytes;
    /** Failures since start, and the last one's message while writeback keeps failing (null once it succeeds). */
    private volatile long errors;
    private volatile String failing;
    /**
     * Last measured busy percent of each backing store, and whether that load holds writeback
     * back. Written under this object's monitor by the sampler, read without it (the status,
     * {@link #loadAllows}): atomic, so that a reader sees each figure as last written.
     */
    private final AtomicIntegerArray backingLoad = new AtomicIntegerArray(Layout.MAX_DEVICE_ID + 1);
    /** Percent of the last sample the engine had a request to each store in flight, writeback's own included (as backingLoad). */
    private final AtomicIntegerArray engineBusy = new AtomicIntegerArray(Layout.MAX_DEVICE_ID + 1);
    private volatile boolean pausedByLoad;
    /** Set when the ring's use reached high_watermark, cleared at low_watermark (guarded by the engine lock). */
    private boolean aboveWatermark;
    private final WritePacer pacer;
    private final WritebackBudget budget;

    /**
     * Batches written to the backing stores but not yet synced and recorded: segments
     * (lastMigratedId, groupTo], whose lines [0, groupEntries) stay dirty until the sync.
     * Syncing once per group rather than per batch lets the kernel write one batch out while
     * the next is read and sorted (measured with the engine bench: writeback 0.70x the backing
     * store's own random writes with a sync per 16-segment batch, 0.98x with 128 segments).
     */
    static final int GROUP_SEGMENTS = 128;
    /**
     * A group also commits once it is this old: on a slow backing store (200 IOPS) a group of
     * 128 full segments takes minutes to write, and until it commits nr_dirty_caches does not
     * move and a writer waiting for a ring slot waits for all of it.
     */
    static final long GROUP_MAX_NANOS = 2_000_000_000L;
    private final int groupSegments;
    private long groupTo = -1;
    private int groupEntries;
    private long groupStartNanos;
    private long groupBytes;
    /** Writes through the page cache since the last sync of the backing stores, which the next sync sends to the disk at once. */
    private long bufferedRequests;
    private final SyncBudget syncBudget = new SyncBudget();
    private int[] groupLines = new int[0];
    private long[] groupKeys = new long[0];
    private int[] groupBits = new int[0];

    /** The kernel's load probes of the backing stores by device id (null: unknown), sampled every update_interval. */
    private final DeviceLoad[] probes = new DeviceLoad[Layout.MAX_DEVICE_ID + 1];
    /** The engine's own: the share of time it had a request to the store in flight ({@link BackingBusy}), writeback's not counted... */
    private final DeviceLoad[] othersProbes = new DeviceLoad[Layout.MAX_DEVICE_ID + 1];
    /** ...and counted, for the status only. */
    private final DeviceLoad[] allProbes = new DeviceLoad[Layout.MAX_DEVICE_ID + 1];
    private long lastSampleNanos;

    Writeback(int cacheId, Health health, EngineLock lock, SegmentLog segments, LineTable lineTable, BackingStores backings,
              BlockDevice cacheDevice, KnobValues knobs, RecordWriter records, SegmentVerification verification,
              int groupSegments, WritePacer pacer, CopyForward copyForward) {
        super("writeback", cacheId, health);
        this.copyForward = copyForward;
        this.pacer = pacer;
        this.budget = new WritebackBudget(knobs, health::stopped);
        this.lock = lock;
        this.segments = segments;
        this.lineTable = lineTable;
        this.backings = backings;
        this.cacheDevice = cacheDevice;
        this.knobs = knobs;
        this.records = records;
        this.verification = verification;
        this.groupSegments = groupSegments;
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            if (backings.get(dev) != null) {
                watchLoad(dev);
            }
        }
    }

    /** Samples a backing store's load from now on: at start, and for a volume attached while running. */
    synchronized void watchLoad(int dev) {
        probes[dev] = backings.get(dev).load();
        othersProbes[dev] = DeviceLoad.ofTicks(() -> backings.busyMillis(dev, false));
        allProbes[dev] = DeviceLoad.ofTicks(() -> backings.busyMillis(dev, true));
        backingLoad.set(dev, 0);
        engineBusy.set(dev, 0);
    }

    /** A detached volume's store is sampled no more, and its load no longer holds writeback back. */
    synchronized void unwatchLoad(int dev) {
        probes[dev] = null;
        othersProbes[dev] = null;
        allProbes[dev] = null;
        backingLoad.set(dev, 0);
        engineBusy.set(dev, 0);
    }

    /** Wired after construction: durability needs the flusher, which is built alongside. */
    void durability(Durability durability) {
        this.durability = durability;
    }

    @Override
    public long batchesDone() {
        return batches;
    }

    @Override
    public long batchesStarted() {
        return batchesStarted;
    }

    @Override
    public long beginTurn() {
        batchLock.lock();
        return batches;
    }

    @Override
    public void endTurn() {
        batchLock.unlock();
    }

    @Override
    public boolean committing() {
        lock.assertHeld();
        return committing;
    }

    long writtenBackBytes() {
        return writtenBackBytes;
    }

    long errors() {
        return errors;
    }

    /** The last failure's message while writeback keeps failing, else null. */
    String failing() {
        return failing;
    }

    int[] backingLoad() {
        return copy(backingLoad);
    }

    int[] engineBusy() {
        return copy(engineBusy);
    }

    private static int[] copy(AtomicIntegerArray figures) {
        int[] out = new int[figures.length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = figures.get(i);
        }
        return out;
    }

    /** Time writeback waited for writeback_max_mbps and writeback_max_iops since start. */
    long budgetWaitedNanos() {
        return budget.waitedNanos();
    }

    boolean pausedByLoad() {
        return pausedByLoad;
    }

    /** Engine lock held: whether writeback runs because the ring's use passed high_watermark. */
    boolean aboveWatermark() {
        lock.assertHeld();
        return aboveWatermark;
    }

    /**
     * Engine lock held: writeback by dirty level, with hysteresis: on once the share of ring
     * slots not yet written back reaches high_watermark, off again at low_watermark. Starting
     * well before the ring is full leaves writeback time to free slots before writers need
     * them; stopping only at the low mark gives it runs long enough to sort and coalesce.
     */
    private boolean watermarkWants() {
        lock.assertHeld();
        long high = knobs.get(Knob.HIGH_WATERMARK);
        long low = Math.min(knobs.get(Knob.LOW_WATERMARK), high);
        // Segments the open group has written count as written back: its commit may wait for the low mark.
        long written = Math.max(0, groupTo - segments.lastMigratedId());
        long percent = (segments.slotsInUse() - written) * 100 / segments.nrSegments();
        if (high == 0) {
            aboveWatermark = false;
        } else if (percent >= high) {
            aboveWatermark = true;
        } else if (percent <= low) {
            aboveWatermark = false;
        }
        return aboveWatermark;
    }

    /**
     * Engine lock held: segments to take into the next batch. nr_max_batched_migration while
     * room is plentiful; while writers are paced, half the free slots (at least one), so that
     * the slots writers need come back a few at a time instead of all at the end of one long
     * batch on a slow backing store.
     */
    private int batchSegments() {
        lock.assertHeld();
        assert batchLock.isHeldByCurrentThread();
        // A batch holds the batch lock, and a bypass or discard waiting for its turn between
        // batches waits for all of it: no more segments than the sync budget's single lines fill.
        long budgetSegments = syncBudget.requests() * Layout.LINE_SIZE / Layout.SEGMENT_SIZE;
        int max = (int) Math.min(knobs.get(Knob.NR_MAX_BATCHED_MIGRATION), Math.max(1, budgetSegments));
        long free = segments.freeSlots();
        if (free >= WritePacer.paceStart(segments.nrSegments()) && !segments.writersWaitingForSlot()) {
            return max;
        }
        return (int) Math.max(1, Math.min(max, free / 2));
    }

    /** Engine lock held: writers are paced or waiting, so each batch commits at once to give its slots back. */
    private boolean roomUrgent() {
        lock.assertHeld();
        return segments.writersWaitingForSlot() || segments.freeSlots() < WritePacer.paceStart(segments.nrSegments());
    }

    /**
     * Engine lock held: outside write-back, the dirty lines left from it are written back
     * whatever the watermarks and allow_migrate say, so that switching to write-through or
     * pass-through (before replacing a cache device, say) ends with none. In those two modes
     * a new dirty line is made only by a write over part of a line still dirty; when only the
     * open segment holds dirty lines it is sealed, since nothing else may fill it. (Not in
     * write-around, where partial lines are cached as before and the open segment fills.)
     */
    private boolean modeWants(boolean pending) {
        lock.assertHeld();
        CacheMode mode = knobs.mode();
        if (!mode.writesAround() || lineTable.totalDirty() == 0) {
            return false;
        }
        if (!pending && mode != CacheMode.WRITE_AROUND && segments.openHoldsDirty()) {
            segments.seal();
        }
        return true;
    }

    /**
     * Reads the backing stores' busy time, outside the engine lock, at most once per
     * update_interval. The periodic daemon calls it as well as this thread: a batch and its
     * sync on a slow disk take many seconds, and the status's figures must stay current meanwhile.
     */
    synchronized void sampleLoadIfDue() {
        long now = System.nanoTime();
        if (now - lastSampleNanos < TimeUnit.SECONDS.toNanos(knobs.get(Knob.UPDATE_INTERVAL)) && lastSampleNanos != 0) {
            return;
        }
        lastSampleNanos = now;
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            if (othersProbes[dev] != null) {
                // The higher of the two: the kernel's misses a throttle or a network disk,
                // the engine's misses other users of the disk. (The kernel's counts
                // writeback's own requests too; it cannot tell them apart.)
                int kernel = probes[dev] != null ? probes[dev].sample() : 0;
                backingLoad.set(dev, Math.max(kernel, othersProbes[dev].sample()));
                engineBusy.set(dev, allProbes[dev].sample());
            }
        }
    }

    /**
     * Writeback by load, as dm-writeboost's user-space daemon did and upstream later did in the
     * kernel: allowed while every backing store is busy less than its migrate_threshold percent.
     */
    private boolean loadAllows() {
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            long threshold = knobs.migrateThreshold(dev);
            if (backings.get(dev) != null && backingLoad.get(dev) >= threshold && threshold < 100) {
                return false;
            }
        }
        return true;
    }

    @Override
    protected void work() throws Exception {
        while (true) {
            sampleLoadIfDue();
            boolean commitOnly = false;
            boolean cleanOnly = false;
            lock.lock();
            try {
                if (health.stopped()) {
                    return;
                }
                boolean pending = segments.lastFlushedId() > Math.max(segments.lastMigratedId(), groupTo);
                boolean byLevel = watermarkWants();
                boolean byMode = modeWants(pending);
                boolean wanted = segments.writebackDemanded() || knobs.get(Knob.FORCE_MIGRATE) == 1 || byLevel || byMode
                        || (knobs.get(Knob.ALLOW_MIGRATE) == 1 && loadAllows());
                pausedByLoad = pending && knobs.get(Knob.ALLOW_MIGRATE) == 1 && !wanted;
                if (!wanted && pending && segments.cleanRoomWanted() && groupTo < 0) {
                    long next = segments.lastMigratedId() + 1;
                    cleanOnly = lineTable.dirtyLinesIn(Layout.slotOf(next, segments.nrSegments())) == 0;
                }
                // Until recovery's segments are verified, one may yet fail and cut the log short.
                if (!(pending && (wanted || cleanOnly) && verification.unverifiedReplayed() == 0)) {
                    if (groupTo > segments.lastMigratedId()) {
                        commitOnly = true; // stopping for now: finish what was written
                    } else {
                        lock.awaitDaemonWork(knobs.get(Knob.UPDATE_INTERVAL), TimeUnit.SECONDS);
                        continue;
                    }
                }
            } finally {
                lock.unlock();
            }
            try {
                if (commitOnly) {
                    batchLock.lock();
                    try {
                        commitGroup();
                    } finally {
                        batchLock.unlock();
                    }
                } else {
                    runBatch(cleanOnly);
                }
                consecutiveFailures = 0;
                failing = null;
            } catch (IOException ex) {
                groupTo = -1;
                groupEntries = 0;
                bufferedRequests = 0;
                consecutiveFailures++;
                errors++;
                failing = ex.getMessage();
                long backoffMs = Math.min(30_000, 100L << Math.min(8, consecutiveFailures));
                log.error("writeback failed ({} in a row), retrying in {} ms: {}", consecutiveFailures, backoffMs, ex.toString());
                lock.lock();
                try {
                    if (!health.closing()) {
                        lock.awaitDaemonWork(backoffMs, TimeUnit.MILLISECONDS);
                    }
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /**
     * Writes back one batch of the oldest flushed segments; with {@code cleanOnly}, only those
     * from the oldest on that hold no dirty line (no backing-store I/O), committed at once.
     */
    void runBatch(boolean cleanOnly) throws IOException {
        long t0 = System.nanoTime();
        int nrSegments = segments.nrSegments();
        batchLock.lock();
        try {
            long from, to;
            int entries = 0;
            boolean copies = false;
            int[] segmentLines;
            lock.lock();
            try {
                from = Math.max(segments.lastMigratedId(), groupTo) + 1;
                to = Math.min(segments.lastFlushedId(), from + batchSegments() - 1);
                if (cleanOnly) {
                    long last = from - 1;
                    while (last < to && lineTable.dirtyLinesIn(Layout.slotOf(last + 1, nrSegments)) == 0) {
                        last++;
                    }
                    to = last;
                }
                if (to < from) {
                    return;
                }
                int n = (int) (to - from + 1);
                ensureCapacity(n);
                segmentLines = new int[n];
                boolean copying = copyForward.active();
                for (long id = from; id <= to; id++) {
                    int slot = Layout.slotOf(id, nrSegments);
                    if (segments.segmentIn(slot) != id) {
                        throw new IllegalStateException("slot " + slot + " holds segment " + segments.segmentIn(slot) + ", expected " + id);
                    }
                    int used = lineTable.linesUsed(slot);
                    boolean pick = copying && copyForward.slotQualifies(slot);
                    boolean any = false;
                    for (int k = 0; k < used; k++) {
                        int line = slot * LPS + k;
                        int bits = lineTable.dirtyBits(line);
                        long key = lineTable.key(line);
                        boolean copy = pick && key > 0 && copyForward.candidate(line);
                        if ((bits != 0 || copy) && key > 0) {
                            lines[entries] = line;
                            entryKeys[entries] = key;
                            entryBits[entries] = bits;
                            entryOffsets[entries] = (int) (id - from) * Layout.SEGMENT_SIZE + SegmentBuffer.lineOffset(k);
                            entryCopy[entries] = copy;
                            copies |= copy;
                            entries++;
                            any = true;
                        }
                    }
                    segmentLines[(int) (id - from)] = any ? used : 0;
                }
                if (entries > 0) {
                    batchesStarted++;
                }
            } finally {
                lock.unlock();
            }
            // From here on, counted as done however it ends (see batchesStarted).
            try {
                readAndWriteBack(from, segmentLines, entries, copies, to, cleanOnly, t0);
            } finally {
                if (entries > 0) {
                    batches++;
                }
            }
        } finally {
            batchLock.unlock();
        }
    }

    /** Batch lock held: reads the snapshot's segments, writes their dirty lines back in order, and commits when due. */
    private void readAndWriteBack(long from, int[] segmentLines, int entries, boolean copies, long to, boolean cleanOnly,
                                  long t0) throws IOException {
        assert batchLock.isHeldByCurrentThread();
        int nrSegments = segments.nrSegments();
        // Read the segments that still have dirty lines: a run of full segments in
        // consecutive slots (and the one after, up to its last line) in one read, headers
        // and all, since batchBuffer mirrors the slots' layout. Segments are written with
        // O_DIRECT, so these reads come from the device, not the page cache.
        for (int i = 0; i < segmentLines.length; ) {
            if (segmentLines[i] == 0) {
                i++;
                continue;
            }
            int slot = Layout.slotOf(from + i, nrSegments);
            int last = i;
            while (last + 1 < segmentLines.length && segmentLines[last] == LPS && segmentLines[last + 1] != 0
                    && Layout.slotOf(from + last + 1, nrSegments) == slot + (last + 1 - i)) {
                last++;
            }
            ByteBuffer view = batchBuffer.duplicate();
            int base = i * Layout.SEGMENT_SIZE;
            view.limit(last * Layout.SEGMENT_SIZE + SegmentBuffer.lineOffset(segmentLines[last]))
                    .position(base + Layout.SEGMENT_HEADER_SIZE);
            cacheDevice.read(view, Layout.slotOffset(slot) + Layout.SEGMENT_HEADER_SIZE);
            i = last + 1;
        }

        if (copies) {
            entries = copyForward(entries);
        }
        // A write that fails part-way still counts the batch (the caller's finally): the
        // runs written before it may have put older copies over a bypass's data, and that
        // bypass rewrites its data only when it sees a batch counted since it wrote.
        long sectorsWritten = writeSorted(entries);
        addToGroup(entries, to, sectorsWritten << Layout.SECTOR_SHIFT);
        boolean commit;
        lock.lock();
        try {
            commit = cleanOnly || to - segments.lastMigratedId() >= groupSegments || to >= segments.lastFlushedId()
                    || roomUrgent() || health.closing()
                    || System.nanoTime() - groupStartNanos >= GROUP_MAX_NANOS;
        } finally {
            lock.unlock();
        }
        if (commit) {
            commitGroup();
        }
        if (log.isDebugEnabled()) {
            log.debug("wrote back segments {}..{}: {} dirty line(s), {} KiB in {} ms{}", from, to, entries,
                    sectorsWritten / 2, (System.nanoTime() - t0) / 1_000_000, commit ? ", synced and recorded" : "");
        }
    }

    /**
     * Batch lock held, the batch's segments read: copies the entries {@link CopyForward} picked
     * into the open segment where it still may, and keeps the others to write back, dirty
     * lines only (a clean line not copied is evicted with its slot). Returns how many are kept,
     * moved to the front of the entry arrays.
     */
    private int copyForward(int entries) {
        int kept = 0;
        lock.lock();
        try {
            for (int i = 0; i < entries; i++) {
                if (entryCopy[i] && copyForward.copy(lines[i], entryKeys[i], entryBits[i], batchBuffer, entryOffsets[i])) {
                    continue;
                }
                if (entryBits[i] == 0) {
                    continue;
                }
                lines[kept] = lines[i];
                entryKeys[kept] = entryKeys[i];
                entryBits[kept] = entryBits[i];
                entryOffsets[kept] = entryOffsets[i];
                kept++;
            }
        } finally {
            lock.unlock();
        }
        return kept;
    }

    private void addToGroup(int entries, long to, long bytes) {
        if (groupTo < 0) {
            groupStartNanos = System.nanoTime();
            groupBytes = 0;
        }
        groupBytes += bytes;
        int needed = groupEntries + entries;
        if (groupLines.length < needed) {
            int n = Math.max(needed, groupLines.length * 2);
            groupLines = java.util.Arrays.copyOf(groupLines, n);
            groupKeys = java.util.Arrays.copyOf(groupKeys, n);
            groupBits = java.util.Arrays.copyOf(groupBits, n);
        }
        System.arraycopy(lines, 0, groupLines, groupEntries, entries);
        System.arraycopy(entryKeys, 0, groupKeys, groupEntries, entries);
        System.arraycopy(entryBits, 0, groupBits, groupEntries, entries);
        groupEntries = needed;
        groupTo = to;
    }

    /**
     * Makes the group's writes durable and gives its segments up: syncs the backing stores it
     * wrote, clears the dirty bits it wrote back (unless newer writes replaced the lines),
     * waits until those newer writes are durable, then records last_migrated_segment_id.
     */
    private void commitGroup() throws IOException {
        syncTouched();
        long from, to = groupTo;
        lock.lock();
        long invalidators = 0;
        try {
            // The group reached the backing stores: status must not show a fault next to
            // dirty lines already cleared by this success.
            consecutiveFailures = 0;
            failing = null;
            from = segments.lastMigratedId() + 1;
            committing = true;
            for (int i = 0; i < groupEntries; i++) {
                lineTable.clearDirty(groupLines[i], groupKeys[i], groupBits[i]);
            }
            for (long id = from; id <= to; id++) {
                invalidators = Math.max(invalidators, lineTable.invalidatedBy(Layout.slotOf(id, segments.nrSegments())));
            }
            // Lines of the group that newer writes replaced were skipped above; those newer
            // writes must survive a crash before the group's segments can be given up. So must
            // the copies copy-forward made of the group's lines: they are the only ones left.
            durability.awaitDurableSegment(invalidators);
            durability.awaitDurablePosition(copyForward.durableTarget());
        } finally {
            lock.unlock();
        }
        records.write(to, false);
        // Left set when the record fails: the cleared lines stay replayable until a later commit's record.
        committing = false;
        writtenBackBytes += groupBytes; // under batchLock only
        lock.lock();
        try {
            pacer.slotsFreed(to - segments.lastMigratedId());
            segments.markWrittenBack(to);
            segments.cleanRoomGiven();
        } finally {
            lock.unlock();
        }
        groupTo = -1;
        groupEntries = 0;
    }

    /** Batch lock held: syncs every backing store written since the last sync, and measures the sync for {@link SyncBudget}. */
    private void syncTouched() throws IOException {
        assert batchLock.isHeldByCurrentThread();
        long start = System.nanoTime();
        for (int dev = 0; dev < touched.length; dev++) {
            if (touched[dev]) {
                backings.sync(dev, true);
                touched[dev] = false;
            }
        }
        syncBudget.synced(bufferedRequests, System.nanoTime() - start);
        bufferedRequests = 0;
    }

    /** Writes the batch's dirty sectors in backing address order, coalescing adjacent runs (not synced); returns sectors written. */
    private long writeSorted(int entries) throws IOException {
        for (int i = 0; i < entries; i++) {
            order[i] = i;
        }
        KeyOrder.sort(order, entries, entryKeys); // backing order, older copies first
        staging.clear();
        int stagedDev = -1;
        long stagedStart = -1;
        long stagedEnd = -1;
        long written = 0;
        for (int o = 0; o < entries; o++) {
            int i = order[o];
            long key = entryKeys[i];
            int dev = LineKey.device(key);
            long lineSector = LineKey.line(key) * Layout.SECTORS_PER_LINE;
            int bits = entryBits[i];
            for (int from = SectorRuns.start(bits, 0); from < 8; ) {
                int to = SectorRuns.end(bits, from);
                long start = lineSector + from;
                int bytes = (to - from) << Layout.SECTOR_SHIFT;
                if (dev != stagedDev || start != stagedEnd || staging.remaining() < bytes) {
                    written += writeStaged(stagedDev, stagedStart);
                    stagedDev = dev;
                    stagedStart = start;
                }
                int src = entryOffsets[i] + (from << Layout.SECTOR_SHIFT);
                staging.put(staging.position(), batchBuffer, src, bytes);
                staging.position(staging.position() + bytes);
                stagedEnd = start + (to - from);
                from = SectorRuns.start(bits, to);
            }
        }
        written += writeStaged(stagedDev, stagedStart);
        return written;
    }

    private long writeStaged(int dev, long startSector) throws IOException {
        if (dev < 0 || staging.position() == 0) {
            staging.clear();
            return 0;
        }
        staging.flip();
        long sectors = staging.remaining() >> Layout.SECTOR_SHIFT;
        if (budget.capped() && lock.read(() -> roomUrgent() ? 1 : 0) == 0) {
            budget.take(staging.remaining());
        }
        boolean direct = staging.remaining() >= DIRECT_RUN_BYTES;
        backings.write(dev, staging, startSector, direct, true);
        touched[dev] = true;
        staging.clear();
        if (!direct && ++bufferedRequests >= syncBudget.requests()) {
            // Not a commit: the lines stay dirty until the group's record. Only the disk's
            // queue is bounded here, so that a staged or bypassed write never waits behind
            // more than the budget's worth of writeback.
            syncTouched();
        }
        return sectors;
    }

    private void ensureCapacity(int batchSegments) {
        int needed = batchSegments * LPS;
        if (lines.length < needed) {
            lines = new int[needed];
            entryKeys = new long[needed];
            entryBits = new int[needed];
            entryOffsets = new int[needed];
            order = new int[needed];
            entryCopy = new boolean[needed];
        }
        if (batchBuffer == null || batchBuffer.capacity() < batchSegments * Layout.SEGMENT_SIZE) {
            batchBuffer = ByteBuffer.allocateDirect(batchSegments * Layout.SEGMENT_SIZE);
        }
    }
}
