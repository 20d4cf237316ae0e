package io.writeboost.cache;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.Rig;
import io.writeboost.testutil.SectorHistory;
import io.writeboost.testutil.SectorModel;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Threads read, write, flush and discard overlapping ranges of a small region while writeback
 * and periodic flushes run. Every sector a read returns must come from a write to that sector
 * that had started before the read ended and that no other write had replaced (started after
 * it ended, ended before the read began) — per sector, the data is linearizable.
 */
class ConcurrencyTest {
    static final int SECTORS = 512;
    static final int THREADS = 4;
    static final int OPS = Integer.getInteger("concurrency.ops", 2500);

    final SectorHistory history = new SectorHistory(SECTORS);
    final AtomicLong ids = new AtomicLong(1);
    final AtomicLong readsChecked = new AtomicLong();

    @Test
    void overlappingReadersAndWritersSeeLinearizableSectors() throws Exception {
        Rig rig = new Rig(4, 1, 1 << 20, new EngineConfig().ramBuffers(2).knob(Knob.BARRIER_DEADLINE_MS, 1)
                .knob(Knob.FLUSH_CURRENT_BUFFER_INTERVAL, 1));
        ExecutorService pool = Executors.newFixedThreadPool(THREADS + 1);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                long seed = t;
                done.add(pool.submit(() -> {
                    work(rig.engine, new Random(seed));
                    return null;
                }));
            }
            done.add(pool.submit(() -> {
                Random rnd = new Random(100);
                for (int i = 0; i < 60; i++) {
                    rig.engine.setKnob(Knob.ALLOW_MIGRATE, rnd.nextInt(2));
                    Thread.sleep(rnd.nextInt(30));
                }
                return null;
            }));
            for (Future<?> f : done) {
                f.get();
            }
            assertNull(rig.engine.status().failure());
        } finally {
            pool.shutdownNow();
            rig.engine.close();
        }
        System.out.printf("ConcurrencyTest: %d threads x %d operations, %d sector reads checked against the history%n",
                THREADS, OPS, readsChecked.get());
    }

    private void work(CacheEngine e, Random rnd) throws Exception {
        for (int op = 0; op < OPS; op++) {
            int n = 1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 32 : 8);
            int at = rnd.nextInt(SECTORS - n);
            int kind = rnd.nextInt(20);
            if (kind < 9) {
                long id = ids.getAndIncrement();
                ByteBuffer b = SectorModel.stamped(id, 1, at, n);
                SectorHistory.Op[] ev = history.begin(id, at, n);
                e.write(1, at, n, b);
                SectorHistory.acknowledged(ev);
            } else if (kind < 17) {
                ByteBuffer b = ByteBuffer.allocate(n * 512);
                long start = System.nanoTime();
                e.read(1, at, n, b);
                long end = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    check(at + i, SectorModel.decode(b, i * 512, 1, at + i), start, end);
                }
            } else if (kind < 19) {
                e.flush();
            } else {
                SectorHistory.Op[] ev = history.begin(0, at, n);
                e.discard(1, at, n);
                SectorHistory.acknowledged(ev);
            }
        }
    }

    private void check(int sector, long id, long readStart, long readEnd) {
        String why = history.check(sector, id, readStart, readEnd);
        if (why != null) {
            fail(why);
        }
        readsChecked.incrementAndGet();
    }
}
