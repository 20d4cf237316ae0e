package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The volume table as attach and detach change it while the cache runs: two copies in the
 * superblock region, A at {@link #OFFSET_A} for even generations and B at {@link #OFFSET_B} for
 * odd ones, so that a torn write can only damage the copy being written and the other still
 * holds the table one change older. The reader takes the valid copy (magic, version, format
 * nonce, CRC) with the higher generation; with none, the superblock header's table, written at
 * format, is generation 0. A copy repeats the header's layout: a 4 KiB block of fields, then
 * the same 256-byte entries at {@link Superblock#VOLUME_TABLE_OFFSET}, the CRC over the same
 * {@link Superblock#REGION}. docs/FORMAT.md has the layout and the order of writes.
 *
 * <pre>
 *   0 u64 magic "WBVOLTBL"  8 u16 version = 1  10 u16 reserved  12 u32 crc32c of [0, REGION) with this field 0
 *  16 u64 generation (1, 2, ...)  24 u64 format nonce  32 u32 number of volumes (1..127)  36..63 reserved
 *  64 u64 x 128 retired_at[device id]: 0 = the id was never detached; else the newest segment id that may
 *     hold a line of the volume detached under it (the id is free again once that segment is written back)
 * 4096: volume entries, as in the header
 * </pre>
 *
 * @param retiredAt indexed by device id (length {@link Layout#MAX_DEVICE_ID} + 1)
 */
public record VolumeTable(long generation, long nonce, List<VolumeEntry> volumes, long[] retiredAt) {
    public static final long MAGIC = 0x4C42544C_4F565742L; // "WBVOLTBL" little-endian
    public static final short VERSION = 1;
    public static final long OFFSET_A = 128 * 1024;
    public static final long OFFSET_B = 192 * 1024;
    private static final int RETIRED_OFFSET = 64;

    public VolumeTable {
        volumes = List.copyOf(volumes);
        retiredAt = retiredAt.clone();
        if (retiredAt.length != Layout.MAX_DEVICE_ID + 1) {
            throw new IllegalArgumentException("retiredAt has " + retiredAt.length + " entries");
        }
    }

    /** A copy: the caller may change it for the {@link #next} table. */
    @Override
    public long[] retiredAt() {
        return retiredAt.clone();
    }

    /** The table a superblock header holds: generation 0, no id retired. */
    public static VolumeTable of(Superblock sb) {
        return new VolumeTable(0, sb.nonce(), sb.volumes(), new long[Layout.MAX_DEVICE_ID + 1]);
    }

    public long offset() {
        return (generation & 1) == 0 ? OFFSET_A : OFFSET_B;
    }

    /** The next generation: these volumes and retired ids, written to the other copy. */
    public VolumeTable next(List<VolumeEntry> newVolumes, long[] newRetiredAt) {
        return new VolumeTable(generation + 1, nonce, newVolumes, newRetiredAt);
    }

    public ByteBuffer encode() {
        ByteBuffer b = ByteBuffer.allocateDirect(Superblock.REGION).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, MAGIC);
        b.putShort(8, VERSION);
        b.putLong(16, generation);
        b.putLong(24, nonce);
        b.putInt(32, volumes.size());
        for (int dev = 0; dev < retiredAt.length; dev++) {
            b.putLong(RETIRED_OFFSET + dev * Long.BYTES, retiredAt[dev]);
        }
        Superblock.putVolumes(b, volumes);
        b.putInt(12, Superblock.crc(b));
        return b;
    }

    /** The copy in {@code src}, or null when it is missing, torn or from another format. */
    public static VolumeTable decode(ByteBuffer src, long expectedNonce) {
        ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.capacity() < Superblock.REGION || b.getLong(0) != MAGIC || b.getShort(8) != VERSION
                || b.getLong(24) != expectedNonce || b.getInt(12) != Superblock.crc(b)) {
            return null;
        }
        int n = b.getInt(32);
        if (n < 1 || n > Layout.MAX_DEVICE_ID) {
            return null;
        }
        long[] retired = new long[Layout.MAX_DEVICE_ID + 1];
        for (int dev = 0; dev < retired.length; dev++) {
            retired[dev] = b.getLong(RETIRED_OFFSET + dev * Long.BYTES);
        }
        try {
            return new VolumeTable(b.getLong(16), expectedNonce, Superblock.getVolumes(b, n), retired);
        } catch (FormatException e) {
            return null; // a copy whose CRC matched and whose entries do not is no table to trust
        }
    }
}
