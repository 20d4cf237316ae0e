package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Reading a cache of format version 1 (used until 2026-11-27), for the upgrade to version 2
 * and for nothing else: the engine never opens one. Version 1 differs from version 2 in the
 * segment only (docs/FORMAT.md, "Version 1"): one 4 KiB header at the start of its ring slot,
 * written once when the segment was sealed, then 255 lines; the superblock has the same fields
 * and the records are version 1 records, which {@link SuperblockRecord#decode} still reads.
 *
 * <pre>
 *   0  u32 magic 0x47455342 ("BSEG")     24 u32 crc32c (header with this field 0, then the used lines)
 *   4  u16 version = 1                   28 36 bytes reserved (0)
 *   6  u16 number of lines used (0..255) 64 entries, 12 bytes each, one per used line:
 *   8  u64 segment id                       u64 backing sector of the line, u8 device id (0 = empty),
 *  16  u64 format nonce of the cache        u8 dirty sector bits, u8 flags (bit 0 = tombstone), u8 0
 * </pre>
 */
public final class FormatV1 {
    public static final int SEGMENT_HEADER_SIZE = Layout.LINE_SIZE;
    public static final int LINES_PER_SEGMENT = 255;
    private static final int MAGIC = 0x47455342;
    private static final int OFF_VERSION = 4, OFF_NR_LINES = 6, OFF_ID = 8, OFF_NONCE = 16, OFF_CRC = 24, FIXED_SIZE = 64,
            ENTRY_SIZE = 12, FLAG_TOMBSTONE = 1;

    private FormatV1() {
    }

    /** The superblock of a version 1 cache; a FormatException if {@code region} holds anything else. */
    public static Superblock superblock(ByteBuffer region) throws FormatException {
        return Superblock.decodeVersion1(region);
    }

    /** Byte offset of line {@code k} inside a version 1 segment (and its slot). */
    public static int lineOffset(int k) {
        return SEGMENT_HEADER_SIZE + k * Layout.LINE_SIZE;
    }

    /**
     * One segment's header: keys as in {@link LineKey} (0 for an empty entry, the tombstone bit
     * for a discard record) and dirty bits, per line.
     */
    public record Segment(long id, int nrLines, long[] keys, byte[] dirty) {
    }

    /**
     * Decodes the version 1 segment at the start of {@code slot} (a whole 1 MiB slot), or
     * returns null when it is not one of this cache's ({@code nonce}) with its checksum intact:
     * a never-written slot, a torn write, or a segment that changed after it was written.
     */
    public static Segment segment(ByteBuffer slot, long nonce) {
        ByteBuffer b = slot.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(0) != MAGIC || b.getShort(OFF_VERSION) != 1 || b.getLong(OFF_NONCE) != nonce) {
            return null;
        }
        int nrLines = Short.toUnsignedInt(b.getShort(OFF_NR_LINES));
        int used = SEGMENT_HEADER_SIZE + nrLines * Layout.LINE_SIZE;
        if (nrLines > LINES_PER_SEGMENT || b.capacity() < used) {
            return null;
        }
        CRC32C crc = new CRC32C();
        Crc.update(crc, b, 0, OFF_CRC);
        crc.update(new byte[4]);
        Crc.update(crc, b, OFF_CRC + 4, used - OFF_CRC - 4);
        if (b.getInt(OFF_CRC) != (int) crc.getValue()) {
            return null;
        }
        long[] keys = new long[nrLines];
        byte[] dirty = new byte[nrLines];
        for (int k = 0; k < nrLines; k++) {
            int off = FIXED_SIZE + k * ENTRY_SIZE;
            int dev = Byte.toUnsignedInt(b.get(off + 8));
            if (dev == 0) {
                continue;
            }
            if (dev > Layout.MAX_DEVICE_ID) {
                return null; // no version 1 writer made this: damage the checksum did not catch
            }
            long key = LineKey.of(dev, b.getLong(off) / Layout.SECTORS_PER_LINE);
            if ((b.get(off + 10) & FLAG_TOMBSTONE) != 0) {
                key |= LineKey.TOMBSTONE;
            }
            keys[k] = key;
            dirty[k] = b.get(off + 9);
        }
        return new Segment(b.getLong(OFF_ID), nrLines, keys, dirty);
    }
}
