package io.writeboost.cache;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.QuietLogs;
import io.writeboost.testutil.Rig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.ByteBuffer;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Copy-forward by behaviour: when writeback empties a slot, a hot dirty line (rewritten since
 * it was cached) goes to a newer slot without a backing write and loses its hot bit, so the
 * next lap writes it back; a cold one is written back at once; a clean line read since it was
 * cached stays cached. With copy_forward=0 everything is written back, as before.
 */
@ExtendWith(QuietLogs.class)
class CopyForwardTest {
    private static final int VOLUME = 16 << 20;
    private static final int HOT = 0;
    /** Cold lines written once each: enough lines appended that the budget allows a copy. */
    private static final int COLD = 6;

    @Test
    void aHotDirtyLineIsCopiedForwardAndAColdOneWrittenBack() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME, new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        try {
            CacheEngine engine = rig.engine;
            engine.write(1, HOT * 8L, 8, line(1));
            engine.write(1, HOT * 8L, 8, line(2)); // a rewrite: the line is hot
            for (int i = 1; i <= COLD; i++) {
                engine.write(1, i * 8L, 8, line(10 + i));
            }
            engine.flushNow();
            writeBackFlushed(engine);

            Status st = engine.status();
            assertEquals(1, st.copiedForwardLines(), "the hot line was copied forward");
            assertEquals(1, st.dirtyLines(), "the hot line is still dirty, in the open segment");
            assertTrue(st.writeAmplification() > 1, "the copy counts as an append: " + st.writeAmplification());
            assertArrayEquals(new byte[4096], backing(rig, HOT), "the hot line was not written back");
            for (int i = 1; i <= COLD; i++) {
                assertArrayEquals(line(10 + i).array(), backing(rig, i), "cold line " + i + " was written back");
            }
            // Second lap: the copy has lost its hot bit, so its slot's writeback writes it back.
            engine.flushNow();
            writeBackFlushed(engine);
            assertEquals(1, engine.status().copiedForwardLines(), "a line is copied once per rewrite or read");
            assertEquals(0, engine.status().dirtyLines());
            assertArrayEquals(line(2).array(), backing(rig, HOT), "the copy was written back a lap later");
            assertArrayEquals(line(2).array(), read(engine, HOT));

            // The copy survives a restart: replay takes the newest copy.
            rig.restart();
            assertArrayEquals(line(2).array(), read(rig.engine, HOT));
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void withCopyForwardOffEveryDirtyLineIsWrittenBack() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME, new EngineConfig().knob(Knob.HIGH_WATERMARK, 0).knob(Knob.COPY_FORWARD, 0));
        try {
            CacheEngine engine = rig.engine;
            engine.write(1, HOT * 8L, 8, line(1));
            engine.write(1, HOT * 8L, 8, line(2));
            for (int i = 1; i <= COLD; i++) {
                engine.write(1, i * 8L, 8, line(10 + i));
            }
            engine.flushNow();
            writeBackFlushed(engine);
            assertEquals(0, engine.status().copiedForwardLines());
            assertEquals(0, engine.status().dirtyLines());
            assertEquals(1.0, engine.status().writeAmplification());
            assertArrayEquals(line(2).array(), backing(rig, HOT));
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void aCleanLineReadAgainStaysCachedAndAnUnreadOneIsEvicted() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME, new EngineConfig().knob(Knob.HIGH_WATERMARK, 0)
                .knob(Knob.READ_CACHE_SECOND_ACCESS, 0).knob(Knob.SEQUENTIAL_CUTOFF, 0));
        try {
            CacheEngine engine = rig.engine;
            int hotClean = 100, coldClean = 101, hotWarm = 102;
            rig.backings.get(1).write(line(7), hotClean * 4096L);
            rig.backings.get(1).write(line(8), coldClean * 4096L);
            rig.backings.get(1).write(line(9), hotWarm * 4096L);
            read(engine, hotWarm); // admitted warm (the store has no unsynced change) ...
            read(engine, hotWarm); // ... and hot
            engine.discard(1, 3000 * 8L, 8); // the store now has an unsynced change: what is admitted next is not warm
            read(engine, hotClean); // admitted as clean lines
            read(engine, coldClean);
            assertEquals(3, engine.status().cleanLines());
            read(engine, hotClean); // a hit: hot
            for (int i = 1; i <= COLD; i++) {
                engine.write(1, i * 8L, 8, line(10 + i)); // dirty lines in the same slot: a writeback batch reads it
            }
            engine.flushNow();
            writeBackFlushed(engine);
            assertEquals(1, engine.status().copiedForwardLines(), "the clean line read again was copied forward, the warm one not");

            // Distinct new lines (cold, never copied) until the old slot is reused: the copy,
            // one slot on, stays; the clean line not read again leaves with the old slot.
            long oldSegment = engine.status().lastMigratedId();
            int lines = 0;
            while (engine.status().currentSegmentId() < oldSegment + 8) {
                engine.write(1, (1000 + lines++) * 8L, 8, line(3));
            }
            assertEquals(1, engine.status().cleanLines(), "one clean line is still cached");
            long hitsBefore = engine.status().readHitsClean();
            assertArrayEquals(line(7).array(), read(engine, hotClean));
            assertEquals(hitsBefore + 1, engine.status().readHitsClean(), "the copied clean line serves the read");
            hitsBefore = engine.status().readHitsClean();
            assertArrayEquals(line(8).array(), read(engine, coldClean));
            assertEquals(hitsBefore, engine.status().readHitsClean(), "the unread clean line was evicted with its slot");
            assertArrayEquals(line(9).array(), read(engine, hotWarm));
            assertEquals(hitsBefore, engine.status().readHitsClean(), "the warm line, hot or not, was evicted with its slot");
        } finally {
            rig.engine.close();
        }
    }

    /** Writes back every flushed segment (force_migrate), then turns writeback off again. */
    private static void writeBackFlushed(CacheEngine engine) throws Exception {
        long target = engine.status().lastFlushedId();
        engine.setKnob(Knob.FORCE_MIGRATE, 1);
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (engine.status().lastMigratedId() < target) {
            if (System.nanoTime() > deadline) {
                fail("writeback did not reach segment " + target + ": " + engine.status().summary());
            }
            Thread.sleep(5);
        }
        engine.setKnob(Knob.FORCE_MIGRATE, 0);
    }

    private static ByteBuffer line(int value) {
        byte[] b = new byte[4096];
        Arrays.fill(b, (byte) value);
        return ByteBuffer.wrap(b);
    }

    private static byte[] read(CacheEngine engine, int lineNo) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(4096);
        engine.read(1, lineNo * 8L, 8, b);
        return b.array();
    }

    private static byte[] backing(Rig rig, int lineNo) {
        return Arrays.copyOfRange(rig.backings.get(1).visibleBytes(), lineNo * 4096, lineNo * 4096 + 4096);
    }
}
