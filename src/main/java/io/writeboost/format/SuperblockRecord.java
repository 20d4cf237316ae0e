package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The run-time part of the superblock, kept in two 4 KiB copies at {@link #OFFSET_A} and
 * {@link #OFFSET_B}. Writes alternate between them, so a torn write leaves the other copy,
 * one generation older, intact; the reader takes the valid copy with the higher sequence
 * number. docs/FORMAT.md has the layout.
 *
 * <p>Record version 2 adds a flag that makes the next start verify every vouched segment, and
 * the data loss an operator accepted since the format (lost_lines and up to
 * {@link #MAX_STORED_RANGES} ranges), so that the status keeps showing it after restarts.
 * Version 1 records (no such fields, CRC over bytes [0, 40)) are still read.
 *
 * @param verifyAtStart a segment this record vouches for failed its checksum in the run that wrote it
 * @param lostLines     dirty lines given up with --accept-data-loss since the format
 * @param lostRangesTotal how many ranges those lines formed (only the first {@link #MAX_STORED_RANGES} are stored)
 * @param cacheMode     the cache_mode knob's value when the record was written (0, write-back, in records written
 *                      before the field existed: the byte was reserved and 0)
 * @param abandoned     the engine failed over from this cache device: its log is older than what the backing stores
 *                      hold since, and a start must refuse it (docs/ENGINE.md, "Failure")
 */
public record SuperblockRecord(long sequence, long nonce, long lastMigratedId, long lastFlushedId, boolean cleanShutdown,
                               boolean verifyAtStart, long lostLines, long lostRangesTotal, List<LostRange> lostRanges,
                               int cacheMode, boolean abandoned) {
    public static final int MAGIC = 0x43524257; // "WBRC"
    public static final short VERSION = 2;
    public static final long OFFSET_A = 64 * 1024;
    public static final long OFFSET_B = 68 * 1024;
    public static final int SIZE = 4096;
    public static final int FLAG_CLEAN = 1;
    public static final int FLAG_VERIFY_AT_START = 2;
    public static final int FLAG_ABANDONED = 4;
    /**
     * The version an abandoned record is written with: a build that knows nothing of the flag
     * takes such a copy as invalid, and with both copies invalid it refuses to start instead of
     * replaying the abandoned log (docs/FORMAT.md, "Superblock record").
     */
    public static final short VERSION_ABANDONED = 3;
    private static final int CRC_OFFSET = 40;
    private static final int CACHE_MODE_OFFSET = 60;
    private static final int RANGES_OFFSET = 64;
    private static final int RANGE_SIZE = 24;
    public static final int MAX_STORED_RANGES = (SIZE - RANGES_OFFSET) / RANGE_SIZE;

    public SuperblockRecord {
        lostRanges = List.copyOf(lostRanges.subList(0, Math.min(lostRanges.size(), MAX_STORED_RANGES)));
    }

    /** A record without data loss or pending verification. */
    public SuperblockRecord(long sequence, long nonce, long lastMigratedId, long lastFlushedId, boolean cleanShutdown) {
        this(sequence, nonce, lastMigratedId, lastFlushedId, cleanShutdown, false, 0, 0, List.of(), 0, false);
    }

    public long offset() {
        return (sequence & 1) == 0 ? OFFSET_A : OFFSET_B;
    }

    public ByteBuffer encode() {
        ByteBuffer b = ByteBuffer.allocateDirect(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, MAGIC);
        b.putShort(4, abandoned ? VERSION_ABANDONED : VERSION);
        b.putShort(6, (short) ((cleanShutdown ? FLAG_CLEAN : 0) | (verifyAtStart ? FLAG_VERIFY_AT_START : 0)
                | (abandoned ? FLAG_ABANDONED : 0)));
        b.putLong(8, sequence);
        b.putLong(16, nonce);
        b.putLong(24, lastMigratedId);
        b.putLong(32, lastFlushedId);
        b.putInt(44, (int) Math.min(Integer.MAX_VALUE, lostRangesTotal));
        b.putLong(48, lostLines);
        b.putInt(56, lostRanges.size());
        b.put(CACHE_MODE_OFFSET, (byte) cacheMode);
        for (int i = 0; i < lostRanges.size(); i++) {
            LostRange r = lostRanges.get(i);
            int at = RANGES_OFFSET + i * RANGE_SIZE;
            b.put(at, (byte) r.device());
            b.putLong(at + 8, r.firstSector());
            b.putLong(at + 16, r.lastSector());
        }
        b.putInt(CRC_OFFSET, crc(b, SIZE));
        return b;
    }

    /** The record in {@code b}, or null when the copy is missing, torn or from another format. */
    public static SuperblockRecord decode(ByteBuffer src, long expectedNonce) {
        ByteBuffer b = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.limit() < SIZE || b.getInt(0) != MAGIC || b.getLong(16) != expectedNonce) {
            return null;
        }
        int flags = b.getShort(6);
        long seq = b.getLong(8), migrated = b.getLong(24), flushed = b.getLong(32);
        switch (b.getShort(4)) {
            case 1 -> {
                // Written before record version 2: the CRC covers the first 40 bytes only.
                if (b.getInt(CRC_OFFSET) != crc(b, CRC_OFFSET)) {
                    return null;
                }
                return new SuperblockRecord(seq, expectedNonce, migrated, flushed, (flags & FLAG_CLEAN) != 0);
            }
            case VERSION, VERSION_ABANDONED -> {
                int stored = b.getInt(56);
                if (b.getInt(CRC_OFFSET) != crc(b, SIZE) || stored < 0 || stored > MAX_STORED_RANGES) {
                    return null;
                }
                List<LostRange> ranges = new ArrayList<>(stored);
                for (int i = 0; i < stored; i++) {
                    int at = RANGES_OFFSET + i * RANGE_SIZE;
                    ranges.add(new LostRange(Byte.toUnsignedInt(b.get(at)), b.getLong(at + 8), b.getLong(at + 16)));
                }
                return new SuperblockRecord(seq, expectedNonce, migrated, flushed, (flags & FLAG_CLEAN) != 0,
                        (flags & FLAG_VERIFY_AT_START) != 0, b.getLong(48), Integer.toUnsignedLong(b.getInt(44)), ranges,
                        Byte.toUnsignedInt(b.get(CACHE_MODE_OFFSET)),
                        (flags & FLAG_ABANDONED) != 0 || b.getShort(4) == VERSION_ABANDONED);
            }
            default -> {
                return null;
            }
        }
    }

    /** CRC-32C of bytes [0, length) with the CRC field taken as 0 (for version 1, [0, 40)). */
    private static int crc(ByteBuffer b, int length) {
        CRC32C crc = new CRC32C();
        Crc.update(crc, b, 0, CRC_OFFSET);
        if (length > CRC_OFFSET) {
            crc.update(new byte[4]);
            Crc.update(crc, b, CRC_OFFSET + 4, length - CRC_OFFSET - 4);
        }
        return (int) crc.getValue();
    }
}
