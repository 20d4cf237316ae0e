package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The run-time part of the superblock (format version 1), kept in two 4 KiB copies at
 * {@link #OFFSET_A} and {@link #OFFSET_B}. Writes alternate between them, so a torn write
 * leaves the other copy, one generation older, intact; the reader takes the valid copy with
 * the higher sequence number.
 *
 * <pre>
 *   0 u32 magic "WBRC"  4 u16 version = 1  6 u16 flags (bit 0: clean shutdown)
 *   8 u64 sequence     16 u64 format nonce  24 u64 last_migrated_segment_id
 *  32 u64 last_flushed_segment_id at the time of writing (informational)  40 u32 crc32c of bytes [0, 40)
 * </pre>
 */
public record SuperblockRecord(long sequence, long nonce, long lastMigratedId, long lastFlushedId, boolean cleanShutdown) {
    public static final int MAGIC = 0x43524257; // "WBRC"
    public static final short VERSION = 1;
    public static final long OFFSET_A = 64 * 1024;
    public static final long OFFSET_B = 68 * 1024;
    public static final int SIZE = 4096;
    private static final int CRC_OFFSET = 40;

    public long offset() {
        return (sequence & 1) == 0 ? OFFSET_A : OFFSET_B;
    }

    public ByteBuffer encode() {
        ByteBuffer b = ByteBuffer.allocateDirect(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, MAGIC);
        b.putShort(4, VERSION);
        b.putShort(6, (short) (cleanShutdown ? 1 : 0));
        b.putLong(8, sequence);
        b.putLong(16, nonce);
        b.putLong(24, lastMigratedId);
        b.putLong(32, lastFlushedId);
        b.putInt(CRC_OFFSET, crc(b));
        return b;
    }

    /** The record in {@code b}, or null when the copy is missing, torn or from another format. */
    public static SuperblockRecord decode(ByteBuffer src, long expectedNonce) {
        ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(0) != MAGIC || b.getShort(4) != VERSION || b.getInt(CRC_OFFSET) != crc(b)
                || b.getLong(16) != expectedNonce) {
            return null;
        }
        return new SuperblockRecord(b.getLong(8), b.getLong(16), b.getLong(24), b.getLong(32), (b.getShort(6) & 1) != 0);
    }

    private static int crc(ByteBuffer b) {
        CRC32C crc = new CRC32C();
        Crc.update(crc, b, 0, CRC_OFFSET);
        return (int) crc.getValue();
    }
}
