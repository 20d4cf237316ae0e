package io.writeboost.recovery;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.FormatV1;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.SectorRuns;
import io.writeboost.format.Superblock;
import io.writeboost.format.SuperblockRecord;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The first half of upgrading a format version 1 cache: replays its log as version 1's
 * recovery did and writes the dirty data back to the backing stores, synced. The cache device
 * is only read; formatting it as version 2 is the caller's second half, and is safe only after
 * this returned. Interrupted, it can simply run again.
 *
 * <p>Which data: the record's last_migrated_segment_id says what is written back already; the
 * segments after it, in id order, are the log, up to the first slot that does not hold the next
 * id with an intact checksum (a torn or never-written tail, which no flush acknowledged). A
 * segment the record vouches for (up to its last_flushed_segment_id) that is missing or damaged
 * is acknowledged data lost: the upgrade refuses, naming it, and changes nothing. For each
 * backing line the newest copy wins: a tombstone punches the line, a line writes its dirty
 * sectors (a version 1 line held every dirty sector of its key, older ones merged in).
 */
public final class UpgradeFromV1 {
    /** What was written back: lines, their sectors, lines punched, the segments replayed. */
    public record Result(long lines, long sectors, long punched, long firstSegment, long lastSegment) {
    }

    private UpgradeFromV1() {
    }

    /** The cache's version 1 superblock, or a FormatException saying what it is instead. */
    public static Superblock superblock(BlockDevice cache) throws IOException {
        return Recovery.fitting(cache, FormatV1.superblock(Recovery.superblockRegion(cache)));
    }

    /** Writes the log's dirty data back to {@code backings} (by device id) and syncs them. */
    public static Result writeBack(BlockDevice cache, Superblock sb, Map<Integer, BlockDevice> backings) throws IOException {
        SuperblockRecord record = Recovery.readRecordOrNull(cache, sb);
        if (record == null) {
            throw new FormatException(cache.name() + ": neither copy of the superblock record is valid, so which segments hold "
                    + "data that is not on the backing stores yet cannot be told; nothing was changed");
        }
        int nr = sb.nrSegments();
        ByteBuffer slot = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE);
        // Newest copy per backing line: where it is (segment id and line), or a tombstone.
        Map<Long, long[]> newest = new HashMap<>();
        List<Long> replayed = new ArrayList<>();
        for (long id = record.lastMigratedId() + 1; ; id++) {
            int s = Layout.slotOf(id, nr);
            slot.clear();
            cache.read(slot, Layout.slotOffset(s));
            FormatV1.Segment seg = FormatV1.segment(slot, sb.nonce());
            if (seg == null || seg.id() != id) {
                if (id <= record.lastFlushedId()) {
                    throw new FormatException(cache.name() + ": segment " + id + " (slot " + s + "), which the superblock record "
                            + "vouches for as durable, is " + (seg == null ? "missing or damaged" : "overwritten by segment " + seg.id())
                            + ": the data it held is lost. Nothing was changed; to give that data up, format the cache with "
                            + "--format --force instead of upgrading it");
                }
                break;
            }
            replayed.add(id);
            for (int k = 0; k < seg.nrLines(); k++) {
                long key = seg.keys()[k];
                if (key != 0) {
                    newest.put(key & ~LineKey.TOMBSTONE, new long[] {id, k, seg.dirty()[k], LineKey.isTombstone(key) ? 1 : 0});
                }
            }
        }
        long lines = 0, sectors = 0, punched = 0;
        ByteBuffer line = ByteBuffer.allocateDirect(Layout.LINE_SIZE);
        boolean[] touched = new boolean[Layout.MAX_DEVICE_ID + 1];
        for (Map.Entry<Long, long[]> e : newest.entrySet()) {
            long key = e.getKey();
            long[] where = e.getValue();
            BlockDevice backing = backings.get(LineKey.device(key));
            if (backing == null) {
                throw new FormatException(cache.name() + ": segment " + where[0] + " holds a line of device id " + LineKey.device(key)
                        + ", which the volume table does not name; nothing was written for it");
            }
            long lineStart = LineKey.line(key) * Layout.LINE_SIZE;
            touched[LineKey.device(key)] = true;
            if (where[3] == 1) {
                backing.discard(lineStart, Layout.LINE_SIZE);
                punched++;
                continue;
            }
            int bits = (int) where[2];
            if (bits == 0) {
                continue;
            }
            line.clear();
            cache.read(line, Layout.slotOffset(Layout.slotOf(where[0], nr)) + FormatV1.lineOffset((int) where[1]));
            for (int from = SectorRuns.start(bits, 0); from < Layout.SECTORS_PER_LINE; ) {
                int to = SectorRuns.end(bits, from);
                ByteBuffer run = line.duplicate();
                run.limit(to << Layout.SECTOR_SHIFT).position(from << Layout.SECTOR_SHIFT);
                backing.write(run, lineStart + ((long) from << Layout.SECTOR_SHIFT));
                sectors += to - from;
                from = SectorRuns.start(bits, to);
            }
            lines++;
        }
        for (int dev = 0; dev < touched.length; dev++) {
            if (touched[dev]) {
                backings.get(dev).sync();
            }
        }
        long first = replayed.isEmpty() ? 0 : replayed.get(0), last = replayed.isEmpty() ? 0 : replayed.get(replayed.size() - 1);
        return new Result(lines, sectors, punched, first, last);
    }
}
