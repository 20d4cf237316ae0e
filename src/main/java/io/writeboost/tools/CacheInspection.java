package io.writeboost.tools;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.Superblock;
import io.writeboost.format.SuperblockRecord;
import io.writeboost.recovery.Recovery;
import io.writeboost.recovery.RecoveryResult;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A read-only look at a cache device for the offline tools: the superblock, both record copies,
 * every slot's header with its checksum, and what the next start would replay. Writes nothing.
 */
public final class CacheInspection {
    public enum SlotState { EMPTY, VALID, BAD_CHECKSUM, WRONG_SLOT }

    /** One ring slot as found. {@code header} is null for an empty slot. */
    public record Slot(int slot, SlotState state, SegmentHeader header) {
        public long id() {
            return header == null ? 0 : header.id;
        }
    }

    public final Superblock superblock;
    /** The volume table's generation: 0 while it is the header's, n after n attaches and detaches. */
    public final long volumeTableGeneration;
    public final SuperblockRecord recordA, recordB;
    /** The newest valid record copy; null when both are damaged. */
    public final SuperblockRecord record;
    public final List<Slot> slots;
    public final RecoveryResult replay;

    private CacheInspection(Superblock sb, long volumeTableGeneration, SuperblockRecord a, SuperblockRecord b, SuperblockRecord record, List<Slot> slots,
                            RecoveryResult replay) {
        this.superblock = sb;
        this.volumeTableGeneration = volumeTableGeneration;
        this.recordA = a;
        this.recordB = b;
        this.record = record;
        this.slots = slots;
        this.replay = replay;
    }

    public static CacheInspection of(BlockDevice cache, Progress progress) throws IOException {
        Superblock header = Recovery.readHeader(cache);
        io.writeboost.format.VolumeTable table = Recovery.readVolumeTable(cache, header);
        Superblock sb = header.withVolumes(table.volumes());
        SuperblockRecord a = Recovery.readRecordCopy(cache, SuperblockRecord.OFFSET_A, sb);
        SuperblockRecord b = Recovery.readRecordCopy(cache, SuperblockRecord.OFFSET_B, sb);
        SuperblockRecord record = Recovery.readRecordOrNull(cache, sb);
        List<Slot> slots = new ArrayList<>();
        ByteBuffer seg = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE);
        for (int s = 0; s < sb.nrSegments(); s++) {
            seg.clear().limit(Layout.SEGMENT_HEADER_SIZE);
            cache.read(seg, Layout.slotOffset(s));
            SegmentHeader h = SegmentHeader.newerCopy(seg, sb.nonce());
            if (h == null) {
                slots.add(new Slot(s, SlotState.EMPTY, null));
            } else if (Layout.slotOf(h.id, sb.nrSegments()) != s) {
                slots.add(new Slot(s, SlotState.WRONG_SLOT, h));
            } else {
                SegmentHeader older = SegmentHeader.olderCopy(seg, sb.nonce());
                seg.clear().limit(SegmentHeader.usedBytes(h.nrLines));
                cache.read(seg, Layout.slotOffset(s));
                if (h.dataValid(seg)) {
                    slots.add(new Slot(s, SlotState.VALID, h));
                } else if (older != null && older.dataValid(seg)) {
                    // The last append was torn: the segment is what its previous header copy describes.
                    slots.add(new Slot(s, SlotState.VALID, older));
                } else {
                    slots.add(new Slot(s, SlotState.BAD_CHECKSUM, h));
                }
            }
            progress.update(s + 1);
        }
        return new CacheInspection(sb, table.generation(), a, b, record, slots, Recovery.inspect(cache, sb));
    }

    /** True when the segment with this id is lost acknowledged data (damaged, or cut off by a damaged one). */
    public boolean lost(long id) {
        return replay.loss() != null && replay.loss().segments().contains(id);
    }

    /** Dirty lines per device id after applying the replay set in order (index 0 unused). */
    public long[] dirtyLinesByDevice() {
        return replay.dirtyLinesByDevice();
    }
}
