package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writeback by dirty level (high_watermark, low_watermark) and the pacing of writers as the ring fills. */
class PacingTest {
    private static final int SLOTS = 16;

    /** A backing store that takes {@code millis} per write request, as a slow disk takes its seeks. */
    private static BlockDevice slow(BlockDevice inner, long millis) {
        return new DelegatingDevice(inner) {
            @Override
            public void write(ByteBuffer src, long offset) throws IOException {
                try {
                    Thread.sleep(millis);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
                inner.write(src, offset);
            }
        };
    }

    private static int ringUse(CacheEngine e) {
        return (int) e.status().pacing().ringUsePercent();
    }

    /** One line written and the open segment sealed: one ring slot taken. */
    private static void fillSlot(CacheEngine e, int line) throws IOException {
        e.write(1, (long) line * Layout.SECTORS_PER_LINE, Layout.SECTORS_PER_LINE, ByteBuffer.allocate(Layout.LINE_SIZE));
        e.flushNow();
    }

    @Test
    void writebackStartsAtTheHighWatermarkAndStopsAtTheLowOne() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(SLOTS), power);
        PowerLossDevice backing = new PowerLossDevice("backing", 8 << 20, power);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 8 << 20, "v", "b")));
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing),
                new EngineConfig().knob(Knob.HIGH_WATERMARK, 50).knob(Knob.LOW_WATERMARK, 25)
                        .knob(Knob.NR_MAX_BATCHED_MIGRATION, 1));
        try {
            int nr = e.status().nrSegments();
            int line = 0;
            while ((line + 1) * 100 / nr < 50) {
                fillSlot(e, line++);
            }
            Thread.sleep(2500); // two update_intervals: writeback looks at least twice
            assertEquals(0, e.status().lastMigratedId(), "below high_watermark, with allow_migrate 0, nothing is written back");
            assertFalse(e.status().pacing().writebackByLevel());
            fillSlot(e, line++);
            assertTrue(ringUse(e) >= 50);
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (ringUse(e) > 25 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(ringUse(e) <= 25, "written back down to low_watermark: " + ringUse(e) + "%");
            Thread.sleep(2500);
            Status st = e.status();
            assertTrue(st.pacing().ringUsePercent() > 0 && st.dirtyLines() > 0,
                    "writeback stopped at low_watermark, not at empty: " + st.pacing().ringUsePercent() + "%, "
                            + st.dirtyLines() + " dirty line(s)");
            assertFalse(st.pacing().writebackByLevel());
            assertTrue(st.pacing().ringUsePercent() >= 25 - 100 / nr - 1, "one segment past the mark at most");
        } finally {
            e.close();
        }
    }

    @Test
    void highWatermarkZeroWritesBackOnlyWhenTheRingIsFull() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(SLOTS), power);
        PowerLossDevice backing = new PowerLossDevice("backing", 8 << 20, power);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 8 << 20, "v", "b")));
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing),
                new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        try {
            int nr = e.status().nrSegments();
            for (int line = 0; line < nr - 1; line++) {
                fillSlot(e, line);
            }
            Thread.sleep(2500);
            assertEquals(0, e.status().lastMigratedId(), "nothing written back while a slot is free");
        } finally {
            e.close();
        }
    }

    /**
     * Writers over a slow backing store and a small ring, far more data than the ring holds:
     * once the ring is full they go at writeback's pace, and no write waits for a whole batch.
     * A batch of nr_max_batched_migration segments here takes about 16 x 254 x 2 ms = 8 s; with
     * writeback by dirty level and pacing, no write of the last stretch waited near that long.
     */
    @Test
    void writersArePacedInsteadOfWaitingForWholeBatches() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(SLOTS * 2), power);
        PowerLossDevice media = new PowerLossDevice("backing", 64 << 20, power);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 64 << 20, "v", "b")));
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, slow(media, 2)),
                new EngineConfig().knob(Knob.SEQUENTIAL_CUTOFF, 0));
        int writers = 2;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong worstNanos = new AtomicLong();
        AtomicLong writes = new AtomicLong();
        try {
            long lines = (64L << 20) / Layout.LINE_SIZE;
            AtomicBoolean measuring = new AtomicBoolean();   // once writeback has given slots back: the ring was full
            List<Future<?>> fs = new java.util.ArrayList<>();
            for (int t = 0; t < writers; t++) {
                long seed = t;
                fs.add(pool.submit(() -> {
                    Random r = new Random(seed);
                    ByteBuffer buf = ByteBuffer.allocate(Layout.LINE_SIZE);
                    for (int i = 0; !stop.get(); i++) {
                        long t0 = System.nanoTime();
                        e.write(1, (r.nextLong() & Long.MAX_VALUE) % lines * Layout.SECTORS_PER_LINE,
                                Layout.SECTORS_PER_LINE, buf.clear());
                        if (i % 32 == 31) {
                            e.flush();
                        }
                        long t1 = System.nanoTime();
                        if (measuring.get()) {
                            worstNanos.accumulateAndGet(t1 - t0, Math::max);
                        }
                        writes.incrementAndGet();
                    }
                    return null;
                }));
            }
            // Until a ring's worth has been written back after the first fill, however long
            // this machine takes for it (about 16 s when it is idle).
            int nr = e.status().nrSegments();
            long deadline = System.nanoTime() + 180_000_000_000L;
            long firstBack = -1;
            while (System.nanoTime() < deadline) {
                long back = e.status().lastMigratedId();
                if (firstBack < 0 && back > 0) {
                    firstBack = back;
                    measuring.set(true);
                }
                if (firstBack > 0 && back >= firstBack + nr) {
                    break;
                }
                Thread.sleep(100);
            }
            stop.set(true);
            for (Future<?> f : fs) {
                f.get(60, java.util.concurrent.TimeUnit.SECONDS);
            }
            Status st = e.status();
            System.out.printf("PacingTest: %d writes, %d written back, %d paced, the longest write or flush %d ms%n",
                    writes.get(), st.lastMigratedId(), st.pacing().pausedWrites(), worstNanos.get() / 1_000_000);
            assertTrue(worstNanos.get() < 3_000_000_000L, "the longest write or flush after the first fill took "
                    + worstNanos.get() / 1_000_000 + " ms (a whole batch takes about 8 s here)");
            assertTrue(firstBack > 0 && st.lastMigratedId() >= firstBack + nr, "a ring's worth was written back after the "
                    + "first fill: " + st.lastMigratedId());
            assertTrue(st.pacing().pausedWrites() > 0, "writers were paced");
        } finally {
            stop.set(true);
            pool.shutdownNow();
            e.close();
        }
    }

    private static CacheEngine openFast(int slots, EngineConfig config) throws IOException {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(slots), power);
        PowerLossDevice backing = new PowerLossDevice("backing", 8 << 20, power);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 8 << 20, "v", "b")));
        return CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), config);
    }

    /** Every other line, so that writeback cannot coalesce them: one backing request each. */
    private static void writeApart(CacheEngine e, int lines) throws IOException {
        for (int i = 0; i < lines; i++) {
            e.write(1, 2L * i * Layout.SECTORS_PER_LINE, Layout.SECTORS_PER_LINE, ByteBuffer.allocate(Layout.LINE_SIZE));
        }
        e.flushNow();
    }

    @Test
    void theWritebackCapHoldsWhileTheRingHasRoom() throws Exception {
        CacheEngine e = openFast(SLOTS, new EngineConfig().knob(Knob.HIGH_WATERMARK, 0).knob(Knob.WRITEBACK_MAX_IOPS, 20));
        try {
            writeApart(e, 60);
            long t0 = System.nanoTime();
            e.setKnob(Knob.FORCE_MIGRATE, 1);
            long deadline = t0 + 30_000_000_000L;
            while (e.status().dirtyLines() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(0, e.status().dirtyLines());
            assertTrue(ms >= 2_500, "60 requests at 20 a second took " + ms + " ms");
            assertTrue(e.status().pacing().writebackCapWaitedNanos() > 2_000_000_000L);
        } finally {
            e.close();
        }
    }

    /**
     * A stop waits for the running writeback batch; at a cap of one request a second that batch
     * (100 lines apart) would hold it for 100 s. The cap is not applied once the cache stops.
     */
    @Test
    void aStopDoesNotWaitForTheWritebackCap() throws Exception {
        CacheEngine e = openFast(SLOTS, new EngineConfig().knob(Knob.HIGH_WATERMARK, 0).knob(Knob.WRITEBACK_MAX_IOPS, 1));
        long closedAfterMs;
        try {
            writeApart(e, 100);
            e.setKnob(Knob.FORCE_MIGRATE, 1);
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (e.status().pacing().writebackCapWaitedNanos() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(e.status().pacing().writebackCapWaitedNanos() > 0, "writeback runs, at the cap");
        } finally {
            long t0 = System.nanoTime();
            e.close();
            closedAfterMs = (System.nanoTime() - t0) / 1_000_000;
        }
        assertTrue(closedAfterMs < 50_000, "the stop took " + closedAfterMs + " ms, as long as the capped batch");
    }

    @Test
    void theWritebackCapIsIgnoredWhileWritersArePaced() throws Exception {
        CacheEngine e = openFast(SLOTS, new EngineConfig().knob(Knob.HIGH_WATERMARK, 0).knob(Knob.WRITEBACK_MAX_IOPS, 2));
        try {
            int nr = e.status().nrSegments();
            int paceStart = WritePacer.paceStart(nr);
            int filled = 0;
            while (nr - filled >= paceStart - 1) {   // two slots below where pacing starts
                for (int k = 0; k < 10; k++) {        // 10 lines apart a slot: 5 s each at the cap
                    e.write(1, (filled * 20L + 2 * k) * Layout.SECTORS_PER_LINE, Layout.SECTORS_PER_LINE,
                            ByteBuffer.allocate(Layout.LINE_SIZE));
                }
                e.flushNow();
                filled++;
            }
            e.setKnob(Knob.FORCE_MIGRATE, 1);
            Thread.sleep(1500);
            Status st = e.status();
            assertTrue(st.lastMigratedId() >= 2, "the slots below the pacing start came back at full speed: "
                    + st.lastMigratedId() + " written back");
            assertTrue(st.dirtyLines() >= (filled - 2) * 10 - 4, "then the cap of 2 a second held: " + st.dirtyLines()
                    + " of " + filled * 10 + " still dirty");
        } finally {
            e.close();
        }
    }
}
