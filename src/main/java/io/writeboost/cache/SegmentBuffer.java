package io.writeboost.cache;

import io.writeboost.format.Layout;

import java.nio.ByteBuffer;

/**
 * One 1 MiB RAM segment: header block plus 255 line slots, 4 KiB aligned so it can also be
 * written with O_DIRECT. Owned by the engine while open, by the flusher once sealed.
 */
final class SegmentBuffer {
    final ByteBuffer data;
    long id;
    int slot;
    int nrLines;

    SegmentBuffer() {
        data = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE + Layout.LINE_SIZE).alignedSlice(Layout.LINE_SIZE);
    }

    void open(long id, int slot) {
        this.id = id;
        this.slot = slot;
        this.nrLines = 0;
    }

    boolean full() {
        return nrLines == Layout.LINES_PER_SEGMENT;
    }

    /** Byte offset of line {@code k} of this segment inside the buffer. */
    static int lineOffset(int k) {
        return Layout.SEGMENT_HEADER_SIZE + k * Layout.LINE_SIZE;
    }
}
