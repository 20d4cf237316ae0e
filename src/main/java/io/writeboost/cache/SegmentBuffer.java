package io.writeboost.cache;

import io.writeboost.format.Layout;

import java.nio.ByteBuffer;

/**
 * One 1 MiB RAM segment: header block plus 255 line slots, 4 KiB aligned so it can also be
 * written with O_DIRECT. Owned by the {@link SegmentLog} while open, by the flusher once sealed.
 */
final class SegmentBuffer {
    private final ByteBuffer data;
    private long id;
    private int slot;
    private int nrLines;

    SegmentBuffer() {
        data = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE + Layout.LINE_SIZE).alignedSlice(Layout.LINE_SIZE);
    }

    void open(long id, int slot) {
        this.id = id;
        this.slot = slot;
        this.nrLines = 0;
    }

    /** The whole buffer, header first; callers use absolute puts and gets or duplicates. */
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

    /** Byte offset of line {@code k} of this segment inside the buffer. */
    static int lineOffset(int k) {
        return Layout.SEGMENT_HEADER_SIZE + k * Layout.LINE_SIZE;
    }

    /** Byte offset on the cache device of cache line {@code line} ({@code slot * 255 + k}). */
    static long deviceOffset(int line) {
        return Layout.slotOffset(line / Layout.LINES_PER_SEGMENT) + lineOffset(line % Layout.LINES_PER_SEGMENT);
    }
}
