package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;

/**
 * The line table's keys, 6 bytes a line instead of a {@link LineKey}'s 8: bits 0..31 of the
 * key in an {@code int}, and in a {@code short} its tombstone bit, its device id and bits
 * 32..39 of its backing line number. A {@link LineKey} has room for 56 bits of line number, as
 * the segment header's sector field does; 40 bits number the lines of a volume up to
 * {@link #MAX_VOLUME_BYTES}, the largest the engine serves ({@code CacheEngine.checkVolume}).
 * A key of a higher line cannot be stored and is refused, never truncated into another line's.
 *
 * <p>Not thread-safe: the engine lock guards it.
 */
final class LineKeys {
    /** Lines numbered below 2^40 fit: 4 PiB of 4 KiB lines. */
    static final long MAX_VOLUME_BYTES = 1L << (40 + Layout.LINE_SHIFT);
    /** Line-number bits 40..55, which must be 0. */
    private static final long UNSTORED = ((1L << 56) - 1) & -(1L << 40);

    private final int[] low;
    private final short[] high;

    LineKeys(int lines) {
        low = new int[lines];
        high = new short[lines];
    }

    int length() {
        return low.length;
    }

    long heapBytes() {
        return (long) low.length * (Integer.BYTES + Short.BYTES);
    }

    /** The key of {@code line} (0: none). */
    long get(int line) {
        return ((long) (high[line] & 0xFF00) << 48) | ((long) (high[line] & 0xFF) << 32) | (low[line] & 0xFFFFFFFFL);
    }

    void set(int line, long key) {
        high[line] = high(key);
        low[line] = low(key);
    }

    /** The device id of {@code line}'s key. */
    int device(int line) {
        return (high[line] >>> 8) & 0x7F;
    }

    /** Whether {@code line} holds the key whose {@link #low} and {@link #high} parts are given. */
    boolean holds(int line, int low, short high) {
        return this.low[line] == low && this.high[line] == high;
    }

    static int low(long key) {
        return (int) key;
    }

    static short high(long key) {
        if ((key & UNSTORED) != 0) {
            throw new IllegalArgumentException("line " + LineKey.line(key) + " of device " + LineKey.device(key)
                    + " lies beyond the " + (MAX_VOLUME_BYTES >> 50) + " PiB a volume may have");
        }
        return (short) (((key >>> 48) & 0xFF00) | ((key >>> 32) & 0xFF));
    }
}
