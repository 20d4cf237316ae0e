package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The superblock header (format version 2): written once at format, never at run time. Its
 * volume table is the one a cache has until the first attach or detach; from then on the
 * newest {@link VolumeTable} copy holds it ({@link #withVolumes}).
 *
 * <pre>
 * block 0 (offset 0):
 *   0 u64 magic "WBOOSTSB"   8 u16 version = 2   10 u16 reserved   12 u32 crc32c of bytes [0, REGION) with this field 0
 *  16 u32 segment size (1 MiB)  20 u32 segment header size (8 KiB: two copies)  24 u32 lines per segment (254)
 *  28 u32 number of segments    32 u32 cache id   36 u32 number of volumes (1..127)
 *  40 u64 format nonce (random, copied into every segment header)   48 u64 format time (ms since epoch)
 * offset 4096: volume table, 256 bytes an entry ({@link VolumeEntry}), in device id order
 * </pre>
 */
public record Superblock(int nrSegments, int cacheId, long nonce, long formatTimeMillis, List<VolumeEntry> volumes) {
    public static final long MAGIC = 0x42535453_4F4F4257L; // "WBOOSTSB" little-endian
    public static final short VERSION = 2;
    public static final int VOLUME_TABLE_OFFSET = 4096;
    public static final int VOLUME_ENTRY_SIZE = VolumeEntry.SIZE;
    /** Bytes covered by the header's CRC: block 0 and a volume table of 127 entries, rounded to 4 KiB. */
    public static final int REGION = 40960;
    /**
     * Where a rewrite of the header (an accepted moved backing store) first puts the new
     * header whole, so that a rewrite cut short by a power loss leaves one valid copy.
     */
    public static final long SPARE_OFFSET = 72 * 1024;

    public Superblock {
        volumes = List.copyOf(volumes);
        if (volumes.isEmpty() || volumes.size() > Layout.MAX_DEVICE_ID) {
            throw new IllegalArgumentException("a cache needs 1.." + Layout.MAX_DEVICE_ID + " volumes, got " + volumes.size());
        }
        if (nrSegments < 2) {
            throw new IllegalArgumentException("a cache needs at least 2 segments, got " + nrSegments);
        }
    }

    /** The same cache with another volume table: the newest {@link VolumeTable} copy's, or other paths or identities. */
    public Superblock withVolumes(List<VolumeEntry> newVolumes) {
        return new Superblock(nrSegments, cacheId, nonce, formatTimeMillis, newVolumes);
    }

    /** Whether {@code region} starts with this format's magic: a header, valid or not. */
    public static boolean hasMagic(ByteBuffer region) {
        return region.capacity() >= REGION && region.duplicate().order(ByteOrder.LITTLE_ENDIAN).getLong(0) == MAGIC;
    }

    public ByteBuffer encode() {
        ByteBuffer b = ByteBuffer.allocate(REGION).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, MAGIC);
        b.putShort(8, VERSION);
        b.putInt(16, Layout.SEGMENT_SIZE);
        b.putInt(20, Layout.SEGMENT_HEADER_SIZE);
        b.putInt(24, Layout.LINES_PER_SEGMENT);
        b.putInt(28, nrSegments);
        b.putInt(32, cacheId);
        b.putInt(36, volumes.size());
        b.putLong(40, nonce);
        b.putLong(48, formatTimeMillis);
        putVolumes(b, volumes);
        b.putInt(12, crc(b));
        return b;
    }

    /** The volume entries at {@link #VOLUME_TABLE_OFFSET}: the same bytes in the header and in a {@link VolumeTable} copy. */
    static void putVolumes(ByteBuffer b, List<VolumeEntry> volumes) {
        int off = VOLUME_TABLE_OFFSET;
        for (VolumeEntry v : volumes) {
            v.encode(b, off);
            off += VOLUME_ENTRY_SIZE;
        }
    }

    static List<VolumeEntry> getVolumes(ByteBuffer b, int nrVolumes) throws FormatException {
        List<VolumeEntry> volumes = new ArrayList<>();
        int off = VOLUME_TABLE_OFFSET;
        for (int i = 0; i < nrVolumes; i++, off += VOLUME_ENTRY_SIZE) {
            int dev = Byte.toUnsignedInt(b.get(off));
            if (dev < Layout.MIN_DEVICE_ID || dev > Layout.MAX_DEVICE_ID) {
                throw new FormatException("superblock volume table names device id " + dev);
            }
            volumes.add(VolumeEntry.decode(b, off));
        }
        return volumes;
    }

    public static Superblock decode(ByteBuffer src) throws FormatException {
        ByteBuffer b = withMagic(src);
        if (b.getShort(8) == 1) {
            throw new UnsupportedVersionException(1, "the cache holds format version 1, written by an earlier writeboost; this build reads and "
                    + "writes version " + VERSION + " (packed flushes) and will not guess at the old layout. Upgrade it in place: "
                    + "`fuse-mount upgrade --cache CACHE --backing NAME=PATH ...` writes its dirty data back to the backing stores "
                    + "and formats it as version " + VERSION + "; nothing was changed");
        }
        if (b.getShort(8) != VERSION) {
            throw new UnsupportedVersionException(b.getShort(8), "superblock format version " + b.getShort(8)
                    + " is not supported (this build reads " + VERSION + ")");
        }
        return decodeFields(b, Layout.SEGMENT_HEADER_SIZE, Layout.LINES_PER_SEGMENT, VERSION);
    }

    /**
     * The superblock of a format version 1 cache (for {@link FormatV1}): the same fields and
     * checksum, a geometry of one 4 KiB segment header and 255 lines a segment.
     */
    static Superblock decodeVersion1(ByteBuffer src) throws FormatException {
        ByteBuffer b = withMagic(src);
        if (b.getShort(8) != 1) {
            throw new FormatException("superblock format version " + b.getShort(8) + " is not version 1");
        }
        return decodeFields(b, FormatV1.SEGMENT_HEADER_SIZE, FormatV1.LINES_PER_SEGMENT, 1);
    }

    private static ByteBuffer withMagic(ByteBuffer src) throws FormatException {
        ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.capacity() < REGION || b.getLong(0) != MAGIC) {
            throw new FormatException("no writeboost superblock (bad magic): not a formatted cache device");
        }
        return b;
    }

    private static Superblock decodeFields(ByteBuffer b, int headerSize, int linesPerSegment, int version) throws FormatException {
        if (b.getInt(12) != crc(b)) {
            throw new FormatException("superblock checksum mismatch: the superblock is corrupt");
        }
        if (b.getInt(16) != Layout.SEGMENT_SIZE || b.getInt(20) != headerSize || b.getInt(24) != linesPerSegment) {
            throw new FormatException("superblock geometry (segment size " + b.getInt(16) + ") differs from format version " + version);
        }
        int nrVolumes = b.getInt(36);
        if (nrVolumes < 1 || nrVolumes > Layout.MAX_DEVICE_ID) {
            throw new FormatException("superblock volume count " + nrVolumes + " out of range");
        }
        List<VolumeEntry> volumes = getVolumes(b, nrVolumes);
        try {
            return new Superblock(b.getInt(28), b.getInt(32), b.getLong(40), b.getLong(48), volumes);
        } catch (IllegalArgumentException e) {
            throw new FormatException("superblock is inconsistent: " + e.getMessage());
        }
    }

    /** CRC-32C of bytes [0, REGION) with the field at 12 taken as 0 (the header's and a {@link VolumeTable} copy's). */
    static int crc(ByteBuffer b) {
        CRC32C crc = new CRC32C();
        Crc.update(crc, b, 0, 12);
        crc.update(new byte[4]);
        Crc.update(crc, b, 16, REGION - 16);
        return (int) crc.getValue();
    }
}
