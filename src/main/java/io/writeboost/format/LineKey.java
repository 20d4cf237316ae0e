package io.writeboost.format;

/**
 * A cache line's identity packed into one long: device id in bits 56..62, backing line
 * number (byte offset / 4096) in bits 0..55. Bit 63 marks a discard tombstone in a segment.
 * Zero never names a line, because device ids start at 1.
 */
public final class LineKey {
    private LineKey() {}

    public static final long TOMBSTONE = 1L << 63;
    private static final long LINE_MASK = (1L << 56) - 1;

    public static long of(int deviceId, long lineNo) {
        return ((long) deviceId << 56) | lineNo;
    }

    public static int device(long key) {
        return (int) ((key >>> 56) & 0x7F);
    }

    public static long line(long key) {
        return key & LINE_MASK;
    }

    public static boolean isTombstone(long key) {
        return key < 0;
    }
}
