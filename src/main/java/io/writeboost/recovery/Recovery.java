package io.writeboost.recovery;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeTable;
import io.writeboost.format.SuperblockRecord;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds what must be replayed after a start. The log is replayed as a prefix: from the
 * segment after last_migrated_segment_id, in id order, stopping at the first id that is
 * missing or fails its checksum. A torn write can only sit at the end of what was written
 * since the last sync, so anything valid beyond the stop was never acknowledged by a flush;
 * replaying it past a hole could resurrect stale data, so it is erased instead (its header
 * zeroed and synced) and reported, which also keeps the next recovery's prefix unbroken.
 *
 * <p>A segment's writes (its first, every append, its last) each write one of its two header
 * copies. When the newer copy's data fails its checksum but the older copy's holds, the last
 * append was torn: the segment is replayed as the older copy describes it (what an earlier
 * flush made durable), replay stops after it, and the torn copy is erased.
 *
 * <p>None of that applies to a segment the superblock record vouches for (at or below its
 * last_flushed_segment_id and above its last_migrated_segment_id): a flush acknowledged its
 * data, so if it is missing, misplaced, has a damaged header copy or fails its checksum, the
 * data is lost, and the start is refused with a {@link LostDataException} that says what is lost,
 * before anything is written, unless the caller accepts the loss.
 */
public final class Recovery {
    private static final Logger log = LogManager.getLogger(Recovery.class);

    /** Threads reading headers at start: enough to keep a virtual disk's queue busy. */
    private static final int HEADER_READERS = 8;

    private Recovery() {}

    public static Superblock readSuperblock(BlockDevice cache) throws IOException {
        Superblock header = readHeader(cache);
        return header.withVolumes(readVolumeTable(cache, header).volumes());
    }

    /**
     * The superblock header as format wrote it (or as the last accepted move of a backing store
     * rewrote it: its spare copy when the header itself was torn), its volume table included
     * (see {@link #readSuperblock}).
     */
    public static Superblock readHeader(BlockDevice cache) throws IOException {
        ByteBuffer region = superblockRegion(cache);
        try {
            return fitting(cache, Superblock.decode(region));
        } catch (io.writeboost.format.UnsupportedVersionException e) {
            throw e;
        } catch (FormatException e) {
            Superblock spare = HeaderRewrite.spareOrNull(cache, region);
            if (spare == null) {
                throw e;
            }
            return fitting(cache, spare);
        }
    }

    /**
     * The cache's volume table: the valid {@link VolumeTable} copy with the higher generation,
     * or the header's table (generation 0) when neither copy is valid, as on a cache that never
     * had a volume attached or detached.
     */
    public static VolumeTable readVolumeTable(BlockDevice cache, Superblock header) throws IOException {
        VolumeTable best = VolumeTable.of(header);
        for (long off : new long[] {VolumeTable.OFFSET_A, VolumeTable.OFFSET_B}) {
            ByteBuffer copy = ByteBuffer.allocate(Superblock.REGION);
            cache.read(copy, off);
            VolumeTable t = VolumeTable.decode(copy, header.nonce());
            if (t != null && t.generation() > best.generation()) {
                best = t;
            }
        }
        return best;
    }

    /**
     * Writes table generation {@code next} to its copy and syncs the cache device: once this
     * returns it is the table {@link #readVolumeTable} finds. A failure leaves it unknown
     * whether the copy is durable; only the next read can tell.
     */
    public static void writeVolumeTable(BlockDevice cache, VolumeTable next) throws IOException {
        cache.write(next.encode(), next.offset());
        cache.sync();
    }

    /** The superblock region of {@code cache}, to decode; a FormatException when the device cannot hold one. */
    static ByteBuffer superblockRegion(BlockDevice cache) throws IOException {
        if (cache.size() < Layout.SUPERBLOCK_REGION_SIZE) {
            throw new FormatException(cache.name() + ": too small to hold a writeboost cache (" + cache.size() + " bytes)");
        }
        ByteBuffer region = ByteBuffer.allocate(Superblock.REGION);
        cache.read(region, 0);
        return region;
    }

    /** {@code sb}, once the device is known to hold the ring it describes. */
    static Superblock fitting(BlockDevice cache, Superblock sb) throws FormatException {
        if (cache.size() < Layout.slotOffset(sb.nrSegments())) {
            throw new FormatException(cache.name() + ": superblock says " + sb.nrSegments()
                    + " segments but the device holds only " + Layout.segmentsFor(cache.size()));
        }
        return sb;
    }

    public static SuperblockRecord readRecord(BlockDevice cache, Superblock sb) throws IOException {
        SuperblockRecord best = readRecordOrNull(cache, sb);
        if (best == null) {
            throw new FormatException(cache.name() + ": both superblock record copies are corrupt");
        }
        return best;
    }

    /** The newest valid record copy, or null when neither copy is valid. */
    public static SuperblockRecord readRecordOrNull(BlockDevice cache, Superblock sb) throws IOException {
        SuperblockRecord best = null;
        for (long off : new long[] {SuperblockRecord.OFFSET_A, SuperblockRecord.OFFSET_B}) {
            SuperblockRecord r = readRecordCopy(cache, off, sb);
            if (r != null && (best == null || r.sequence() > best.sequence())) {
                best = r;
            }
        }
        return best;
    }

    /** One copy of the record ({@link SuperblockRecord#OFFSET_A} or {@code _B}), or null when it is not valid. */
    public static SuperblockRecord readRecordCopy(BlockDevice cache, long offset, Superblock sb) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(SuperblockRecord.SIZE);
        cache.read(b, offset);
        return SuperblockRecord.decode(b, sb.nonce());
    }

    /**
     * Recovery at start, for an engine that verifies checksums behind it: segments the record
     * vouches for come back from their headers alone ({@link ReplaySegment#verified()} false),
     * the rest are verified here. Finds the replay set and erases what lies past its end.
     *
     * @throws LostDataException when acknowledged data is lost and {@code acceptLoss} is false; nothing was written
     */
    public static RecoveryResult run(BlockDevice cache, Superblock sb, boolean acceptLoss) throws IOException {
        refuseAbandoned(cache, sb);
        return scan(cache, sb, true, true, acceptLoss);
    }

    /**
     * A cache the engine failed over from is never replayed, nor written back: its volumes were
     * served from their backing stores since, and its dirty lines are older than what those
     * hold now (docs/ENGINE.md, "Failure"). Refused before anything is written.
     */
    public static void refuseAbandoned(BlockDevice cache, Superblock sb) throws IOException {
        SuperblockRecord r = readRecordOrNull(cache, sb);
        if (r != null && r.abandoned()) {
            throw new FormatException(cache.name() + " (cache " + sb.cacheId() + ") was abandoned: the engine failed over "
                    + "from it after device errors, wrote back every dirty line it could read (the others were reported "
                    + "lost" + (r.lostLines() > 0 ? ": " + r.lostLines() + " line(s) since the format, see fuse-mount check" : "")
                    + ") and served the volumes from their backing stores since. Its log is older than the backing "
                    + "stores and must not be replayed. Format a new cache, on a new device if this one is failing: the same "
                    + "fuse-mount command with --format added (the backing stores hold the volumes; no --force needed)");
        }
    }

    /** {@link #run(BlockDevice, Superblock, boolean)} refusing any loss. */
    public static RecoveryResult run(BlockDevice cache, Superblock sb) throws IOException {
        return run(cache, sb, false);
    }

    /**
     * The same analysis, every segment verified, without writing anything: for checks before a
     * reformat, and offline tools. A loss is reported in {@link RecoveryResult#loss()}, not thrown.
     */
    public static RecoveryResult inspect(BlockDevice cache, Superblock sb) throws IOException {
        return scan(cache, sb, false, false, true);
    }

    private static RecoveryResult scan(BlockDevice cache, Superblock sb, boolean repair, boolean deferVerification,
                                       boolean acceptLoss) throws IOException {
        long t0 = System.nanoTime();
        int n = sb.nrSegments();
        SuperblockRecord record = readRecordOrNull(cache, sb);

        // Pass 1: every slot's header copies, to know which ids exist and where.
        SegmentHeader[] headers = new SegmentHeader[n];
        SegmentHeader[] olderCopies = new SegmentHeader[n];
        byte[] strangeCopies = new byte[n];
        byte[] unsealedCopies = new byte[n];
        readHeaders(cache, n, sb.nonce(), headers, olderCopies, strangeCopies, unsealedCopies);
        Map<Long, SegmentHeader> misplaced = new HashMap<>();
        long lowest = Long.MAX_VALUE;
        for (int slot = 0; slot < n; slot++) {
            SegmentHeader h = headers[slot];
            if (h != null && Layout.slotOf(h.id, n) != slot) {
                misplaced.put(h.id, h);
                headers[slot] = null;
            } else if (h != null) {
                lowest = Math.min(lowest, h.id);
            }
        }

        boolean recordLost = record == null;
        long lastMigrated, vouchedTo;
        if (!recordLost) {
            lastMigrated = record.lastMigratedId();
            vouchedTo = record.lastFlushedId();
        } else if (lowest == Long.MAX_VALUE) {
            // No segment of this format exists: nothing was ever written that a record could
            // have vouched for, so nothing can be lost. Start as a freshly formatted cache.
            log.warn("{}: both superblock record copies are damaged, but no segment of this format exists: nothing is lost; "
                    + "starting as freshly formatted", cache.name());
            record = new SuperblockRecord(0, sb.nonce(), 0, 0, false);
            recordLost = false;
            lastMigrated = 0;
            vouchedTo = 0;
        } else {
            // Without a record nothing says which segments were written back or acknowledged.
            // What can be proven: a replay from the lowest id present brings back the newest
            // copy of every line the ring still holds (a written-back segment replayed again
            // only writes the same data back again); everything past a gap is reported lost.
            lastMigrated = lowest - 1;
            vouchedTo = 0;
        }
        boolean verifyVouched = !deferVerification || (record != null && record.verifyAtStart());

        // A slot holding a higher id than the one expected there was reused, which happens only
        // after its segment was written back and a record saying so was durable: a record copy
        // older than that (the newer one damaged) would otherwise send replay into a hole.
        long id = lastMigrated + 1;
        while (headers[Layout.slotOf(id, n)] != null && headers[Layout.slotOf(id, n)].id > id) {
            id++;
        }
        if (id - 1 > lastMigrated) {
            log.info("segments {}..{} were written back since the record in use was written (their slots are reused)",
                    lastMigrated + 1, id - 1);
            lastMigrated = id - 1;
        }
        SegmentHeader[] writtenBack = repair ? headers.clone() : null;
        Map<Long, Integer> slotById = new HashMap<>();
        for (int slot = 0; slot < n; slot++) {
            SegmentHeader h = headers[slot];
            if (h == null || h.id <= lastMigrated) {
                headers[slot] = null;
            } else {
                slotById.put(h.id, slot);
            }
        }
        for (SegmentHeader h : misplaced.values()) {
            if (h.id > lastMigrated) {
                log.warn("a segment header claims id {}, which belongs in slot {}, but sits in another slot; ignored", h.id,
                        Layout.slotOf(h.id, n));
            }
        }

        // Pass 2: the prefix. A segment at or below the record's last_flushed_segment_id was
        // durable before that record was written, so a crash cannot have torn it: with
        // deferVerification its header is taken as read and its checksum left to the engine,
        // which verifies it before serving its data and before acknowledging any flush. If such
        // a segment is missing, misplaced, has a damaged header copy or fails its checksum, the
        // data a flush acknowledged is lost: that is reported, never passed over. Past that id
        // a crash may have torn a segment, so each is verified here, and replay stops at the
        // first that fails, quietly: no flush the record knows of acknowledged it.
        List<ReplaySegment> replay = new ArrayList<>();
        ByteBuffer seg = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE);
        boolean torn = false;
        SegmentHeader tornCopy = null;
        int tornCopySlot = -1;
        long lostAt = -1;
        String lostCause = null;
        List<long[]> strayCopies = new ArrayList<>();
        while (true) {
            int slot = Layout.slotOf(id, n);
            SegmentHeader h = headers[slot];
            boolean present = h != null && h.id == id;
            if (id <= vouchedTo) {
                if (!present) {
                    lostAt = id;
                    lostCause = "segment " + id + ", which the superblock record vouches for as durable, is missing from "
                            + "its slot " + slot + (misplaced.containsKey(id) ? " (its header sits in another slot)"
                            : h != null ? " (the slot holds segment " + h.id + ")" : " (no valid header of this cache there)");
                    break;
                }
                if (strangeCopies[slot] != 0) {
                    lostAt = id;
                    lostCause = "segment " + id + " (slot " + slot + "), which the superblock record vouches for as durable, "
                            + "has a damaged header copy";
                    break;
                }
                for (int c = 0; c < 2; c++) {
                    if ((unsealedCopies[slot] >> c & 1) != 0) {
                        log.warn("segment {} (slot {}): header copy {} was written before it was sealed (an engine before "
                                + "2026-12-02 could, when a seal raced the segment's first append); it lists no line its "
                                + "valid copy does not, so nothing is lost{}", id, slot, c, repair ? "; it is erased" : "");
                        strayCopies.add(new long[] {slot, c});
                    }
                }
                if (verifyVouched) {
                    seg.clear().limit(SegmentHeader.usedBytes(h.nrLines));
                    cache.read(seg, Layout.slotOffset(slot));
                    if (!h.dataValid(seg)) {
                        lostAt = id;
                        lostCause = "segment " + id + " (slot " + slot + "), which the superblock record vouches for as "
                                + "durable, fails its checksum";
                        break;
                    }
                }
                replay.add(new ReplaySegment(h.id, slot, h.seq, h.nrLines, h.keys, h.dirty, h.clean, h.warm, verifyVouched));
                id++;
                continue;
            }
            if (!present) {
                break;
            }
            seg.clear().limit(SegmentHeader.usedBytes(h.nrLines));
            cache.read(seg, Layout.slotOffset(slot));
            if (!h.dataValid(seg)) {
                torn = true;
                SegmentHeader older = olderCopies[slot];
                if (older != null && older.dataValid(seg)) {
                    log.info("segment {} (slot {}): its last write (header copy {}, {} lines) fails its checksum, an append "
                            + "no flush the record knows of acknowledged; replay takes the segment as its previous copy "
                            + "describes it ({} lines) and stops after it", id, slot, h.seq, h.nrLines, older.nrLines);
                    replay.add(new ReplaySegment(older.id, slot, older.seq, older.nrLines, older.keys, older.dirty, older.clean, older.warm, true));
                    tornCopy = h;
                    tornCopySlot = slot;
                    id++;
                } else {
                    log.info("segment {} (slot {}) fails its checksum: a write no flush the record knows of acknowledged, "
                            + "torn by a crash; replay stops before it", id, slot);
                }
                break;
            }
            // Once a later record vouches for this segment, a start takes any copy in its slot
            // that is not one of its own for damage: a leftover of the slot's previous segment,
            // which a torn first write can leave, is erased now.
            for (int c = 0; c < 2; c++) {
                if (((strangeCopies[slot] | unsealedCopies[slot]) >> c & 1) != 0) {
                    strayCopies.add(new long[] {slot, c});
                }
            }
            replay.add(new ReplaySegment(h.id, slot, h.seq, h.nrLines, h.keys, h.dirty, h.clean, h.warm, true));
            id++;
        }
        long nextId = lostAt >= 0 ? lostAt : id;

        DataLoss loss = null;
        if (lostAt >= 0 || recordLost) {
            loss = describeLoss(cache, sb, lostAt, recordLost ? "both copies of the superblock record are damaged, so "
                    + "which segments were written back or acknowledged cannot be proven; the segments the ring holds "
                    + "replay from the lowest id present (" + (lastMigrated + 1) + "), every one verified, and what "
                    + "lies past a gap is lost" : lostCause, nextId, headers, slotById, misplaced);
            if (!acceptLoss) {
                throw new LostDataException(loss);
            }
        }

        // Anything at or past the stop point was never covered by a completed flush, or is cut
        // off by a lost segment: erase it.
        List<Long> discarded = new ArrayList<>();
        ByteBuffer zeros = ByteBuffer.allocateDirect(Layout.SEGMENT_HEADER_SIZE);
        boolean wrote = false;
        java.util.Set<Integer> erasedSlots = new java.util.HashSet<>();
        for (Map.Entry<Long, Integer> e : slotById.entrySet()) {
            if (e.getKey() >= nextId) {
                if (e.getKey() > nextId || !torn || tornCopy != null || lostAt >= 0) {
                    discarded.add(e.getKey());
                }
                if (repair) {
                    zeros.clear();
                    cache.write(zeros, Layout.slotOffset(e.getValue()));
                    erasedSlots.add(e.getValue());
                    wrote = true;
                }
            }
        }
        if (repair && lostAt >= 0 && erasedSlots.add(Layout.slotOf(lostAt, n))) {
            // The lost segment's slot holds damage, not a segment: nothing there may come back.
            zeros.clear();
            cache.write(zeros, Layout.slotOffset(Layout.slotOf(lostAt, n)));
            wrote = true;
        }
        if (repair && tornCopy != null) {
            // The next start must find the segment as replayed now, not a torn newer copy that
            // would stop its replay here again, before segments this run is about to write.
            zeros.clear().limit(Layout.HEADER_COPY_SIZE);
            cache.write(zeros, Layout.slotOffset(tornCopySlot) + SegmentHeader.copyOffset(tornCopy.seq));
            wrote = true;
        }
        if (repair) {
            for (long[] stray : strayCopies) {
                if (!erasedSlots.contains((int) stray[0])) {
                    zeros.clear().limit(Layout.HEADER_COPY_SIZE);
                    cache.write(zeros, Layout.slotOffset((int) stray[0]) + stray[1] * Layout.HEADER_COPY_SIZE);
                    wrote = true;
                }
            }
        }
        if (wrote) {
            cache.sync();
        }
        discarded.sort(null);
        if (repair && !discarded.isEmpty()) {
            if (loss != null) {
                log.error("{} segment(s) from the lost one on were erased, not replayed: {}", discarded.size(), discarded);
            } else {
                log.info("{} segment(s) after the replay stop at id {} were erased, not replayed: past a gap they hold "
                        + "writes no flush the record knows of acknowledged: {}", discarded.size(), nextId, discarded);
            }
        }
        long warmFloor = nextId - 1 + Layout.unsyncedReclaims(n) - n;
        List<ReplaySegment> warm = writtenBack == null || loss != null || recordLost ? List.of()
                : writtenBackChain(writtenBack, strangeCopies, n, lastMigrated, warmFloor);
        long millis = (System.nanoTime() - t0) / 1_000_000;
        return new RecoveryResult(record == null ? 0 : record.sequence(), lastMigrated, nextId, replay,
                record != null && record.cleanShutdown(), torn, discarded, millis, record, loss, warm, warmFloor);
    }

    /**
     * The segments at or before {@code lastMigrated} still in the ring whose clean entries a
     * start may keep, in id order: the unbroken run of them ending at {@code lastMigrated},
     * above {@code floor}. A missing segment, or one with a damaged header copy, ends the run:
     * what it described (a tombstone, a newer write) may have superseded a clean entry before it.
     * Their data is verified by the engine before a clean line of theirs is read.
     */
    private static List<ReplaySegment> writtenBackChain(SegmentHeader[] headers, byte[] strange, int n, long lastMigrated,
                                                        long floor) {
        List<ReplaySegment> chain = new ArrayList<>();
        for (long id = lastMigrated; id > floor && id > 0 && id > lastMigrated - n; id--) {
            int slot = Layout.slotOf(id, n);
            SegmentHeader h = headers[slot];
            if (h == null || h.id != id || strange[slot] != 0) {
                break;
            }
            chain.add(new ReplaySegment(h.id, slot, h.seq, h.nrLines, h.keys, h.dirty, h.clean, h.warm, false));
        }
        java.util.Collections.reverse(chain);
        return chain;
    }

    /**
     * The lines of every segment from {@code lostAt} (or, without a record, from the replay's
     * stop) on: the segments the ring still holds there, and for the lost one, whatever of its
     * header can be proven.
     */
    private static DataLoss describeLoss(BlockDevice cache, Superblock sb, long lostAt, String cause, long nextId,
                                         SegmentHeader[] headers, Map<Long, Integer> slotById, Map<Long, SegmentHeader> misplaced)
            throws IOException {
        int n = sb.nrSegments();
        DataLoss.Builder lines = new DataLoss.Builder();
        java.util.TreeSet<Long> lost = new java.util.TreeSet<>();
        for (Map.Entry<Long, Integer> e : slotById.entrySet()) {
            if (e.getKey() >= nextId && e.getKey() != lostAt) {
                SegmentHeader h = headers[e.getValue()];
                lines.add(h.keys, h.dirty, h.nrLines);
                lost.add(e.getKey());
            }
        }
        if (lostAt >= 0) {
            lost.add(lostAt);
            int slot = Layout.slotOf(lostAt, n);
            ByteBuffer raw = ByteBuffer.allocateDirect(Layout.SEGMENT_HEADER_SIZE);
            cache.read(raw, Layout.slotOffset(slot));
            boolean known = false;
            boolean damaged = false;
            for (int c = 0; c < 2; c++) {
                int off = c * Layout.HEADER_COPY_SIZE;
                if (isZero(raw, off)) {
                    continue;
                }
                SegmentHeader valid = SegmentHeader.decode(raw, off);
                if (valid != null && valid.nonce == sb.nonce() && valid.id == lostAt) {
                    lines.add(valid.keys, valid.dirty, valid.nrLines);
                    known = true;
                    continue;
                }
                SegmentHeader proven = SegmentHeader.provenWith(raw, off, lostAt, sb.nonce());
                if (proven != null) {
                    lines.add(proven.keys, proven.dirty, proven.nrLines);
                    known = true;
                } else {
                    damaged = true;
                }
            }
            SegmentHeader elsewhere = misplaced.get(lostAt);
            if (elsewhere != null) {
                lines.add(elsewhere.keys, elsewhere.dirty, elsewhere.nrLines);
                known = true;
            }
            if (!known || damaged) {
                // A copy whose checksum fails for a reason other than its identity fields may
                // have listed any line: nothing narrower can be proven.
                lines.unknown();
            }
        }
        return lines.build(cache.name(), sb.cacheId(), cause, new ArrayList<>(lost), sb.volumes());
    }

    private static boolean isZero(ByteBuffer b, int off) {
        for (int i = 0; i < Layout.HEADER_COPY_SIZE; i += 8) {
            if (b.getLong(off + i) != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Every slot's newer and older header copy of the format's nonce (null where none
     * decodes), which of its copies are neither zeros nor of the newer copy's segment, and which are that segment's final copy written unsealed ({@link SegmentHeader#unsealedCopyOf}). The copies sit at the start of each 1 MiB slot, so these are small reads far
     * apart (too far for the page cache's readahead to join them): they are issued from
     * several threads to keep the device's queue full.
     */
    private static void readHeaders(BlockDevice cache, int n, long nonce, SegmentHeader[] headers, SegmentHeader[] older,
                                    byte[] strange, byte[] unsealed) throws IOException {
        int threads = Math.max(1, Math.min(HEADER_READERS, n / 64));
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicReference<IOException> error = new java.util.concurrent.atomic.AtomicReference<>();
        Runnable reader = () -> {
            ByteBuffer header = ByteBuffer.allocateDirect(Layout.SEGMENT_HEADER_SIZE);
            for (int slot = next.getAndIncrement(); slot < n && error.get() == null; slot = next.getAndIncrement()) {
                header.clear();
                try {
                    cache.read(header, Layout.slotOffset(slot));
                } catch (IOException e) {
                    error.compareAndSet(null, e);
                    return;
                }
                SegmentHeader newer = SegmentHeader.newerCopy(header, nonce);
                headers[slot] = newer;
                older[slot] = SegmentHeader.olderCopy(header, nonce);
                // A copy that is neither zeros nor one of the newer copy's segment: damage, or
                // a leftover of the slot's previous segment.
                for (int c = 0; c < 2; c++) {
                    int off = c * Layout.HEADER_COPY_SIZE;
                    if (!isZero(header, off)) {
                        SegmentHeader h = SegmentHeader.decode(header, off);
                        if (h == null && newer != null && SegmentHeader.unsealedCopyOf(header, off, newer)) {
                            unsealed[slot] |= (byte) (1 << c);
                        } else if (newer == null || h == null || h.nonce != nonce || h.id != newer.id) {
                            strange[slot] |= (byte) (1 << c);
                        }
                    }
                }
            }
        };
        Thread[] pool = new Thread[threads - 1];
        for (int i = 0; i < pool.length; i++) {
            pool[i] = new Thread(reader, "wb-recovery-" + i);
            pool[i].start();
        }
        reader.run();
        for (Thread t : pool) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while reading segment headers", e);
            }
        }
        if (error.get() != null) {
            throw error.get();
        }
    }
}
