package io.writeboost.format;

/** Walks the runs of consecutive set bits in a line's 8-bit sector mask, without allocating. */
public final class SectorRuns {
    private SectorRuns() {}

    /** The first set bit at or after {@code from}, or 8 when there is none. */
    public static int start(int bits, int from) {
        int rest = (bits & 0xFF) >>> from;
        return rest == 0 ? 8 : from + Integer.numberOfTrailingZeros(rest);
    }

    /** The end (exclusive) of the run of set bits that begins at {@code from}. */
    public static int end(int bits, int from) {
        return from + Integer.numberOfTrailingZeros(~((bits & 0xFF) >>> from));
    }
}
