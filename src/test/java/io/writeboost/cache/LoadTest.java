package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.device.DeviceLoad;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.FaultyDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writeback by load: with allow_migrate 1 it runs only while the backing store is below migrate_threshold. */
class LoadTest {
    @Test
    void aBusyBackingStoreHoldsWritebackBackUntilTheThresholdAllowsIt() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(8), power);
        FaultyDevice backing = new FaultyDevice(new PowerLossDevice("backing", 4 << 20, power));
        long start = System.nanoTime();
        // Busy all the time: busy milliseconds grow as fast as the clock.
        backing.load = DeviceLoad.ofTicks(() -> (System.nanoTime() - start) / 1_000_000);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 4 << 20, "v", "b")));
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), new EngineConfig());
        try {
            e.write(1, 0, 64, ByteBuffer.allocate(64 * 512));
            e.flushNow();
            Thread.sleep(1300); // one update_interval: the first sample has nothing to compare with, the second measures
            e.setKnob(Knob.ALLOW_MIGRATE, 1);
            Thread.sleep(2500);
            Status st = e.status();
            assertTrue(st.dirtyLines() > 0, "nothing written back while the backing store is 100% busy");
            assertTrue(st.writebackPausedByLoad(), "status says why");
            assertEquals(100, st.backingLoadPercent()[1]);
            e.setMigrateThreshold(1, 100);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (e.status().dirtyLines() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(0, e.status().dirtyLines(), "migrate_threshold 100 runs whatever the load");
        } finally {
            e.close();
        }
    }

    /**
     * A backing store that keeps every request waiting (as a throttle or a network disk does)
     * while the kernel's probe has nothing to say: the engine's own busy time counts. Reads that
     * miss the cache keep it busy, and writeback holds back; writeback's own slow writes do not
     * hold it back (the status still shows them).
     */
    @Test
    void aStoreThatKeepsTheEngineWaitingIsBusyWhateverTheKernelSays() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(32), power);
        BlockDevice backing = new DelegatingDevice(new PowerLossDevice("backing", 4 << 20, power)) {
            @Override
            public void read(ByteBuffer dst, long offset) throws java.io.IOException {
                pause();
                super.read(dst, offset);
            }

            @Override
            public void write(ByteBuffer src, long offset) throws java.io.IOException {
                pause();
                super.write(src, offset);
            }

            private void pause() {
                try {
                    Thread.sleep(30);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        assertNull(backing.load(), "no kernel probe: before the engine's own, this store read 0% busy");
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 4 << 20, "v", "b")));
        // Read caching off: the reader's line must stay a miss.
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing),
                new EngineConfig().knob(Knob.READ_CACHE_THRESHOLD, 0).knob(Knob.HIGH_WATERMARK, 0)); // by load only
        java.util.concurrent.atomic.AtomicBoolean reading = new java.util.concurrent.atomic.AtomicBoolean(true);
        Thread reader = new Thread(() -> {
            ByteBuffer b = ByteBuffer.allocate(8 * 512);
            try {
                while (reading.get()) {
                    e.read(1, 4096, 8, b.clear()); // never written: every read goes to the store
                }
            } catch (java.io.IOException ex) {
                throw new java.io.UncheckedIOException(ex);
            }
        });
        try {
            // 24 segments of 8 lines, every other line (each its own backing write); batches
            // of one segment, so that writeback decides again every 0.24 s.
            for (int seg = 0; seg < 24; seg++) {
                for (int k = 0; k < 8; k++) {
                    e.write(1, (seg * 16 + 2 * k) * 8L, 8, ByteBuffer.allocate(8 * 512));
                }
                e.flushNow();
            }
            e.setKnob(Knob.NR_MAX_BATCHED_MIGRATION, 1);
            reader.start();
            Thread.sleep(2500); // two samples of update_interval with the reader at work
            e.setKnob(Knob.ALLOW_MIGRATE, 1);
            Thread.sleep(1500);
            Status st = e.status();
            assertTrue(st.backingLoadPercent()[1] >= 70, "reads kept the store busy: backing_load " + st.backingLoadPercent()[1] + "%");
            assertTrue(st.writebackPausedByLoad(), "writeback holds back for them");
            assertTrue(st.dirtyLines() > 0);

            reading.set(false);
            reader.join();
            long deadline = System.nanoTime() + 20_000_000_000L;
            int busiest = 0;
            while (e.status().dirtyLines() > 0 && System.nanoTime() < deadline) {
                busiest = Math.max(busiest, e.status().engineBusyPercent()[1]);
                Thread.sleep(20);
            }
            assertEquals(0, e.status().dirtyLines(), "writeback alone on the slow store does not hold itself back");
            assertTrue(busiest >= 70, "the status shows writeback's own requests: " + busiest + "%");
        } finally {
            reading.set(false);
            reader.join();
            e.close();
        }
    }

    @Test
    void aFileOnARealDiskHasALoadProbe(@TempDir Path dir) throws Exception {
        try (FileBlockDevice f = FileBlockDevice.createSparse(dir.resolve("f.img"), 1 << 20)) {
            DeviceLoad load = f.load();
            assertNotNull(load, "/sys/dev/block has the disk under " + dir);
            assertEquals(0, load.sample(), "the first sample has nothing to compare with");
            Thread.sleep(100);
            int pct = load.sample();
            assertTrue(pct >= 0 && pct <= 100, "a percentage: " + pct);
        }
    }
}
