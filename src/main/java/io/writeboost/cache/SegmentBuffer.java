package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * One 1 MiB RAM segment laid out as its ring slot (two header copies, then 254 line slots),
 * 4 KiB aligned so it can be written with O_DIRECT. Owned by the {@link SegmentLog} while
 * open, by the device holder while it writes it.
 *
 * <p>A segment reaches the device in one or more writes: each flush that finds lines in the
 * open segment appends them (lines written so far stay where they are) with a new header
 * copy, and the last write follows the seal. Lines below {@link #frozenLines()} are part of a
 * write made or under way and never change in RAM again: a newer write of their key takes a
 * new line, so that a crash can only cut a segment back to what an earlier write made
 * durable, never damage it.
 *
 * <p>Not thread-safe: the counters are guarded by the {@link EngineLock}. Only the device holder
 * writes {@link #writtenLines()} and the copy's sync count (under the lock) and reads them
 * (without it: taking the device under the lock orders it after the previous holder); the
 * running data CRC is the holder's alone.
 */
final class SegmentBuffer {
    private final EngineLock lock;
    private final ByteBuffer data;
    private long id;
    private int slot;
    private int nrLines;
    /** Lines a device write covers or covered: not to be modified in place. */
    private int frozenLines;
    /** Lines on the device (written, not necessarily synced). */
    private int writtenLines;
    /** Sequence number of the next header copy. */
    private int nextSeq;
    /** Sync count when this segment's last header copy was written (-1: none yet). */
    private long copyEpoch;
    /** Header copy sequence number of the final write, set at seal. */
    private int sealSeq = -1;
    private final CRC32C dataCrc = new CRC32C();
    private int crcLines;

    SegmentBuffer(EngineLock lock) {
        this.lock = lock;
        data = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE + Layout.LINE_SIZE).alignedSlice(Layout.LINE_SIZE);
    }

    void open(long id, int slot) {
        this.id = id;
        this.slot = slot;
        this.nrLines = 0;
        this.frozenLines = 0;
        this.writtenLines = 0;
        this.nextSeq = 0;
        this.copyEpoch = -1;
        this.sealSeq = -1;
        this.dataCrc.reset();
        this.crcLines = 0;
        // The first write is one run from the slot's start: the copy not written must not
        // carry a stale header of this buffer's previous segment.
        for (int i = 0; i < Layout.SEGMENT_HEADER_SIZE; i += 8) {
            data.putLong(i, 0L);
        }
    }

    /** The whole buffer, laid out as a slot; callers use absolute puts and gets or duplicates. */
    ByteBuffer data() {
        return data;
    }

    long id() {
        return id;
    }

    int slot() {
        return slot;
    }

    int nrLines() {
        return nrLines;
    }

    /** Takes the next line of the segment (it must not be full); returns its index in the segment. */
    int addLine() {
        return nrLines++;
    }

    boolean full() {
        return nrLines == Layout.LINES_PER_SEGMENT;
    }

    int frozenLines() {
        return frozenLines;
    }

    int writtenLines() {
        return writtenLines;
    }

    /** Lines the next write must carry: everything not yet frozen. */
    boolean hasUnfrozenLines() {
        return nrLines > frozenLines;
    }

    /** Lock held: freezes every line for the next write and returns that write's header copy sequence number. */
    int freezeForWrite() {
        lock.assertHeld();
        frozenLines = nrLines;
        return nextSeq++;
    }

    /** Lock held: the segment takes no more lines; returns the sequence number of its final header copy. */
    int seal() {
        lock.assertHeld();
        sealSeq = freezeForWrite();
        return sealSeq;
    }

    /** Sequence number of the final header copy (after {@link #seal}). */
    int sealSeq() {
        return sealSeq;
    }

    /** Never appended to: its one write can join a gathered write of consecutive full segments. */
    boolean writtenWhole() {
        return sealSeq == 0;
    }

    /**
     * Whether a header copy of this segment was written since sync number {@code syncs}
     * began: then no further copy may be written before a sync, since the next one overwrites
     * the slot's other copy, which may be the only durable description of what an earlier
     * flush acknowledged.
     */
    boolean copyUnsyncedAt(long syncs) {
        return copyEpoch == syncs;
    }

    /** Lock held: a write of lines up to {@code lines} and a header copy completed while {@code syncs} syncs had completed. */
    void written(int lines, long syncs) {
        lock.assertHeld();
        writtenLines = lines;
        copyEpoch = syncs;
    }

    /** Device holder: the CRC of lines [0, lines), folding in the lines not yet counted (frozen, so stable). */
    int dataCrcUpTo(int lines) {
        SegmentHeader.updateDataCrc(dataCrc, data, crcLines, lines);
        crcLines = lines;
        return (int) dataCrc.getValue();
    }

    /** Byte offset of line {@code k} of this segment inside the buffer (and inside its slot). */
    static int lineOffset(int k) {
        return SegmentHeader.lineOffset(k);
    }

    /** Byte offset on the cache device of cache line {@code line} ({@code slot * 254 + k}). */
    static long deviceOffset(int line) {
        return Layout.slotOffset(line / Layout.LINES_PER_SEGMENT) + lineOffset(line % Layout.LINES_PER_SEGMENT);
    }
}
