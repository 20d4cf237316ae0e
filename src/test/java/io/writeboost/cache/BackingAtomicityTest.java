package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.SectorHistory;
import io.writeboost.testutil.SectorModel;
import io.writeboost.testutil.TearingDevice;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Reads of the backing store against writes and punches of the same sectors, on a backing
 * store that copies a few bytes at a time ({@link TearingDevice}, like a file through the page
 * cache): with write_around_mode every whole-line write goes to the backing store, reads of
 * lines the cache does not hold come from it, and discards punch it, all at once on a few
 * lines. Every sector a read returns must be one whole write, or zeros, that the read may see.
 */
class BackingAtomicityTest {
    static final int SECTORS = 256;
    static final int THREADS = 4;
    static final int OPS = 3000;

    final SectorHistory history = new SectorHistory(SECTORS);
    final AtomicLong ids = new AtomicLong(1);
    final AtomicLong readsChecked = new AtomicLong();

    @Test
    void readsOfTheBackingStoreNeverSeeASectorHalfChanged() throws Exception {
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(8), new Object());
        TearingDevice backing = new TearingDevice("backing", SECTORS * 512);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, SECTORS * 512, "vol", "backing")));
        CacheEngine engine = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), new EngineConfig());
        engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                long seed = t;
                done.add(pool.submit(() -> {
                    work(engine, new Random(seed));
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
            engine.close();
        }
        System.out.printf("BackingAtomicityTest: %d threads x %d operations, %d sector reads checked%n", THREADS, OPS,
                readsChecked.get());
    }

    private void work(CacheEngine e, Random rnd) throws Exception {
        for (int op = 0; op < OPS; op++) {
            int kind = rnd.nextInt(10);
            if (kind < 4) {
                // Whole lines, so that write_around_mode sends all of it to the backing store.
                int lines = 1 + rnd.nextInt(4);
                int at = 8 * rnd.nextInt(SECTORS / 8 - lines + 1);
                int n = 8 * lines;
                long id = ids.getAndIncrement();
                ByteBuffer b = SectorModel.stamped(id, 1, at, n);
                SectorHistory.Op[] ev = history.begin(id, at, n);
                e.write(1, at, n, b);
                SectorHistory.acknowledged(ev);
            } else if (kind < 9) {
                int n = 1 + rnd.nextInt(32);
                int at = rnd.nextInt(SECTORS - n + 1);
                ByteBuffer b = ByteBuffer.allocate(n * 512);
                long start = System.nanoTime();
                e.read(1, at, n, b);
                long end = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    String why = history.check(at + i, SectorModel.decode(b, i * 512, 1, at + i), start, end);
                    if (why != null) {
                        String torn = SectorModel.decode(b, i * 512, 1, at + i) < 0 ? " (" + SectorModel.describe(b, i * 512) + ")" : "";
                        fail(why + torn);
                    }
                    readsChecked.incrementAndGet();
                }
            } else {
                int n = 1 + rnd.nextInt(16);
                int at = rnd.nextInt(SECTORS - n + 1);
                SectorHistory.Op[] ev = history.begin(0, at, n);
                e.discard(1, at, n);
                SectorHistory.acknowledged(ev);
            }
        }
    }
}
