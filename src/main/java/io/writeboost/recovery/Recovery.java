package io.writeboost.recovery;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.Superblock;
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
 */
public final class Recovery {
    private static final Logger log = LogManager.getLogger(Recovery.class);

    /** Threads reading headers at start: enough to keep a virtual disk's queue busy. */
    private static final int HEADER_READERS = 8;

    private Recovery() {}

    public static Superblock readSuperblock(BlockDevice cache) throws IOException {
        if (cache.size() < Layout.SUPERBLOCK_REGION_SIZE) {
            throw new FormatException(cache.name() + ": too small to hold a writeboost cache (" + cache.size() + " bytes)");
        }
        ByteBuffer region = ByteBuffer.allocate(Superblock.REGION);
        cache.read(region, 0);
        Superblock sb = Superblock.decode(region);
        if (cache.size() < Layout.slotOffset(sb.nrSegments())) {
            throw new FormatException(cache.name() + ": superblock says " + sb.nrSegments()
                    + " segments but the device holds only " + Layout.segmentsFor(cache.size()));
        }
        return sb;
    }

    public static SuperblockRecord readRecord(BlockDevice cache, Superblock sb) throws IOException {
        SuperblockRecord best = null;
        for (long off : new long[] {SuperblockRecord.OFFSET_A, SuperblockRecord.OFFSET_B}) {
            SuperblockRecord r = readRecordCopy(cache, off, sb);
            if (r != null && (best == null || r.sequence() > best.sequence())) {
                best = r;
            }
        }
        if (best == null) {
            throw new FormatException(cache.name() + ": both superblock record copies are corrupt");
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
     */
    public static RecoveryResult run(BlockDevice cache, Superblock sb) throws IOException {
        return scan(cache, sb, true, true);
    }

    /** The same analysis, every segment verified, without writing anything: for checks before a reformat, and offline tools. */
    public static RecoveryResult inspect(BlockDevice cache, Superblock sb) throws IOException {
        return scan(cache, sb, false, false);
    }

    private static RecoveryResult scan(BlockDevice cache, Superblock sb, boolean repair, boolean deferVerification)
            throws IOException {
        long t0 = System.nanoTime();
        SuperblockRecord record = readRecord(cache, sb);
        int n = sb.nrSegments();

        // Pass 1: every slot's header copies, to know which ids exist and where.
        SegmentHeader[] headers = new SegmentHeader[n];
        SegmentHeader[] olderCopies = new SegmentHeader[n];
        readHeaders(cache, n, sb.nonce(), headers, olderCopies);
        Map<Long, Integer> slotById = new HashMap<>();
        for (int slot = 0; slot < n; slot++) {
            SegmentHeader h = headers[slot];
            if (h == null || h.id <= record.lastMigratedId()) {
                headers[slot] = null;
                continue;
            }
            if (Layout.slotOf(h.id, n) != slot) {
                log.warn("segment header in slot {} claims id {}, which belongs in slot {}; ignored", slot, h.id, Layout.slotOf(h.id, n));
                headers[slot] = null;
                continue;
            }
            slotById.put(h.id, slot);
        }

        // Pass 2: the prefix. A segment at or below the record's last_flushed_segment_id was
        // durable before that record was written, so a crash cannot have torn it: with
        // deferVerification its header is taken as read and its checksum left to the engine,
        // which verifies it before serving its data and before acknowledging any flush. Past
        // that id a crash may have torn a segment, so each is verified here, and replay stops
        // at the first that fails.
        List<ReplaySegment> replay = new ArrayList<>();
        ByteBuffer seg = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE);
        long id = record.lastMigratedId() + 1;
        long vouched = deferVerification ? record.lastFlushedId() : 0;
        boolean torn = false;
        SegmentHeader tornCopy = null;
        int tornCopySlot = -1;
        while (slotById.containsKey(id)) {
            int slot = slotById.get(id);
            SegmentHeader h = headers[slot];
            boolean verified = id > vouched;
            if (verified) {
                seg.clear().limit(SegmentHeader.usedBytes(h.nrLines));
                cache.read(seg, Layout.slotOffset(slot));
                if (!h.dataValid(seg)) {
                    torn = true;
                    SegmentHeader older = olderCopies[slot];
                    if (older != null && older.dataValid(seg)) {
                        log.info("segment {} (slot {}): its last write (header copy {}, {} lines) fails its checksum, an append "
                                + "no flush acknowledged; replay takes the segment as its previous copy describes it ({} lines) "
                                + "and stops after it", id, slot, h.seq, h.nrLines, older.nrLines);
                        replay.add(new ReplaySegment(older.id, slot, older.seq, older.nrLines, older.keys, older.dirty, true));
                        tornCopy = h;
                        tornCopySlot = slot;
                        id++;
                    } else {
                        log.warn("segment {} (slot {}) fails its checksum: a torn or corrupt write; replay stops before it", id, slot);
                    }
                    break;
                }
            }
            replay.add(new ReplaySegment(h.id, slot, h.seq, h.nrLines, h.keys, h.dirty, verified));
            id++;
        }
        long nextId = id;

        // Anything at or past the stop point was never covered by a completed flush: erase it.
        List<Long> discarded = new ArrayList<>();
        ByteBuffer zeros = ByteBuffer.allocateDirect(Layout.SEGMENT_HEADER_SIZE);
        boolean wrote = false;
        for (Map.Entry<Long, Integer> e : slotById.entrySet()) {
            if (e.getKey() >= nextId) {
                if (e.getKey() > nextId || !torn || tornCopy != null) {
                    discarded.add(e.getKey());
                }
                if (repair) {
                    zeros.clear();
                    cache.write(zeros, Layout.slotOffset(e.getValue()));
                    wrote = true;
                }
            }
        }
        if (repair && tornCopy != null) {
            // The next start must find the segment as replayed now, not a torn newer copy that
            // would stop its replay here again, before segments this run is about to write.
            zeros.clear().limit(Layout.HEADER_COPY_SIZE);
            cache.write(zeros, Layout.slotOffset(tornCopySlot) + SegmentHeader.copyOffset(tornCopy.seq));
            wrote = true;
        }
        if (wrote) {
            cache.sync();
        }
        discarded.sort(null);
        if (repair && !discarded.isEmpty()) {
            log.warn("{} segment(s) after the replay stop at id {} were erased, not replayed: past a gap they hold either "
                    + "writes no flush acknowledged, or data cut off by a corrupt segment: {}", discarded.size(), nextId, discarded);
        }
        long millis = (System.nanoTime() - t0) / 1_000_000;
        return new RecoveryResult(record.sequence(), record.lastMigratedId(), nextId, replay, record.cleanShutdown(), torn,
                discarded, millis);
    }

    /**
     * Every slot's newer and older header copy of the format's nonce (null where none
     * decodes). The copies sit at the start of each 1 MiB slot, so these are small reads far
     * apart (too far for the page cache's readahead to join them): they are issued from
     * several threads to keep the device's queue full.
     */
    private static void readHeaders(BlockDevice cache, int n, long nonce, SegmentHeader[] headers, SegmentHeader[] older)
            throws IOException {
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
                headers[slot] = SegmentHeader.newerCopy(header, nonce);
                older[slot] = SegmentHeader.olderCopy(header, nonce);
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
