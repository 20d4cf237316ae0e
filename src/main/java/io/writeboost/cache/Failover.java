package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.LostRange;
import io.writeboost.format.SegmentHeader;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The engine without its cache device (docs/ENGINE.md, "Failure"). Started once by the first
 * cache device error that {@link Health#cacheDeviceFailed} takes (a write lost for good, a
 * failed sync, more errors than io_error_limit, a call that did not return within
 * cache_io_timeout_ms), on the thread {@code wb-failover-N}: it fences the cache device
 * ({@link CacheDeviceErrors#fence}), waits for the engine's daemons to end (leaving behind one
 * stuck in a device call), writes every dirty line back (from its RAM segment when it
 * has one, else from the cache device, checked against its segment's checksum), writes out the
 * staged lines, syncs the backing stores, reports every dirty line it could not read as lost,
 * marks the cache abandoned in the superblock record, and from then on serves every request
 * from the backing stores (pass-through). Requests that meet the failover wait for it and are
 * then served that way ({@link #awaitServing}). Lost lines stay visible to the volumes: a read of
 * a lost sector fails ({@link LostSectors}), and flushes report the loss once per volume, as
 * the kernel reports a write-back error ({@link #flush}).
 *
 * <p>Its own reads of the cache device and the abandoned record are each waited for at most
 * cache_io_timeout_ms ({@link BoundedCalls}): a hung device holds the volumes no longer than that.
 *
 * <p>Owns: the failover's state, its figures, the lost ranges it found and which volumes' flushes
 * still owe the report of a loss; its helper threads, scratch buffer and last attempt at the mark
 * (the failover thread's, then the stop's once it has joined it). Thread-safe: the
 * state is guarded by the {@link EngineLock} (waiters wait on its {@code changed} condition)
 * and published through a volatile; the failover thread alone writes the figures before it
 * publishes {@link State#DEGRADED}.
 */
final class Failover extends Daemon {
    private static final Logger log = LogManager.getLogger(Failover.class);
    private static final int LPS = Layout.LINES_PER_SEGMENT;
    /** How often the abandoned record is tried again while the cache device refuses it (volumes are read-only meanwhile). */
    private static final long MARK_RETRY_NANOS = TimeUnit.SECONDS.toNanos(1);
    /**
     * Reads of segments that may time out before the failover reads no more from the cache
     * device: a device that answers no read would otherwise hold every volume's writes for a
     * deadline per segment it holds. One hung slot costs one; a hung device, two deadlines.
     */
    static final int MAX_TIMED_OUT_READS = 2;
    private static final long HOLDER_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

    enum State { NONE, FAILING_OVER, DEGRADED }

    /** A flush of every volume ({@link #flush}). */
    static final int EVERY_VOLUME = 0;

    private final int cacheId;
    private final long nonce;
    private final EngineLock lock;
    private final LineTable lines;
    private final SegmentLog segments;
    private final BackingStores backings;
    private final CacheDeviceErrors cache;
    private final StreamStaging staging;
    private final RecordWriter records;
    private final KnobValues knobs;
    private final Runnable joinDaemons;
    /** Set under the lock when the engine stops: no failover begins after it. */
    private boolean stopping;

    private volatile State state = State.NONE;
    private volatile boolean marked;
    /** Lock held: the failover holds the cache device, and nothing but its write-back changes the line table. */
    private boolean frozen;
    private long writtenBack;
    private long lostLines;
    private final List<LostRange> lost = new ArrayList<>();
    private final LostSectors lostSectors = new LostSectors();
    /** Per device id: the failover lost lines of it (written before DEGRADED is published). */
    private final boolean[] lostOn = new boolean[Layout.MAX_DEVICE_ID + 1];
    /** Per device id: 1 while no flush begun after the failover began has reported that loss yet. */
    private final AtomicIntegerArray lossUnreported = new AtomicIntegerArray(Layout.MAX_DEVICE_ID + 1);
    /** The failover's own calls of the cache device, each bounded by cache_io_timeout_ms; made once the thread starts. */
    private BoundedCalls calls;
    /** The last attempt at the abandoned record: one that timed out is waited for again rather than repeated. */
    private java.util.concurrent.Future<Boolean> markAttempt;
    /** The segment the failover reads and writes back from; replaced when a read of it timed out (the read keeps it). */
    private ByteBuffer scratch;
    private int readsTimedOut;

    Failover(int cacheId, long nonce, Health health, EngineLock lock, LineTable lines, SegmentLog segments,
             BackingStores backings, CacheDeviceErrors cache, StreamStaging staging, RecordWriter records, KnobValues knobs,
             Runnable joinDaemons) {
        super("failover", cacheId, health);
        this.cacheId = cacheId;
        this.nonce = nonce;
        this.lock = lock;
        this.lines = lines;
        this.segments = segments;
        this.backings = backings;
        this.cache = cache;
        this.staging = staging;
        this.records = records;
        this.knobs = knobs;
        this.joinDaemons = joinDaemons;
    }

    /**
     * What {@link Health#cacheDeviceFailed} runs, once. Any lock state. The check and the
     * thread's start are one step under the lock, so that a stop that has begun (and may have
     * joined already) never leaves a failover running behind it: the error is then a plain
     * failure, as any cache device error at a stop is.
     */
    void begin() {
        lock.lock();
        try {
            if (stopping) {
                health.fail(health.cacheLost());
                return;
            }
            start();
        } finally {
            lock.unlock();
        }
    }

    /** Whether a failover has begun (it may still be writing back). Any thread, no lock. */
    boolean started() {
        return health.cacheLost() != null;
    }

    State state() {
        return state;
    }

    /** Whether the abandoned record is on the cache device (false until then, and while the device refuses it). */
    boolean marked() {
        return marked;
    }

    long writtenBackLines() {
        return writtenBack;
    }

    long lostLines() {
        return lostLines;
    }

    /**
     * Called without the lock by a request that met the failover: returns once requests are
     * served from the backing stores; throws if the engine failed instead (a backing store
     * failed during the failover, or the engine was aborted).
     */
    void awaitServing() throws IOException {
        health.checkNotFailed();
        if (state == State.DEGRADED) {
            return;
        }
        lock.lock();
        try {
            while (state != State.DEGRADED) {
                health.checkNotFailed();
                lock.awaitChanged();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while the cache fails over", e);
        } finally {
            lock.unlock();
        }
    }

    /**
     * A read that meets the failover under way, served at once from the backing store when it
     * holds the newest data of the whole range: the line table is frozen, and no line of the
     * range is dirty (not written back yet) or staged. Only the newest copy of a line can be
     * dirty and the write-back clears a line only once it is on the store (or lost, and then in
     * {@link LostSectors} first), so the store's data cannot turn older after the check. Returns
     * false when it cannot serve it; the caller then waits ({@link #awaitServing}). Called
     * without the lock.
     */
    boolean readWhileFailingOver(int dev, long sector, int nSectors, ByteBuffer dst) throws IOException {
        lock.lock();
        try {
            if (nSectors <= 0 || state != State.FAILING_OVER || !frozen || health.failure() != null) {
                return false;
            }
            long lastLine = (sector + nSectors - 1) >>> 3;
            for (long line = sector >>> 3; line <= lastLine; line++) {
                int l = lines.lookup(LineKey.of(dev, line));
                if ((l >= 0 && lines.dirtyBits(l) != 0) || staging.holds(dev, line)) {
                    return false;
                }
            }
        } finally {
            lock.unlock();
        }
        read(dev, sector, nSectors, dst);
        return true;
    }

    // ---------------------------------------------------------------- pass-through, once degraded

    /** A read touching a lost sector fails, as a bad sector's would: the backing store holds older data there. */
    void read(int dev, long sector, int nSectors, ByteBuffer dst) throws IOException {
        if (lostSectors.touches(dev, sector, sector + nSectors)) {
            throw new IOException("cache " + cacheId + ": sectors " + sector + "-" + (sector + nSectors - 1) + " of device "
                    + dev + " touch data the failover lost (status: lost_range); writing or discarding them makes them "
                    + "readable again");
        }
        backings.read(dev, slice(dst, nSectors), sector);
    }

    /** Not synced: the store is marked changed, and the next flush syncs it, as for a bypassed write. */
    void write(int dev, long sector, int nSectors, ByteBuffer src) throws IOException {
        checkMarked();
        backings.write(dev, slice(src, nSectors), sector, false, false);
        backings.changed(dev);
        lostSectors.covered(dev, sector, sector + nSectors);
    }

    void discard(int dev, long sector, long nSectors) throws IOException {
        checkMarked();
        backings.punch(dev, sector, nSectors);
        lostSectors.covered(dev, sector, sector + nSectors);
    }

    /**
     * A write, a discard or a flush is taken only once the cache device holds the abandoned
     * mark. Without it, a start on that device once it works again (a controller reset by a
     * reboot) would replay its log, which is older than the backing stores: over a write taken
     * since, and over lines the failover wrote back from RAM that never reached the device. So
     * until then the volumes are read-only and no flush succeeds (an fsync would acknowledge
     * those RAM lines); such a replay then only rolls back what no flush acknowledged, as a
     * crash may.
     */
    private void checkMarked() throws IOException {
        if (!marked) {
            throw new IOException("cache " + cacheId + " failed over and its volumes are read-only (and fsync fails) until "
                    + "the failing cache device " + cache.name() + " takes the mark that keeps a later start from replaying "
                    + "its older log (tried every " + TimeUnit.NANOSECONDS.toSeconds(MARK_RETRY_NANOS) + " s; status: state)");
        }
    }

    /**
     * Syncs what pass-through wrote or punched; once a sync failed, no flush succeeds again (as
     * in the cache). A flush of volume {@code dev} ({@link #EVERY_VOLUME}: of all) fails when the
     * failover lost lines of it and the flush was in flight when the failover began
     * ({@code inFlight}: it covered them), or is the first begun since (which takes the report):
     * the loss is reported once per volume, as the kernel reports a write-back error once per
     * file, and later flushes succeed.
     */
    void flush(int dev, boolean inFlight) throws IOException {
        checkMarked();
        backings.syncChanged();
        health.checkNotFailed();
        StringBuilder lostVolumes = new StringBuilder();
        int from = dev == EVERY_VOLUME ? 1 : dev, to = dev == EVERY_VOLUME ? Layout.MAX_DEVICE_ID : dev;
        for (int d = from; d <= to; d++) {
            if (inFlight ? lostOn[d] : lossUnreported.getAndSet(d, 0) != 0) {
                lostVolumes.append(lostVolumes.length() == 0 ? "" : ", ").append(d);
            }
        }
        if (lostVolumes.length() > 0) {
            throw new IOException("cache " + cacheId + " failed over and lost acknowledged data of device(s) " + lostVolumes
                    + " (status: lost_range): this flush covered it or is the first since; later flushes succeed");
        }
    }

    private static ByteBuffer slice(ByteBuffer b, int nSectors) {
        return b.duplicate().limit(b.position() + (nSectors << Layout.SECTOR_SHIFT));
    }

    // ---------------------------------------------------------------- the failover

    @Override
    protected void work() throws Exception {
        Throwable cause = health.cacheLost();
        long t0 = System.nanoTime();
        // Before the daemons are joined: a daemon stuck in a device call is then left behind.
        cache.fence();
        cache.admitCurrentThread();
        calls = new BoundedCalls(cacheId, cache);
        lock.lock();
        try {
            state = State.FAILING_OVER;
        } finally {
            lock.unlock();
        }
        // WARN: the ERROR line, once, is the one that says what happened and what to do, when it is done.
        log.warn("cache {}: the cache device {} failed ({}); failing over: every dirty line it can still read goes to "
                + "the backing stores, then every volume is served from its backing store (pass-through)", cacheId,
                cache.name(), cause.getMessage());
        joinDaemons.run();
        long first, last;
        lock.lock();
        try {
            // A flush writing the log on its own thread holds the device: its I/O ends, it sees the
            // failover and lets go; or it is stuck in a call begun before the fence, whose end it
            // cannot act on, and the failover takes the device over.
            while (segments.deviceBusy() && !cache.stuckBehindFence(segments.deviceHolder())) {
                lock.awaitChangedNanos(HOLDER_POLL_NANOS);
            }
            segments.takeDevice(); // never released: nothing is written to the log again
            frozen = true;
            first = segments.lastMigratedId() + 1;
            last = segments.currentId();
        } finally {
            lock.unlock();
        }
        scratch = newScratch();
        for (long id = first; id <= last; id++) {
            if (engineFailed()) {
                return;
            }
            writeBackSegment(id);
        }
        if (engineFailed()) {
            return;
        }
        staging.writeOutForFailover();
        boolean[] known = backings.knownDevices();
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            if (engineFailed()) {
                return;
            }
            if (known[dev]) {
                backings.sync(dev, true); // a failure fails the engine: without its backing store nothing is served
            }
        }
        for (LostRange r : lost) {
            log.error("cache {}: lost range: device {} sectors {}-{} (acknowledged data the failing cache device no longer "
                    + "returned; the backing store holds older data there)", cacheId, r.device(), r.firstSector(), r.lastSector());
        }
        // Everything readable is on the backing stores: from here the log is older than they are.
        knobs.set(Knob.CACHE_MODE, CacheMode.PASS_THROUGH.ordinal());
        if (engineFailed()) {
            return;
        }
        marked = mark();
        lock.lock();
        try {
            state = State.DEGRADED;
            lock.signalAll();
        } finally {
            lock.unlock();
        }
        log.error("cache {} degraded: failed over in {} ms: {} dirty line(s) written back, {} lost{}; every volume is now "
                        + "served from its backing store (pass-through) and stays so until the cache is replaced. {}. What "
                        + "to do: {}stop the volumes when convenient, replace the cache device if it is failing, and "
                        + "format a new cache (the start's fuse-mount command with --format added); a start on this cache "
                        + "is refused", cacheId, (System.nanoTime() - t0) / 1_000_000, writtenBack, lostLines,
                lostLines > 0 ? " (ranges above)" : "",
                marked ? "The cache device is marked abandoned" : "Marking the cache device abandoned FAILED: the volumes are "
                        + "READ-ONLY and fsync fails until it takes the mark (retried every " + TimeUnit.NANOSECONDS.toSeconds(MARK_RETRY_NANOS)
                        + " s)",
                lostLines > 0 ? "check the file system on each volume with lost ranges (fsck) and restore them from a backup; " : "");
        retryMark();
    }

    /**
     * Writes the dirty lines of segment {@code id} back: from its RAM copy when it has one (the
     * open segment, sealed ones not yet on the device, one whose write failed), else from the
     * cache device, taken only when its newer header copy is this segment's with this many
     * lines and its data checksum holds (a device that failed a sync may return older data).
     * Lines it cannot read are lost. Called without the lock.
     */
    private void writeBackSegment(long id) throws IOException, InterruptedException {
        int slot = Layout.slotOf(id, segments.nrSegments());
        int used, n = 0;
        int[] ks = new int[LPS];
        long[] keys = new long[LPS];
        int[] bits = new int[LPS];
        boolean inRam;
        lock.lock();
        try {
            if (segments.segmentIn(slot) != id) {
                return;
            }
            used = lines.linesUsed(slot);
            for (int k = 0; k < used; k++) {
                int line = slot * LPS + k;
                int b = lines.dirtyBits(line);
                long key = lines.key(line);
                if (b != 0 && !LineKey.isTombstone(key)) {
                    ks[n] = k;
                    keys[n] = key;
                    bits[n++] = b;
                }
            }
            if (n == 0) {
                return;
            }
            SegmentBuffer ram = segments.ramCopy(slot);
            inRam = ram != null;
            if (inRam) {
                scratch.clear();
                scratch.put(ram.data().duplicate().position(0).limit(SegmentHeader.usedBytes(used)));
            }
        } finally {
            lock.unlock();
        }
        boolean readable = inRam;
        if (!inRam) {
            readable = readSegment(id, slot, used, n);
        }
        if (engineFailed()) {
            return;
        }
        // In backing order (lines of one segment are in arrival order, a random write's scattered),
        // and runs of dirty sectors that meet both on the backing store and in the slot (a
        // sequential write's lines follow each other in both) go as one request.
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        KeyOrder.sort(order, n, keys);
        int runDev = 0, runAt = 0, runLen = 0;
        long runSector = 0;
        for (int o = 0; o < n; o++) {
            int i = order[o];
            int dev = LineKey.device(keys[i]);
            long base = LineKey.line(keys[i]) << 3;
            for (int s = 0; s < Layout.SECTORS_PER_LINE; ) {
                if ((bits[i] & (1 << s)) == 0) {
                    s++;
                    continue;
                }
                int e = s;
                while (e < Layout.SECTORS_PER_LINE && (bits[i] & (1 << e)) != 0) {
                    e++;
                }
                if (!readable) {
                    addLost(dev, base + s, base + e - 1);
                } else {
                    int at = SegmentHeader.lineOffset(ks[i]) + (s << Layout.SECTOR_SHIFT);
                    if (runLen > 0 && (dev != runDev || base + s != runSector + runLen || at != runAt + (runLen << Layout.SECTOR_SHIFT))) {
                        writeRun(scratch, runDev, runSector, runAt, runLen);
                        runLen = 0;
                    }
                    if (runLen == 0) {
                        runDev = dev;
                        runSector = base + s;
                        runAt = at;
                    }
                    runLen += e - s;
                }
                s = e;
            }
        }
        if (runLen > 0) {
            writeRun(scratch, runDev, runSector, runAt, runLen);
        }
        if (readable) {
            writtenBack += n;
        } else {
            lostLines += n;
        }
        lock.lock();
        try {
            // Clear what was carried (or given up): status then counts no dirty line left.
            for (int i = 0; i < n; i++) {
                lines.clearDirty(slot * LPS + ks[i], keys[i], bits[i]);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Reads segment {@code id} from {@code slot} into {@link #scratch}: true when its newer
     * header copy is this segment's with {@code used} lines and its data checksum holds (a
     * device that failed a sync may return older data). False, its {@code n} dirty lines lost,
     * when the read fails, does not return within cache_io_timeout_ms (the read keeps the
     * buffer, a new one is made), or is not tried since {@link #MAX_TIMED_OUT_READS} reads timed out.
     */
    private boolean readSegment(long id, int slot, int used, int n) throws InterruptedException {
        if (readsTimedOut >= MAX_TIMED_OUT_READS) {
            log.error("cache {}: segment {} (slot {}) is not read from {}: {} reads did not return; its {} dirty line(s) "
                    + "are lost", cacheId, id, slot, cache.name(), readsTimedOut, n);
            return false;
        }
        long timeoutMs = knobs.get(Knob.CACHE_IO_TIMEOUT_MS);
        ByteBuffer dst = scratch.clear().limit(SegmentHeader.usedBytes(used));
        try {
            if (calls.call(() -> {
                cache.read(dst, Layout.slotOffset(slot));
                return null;
            }, timeoutMs) == BoundedCalls.TIMED_OUT) {
                readsTimedOut++;
                scratch = newScratch();
                log.error("cache {}: reading segment {} (slot {}) from {} did not return within {} ms "
                        + "(cache_io_timeout_ms): its {} dirty line(s) are lost", cacheId, id, slot, cache.name(), timeoutMs, n);
                return false;
            }
        } catch (IOException e) {
            log.error("cache {}: reading segment {} (slot {}) from {} failed: its {} dirty line(s) are lost: {}", cacheId, id,
                    slot, cache.name(), n, e.getMessage());
            return false;
        }
        scratch.flip();
        SegmentHeader h = SegmentHeader.newerCopy(scratch, nonce);
        boolean readable = h != null && h.id == id && h.nrLines == used && h.dataValid(scratch);
        if (!readable) {
            log.error("cache {}: segment {} (slot {}) on {} does not hold what was written (header or checksum): its "
                    + "{} dirty line(s) are lost", cacheId, id, slot, cache.name(), n);
        }
        return readable;
    }

    private static ByteBuffer newScratch() {
        return ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE + Layout.HEADER_COPY_SIZE)
                .alignedSlice(Layout.HEADER_COPY_SIZE).limit(Layout.SEGMENT_SIZE).slice();
    }

    /**
     * One try at the abandoned record, waited for at most cache_io_timeout_ms. An attempt that
     * has not returned is waited for again at the next try rather than repeated (the record
     * writer takes one record at a time anyway), and counts once it is done.
     */
    private boolean mark() throws InterruptedException {
        if (markAttempt == null || (markAttempt.isDone() && !markedBy(markAttempt))) {
            markAttempt = calls.start(() -> records.abandon(lostLines, lost));
        }
        try {
            return calls.await(markAttempt, knobs.get(Knob.CACHE_IO_TIMEOUT_MS)) == Boolean.TRUE;
        } catch (IOException e) {
            return false; // abandon() reports a failure as false; this is only the type's due
        }
    }

    private static boolean markedBy(java.util.concurrent.Future<Boolean> attempt) {
        try {
            return Boolean.TRUE.equals(attempt.get());
        } catch (Exception e) {
            return false;
        }
    }

    /**
     * Whether the engine failed meanwhile (aborted, as by a simulated power cut, or a backing
     * store failed): then nothing more is written, and the failover ends quietly, since
     * {@link Health#fail} logged the cause and every request gets it.
     */
    private boolean engineFailed() {
        return health.failure() != null;
    }

    private void writeRun(ByteBuffer scratch, int dev, long sector, int at, int nSectors) throws IOException {
        backings.write(dev, scratch.duplicate().limit(at + (nSectors << Layout.SECTOR_SHIFT)).position(at), sector, false, true);
    }

    /** Adds a lost range, joined to the last one when they meet (lines of a run are usually written together). */
    private void addLost(int dev, long from, long to) {
        if (!lost.isEmpty()) {
            LostRange r = lost.get(lost.size() - 1);
            if (r.device() == dev && r.lastSector() + 1 == from) {
                lost.set(lost.size() - 1, new LostRange(dev, r.firstSector(), to));
                markLost(dev, from, to);
                return;
            }
        }
        lost.add(new LostRange(dev, from, to));
        markLost(dev, from, to);
    }

    private void markLost(int dev, long from, long to) {
        lostSectors.add(dev, from, to);
        lostOn[dev] = true;
        lossUnreported.set(dev, 1);
    }

    /** Lost ranges this failover found (the first ones are also in the record). Read once {@link #state} is DEGRADED. */
    List<LostRange> lostRanges() {
        return lost;
    }

    /** Tries the abandoned record again until it is on the device or the engine stops. */
    private void retryMark() throws InterruptedException {
        while (!marked) {
            lock.lock();
            try {
                long deadline = System.nanoTime() + MARK_RETRY_NANOS;
                while (!health.closing() && health.failure() == null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        break;
                    }
                    lock.awaitTick(left, TimeUnit.NANOSECONDS);
                }
                if (health.closing() || health.failure() != null) {
                    return;
                }
            } finally {
                lock.unlock();
            }
            marked = mark();
            if (marked) {
                log.warn("cache {}: the cache device took the abandoned mark at last: the volumes take writes again, and a "
                        + "start on it is refused", cacheId);
            }
        }
    }

    /** At a stop: one more try at the mark, after the thread has ended. */
    void stop() {
        lock.lock();
        try {
            stopping = true;
        } finally {
            lock.unlock();
        }
        join();
        if (state == State.DEGRADED && !marked && health.failure() == null) {
            try {
                marked = mark();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (!marked) {
                log.error("cache {}: the cache device still refuses the abandoned mark; no write and no flush was taken since "
                        + "the failover, so a start on it only rolls back what no flush acknowledged, as after a crash; "
                        + "format a new cache all the same (docs/ENGINE.md, \"Failure\")", cacheId);
            }
        }
        if (calls != null) {
            calls.close();
        }
    }
}
