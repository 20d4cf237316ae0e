package io.writeboost.cache;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.Rig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A warm start (docs/FORMAT.md, "Clean entries"): clean lines the engine had indexed come back
 * at the next start, from segments still to write back and from segments written back already,
 * and what superseded them in the log (a write, a discard) keeps them from coming back.
 */
class WarmRestartTest {
    static final int VOLUME_BYTES = 16 << 20;
    static final int HOT = 300;

    private Rig rig;
    private final Random rnd = new Random(7);

    @AfterEach
    void stop() throws IOException {
        if (rig != null) {
            rig.engine.close();
        }
    }

    private void start() throws IOException {
        rig = new Rig(32, 1, VOLUME_BYTES, new EngineConfig());
        byte[] initial = new byte[VOLUME_BYTES];
        rnd.nextBytes(initial);
        rig.backings.get(1).write(ByteBuffer.wrap(initial), 0);
        rig.backings.get(1).sync();
    }

    /** Line {@code i} of the hot set: every third line, so that no read continues a sequential run. */
    private static long hot(int i) {
        return 3L * i + 5;
    }

    private byte[] read(long lineNo) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        rig.engine.read(1, lineNo * 8, 8, b);
        return b.array();
    }

    private byte[] backing(long lineNo) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        rig.backings.get(1).read(b, lineNo * 4096);
        return b.array();
    }

    private void readHotSet() throws IOException {
        for (int i = 0; i < HOT; i++) {
            read(hot(i));
        }
    }

    /** Reads the hot set once more and returns how many line reads clean lines served. */
    private long firstPassHits() throws IOException {
        long before = rig.engine.status().readHitsClean();
        for (int i = 0; i < HOT; i++) {
            assertArrayEquals(backing(hot(i)), read(hot(i)), "hot line " + i + " reads what the backing store holds");
        }
        return rig.engine.status().readHitsClean() - before;
    }

    @Test
    void aHotSetReadTwiceHitsRightAfterACleanStop() throws Exception {
        start();
        readHotSet();
        readHotSet(); // the second access admits (read_cache_second_access)
        assertEquals(HOT, rig.engine.status().cleanLines());
        rig.restart();
        Status st = rig.engine.status();
        assertEquals(HOT, st.warmCleanLines(), "the start kept every clean line");
        assertEquals(HOT, st.cleanLines());
        assertEquals(HOT, firstPassHits(), "the first pass after the start hits");
        long readHits = st.stat(false, true, false, true);
        assertEquals(HOT, rig.engine.status().stat(false, true, false, true) - readHits, "dm-writeboost's stat counts the hits");
    }

    @Test
    void cleanLinesOfSegmentsWrittenBackComeBackAndWhatSupersededThemStaysSuperseded() throws Exception {
        start();
        readHotSet();
        readHotSet();
        // Line 0 of the hot set written (a dirty copy after the clean one), line 1 discarded,
        // then everything written back: the log's clean entries now sit at or before last_migrated.
        byte[] written = new byte[4096];
        rnd.nextBytes(written);
        rig.engine.write(1, hot(0) * 8, 8, ByteBuffer.wrap(written));
        rig.engine.discard(1, hot(1) * 8, 8);
        rig.engine.drain();
        Status before = rig.engine.status();
        assertEquals(before.lastFlushedId(), before.lastMigratedId(), "every segment written back");
        rig.restart();
        Status st = rig.engine.status();
        assertEquals(HOT - 2, st.warmCleanLines(), "the written line and the discarded one are not kept");
        assertArrayEquals(written, read(hot(0)));
        assertArrayEquals(new byte[4096], read(hot(1)));
        long hits = rig.engine.status().readHitsClean();
        for (int i = 2; i < HOT; i++) {
            assertArrayEquals(backing(hot(i)), read(hot(i)), "hot line " + i);
        }
        assertEquals(HOT - 2, rig.engine.status().readHitsClean() - hits);
    }

    /**
     * A segment written back before the start whose data no longer matches its checksum: its
     * clean lines are dropped when it is verified, before any is read; the engine goes on (they
     * are copies of what the backing store holds), and reads return the backing store's data.
     */
    @Test
    void aWrittenBackSegmentThatFailsItsChecksumLosesOnlyItsCleanLines() throws Exception {
        start();
        readHotSet();
        readHotSet(); // 254 clean lines in segment 1, the rest in segment 2
        rig.engine.drain();
        rig.engine.close();
        byte[] garbage = new byte[4096];
        rnd.nextBytes(garbage);
        rig.cache.write(ByteBuffer.wrap(garbage), io.writeboost.format.Layout.slotOffset(0)
                + io.writeboost.format.SegmentHeader.lineOffset(0));
        rig.cache.sync();
        rig.power = new Object();
        rig.cache = rig.cache.reopen(rig.power);
        rig.backings.replaceAll((k, v) -> v.reopen(rig.power));
        rig.open();
        assertEquals(HOT, rig.engine.status().warmCleanLines(), "kept from the headers, before verification");
        for (int i = 0; i < HOT; i++) {
            assertArrayEquals(backing(hot(i)), read(hot(i)), "hot line " + i);
        }
        Status st = rig.engine.status();
        assertEquals(null, st.failure(), "the engine goes on");
        assertEquals(HOT - io.writeboost.format.Layout.LINES_PER_SEGMENT, st.cleanLines(), "segment 1's clean lines were dropped");
        rig.engine.flush();
    }

    @Test
    void aLineReadWhileABypassWasUnsyncedIsNotKept() throws Exception {
        start();
        rig.engine.setKnob(Knob.READ_CACHE_SECOND_ACCESS, 0);
        rig.engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
        byte[] v2 = new byte[4096];
        rnd.nextBytes(v2);
        rig.engine.write(1, 40 * 8, 8, ByteBuffer.wrap(v2)); // around the cache; not durable until a flush
        assertArrayEquals(v2, read(40));
        read(90); // admitted too, but the store still has the bypass unsynced
        assertEquals(2, rig.engine.status().cleanLines());
        rig.engine.flush(); // syncs the store: reads from now on are durable
        read(91);
        assertEquals(3, rig.engine.status().cleanLines());
        rig.restart();
        assertEquals(1, rig.engine.status().warmCleanLines(), "only the line read after the store was synced");
        assertArrayEquals(v2, read(40));
    }

    /**
     * A slot reclaimed for a new segment evicts its clean lines at once, but its old segment
     * stays on the device until the new one is written: a bypass over an evicted line logs no
     * tombstone, and after a crash the old segment's clean entry is still there. The start must
     * leave it out (the ring's oldest slots, below the floor); kept, it would serve the data
     * from before the bypass, which the backing store no longer holds.
     */
    @Test
    void aCleanLineEvictedByAReclaimedSlotIsNotKeptAfterACrash() throws Exception {
        rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0)
                .knob(Knob.SEQUENTIAL_CUTOFF, 0)); // no stream goes around the cache (its drops would be logged)
        long lineNo = 4000;
        read(lineNo);
        rig.engine.flushNow();
        assertEquals(1, rig.engine.status().cleanLines());
        byte[] data = new byte[4096];
        for (long l = 0; rig.engine.status().cleanLines() > 0; l++) {
            assertTrue(l < 8 * 254 * 2, "the ring turned over");
            assertTrue(rig.engine.status().bypassedWrites() == 0);
            rnd.nextBytes(data);
            rig.engine.write(1, l * 8, 8, ByteBuffer.wrap(data));
        }
        // The slot that held the clean line is now the open segment's, which is only in RAM.
        rig.engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
        byte[] v2 = new byte[4096];
        rnd.nextBytes(v2);
        rig.engine.write(1, lineNo * 8, 8, ByteBuffer.wrap(v2)); // around the cache: nothing cached to drop
        rig.backings.get(1).sync(); // durable, as an O_DSYNC bypass is at once
        rig.crashAndRecover(rnd);
        assertArrayEquals(v2, read(lineNo), "the evicted clean line did not come back over the bypass");
        assertEquals(0, rig.engine.status().warmCleanLines());
    }

    @Test
    void aCrashLeavesTheRingsOldestSlotsOut() throws Exception {
        start();
        readHotSet();
        readHotSet();
        rig.engine.flush();
        rig.crashAndRecover(rnd);
        Status st = rig.engine.status();
        assertEquals(HOT, st.warmCleanLines(), "far from the ring's oldest slots, a crash keeps them all");
        assertTrue(firstPassHits() == HOT);
    }
}
