package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Codec of the 4 KiB header at the start of every segment (format version 1, docs/FORMAT.md).
 *
 * <pre>
 *   0  u32 magic 0x47455342 ("BSEG")     24 u32 crc32c (header with this field 0, then the used lines)
 *   4  u16 version = 1                   28 36 bytes reserved (0)
 *   6  u16 number of lines used (0..255) 64 entries, 12 bytes each, one per used line:
 *   8  u64 segment id                       u64 backing sector of the line, u8 device id (0 = empty),
 *  16  u64 format nonce of the cache        u8 dirty sector bits, u8 flags (bit 0 = tombstone), u8 0
 * </pre>
 */
public final class SegmentHeader {
    public static final int MAGIC = 0x47455342;
    public static final short VERSION = 1;
    public static final int FIXED_SIZE = 64;
    public static final int ENTRY_SIZE = 12;
    public static final int FLAG_TOMBSTONE = 1;

    private static final int OFF_MAGIC = 0, OFF_VERSION = 4, OFF_NR_LINES = 6, OFF_ID = 8, OFF_NONCE = 16, OFF_CRC = 24;

    public final long id;
    public final long nonce;
    public final int nrLines;
    /** Keys as in {@link LineKey}, 0 for an empty entry, tombstone bit set for a discard record. */
    public final long[] keys;
    public final byte[] dirty;

    private SegmentHeader(long id, long nonce, int nrLines, long[] keys, byte[] dirty) {
        this.id = id;
        this.nonce = nonce;
        this.nrLines = nrLines;
        this.keys = keys;
        this.dirty = dirty;
    }

    /**
     * Writes the header for lines {@code keys[base..base+nrLines)} into the first 4 KiB of
     * {@code segment} (absolute puts; position untouched). The CRC is filled in by {@link #seal}.
     */
    public static void encode(ByteBuffer segment, long id, long nonce, int nrLines, long[] keys, byte[] dirty, int base) {
        ByteBuffer b = segment.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < Layout.SEGMENT_HEADER_SIZE; i += 8) {
            b.putLong(i, 0L);
        }
        b.putInt(OFF_MAGIC, MAGIC);
        b.putShort(OFF_VERSION, VERSION);
        b.putShort(OFF_NR_LINES, (short) nrLines);
        b.putLong(OFF_ID, id);
        b.putLong(OFF_NONCE, nonce);
        for (int k = 0; k < nrLines; k++) {
            long key = keys[base + k];
            int off = FIXED_SIZE + k * ENTRY_SIZE;
            if (key == 0) {
                continue;
            }
            b.putLong(off, LineKey.line(key) * Layout.SECTORS_PER_LINE);
            b.put(off + 8, (byte) LineKey.device(key));
            b.put(off + 9, LineKey.isTombstone(key) ? 0 : dirty[base + k]);
            b.put(off + 10, (byte) (LineKey.isTombstone(key) ? FLAG_TOMBSTONE : 0));
        }
    }

    /** Computes and stores the CRC over the header and the used lines that follow it. */
    public static void seal(ByteBuffer segment) {
        ByteBuffer b = segment.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(OFF_CRC, 0);
        b.putInt(OFF_CRC, checksum(b, Short.toUnsignedInt(b.getShort(OFF_NR_LINES))));
    }

    /** Bytes of a segment that are written and checksummed: the header and its used lines. */
    public static int usedBytes(int nrLines) {
        return Layout.SEGMENT_HEADER_SIZE + nrLines * Layout.LINE_SIZE;
    }

    private static int checksum(ByteBuffer b, int nrLines) {
        CRC32C crc = new CRC32C();
        Crc.update(crc, b, 0, OFF_CRC);
        crc.update(new byte[4]);
        Crc.update(crc, b, OFF_CRC + 4, usedBytes(nrLines) - OFF_CRC - 4);
        return (int) crc.getValue();
    }

    /**
     * Decodes the header in the first 4 KiB of {@code buf}; null when it does not carry the
     * segment magic and version (a never-written or foreign slot).
     */
    public static SegmentHeader decode(ByteBuffer buf) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(OFF_MAGIC) != MAGIC || b.getShort(OFF_VERSION) != VERSION) {
            return null;
        }
        int nrLines = Short.toUnsignedInt(b.getShort(OFF_NR_LINES));
        if (nrLines > Layout.LINES_PER_SEGMENT) {
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
            long sector = b.getLong(off);
            long key = LineKey.of(dev & 0x7F, sector / Layout.SECTORS_PER_LINE);
            if ((b.get(off + 10) & FLAG_TOMBSTONE) != 0) {
                key |= LineKey.TOMBSTONE;
            }
            keys[k] = key;
            dirty[k] = b.get(off + 9);
        }
        return new SegmentHeader(b.getLong(OFF_ID), b.getLong(OFF_NONCE), nrLines, keys, dirty);
    }

    /** True when the CRC stored in {@code segment} matches its header and used lines. */
    public static boolean crcValid(ByteBuffer segment) {
        ByteBuffer b = segment.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int nrLines = Short.toUnsignedInt(b.getShort(OFF_NR_LINES));
        if (nrLines > Layout.LINES_PER_SEGMENT || b.capacity() < usedBytes(nrLines)) {
            return false;
        }
        return b.getInt(OFF_CRC) == checksum(b, nrLines);
    }
}
