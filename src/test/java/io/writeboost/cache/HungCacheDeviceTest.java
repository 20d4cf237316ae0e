package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.LostRange;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.HangingDevice;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import io.writeboost.testutil.SectorModel;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A cache device that hangs instead of failing (docs/ENGINE.md, "Failure": the deadline):
 * its segment writes, its syncs, or the reads of one slot block until the test releases them.
 * Under a writing, fsyncing load the engine fails over once a call has been outstanding for
 * cache_io_timeout_ms (300 ms here), and the volume answers again from the backing store while
 * the stuck threads stay stuck; nothing acknowledged is lost but what is reported; status says
 * degraded and why. Without the deadline (cache_io_timeout_ms 0) every case fails: the volume
 * does not answer.
 */
@ExtendWith(QuietLogs.class)
class HungCacheDeviceTest {
    static final int VOLUME = 8 << 20;
    static final int SECTORS = VOLUME / 512;
    static final int HALF = SECTORS / 2;
    static final long DEADLINE_MS = 300;
    /** A bound for a request that should be answered at once, not a measurement: a hung engine does not answer at all. */
    static final long ANSWER_SECONDS = 60;

    final Object power = new Object();
    final PowerLossDevice cacheMedium = new PowerLossDevice("cache", (int) Layout.slotOffset(8), power);
    final PowerLossDevice backingMedium = new PowerLossDevice("backing", VOLUME, power);
    final HangingDevice cache = new HangingDevice(cacheMedium);
    final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "hung-test");
        t.setDaemon(true);
        return t;
    });
    /** Per sector, the id of the last acknowledged write; each half of the volume has one writer at a time. */
    final long[] exact = new long[SECTORS];
    /** Sectors a failed write touched: they may hold its data or the older one. */
    final BitSet uncertain = new BitSet(SECTORS);
    final java.util.concurrent.atomic.AtomicLong ids = new java.util.concurrent.atomic.AtomicLong();
    final java.util.concurrent.atomic.AtomicInteger failedFlushes = new java.util.concurrent.atomic.AtomicInteger();
    /** Failed fsyncs that reported lost data (rather than, say, a volume read-only until the mark). */
    final java.util.concurrent.atomic.AtomicInteger lossReports = new java.util.concurrent.atomic.AtomicInteger();
    CacheEngine engine;
    volatile boolean loadStops;

    HungCacheDeviceTest() throws IOException {
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME, "v", "backing")));
    }

    @AfterEach
    void releaseAndStop() throws Exception {
        cache.release();
        loadStops = true;
        threads.shutdown();
        assertTrue(threads.awaitTermination(ANSWER_SECONDS, TimeUnit.SECONDS), "released threads end");
        if (engine != null) {
            try {
                engine.close();
            } catch (IOException expected) {
                // a stop of a failed-over cache whose device took no mark fails its flush; the test checked the rest
            }
        }
    }

    void open(EngineConfig config) throws IOException {
        engine = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backingMedium),
                config.knob(Knob.CACHE_IO_TIMEOUT_MS, DEADLINE_MS));
    }

    /** One write; returns whether it was acknowledged. The caller owns the sectors (no other writer meanwhile). */
    boolean write(int at, int n) {
        long id = ids.incrementAndGet();
        try {
            engine.write(1, at, n, SectorModel.stamped(id, 1, at, n));
        } catch (IOException ex) {
            synchronized (exact) {
                uncertain.set(at, at + n);
            }
            return false;
        }
        for (int s = at; s < at + n; s++) {
            synchronized (exact) {
                exact[s] = id;
                uncertain.clear(s);
            }
        }
        return true;
    }

    boolean flush() {
        try {
            engine.flush(1);
            return true;
        } catch (IOException ex) {
            failedFlushes.incrementAndGet();
            if (String.valueOf(ex.getMessage()).contains("lost acknowledged data")) {
                lossReports.incrementAndGet();
            }
            return false;
        }
    }

    /** Random writes of 1 to 64 sectors in [from, to), an fsync every few, until told to stop; it may get stuck in the device. */
    Future<?> startLoad(int from, int to, long seed) {
        return threads.submit(() -> {
            Random rnd = new Random(seed);
            while (!loadStops) {
                int n = 1 + rnd.nextInt(64);
                write(from + rnd.nextInt(to - from - n), n);
                if (rnd.nextInt(6) == 0) {
                    flush();
                }
            }
            return null;
        });
    }

    /** Runs {@code op} on a thread of its own and returns its result, failing if it is not answered. */
    <T> T answered(String what, Callable<T> op) throws Exception {
        Future<T> f = threads.submit(op);
        try {
            return f.get(ANSWER_SECONDS, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            f.cancel(true);
            fail(what + " was not answered: " + engine.status().summary());
            return null;
        }
    }

    /** Fails over (the status says why) or fails the test; a bound, not a measurement. */
    Status awaitDegraded() throws Exception {
        Status st = answered("the failover", () -> {
            while (true) {
                Status s = engine.status();
                if (s.degraded() != null && s.degraded().startsWith("failed over")) {
                    return s;
                }
                Thread.sleep(5);
            }
        });
        assertTrue(st.degraded().contains("did not return within " + DEADLINE_MS + " ms"), st.degraded());
        assertNull(st.failure(), "a failover is not a failure");
        assertTrue(cache.held.get() > 0, "the device held a call");
        return st;
    }

    /**
     * Waits (a bound, not a measurement) until the cache device holds the abandoned mark, which
     * the volumes need before they take writes again: the failover's attempt is itself bounded by
     * the deadline, so on a busy machine it may land at a retry.
     */
    void awaitMarked() throws Exception {
        answered("the abandoned mark", () -> {
            while (!engine.status().degraded().contains("marked abandoned")) {
                Thread.sleep(20);
            }
            return null;
        });
    }

    /**
     * {@code ops} writes of the lower half, each answered, and an fsync after every fifth, each
     * answered; returns how many writes and how many fsyncs were acknowledged, as {writes, fsyncs}.
     */
    int[] writeLowerHalf(Random rnd, int ops) throws Exception {
        int[] acked = new int[2];
        for (int i = 0; i < ops; i++) {
            int n = 1 + rnd.nextInt(64);
            int at = rnd.nextInt(HALF - n);
            acked[0] += answered("a write", () -> write(at, n)) ? 1 : 0;
            if (i % 5 == 4) {
                acked[1] += answered("a flush", this::flush) ? 1 : 0;
            }
        }
        return acked;
    }

    /** Each sector of [from, from + n) reads back as its last acknowledged write, from the backing store now. */
    void readsBack(int from, int n) throws Exception {
        ByteBuffer back = ByteBuffer.allocate(n * 512);
        answered("a read", () -> {
            engine.read(1, from, n, back);
            return null;
        });
        for (int s = from; s < from + n; s++) {
            long want;
            synchronized (exact) {
                want = uncertain.get(s) ? -1 : exact[s];
            }
            if (want >= 0) {
                assertEquals(want, SectorModel.decode(back, (s - from) * 512, 1, s), "sector " + s);
            }
        }
    }

    /** The backing store holds every acknowledged write except in the ranges reported lost (the load and the device released). */
    void backingHoldsEverythingBut(List<LostRange> lost) throws IOException {
        FailoverTest.backingHolds(backingMedium, exact, uncertain, lost);
    }

    /** Stops the load once the device is released: its thread may have been stuck in a call until then. */
    void stopLoad(Future<?> load) throws Exception {
        cache.release();
        loadStops = true;
        load.get(ANSWER_SECONDS, TimeUnit.SECONDS);
    }

    @Test
    void hungSegmentWritesFailOverAndLoseNothing() throws Exception {
        open(new EngineConfig());
        Random rnd = new Random(21);
        assertEquals(100, writeLowerHalf(rnd, 100)[0]);
        Future<?> load = startLoad(HALF, SECTORS, 22);
        Thread.sleep(50);
        cache.writesFrom = Layout.slotOffset(0); // the log; the superblock record still takes writes
        cache.writesTo = Long.MAX_VALUE;
        Status st = awaitDegraded();
        assertTrue(st.degraded().contains("(write of "), st.degraded());
        assertEquals(0, st.lostLines(), "every dirty line was in RAM or readable");
        awaitMarked(); // the record region still takes writes
        int[] acked = writeLowerHalf(rnd, 200);
        assertEquals(200, acked[0], "every write is taken from the backing store");
        assertEquals(40, acked[1], "every fsync too: nothing was lost");
        readsBack(0, HALF);
        stopLoad(load);
        backingHoldsEverythingBut(List.of());
    }

    @Test
    void hungSyncsFailOverReadOnlyUntilTheDeviceAnswers() throws Exception {
        open(new EngineConfig());
        Random rnd = new Random(23);
        assertEquals(100, writeLowerHalf(rnd, 100)[0]);
        Future<?> load = startLoad(HALF, SECTORS, 24);
        Thread.sleep(50);
        cache.syncs = true;
        Status st = awaitDegraded();
        assertTrue(st.degraded().contains("(sync of "), st.degraded());
        // The abandoned record is not durable while syncs hang: the volume is read-only, and answers.
        assertTrue(st.degraded().contains("READ-ONLY"), st.degraded());
        assertEquals(0, st.lostLines(), "every dirty line was in RAM or readable");
        readsBack(0, HALF);
        assertFalse(answered("a write", () -> write(0, 8)), "no write is taken until the mark is on the device");
        assertFalse(answered("a flush", this::flush), "nor an fsync");
        stopLoad(load);
        awaitMarked();
        int[] acked = writeLowerHalf(rnd, 100);
        assertEquals(100, acked[0], "writes are taken once the mark is on the device");
        assertEquals(20, acked[1], "and fsyncs");
        assertTrue(flush());
        readsBack(0, HALF);
        backingHoldsEverythingBut(List.of());
    }

    @Test
    void aHungReadOfOneSlotFailsOverAndReportsItsLinesLost() throws Exception {
        // No writeback until the ring is full: the lines stay dirty in the cache until the failover.
        open(new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        // Lines 0..599: segment 1 (slot 0) holds 0..253, segment 2 (slot 1) 254..507, the open segment the rest.
        for (int line = 0; line < 600; line++) {
            assertTrue(write(line * 8, 8));
        }
        assertTrue(flush());
        cache.readsFrom = Layout.slotOffset(1);
        cache.readsTo = Layout.slotOffset(2);
        Future<?> load = startLoad(HALF, SECTORS, 25);
        // A read hit in the slot gets stuck: its thread stays stuck, the volume goes on without it.
        Future<?> stuckRead = threads.submit(() -> {
            engine.read(1, 300 * 8, 8, ByteBuffer.allocate(4096));
            return null;
        });
        Status st = awaitDegraded();
        assertTrue(st.degraded().contains("(read of "), st.degraded());
        List<LostRange> lost = List.of(new LostRange(1, 254 * 8, 508 * 8 - 1));
        assertEquals(254, st.lostLines(), "the slot's dirty lines are reported lost: " + st.degraded());
        assertEquals(lost, st.lostRanges());
        awaitMarked();
        assertThrows(IOException.class, () -> engine.read(1, 300 * 8, 8, ByteBuffer.allocate(4096)), "a lost line reads as EIO");
        readsBack(0, 254 * 8);
        readsBack(508 * 8, HALF - 508 * 8);
        // This fsync or one of the load's (the first begun since the failover, or one it met) reports the loss.
        answered("a flush", this::flush);
        answered("the report of the loss", () -> {
            while (lossReports.get() == 0) {
                Thread.sleep(5);
            }
            return null;
        });
        int[] acked = writeLowerHalf(new Random(26), 200);
        assertEquals(200, acked[0], "every write is taken from the backing store");
        assertEquals(40, acked[1], "the loss is reported once: later fsyncs succeed");
        stopLoad(load);
        assertThrows(java.util.concurrent.ExecutionException.class, () -> stuckRead.get(ANSWER_SECONDS, TimeUnit.SECONDS),
                "the stuck read, released, returns the loss rather than what the device gave it");
        backingHoldsEverythingBut(lost);
    }
}
