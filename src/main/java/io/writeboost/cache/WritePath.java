package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.function.LongSupplier;

/**
 * Writes and discards: copies a request's sectors into the open RAM segment line by line and
 * indexes them, or drops cached lines and punches the backing store. No device I/O happens on
 * the cached write path except the rare read of an older copy's sectors a partial write must
 * keep. A bypassed write (sequential_cutoff, write_around_mode) sends its whole lines to the
 * backing store instead and drops the cached copies they overwrite (docs/ENGINE.md, "Bypass").
 * Each of them tells {@link ReadAdmission} which lines it changes, so that a read miss of them
 * planned before cannot admit what it read from the backing store (docs/ENGINE.md, "Read
 * caching"). A write to a clean (read-cached) line supersedes it like any cached copy.
 *
 * <p>Thread-safe: {@link #write} and {@link #discard} take the {@link EngineLock} themselves;
 * the scratch buffers and the stream table are guarded by it.
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
    private final BackingOrder order;
    private final Stats stats;
    private final KnobValues knobs;
    private final LongSupplier ioTimeoutMillis;
    private final StreamTable streams;
    private final BypassWriter bypassWriter;
    private final ReadAdmission admission;
    private final WritePacer pacer;
    private final StreamStaging staging;
    private final Durability durability;
    /** One-line buffers for older sectors fetched from the cache device (guarded by the lock). */
    private final ArrayDeque<ByteBuffer> lineScratch = new ArrayDeque<>();

    WritePath(EngineLock lock, Health health, LineTable lines, SegmentLog segments, SegmentVerification verification,
              Durability durability, BlockDevice cacheDevice, BackingStores backings, BackingOrder order, Stats stats, KnobValues knobs,
              StreamTable streams, BypassWriter bypassWriter, ReadAdmission admission, WritePacer pacer,
              StreamStaging staging) {
        this.pacer = pacer;
        this.lock = lock;
        this.health = health;
        this.lines = lines;
        this.segments = segments;
        this.verification = verification;
        this.durability = durability;
        this.cacheDevice = cacheDevice;
        this.backings = backings;
        this.order = order;
        this.stats = stats;
        this.knobs = knobs;
        this.ioTimeoutMillis = () -> knobs.get(Knob.IO_TIMEOUT_MS);
        this.streams = streams;
        this.bypassWriter = bypassWriter;
        this.admission = admission;
        this.staging = staging;
    }

    /** See {@link CacheEngine#write}; the request is already checked. */
    void write(int deviceId, long sector, int nSectors, ByteBuffer src) throws IOException {
        long end = sector + nSectors;
        int srcPos = src.position();
        // Whole lines [bypassFrom, bypassTo) go to the backing store; empty unless bypassed.
        long bypassFrom = 0, bypassTo = 0;
        boolean settleAfterBatch = false;
        long pause;
        boolean stream, staged = false;
        // Write-through: whether the bypassed whole lines are kept as clean lines afterwards, and
        // the admission ticket that tells whether anything else changed them meanwhile.
        boolean keepClean = false;
        long ticket = 0;
        lock.lock();
        try {
            health.checkUsable();
            CacheMode mode = knobs.mode();
            boolean aroundMode = mode == CacheMode.WRITE_AROUND;
            boolean allAround = mode == CacheMode.WRITE_THROUGH || mode == CacheMode.PASS_THROUGH;
            stream = streamBypasses(deviceId, sector, nSectors);
            if (allAround) {
                // Every sector goes to the backing store, partial lines included (their cached
                // copies are dropped), except a partial line whose cached copy holds dirty
                // sectors (left from write-back): dropping it would lose them, so the write
                // joins them in the cache, and writeback carries both to the backing store.
                bypassFrom = (sector & 7) != 0 && holdsDirty(deviceId, sector >>> 3) ? (sector + 7) & ~7L : sector;
                bypassTo = (end & 7) != 0 && holdsDirty(deviceId, (end - 1) >>> 3) ? end & ~7L : end;
                settleAfterBatch = (bypassFrom < bypassTo && anyCached(deviceId, bypassFrom, (int) (bypassTo - bypassFrom)))
                        || order.dropsUnsettled();
                // A stream past sequential_cutoff is not kept: a copy or a backup would push out what is read again.
                keepClean = mode == CacheMode.WRITE_THROUGH && !stream;
            } else if (stream || aroundMode) {
                bypassFrom = (sector + 7) & ~7L;
                bypassTo = end & ~7L;
                boolean cached = bypassFrom < bypassTo && anyCached(deviceId, bypassFrom, (int) (bypassTo - bypassFrom));
                settleAfterBatch = cached || order.dropsUnsettled();
                if (cached && !aroundMode) {
                    // A stream over lines the cache holds goes through it: around it, the
                    // write would cost a backing write, a backing sync before the cached
                    // copies may be dropped, and a tombstone per line (ring room, as the new
                    // lines take); through it, only the ring room (docs/ENGINE.md, "Bypass", has
                    // the measured difference).
                    bypassFrom = bypassTo = 0;
                }
            }
            if (bypassFrom >= bypassTo) {
                writeLines(deviceId, sector, end, src, srcPos, sector);
            } else {
                writeLines(deviceId, sector, bypassFrom, src, srcPos, sector);
                writeLines(deviceId, bypassTo, end, src, srcPos, sector);
            }
            if (bypassFrom < bypassTo && stream && !settleAfterBatch && !allAround) {
                // Not in write-through or pass-through: there a write is on the backing store when it returns.
                staged = stage(deviceId, bypassFrom, (int) (bypassTo - bypassFrom), src,
                        srcPos + (int) ((bypassFrom - sector) << Layout.SECTOR_SHIFT));
                // Declined: a line was cached or dropped since the decision (or the write is
                // larger than the windows); settle the cautious way, as over cached lines.
                settleAfterBatch = !staged;
            }
            long bypassLines = bypassFrom < bypassTo ? ((bypassTo + 7) >>> 3) - (bypassFrom >>> 3) : 0;
            if (bypassFrom < bypassTo && !staged) {
                order.beginChange(deviceId, bypassFrom >>> 3, bypassLines);
                ticket = admission.ticket();
            }
            long cachedLines = Layout.linesSpanned(sector, nSectors) - bypassLines;
            pause = pacer.charge((int) cachedLines, segments.freeSlots(), segments.nrSegments());
        } finally {
            lock.unlock();
        }
        if (pause > 0) {
            WritePacer.pause(pause);
        }
        if (bypassFrom < bypassTo && !staged) {
            int bypassPos = srcPos + (int) ((bypassFrom - sector) << Layout.SECTOR_SHIFT);
            boolean written = false;
            try {
                bypass(deviceId, bypassFrom, (int) (bypassTo - bypassFrom), src, bypassPos, settleAfterBatch);
                written = true;
            } finally {
                if (written && keepClean) {
                    endChangeKeepingClean(deviceId, bypassFrom, bypassTo, src, bypassPos, ticket);
                } else {
                    endChange(deviceId, bypassFrom, bypassTo - bypassFrom);
                }
            }
        }
    }

    /**
     * Called without the lock once a write-through write's sectors [from, to) of {@code dev}
     * (from {@code src} at {@code srcPos}) are on the backing store and its protocol is done:
     * ends its change, keeping its whole lines as clean lines, as a read miss keeps what it
     * read (docs/ENGINE.md, "Cache modes"). A line is kept only if nothing else changed it
     * since the write was decided ({@link ReadAdmission#allowed} against the ticket taken
     * then, asked before this write's own change is marked: the bypass's drops did not mark
     * it, since its change was under way), it is not cached (a write got there first), and
     * the log has room without waiting. Otherwise the backing store serves it, as before.
     */
    private void endChangeKeepingClean(int dev, long from, long to, ByteBuffer src, int srcPos, long ticket) {
        long first = from >>> 3;
        long n = ((to + 7) >>> 3) - first;
        lock.lock();
        try {
            order.releaseChange(dev, first, n);
            if (!health.failed()) {
                for (long lineNo = (from + 7) >>> 3, last = to >>> 3; lineNo < last; lineNo++) {
                    long key = LineKey.of(dev, lineNo);
                    if (!admission.allowed(key, ticket) || lines.lookup(key) >= 0) {
                        continue;
                    }
                    if (!segments.roomForClean()) {
                        break;
                    }
                    segments.appendClean(key, src, srcPos + (int) (((lineNo << 3) - from) << Layout.SECTOR_SHIFT),
                            !backings.unsynced(dev));
                }
            }
            order.markChanged(dev, first, n);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Lock held, not released: logs staged line {@code lineNo} of {@code dev} (its 4 KiB at
     * {@code pos} of {@code data}) in the cache as a written line, for a flush that would
     * otherwise wait for the stager's backing write ({@link StreamStaging#writeOutAll}). The
     * caller keeps the line staged until this returns, so no reader or writer sees it neither
     * staged nor cached. False, changing nothing, outside write-back (the other modes keep no
     * dirty line: the staged line goes to the backing store), when the log has no room without
     * waiting ({@link SegmentLog#roomForStagedLine}), or when the line is cached (never, while
     * staging's rules hold).
     */
    boolean cacheStagedLine(int dev, long lineNo, ByteBuffer data, int pos) throws IOException {
        lock.assertHeld();
        if (knobs.mode() != CacheMode.WRITE_BACK || lines.lookup(LineKey.of(dev, lineNo)) >= 0 || !segments.roomForStagedLine()) {
            return false;
        }
        writeLine(dev, lineNo, 0, Layout.SECTORS_PER_LINE, data, pos, true);
        return true;
    }

    /** Lock held: whether line {@code lineNo} of {@code dev} is cached with dirty sectors. */
    private boolean holdsDirty(int dev, long lineNo) {
        lock.assertHeld();
        int line = lines.lookup(LineKey.of(dev, lineNo));
        return line >= 0 && lines.dirtyBits(line) != 0;
    }

    /**
     * Lock held (released while it waits for a staging window): a stream's whole lines, none of
     * them cached and no dropped line unsettled, go to {@link StreamStaging} instead of straight
     * to the backing store; the write returns once they are copied there. Both conditions are
     * checked again right before the lines are staged (the lock may have been released since
     * the write was decided): a line cached meanwhile, or a drop, sends the write the
     * unstaged way, as does a write larger than all the windows. False if it was not staged.
     */
    private boolean stage(int dev, long sector, int n, ByteBuffer src, int srcPos) throws IOException {
        lock.assertHeld();
        return staging.stage(dev, sector, n, src, srcPos, order.batchesDone(),
                () -> !order.dropsUnsettled() && !anyCached(dev, sector, n));
    }

    /** Called without the lock: sectors [sector, sector + n) are changed on the backing store (see {@link ReadAdmission}). */
    private void endChange(int dev, long sector, long n) {
        long first = sector >>> 3;
        long last = (sector + n + 7) >>> 3;
        lock.lock();
        try {
            order.endChange(dev, first, last - first);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Under ring pressure ({@link SegmentLog#nearlyFull}) a stream bypasses once it is this
     * long (unless sequential_cutoff is lower, or 0). With no ring slot free, a cached write
     * waits for writeback to empty the oldest slot at the backing store's random-write pace
     * (on a 200-IOPS disk about 1.3 s per slot of random lines), while the same lines written
     * around the cache take one backing request, which is also all their writeback would
     * cost: writeback writes 32 KiB or more of adjacent dirty lines as one request. So a
     * nearly full cache gives way to what it cannot speed up (bcache likewise writes around a
     * nearly full cache). 64 KiB, below FUSE's 128 KiB requests: a copy's pieces at the end of
     * a file system extent come shorter (ext4 sent 120 KiB ones).
     */
    static final long PRESSURE_CUTOFF_BYTES = 64 << 10;

    /** Lock held: whether this write continues a stream long enough to go around the cache (the ring decides how long). */
    private boolean streamBypasses(int dev, long sector, int nSectors) {
        lock.assertHeld();
        long cutoff = knobs.get(Knob.SEQUENTIAL_CUTOFF);
        if (cutoff > 0 && segments.nearlyFull()) {
            cutoff = Math.min(cutoff, PRESSURE_CUTOFF_BYTES);
        }
        return cutoff > 0 && streams.observe(dev, sector, nSectors) << Layout.SECTOR_SHIFT >= cutoff;
    }

    /** Lock held: sectors [from, to) of a request that starts at {@code sector}, through the cache. */
    private void writeLines(int dev, long from, long to, ByteBuffer src, int srcPos, long sector) throws IOException {
        lock.assertHeld();
        for (long s = from; s < to; ) {
            int first = Layout.sectorInLine(s);
            int count = Layout.sectorsInLine(s, to);
            writeLine(dev, s >>> 3, first, count, src, srcPos + (int) ((s - sector) << Layout.SECTOR_SHIFT), false);
            s += count;
        }
    }

    /**
     * Called without the lock: the whole lines [sector, sector + n) go to the backing store,
     * and the cache forgets what it held of them. In this order, so that neither a crash nor a
     * writeback batch can bring back a cached copy over the new data, and a crash never leaves
     * a line older than what the last completed flush covered (docs/ENGINE.md, "Bypass"):
     *
     * <ol>
     *   <li>write the backing store (gathered with concurrent bypasses; durable at once where
     *       the store allows O_DIRECT with O_DSYNC, else synced by the next flush);
     *   <li>if any line of the range is cached: make the write durable (sync the backing
     *       store, unless step 1 did), then drop those lines
     *       (tombstones in the log, durable with the next flush). A tombstone may reach the
     *       cache device before any flush asks for it, so the data it lets through must be
     *       durable first;
     *   <li>if a writeback batch ran since step 1, or was in flight then (it may have copied a line before step 2
     *       dropped it and written that older copy over step 1's), write the range again,
     *       between batches; if lines were dropped, or a group commit is clearing lines whose
     *       record is not yet durable, wait for that batch or commit to finish.
     * </ol>
     *
     * <p>{@code settleAfterBatch}: whether, when the write was decided (same lock hold), a
     * line of the range was cached or another bypass or discard that dropped lines had not yet
     * settled. If neither, a batch that merely ran meanwhile is no reason to wait for the next
     * batch boundary ({@link BackingOrder#dropsDone} says why).
     */
    private void bypass(int dev, long sector, int n, ByteBuffer src, int srcPos, boolean settleAfterBatch) throws IOException {
        lock.lock();
        try {
            staging.awaitClear(dev, sector, n); // staged lines written out after this write would undo it
            dropWarmFirst(dev, sector, n);
        } finally {
            lock.unlock();
        }
        long batchesBefore = order.batchesDone();
        boolean durable = bypassWriter.write(dev, sector, n, src, srcPos);
        dropThenSettle(dev, sector, n, src, srcPos, batchesBefore, settleAfterBatch, durable); // steps 2 and 3
    }

    /**
     * Called without the lock by {@link StreamStaging} once it has written staged lines
     * [sector, sector + n) of {@code dev} from {@code src} at {@code srcPos} to the backing
     * store ({@code durable}: made durable by that write): steps 2 and 3 of {@link #bypass},
     * with {@link BackingOrder#batchesDone()} as it was when the first of them was staged. When
     * they were staged, none was cached and no drop was unsettled, which is what a bypass with
     * {@code settleAfterBatch} false was decided on.
     */
    void settleBypass(int dev, long sector, int n, ByteBuffer src, int srcPos, long batchesBefore, boolean durable)
            throws IOException {
        dropThenSettle(dev, sector, n, src, srcPos, batchesBefore, false, durable);
    }

    /**
     * Called without the lock once a bypass (new data in {@code src} at {@code srcPos}) or a
     * discard ({@code src} null) has changed sectors [sector, sector + n) of {@code dev} on the
     * backing store ({@code durable}: made durable by that I/O): the cached lines of the range
     * leave the index in {@link BackingOrder}'s order (sync first when needed, drop, then wait
     * a turn between batches and change the range again when a batch may have written an older
     * copy over it). A partial line whose cached copy holds dirty sectors outside the range is
     * not dropped (that would lose them): the range's sectors (the new data, or zeros) are
     * written into it, to be written back together; a discard counts that as a drop, since the
     * copy it supersedes may be in a batch.
     */
    private void dropThenSettle(int dev, long sector, long n, ByteBuffer src, int srcPos, long batchesBefore,
                                boolean mayBeInBatch, boolean durable) throws IOException {
        boolean dropped = false;
        boolean turn;
        lock.lock();
        try {
            health.checkUsable();
            if (!durable && anyCached(dev, sector, n)) {
                order.syncBeforeDrops(dev);
            }
            for (long s = sector, end = sector + n; s < end; ) {
                int first = Layout.sectorInLine(s);
                int count = Layout.sectorsInLine(s, end);
                long key = LineKey.of(dev, s >>> 3);
                int line = lines.lookup(key);
                // A line with no dirty sector outside the range (a clean line, say) holds nothing
                // the backing store lacks once changed: dropped, not overwritten, so that a
                // discard makes no dirty line (write-through keeps none). One that has (a partial
                // line of write-through or pass-through, made dirty in other sectors by a
                // write-back write since the decision) keeps them: the range's sectors join them
                // in the cache, to be written back together.
                if (line >= 0 && (lines.dirtyBits(line) & ~(((1 << count) - 1) << first)) != 0) {
                    if (src != null) {
                        writeLine(dev, s >>> 3, first, count, src, srcPos + (int) ((s - sector) << Layout.SECTOR_SHIFT), false);
                    } else {
                        ByteBuffer zeros = ZERO_LINE.duplicate();
                        zeros.limit(count << Layout.SECTOR_SHIFT);
                        writeLine(dev, s >>> 3, first, count, zeros, 0, false);
                        dropped = true;
                    }
                } else if (line >= 0) {
                    dropLine(key);
                    dropped = true;
                }
                s += count;
            }
            turn = order.dropsDone(dropped, mayBeInBatch, batchesBefore);
        } finally {
            lock.unlock();
        }
        order.settle(turn, dropped, batchesBefore, dev, sector, n, src, srcPos);
    }

    /**
     * Lock held, inside the caller's change ({@link ReadAdmission#beginChange}), before its first
     * backing-store I/O: drops the warm clean lines holding a sector of [sector, sector + n)
     * and, when a drop's line may be on the cache device already, waits until the tombstones
     * are durable. A start keeps warm clean lines; were the backing change durable first, a
     * crash before the tombstone could bring the old copy back over it, data changing under a
     * reader with no write. Dropping a clean copy first loses nothing (the backing store holds
     * its data), unlike a dirty one, which keeps the order "write, sync, then drop" (see
     * {@link #bypass}).
     */
    private void dropWarmFirst(int dev, long sector, long n) throws IOException {
        lock.assertHeld();
        boolean onDevice = false;
        for (long lineNo = sector >>> 3, last = (sector + n + 7) >>> 3; lineNo < last; lineNo++) {
            long key = LineKey.of(dev, lineNo);
            int line = lines.lookup(key);
            if (line >= 0 && lines.isClean(line) && lines.isWarm(line)) {
                onDevice |= !segments.mutable(line);
                dropLine(key);
            }
        }
        if (onDevice) {
            durability.awaitLogged();
        }
    }

    /** Lock held: whether any line holding a sector of [sector, sector + n) is cached. */
    private boolean anyCached(int dev, long sector, long n) {
        lock.assertHeld();
        for (long line = sector >>> 3, last = (sector + n + 7) >>> 3; line < last; line++) {
            if (lines.lookup(LineKey.of(dev, line)) >= 0) {
                return true;
            }
        }
        return false;
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
    private void writeLine(int dev, long lineNo, int first, int count, ByteBuffer src, int srcPos, boolean fromStaging)
            throws IOException {
        lock.assertHeld();
        long key = LineKey.of(dev, lineNo);
        int mask = ((1 << count) - 1) << first;
        boolean fullsize = mask == Layout.FULL_DIRTY;
        // Writeback may carry this write to the backing store and let the line leave the index
        // before a read miss planned earlier admits what it read.
        admission.invalidate(key);
        ByteBuffer fetched = null;
        int fetchedLine = -1;
        long fetchedSegment = 0;
        try {
            while (true) {
                // A line is never staged and cached at once: a staged copy goes to the backing
                // store before this write may put the line in the cache.
                if (!fromStaging) {
                    staging.awaitClear(dev, lineNo << 3, Layout.SECTORS_PER_LINE);
                }
                int line = lines.lookup(key);
                if (line >= 0 && segments.mutable(line)) {
                    stats.count(true, true, true, fullsize);
                    copy(src, srcPos, segments.openData(), SegmentBuffer.lineOffset(line % LPS) + (first << Layout.SECTOR_SHIFT),
                            count << Layout.SECTOR_SHIFT);
                    lines.addDirty(line, mask);
                    lines.markHot(line);
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
                    segments.makeRoom(health, ioTimeoutMillis);
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
                if (line >= 0) {
                    lines.markHot(fresh); // a rewrite: the key is worth a second lap (CopyForward)
                }
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
     * zeros written over the range (unless none of their dirty sectors lies outside it: then they
     * are dropped too); if any cached line was dropped, or a writeback batch ran
     * in between (it may have copied a line of the range to the backing store and let it go),
     * the range is punched again. Punching first means a concurrent reader sees the data as it
     * was or zeros, never the older backing copy of a line that is still cached.
     *
     * <p>The same second punch, which waits for the batch lock, also waits out a group commit
     * that is clearing lines while its record is not durable yet: such a commit may have let a
     * line of the range go between the first punch and the lookup, with no batch in between (a
     * commit on its own, when writeback pauses), and until its record is on the device a crash
     * replays that line over the discard. Once the commit is done the record covers it.
     */
    void discard(int deviceId, long sector, long nSectors) throws IOException {
        long firstLine = sector >>> 3;
        long lineCount = ((sector + nSectors + 7) >>> 3) - firstLine;
        lock.lock();
        try {
            staging.awaitClear(deviceId, sector, nSectors); // staged lines written out after the punch would undo it
            order.beginChange(deviceId, firstLine, lineCount);
            dropWarmFirst(deviceId, sector, nSectors);
        } finally {
            lock.unlock();
        }
        try {
            discardLines(deviceId, sector, nSectors);
        } finally {
            endChange(deviceId, sector, nSectors);
        }
    }

    private void discardLines(int deviceId, long sector, long nSectors) throws IOException {
        long batchesBefore = order.punchBetweenBatches(deviceId, sector, nSectors);
        dropThenSettle(deviceId, sector, nSectors, null, 0, batchesBefore, true, false);
    }

    /**
     * Lock held: the key's cached line leaves the index, and a tombstone keeps replay from
     * bringing it back. Only inside a change the caller announced to {@link ReadAdmission}
     * (a bypass's or a discard's), whose end marks the line changed for reads planned before:
     * so the drop itself marks nothing, and a write-through write can still tell its own drops
     * from another change ({@link #endChangeKeepingClean}).
     */
    private void dropLine(long key) throws IOException {
        lock.assertHeld();
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
                segments.makeRoom(health, ioTimeoutMillis);
                continue;
            }
            int tomb = segments.appendLine(key | LineKey.TOMBSTONE);
            lines.supersede(line, segments.openId(), tomb / LPS);
            lines.unindex(key, line);
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
