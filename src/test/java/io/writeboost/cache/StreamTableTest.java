package io.writeboost.cache;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which writes {@link StreamTable} takes for one sequential stream (sequential_cutoff's input). */
class StreamTableTest {
    private static final int PIECE = 256;                 // sectors: one 128 KiB FUSE request
    private static final long CUTOFF = 8192;              // sectors: the default 4 MiB
    private static final long MIB = 2048;                 // sectors

    /** A table whose lock the test thread holds, as its contract asks. */
    private static StreamTable table() {
        EngineLock lock = new EngineLock();
        lock.lock();
        return new StreamTable(lock);
    }

    @Test
    void piecesInOrderGrowOneStream() {
        StreamTable t = table();
        long len = 0;
        for (int i = 0; i < 64; i++) {
            len = t.observe(1, 1000 + (long) i * PIECE, PIECE);
        }
        assertEquals(64L * PIECE, len);
    }

    @Test
    void aPieceAheadOfItsPredecessorsCountsWithTheStreamBehindIt() {
        StreamTable t = table();
        for (int i = 0; i < 32; i++) {
            t.observe(1, (long) i * PIECE, PIECE);
        }
        // Pieces 33 and 34 arrive before 32.
        assertEquals(33L * PIECE, t.observe(1, 33L * PIECE, PIECE));
        assertEquals(34L * PIECE, t.observe(1, 34L * PIECE, PIECE));
        assertEquals(35L * PIECE, t.observe(1, 32L * PIECE, PIECE), "the gap filled: one stream again");
    }

    /**
     * ext4 leaves backup superblocks and reserved GDT blocks (about 1 MiB) inside its data
     * area; a copy's stream continues after them. Every piece after the hole, not only the
     * first, must count with the stream before it (before, the second piece counted only the
     * first one and the next 4 MiB went through the cache).
     */
    @Test
    void aStreamContinuesAcrossAHoleForEveryPieceAfterIt() {
        StreamTable t = table();
        long at = 0;
        for (; at < 64 * MIB; at += PIECE) {
            t.observe(1, at, PIECE);
        }
        at += MIB;
        for (int i = 0; i < 32; i++, at += PIECE) {
            assertTrue(t.observe(1, at, PIECE) >= CUTOFF, "piece " + i + " after the hole");
        }
    }

    /** Other writers (a file system's metadata) between the pieces do not evict the stream behind a continuation (it is used when the continuation grows). */
    @Test
    void otherWritersDoNotEvictTheStreamBehindAContinuation() {
        StreamTable t = table();
        long at = 0;
        for (; at < 8 * MIB; at += PIECE) {
            t.observe(1, at, PIECE);
        }
        at += MIB;
        long other = 1L << 30;
        for (int i = 0; i < 32; i++, at += PIECE) {
            for (int k = 0; k < StreamTable.STREAMS - 3; k++) {
                t.observe(1, other, 8);
                other += 1000;
            }
            assertTrue(t.observe(1, at, PIECE) >= CUTOFF, "piece " + i + " after the hole");
        }
    }

    /** A flush forgets short streams, but not a short continuation of a long one. */
    @Test
    void aFlushKeepsAContinuationOfALongStream() {
        StreamTable t = table();
        long at = 0;
        for (; at < 8 * MIB; at += PIECE) {
            t.observe(1, at, PIECE);
        }
        long ahead = at + 2 * PIECE;
        t.observe(1, ahead, PIECE);                      // a piece ahead starts a short fragment
        t.observe(1, 1L << 30, 8);                       // a log write
        t.forgetShort(CUTOFF);
        assertTrue(t.observe(1, ahead + PIECE, PIECE) >= CUTOFF, "the fragment still counts with the stream");
        assertEquals(8, t.observe(1, (1L << 30) + 8, 8), "the short log stream was forgotten");
    }

    @Test
    void rewritingAHotRegionNeverReachesTheCutoff() {
        StreamTable t = table();
        long max = 0;
        for (int pass = 0; pass < 200; pass++) {
            for (long at = 0; at < 2 * MIB; at += PIECE) {
                max = Math.max(max, t.observe(1, at, PIECE));
            }
        }
        assertTrue(max <= 2 * MIB, "longest stream " + max);
    }

    /** Random writes never chain their way up to the cutoff through streams that end just before them. */
    @Test
    void randomWritesNeverReachTheCutoff() {
        StreamTable t = table();
        Random r = new Random(7);
        long max = 0;
        for (int i = 0; i < 500_000; i++) {
            long line = r.nextInt(16384);                // a 64 MiB region, 4 KiB writes
            max = Math.max(max, t.observe(1, line * 8, 8));
            if (i % 64 == 0) {
                t.forgetShort(CUTOFF);
            }
        }
        assertTrue(max < CUTOFF / 16, "longest stream " + max + " sectors");
    }

    /**
     * A small write in the 2 MiB after a long stream does not count it (under ring pressure the
     * cutoff is 64 KiB), nor keeps it alive: it is a random write, not a piece of the copy.
     */
    @Test
    void aSmallWriteAfterALongStreamDoesNotCountIt() {
        StreamTable t = table();
        for (long at = 0; at < 8 * MIB; at += PIECE) {
            t.observe(1, at, PIECE);
        }
        assertEquals(64, t.observe(1, 8 * MIB + 512, 64), "a 32 KiB write 256 KiB after the stream's end");
        for (int k = 0; k < StreamTable.STREAMS; k++) {
            t.observe(1, (1L << 30) + k * 100_000L, 8);  // other writers push the long stream out
            t.observe(1, 8 * MIB + 1024 + k * 64, 8);    // small writes in its shadow do not keep it
        }
        assertTrue(t.observe(1, 8 * MIB + 3072, PIECE) < MIB, "the copy's stream is gone, not kept by small writes");
    }

    @Test
    void volumesHaveTheirOwnStreams() {
        StreamTable t = table();
        for (long at = 0; at < 8 * MIB; at += PIECE) {
            t.observe(1, at, PIECE);
        }
        assertEquals(PIECE, t.observe(2, 8 * MIB, PIECE));
    }
}
