package io.writeboost.format;

/**
 * Fixed geometry of format version 2. Every size here is part of the on-disk format
 * (docs/FORMAT.md); changing one is a format change.
 */
public final class Layout {
    private Layout() {}

    public static final int SECTOR_SIZE = 512;
    public static final int SECTOR_SHIFT = 9;
    public static final int LINE_SIZE = 4096;
    public static final int LINE_SHIFT = 12;
    public static final int SECTORS_PER_LINE = LINE_SIZE / SECTOR_SIZE;
    /** A line whose 8 sectors are all dirty. */
    public static final int FULL_DIRTY = 0xFF;

    public static final int SEGMENT_SIZE = 1 << 20;
    /**
     * Two 4 KiB copies of the segment header lead every slot. Each write of a segment (its
     * first, every append a flush makes, its last) writes one copy, the two in turn, so a
     * torn write can only damage the copy it was writing; the other still describes
     * everything an earlier flush made durable.
     */
    public static final int HEADER_COPY_SIZE = LINE_SIZE;
    public static final int SEGMENT_HEADER_SIZE = 2 * HEADER_COPY_SIZE;
    public static final int LINES_PER_SEGMENT = (SEGMENT_SIZE - SEGMENT_HEADER_SIZE) / LINE_SIZE; // 254

    /** The first MiB of the cache device holds the superblock header and the two record copies. */
    public static final long SUPERBLOCK_REGION_SIZE = 1 << 20;

    /** Device ids are 1..127 as in dm-writeboost; 0 marks an empty header entry. */
    public static final int MIN_DEVICE_ID = 1;
    public static final int MAX_DEVICE_ID = 127;

    /** How many 4 KiB lines sectors [sector, sector + nSectors) touch, in part or whole. */
    public static long linesSpanned(long sector, long nSectors) {
        return ((sector + nSectors + SECTORS_PER_LINE - 1) / SECTORS_PER_LINE) - sector / SECTORS_PER_LINE;
    }

    /** Where {@code sector} lies in its 4 KiB line: 0 .. {@link #SECTORS_PER_LINE} - 1. */
    public static int sectorInLine(long sector) {
        return (int) (sector & (SECTORS_PER_LINE - 1));
    }

    /**
     * How many sectors of [sector, end) lie in {@code sector}'s line: a request's share of
     * each line it touches, walking it line by line.
     */
    public static int sectorsInLine(long sector, long end) {
        return (int) Math.min(SECTORS_PER_LINE - sectorInLine(sector), end - sector);
    }

    /** Byte offset on the cache device of the ring slot that holds segment slot {@code slot}. */
    public static long slotOffset(int slot) {
        return SUPERBLOCK_REGION_SIZE + (long) slot * SEGMENT_SIZE;
    }

    /** Number of whole segments a cache device of {@code deviceBytes} can hold. */
    public static long segmentsFor(long deviceBytes) {
        return deviceBytes <= SUPERBLOCK_REGION_SIZE ? 0 : (deviceBytes - SUPERBLOCK_REGION_SIZE) / SEGMENT_SIZE;
    }

    /** Ring slot of segment {@code id} (ids start at 1). */
    public static int slotOf(long id, int nrSegments) {
        return (int) ((id - 1) % nrSegments);
    }

    /**
     * How many ring slots ahead of the last synced segment the engine may open a segment: a
     * slot opened is reclaimed (its clean lines leave the index) before its new segment is on
     * the device, so after a crash the oldest this many segments of the ring may be ones the
     * running engine had already evicted. A format constant, a function of the ring size alone,
     * so that every start knows the bound whatever build or knobs ran before
     * (docs/FORMAT.md, "Clean entries"). An eighth of the ring, at most 64 (the RAM buffers a
     * default engine may fill in a burst), but at least 8 where the ring has 16 slots or more, so
     * that a small ring too leaves the flusher room for its sync before a reader's admission or a
     * writer finds the next slot held up by it.
     */
    public static int unsyncedReclaims(int nrSegments) {
        return Math.max(1, Math.max(Math.min(8, nrSegments / 2), Math.min(64, nrSegments / 8)));
    }
}
