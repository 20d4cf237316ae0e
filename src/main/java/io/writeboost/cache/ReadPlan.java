package io.writeboost.cache;

/**
 * Scratch state of one read, reused across reads: the lines to fetch from the cache device
 * (with the segment id to validate them against) and the sector runs to fetch from the
 * backing store, in request-relative sectors.
 */
final class ReadPlan {
    int cacheLines;
    int[] lines = new int[32];
    long[] segments = new long[32];
    int[] bits = new int[32];
    int[] dstOffsets = new int[32];

    int backingRuns;
    long[] runStart = new long[16];
    int[] runLength = new int[16];
    private long openStart = -1;
    private int openLength;

    void reset() {
        cacheLines = 0;
        backingRuns = 0;
        openStart = -1;
        openLength = 0;
    }

    void addCacheLine(int line, long segment, int lineBits, int dstOffset) {
        if (cacheLines == lines.length) {
            int n = lines.length * 2;
            lines = java.util.Arrays.copyOf(lines, n);
            segments = java.util.Arrays.copyOf(segments, n);
            bits = java.util.Arrays.copyOf(bits, n);
            dstOffsets = java.util.Arrays.copyOf(dstOffsets, n);
        }
        lines[cacheLines] = line;
        segments[cacheLines] = segment;
        bits[cacheLines] = lineBits;
        dstOffsets[cacheLines] = dstOffset;
        cacheLines++;
    }

    /**
     * Records which of sectors {@code first..first+n-1} of a line need the backing store;
     * {@code rel} is the request-relative index of sector {@code first}.
     */
    void markBacking(long rel, int needBits, int first, int n) {
        for (int i = first; i < first + n; i++) {
            long r = rel + (i - first);
            if ((needBits & (1 << i)) != 0) {
                if (openStart >= 0 && openStart + openLength == r) {
                    openLength++;
                } else {
                    closeBackingRun();
                    openStart = r;
                    openLength = 1;
                }
            } else {
                closeBackingRun();
            }
        }
    }

    void closeBackingRun() {
        if (openStart < 0) {
            return;
        }
        if (backingRuns == runStart.length) {
            runStart = java.util.Arrays.copyOf(runStart, backingRuns * 2);
            runLength = java.util.Arrays.copyOf(runLength, backingRuns * 2);
        }
        runStart[backingRuns] = openStart;
        runLength[backingRuns] = openLength;
        backingRuns++;
        openStart = -1;
        openLength = 0;
    }
}
