package io.writeboost.cache;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.Rig;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Group commit, the periodic tasks, and many threads at once. */
class EngineBehaviourTest {
    static final int VOLUME_BYTES = 8 << 20;

    @Test
    void concurrentFlushesShareOneAppend() throws Exception {
        // A long deadline: the 8 flushes below all arrive within it and must share one append and one sync.
        flushTogether(2000, 1);
    }

    @Test
    void withoutADeadlineFlushesArrivingDuringAnAppendShareTheNextOne() throws Exception {
        // Deadline 0: the first flush appends at once; those that arrive while its lines are
        // written and synced are all served by one more append and one more sync.
        flushTogether(0, 2);
    }

    private static void flushTogether(long deadlineMs, int maxSyncs) throws Exception {
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig().knob(Knob.BARRIER_DEADLINE_MS, deadlineMs));
        int threads = 8;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            long syncsBefore = rig.cache.syncs();
            CyclicBarrier written = new CyclicBarrier(threads);
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int line = t;
                done.add(pool.submit(() -> {
                    rig.engine.write(1, line * 8L, 8, ByteBuffer.wrap(new byte[4096]));
                    written.await();
                    rig.engine.flush();
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            Status st = rig.engine.status();
            assertEquals(0, st.sealedSegments(), "flushes append to the open segment: no ring slot is consumed");
            assertEquals(8, st.currentSegmentLines());
            long syncs = rig.cache.syncs() - syncsBefore;
            assertTrue(syncs >= 1 && syncs <= maxSyncs, "eight flushes, at most " + maxSyncs + " sync(s) of the cache device: " + syncs);
        } finally {
            pool.shutdownNow();
            rig.engine.close();
        }
    }

    @Test
    void flushCurrentBufferIntervalSealsAnIdleSegment() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig().knob(Knob.FLUSH_CURRENT_BUFFER_INTERVAL, 1));
        try {
            rig.engine.write(1, 0, 8, ByteBuffer.wrap(new byte[4096]));
            assertEquals(0, rig.engine.status().lastFlushedId());
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (rig.engine.status().lastFlushedId() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertEquals(1, rig.engine.status().lastFlushedId(), "the partly filled segment was sealed and written");
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void commitSuperBlockIntervalWritesTheRecord() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig());
        try {
            long writes = rig.cache.writes();
            rig.engine.setKnob(Knob.COMMIT_SUPER_BLOCK_INTERVAL, 1);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (rig.cache.writes() == writes && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(rig.cache.writes() > writes, "a record was written without being asked for");
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void theRecordFollowsTheFlushedLogSoThatACrashStartReadsLittleInFull() throws Exception {
        // Sequential segments' worth of data must enter the log here, not bypass it.
        Rig rig = new Rig(16, 1, VOLUME_BYTES, new EngineConfig().vouchSegments(4).knob(Knob.SEQUENTIAL_CUTOFF, 0));
        Random rnd = new Random(9);
        int lps = io.writeboost.format.Layout.LINES_PER_SEGMENT;
        for (int i = 0; i < 6 * lps + 1; i++) {   // segments 1..6 full and flushed; nobody syncs
            byte[] b = new byte[4096];
            rnd.nextBytes(b);
            rig.engine.write(1, i * 8L, 8, ByteBuffer.wrap(b));
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        long vouched = 0;
        while (vouched < 4 && System.nanoTime() < deadline) {
            Thread.sleep(50);
            vouched = io.writeboost.recovery.Recovery.readRecord(rig.cache,
                    io.writeboost.recovery.Recovery.readSuperblock(rig.cache)).lastFlushedId();
        }
        assertTrue(vouched >= 4, "the periodic daemon synced and vouched for the log once it grew 4 segments: " + vouched);
        rig.engine.abort();
        rig.cache = rig.cache.reopen(rig.power);
        rig.open();
        try {
            List<io.writeboost.recovery.ReplaySegment> replay = rig.engine.recovery().replay();
            assertEquals(6, replay.size());
            for (io.writeboost.recovery.ReplaySegment s : replay) {
                assertEquals(s.id() > vouched, s.verified(), "segment " + s.id() + ": read in full at start only past the record");
            }
            rig.engine.flush();
            assertEquals(0, rig.engine.unverifiedSlots());
        } finally {
            rig.engine.close();
        }
    }

    /** The cache device of a rig, whose segment writes wait at a gate and are recorded by size. */
    static final class GatedDevice extends io.writeboost.testutil.DelegatingDevice {
        final java.util.concurrent.Semaphore gate = new java.util.concurrent.Semaphore(0);
        final List<Integer> batches = java.util.Collections.synchronizedList(new ArrayList<>());

        GatedDevice(io.writeboost.device.BlockDevice inner) {
            super(inner);
        }

        @Override
        public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws java.io.IOException {
            batches.add(n);
            gate.acquireUninterruptibly();
            gate.release();
            super.writeThrough(srcs, n, offset);
        }
    }

    @Test
    void queuedFullSegmentsInConsecutiveSlotsGoOutInOneWrite() throws Exception {
        // A partly filled segment sealed by the periodic daemon: no flush waits, so the
        // flusher thread alone decides how the queue is cut into writes.
        // Sequential segments' worth of data must enter the log here, not bypass it.
        Rig rig = new Rig(16, 1, VOLUME_BYTES, new EngineConfig().knob(Knob.FLUSH_CURRENT_BUFFER_INTERVAL, 1)
                .knob(Knob.SEQUENTIAL_CUTOFF, 0));
        rig.engine.close();
        GatedDevice gated = new GatedDevice(rig.cache);
        CacheEngine e = CacheEngine.open(gated, new java.util.LinkedHashMap<>(rig.backings), rig.config);
        int lps = io.writeboost.format.Layout.LINES_PER_SEGMENT;
        int[] written = {0};
        LineWriter w = n -> {
            for (int i = 0; i < n; i++, written[0]++) {
                ByteBuffer b = ByteBuffer.allocate(4096);
                b.putLong(0, 1000 + written[0]).putLong(4088, written[0]);
                e.write(1, written[0] * 8L, 8, b);
            }
        };
        try {
            w.write(lps + 1);                     // segment 1 sealed: its write waits at the gate
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (gated.batches.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(1);                  // until the flusher holds segment 1 alone
            }
            w.write(lps - 1 + 10);                // segment 2 full, segment 3 with 10 lines
            while (e.status().segmentsQueuedForFlush() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(5);                  // the periodic daemon seals segment 3 within 1 s
            }
            assertEquals(2, e.status().segmentsQueuedForFlush(), "segments 2 and 3 queued");
            w.write(2 * lps + 1);                 // segments 4 and 5 full, 6 open
            gated.gate.release();
            while (e.status().lastFlushedId() < 5 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(List.of(1, 2, 2), gated.batches.subList(0, 3),
                    "segment 1 alone; 2 with the partial 3 that ends the run; 4 and 5 together");
            e.close();
        } finally {
            gated.gate.release();
        }
        rig.cache = rig.cache.reopen(rig.power);
        rig.open();
        try {
            for (int l = 0; l < written[0]; l++) {
                ByteBuffer b = ByteBuffer.allocate(4096);
                rig.engine.read(1, l * 8L, 8, b);
                assertEquals(1000 + l, b.getLong(0), "line " + l);
                assertEquals(l, b.getLong(4088), "line " + l);
            }
        } finally {
            rig.engine.close();
        }
    }

    interface LineWriter {
        void write(int n) throws Exception;
    }

    @Test
    void writebackRunsOnlyWhenAllowedOrNeeded() throws Exception {
        Rig rig = new Rig(16, 1, VOLUME_BYTES, new EngineConfig().knob(Knob.UPDATE_INTERVAL, 1));
        try {
            for (int i = 0; i < 300; i++) {
                rig.engine.write(1, i * 8L, 8, ByteBuffer.wrap(new byte[4096]));
            }
            rig.engine.flushNow();
            Thread.sleep(1500);
            assertEquals(0, rig.engine.status().lastMigratedId(), "allow_migrate 0 and room in the ring: no writeback");
            rig.engine.setKnob(Knob.ALLOW_MIGRATE, 1);
            long deadline = System.nanoTime() + 10_000_000_000L;
            // A group commit clears the lines before its record moves last_migrated: wait for both.
            Status st = rig.engine.status();
            while ((st.dirtyLines() > 0 || st.lastMigratedId() < st.lastFlushedId()) && System.nanoTime() < deadline) {
                Thread.sleep(20);
                st = rig.engine.status();
            }
            assertEquals(0, st.dirtyLines());
            assertEquals(st.lastFlushedId(), st.lastMigratedId());
        } finally {
            rig.engine.close();
        }
    }

    /**
     * Once the ring is nearly full (fewer than a sixteenth of its slots free: with the 8 slots
     * here, none), a write of 64 KiB or more goes around the cache even below sequential_cutoff: writeback would write those lines as one request anyway, and through
     * the cache the write would wait for a slot. Not with a ring that has room, not a smaller
     * write, and never with sequential_cutoff 0.
     */
    @Test
    void aFullRingLetsLargeWritesGoAroundTheCache() throws Exception {
        int big = 64 << 10;
        assertEquals(0, largeWriteBypassedBytes(false, Knob.SEQUENTIAL_CUTOFF.defaultValue, big), "room in the ring: cached");
        assertEquals(big, largeWriteBypassedBytes(true, Knob.SEQUENTIAL_CUTOFF.defaultValue, big), "ring full: around the cache");
        assertEquals(0, largeWriteBypassedBytes(true, Knob.SEQUENTIAL_CUTOFF.defaultValue, 32 << 10), "ring full, 32 KiB: cached");
        assertEquals(0, largeWriteBypassedBytes(true, 0, big), "sequential_cutoff 0: never around the cache");
    }

    /**
     * A stream past the cutoff goes around the cache, except over lines the cache holds: there
     * it goes through (a bypass would cost a backing write, a backing sync and tombstones).
     */
    @Test
    void aStreamGoesThroughTheCacheWhereTheCacheHoldsItsLines() throws Exception {
        Rig rig = new Rig(64, 1, 16 << 20, new EngineConfig());
        try {
            long mib = 2048; // sectors
            Random rnd = new Random(17);
            for (int i = 0; i < 256; i += 2) {          // every other line of [6 MiB, 7 MiB): cached, no stream
                rig.engine.write(1, 6 * mib + i * 8L, 8, ByteBuffer.wrap(new byte[4096]));
            }
            byte[] data = new byte[8 << 20];
            rnd.nextBytes(data);
            for (int p = 0; p < 64; p++) {               // an 8 MiB stream in 128 KiB pieces
                rig.engine.write(1, p * 256L, 256, ByteBuffer.wrap(data, p << 17, 128 << 10));
            }
            // The piece that brings the stream to 4 MiB and those after it go around ([3.875, 6) and
            // [7, 8) MiB), except [6, 7): through, the cache held lines there.
            assertEquals((3L << 20) + (128 << 10), rig.engine.status().bypassedBytes());
            rig.engine.flush();
            rig.restart();
            ByteBuffer back = ByteBuffer.allocate(data.length);
            rig.engine.read(1, 0, data.length >> 9, back);
            assertArrayEquals(data, back.array());
        } finally {
            rig.engine.close();
        }
    }

    /** Bytes the large write sent around the cache; it reads back intact, also after a restart. */
    private static long largeWriteBypassedBytes(boolean fillRing, long cutoff, int bytes) throws Exception {
        int segments = 8;
        Rig rig = new Rig(segments, 1, 64 << 20, new EngineConfig().knob(Knob.SEQUENTIAL_CUTOFF, cutoff));
        try {
            if (fillRing) {
                // Every line of the ring's first seven slots and one of the last: no slot is free after the open one.
                for (int i = 0; i < (segments - 1) * io.writeboost.format.Layout.LINES_PER_SEGMENT + 1; i++) {
                    rig.engine.write(1, i * 16L, 8, ByteBuffer.wrap(new byte[4096]));
                }
                assertEquals(segments, rig.engine.status().currentSegmentId(), "the last slot is open");
            }
            byte[] data = new byte[bytes];
            new Random(3).nextBytes(data);
            long at = 48L << 11; // 48 MiB, past the random lines
            rig.engine.write(1, at, bytes >> 9, ByteBuffer.wrap(data));
            long bypassed = rig.engine.status().bypassedBytes();
            rig.engine.flush();
            rig.restart();
            ByteBuffer back = ByteBuffer.allocate(bytes);
            rig.engine.read(1, at, bytes >> 9, back);
            assertArrayEquals(data, back.array());
            return bypassed;
        } finally {
            rig.engine.close();
        }
    }

    /**
     * A bypassed write of lines the cache does not hold must not wait for a writeback batch
     * that started while it was being written: no batch can hold an older copy of those lines.
     * Here writeback finishes a batch while the bypass's backing write is held, the next batch
     * is held in its backing write, and the bypass must return meanwhile (it used to wait for
     * that batch: on a slow disk, seconds per 128 KiB piece while writeback drained a full ring).
     */
    @Test
    void aBypassOfUncachedLinesDoesNotWaitForTheNextBatch() throws Exception {
        int lps = io.writeboost.format.Layout.LINES_PER_SEGMENT;
        long bypassAt = 40L << 20;
        long secondBatchAt = (long) lps * 4096;
        java.util.concurrent.CountDownLatch bypassHeld = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch releaseBypass = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch batchHeld = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch releaseBatch = new java.util.concurrent.CountDownLatch(1);
        Object power = new Object();
        io.writeboost.testutil.PowerLossDevice cache =
                new io.writeboost.testutil.PowerLossDevice("cache", (int) io.writeboost.format.Layout.slotOffset(16), power);
        io.writeboost.testutil.PowerLossDevice media = new io.writeboost.testutil.PowerLossDevice("backing1", 64 << 20, power);
        io.writeboost.device.BlockDevice gate = new io.writeboost.testutil.DelegatingDevice(media) {
            @Override
            public void write(ByteBuffer src, long offset) throws java.io.IOException {
                hold(offset);
                inner.write(src, offset);
            }

            @Override
            public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws java.io.IOException {
                hold(offset);
                long pos = offset;
                for (int i = 0; i < n; i++) {
                    int len = srcs[i].remaining();
                    inner.write(srcs[i], pos);
                    pos += len;
                }
            }

            private void hold(long offset) throws java.io.IOException {
                try {
                    if (offset == bypassAt) {
                        bypassHeld.countDown();
                        releaseBypass.await();
                    } else if (offset == secondBatchAt) {
                        batchHeld.countDown();
                        releaseBatch.await();
                    }
                } catch (InterruptedException e) {
                    throw new java.io.IOException(e);
                }
            }
        };
        CacheEngine.format(cache, 1, List.of(new io.writeboost.format.VolumeEntry(1, 64 << 20, "vol1", "backing1")));
        CacheEngine engine = CacheEngine.open(cache, java.util.Map.of(1, gate),
                new EngineConfig().knob(Knob.NR_MAX_BATCHED_MIGRATION, 1));
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            // Two segments of adjacent lines: each batch (one segment) is one backing write.
            for (int i = 0; i < 2 * lps; i++) {
                engine.write(1, i * 8L, 8, ByteBuffer.wrap(new byte[4096]));
            }
            engine.flushNow();
            engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
            byte[] data = new byte[128 << 10];
            new Random(5).nextBytes(data);
            Future<?> bypass = pool.submit(() -> {
                engine.write(1, bypassAt >> 9, data.length >> 9, ByteBuffer.wrap(data));
                return null;
            });
            assertTrue(bypassHeld.await(10, java.util.concurrent.TimeUnit.SECONDS), "the bypass reached the backing store");
            engine.setKnob(Knob.FORCE_MIGRATE, 1);
            assertTrue(batchHeld.await(10, java.util.concurrent.TimeUnit.SECONDS), "the second batch reached the backing store");
            releaseBypass.countDown();
            bypass.get(10, java.util.concurrent.TimeUnit.SECONDS); // times out if it waits for the held batch
            releaseBatch.countDown();
            ByteBuffer back = ByteBuffer.allocate(data.length);
            engine.read(1, bypassAt >> 9, data.length >> 9, back);
            assertArrayEquals(data, back.array());
        } finally {
            releaseBypass.countDown();
            releaseBatch.countDown();
            pool.shutdownNow();
            engine.close();
        }
    }

    /**
     * A bypass over a line another bypass dropped, while that one still waits for its turn
     * between batches, must settle too. X (write_around_mode) drops line L, whose old copy V1 a
     * running batch K holds, and waits for K; Y then writes V2 over L, no longer cached; K puts
     * V1 over V2, and Y looks while K is still in flight. Until X rewrites its data the backing
     * store holds V1, older than both writes, so Y must not return before that is undone. Y
     * returned without the count of unsettled drops, and also when a batch in flight did not
     * count as one that ran (then it depended on whether Y looked before or after K counted
     * itself). The test holds Y's look with the engine lock and K with its backing write.
     */
    @Test
    void aBypassSettlesWhileAnotherBypassesDropIsUnsettled() throws Exception {
        java.util.concurrent.CountDownLatch kReading = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch releaseK = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch kWrote = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch kMayFinish = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch yWrote = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch yMayLook = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch xRewriting = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch releaseX = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicInteger xWrites = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicBoolean kSeen = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean kWroteOnce = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean ySeen = new java.util.concurrent.atomic.AtomicBoolean();
        Object power = new Object();
        io.writeboost.testutil.PowerLossDevice cacheMedia =
                new io.writeboost.testutil.PowerLossDevice("cache", (int) io.writeboost.format.Layout.slotOffset(16), power);
        io.writeboost.testutil.PowerLossDevice media = new io.writeboost.testutil.PowerLossDevice("backing1", 8 << 20, power);
        io.writeboost.device.BlockDevice cache = new io.writeboost.testutil.DelegatingDevice(cacheMedia) {
            @Override
            public void read(ByteBuffer dst, long offset) throws java.io.IOException {
                if (Thread.currentThread().getName().startsWith("wb-writeback") && kSeen.compareAndSet(false, true)) {
                    kReading.countDown();   // K has its snapshot (L = V1) and reads the segment
                    hold(releaseK);
                }
                inner.read(dst, offset);
            }

            @Override
            public void writeThrough(ByteBuffer src, long offset) throws java.io.IOException {
                inner.writeThrough(src, offset);
            }

            @Override
            public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws java.io.IOException {
                inner.writeThrough(srcs, n, offset);
            }
        };
        io.writeboost.device.BlockDevice backing = new io.writeboost.testutil.DelegatingDevice(media) {
            @Override
            public void write(ByteBuffer src, long offset) throws java.io.IOException {
                String who = Thread.currentThread().getName();
                if (offset == 0 && who.equals("X") && xWrites.incrementAndGet() == 2) {
                    xRewriting.countDown();
                    hold(releaseX);
                }
                inner.write(src, offset);
                if (offset == 0 && who.startsWith("wb-writeback") && kWroteOnce.compareAndSet(false, true)) {
                    kWrote.countDown();
                    hold(kMayFinish);
                }
                if (offset == 0 && who.equals("Y") && ySeen.compareAndSet(false, true)) {
                    yWrote.countDown();
                    hold(yMayLook);
                }
            }

            @Override
            public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws java.io.IOException {
                long pos = offset;
                for (int i = 0; i < n; i++) {
                    int len = srcs[i].remaining();
                    write(srcs[i], pos);
                    pos += len;
                }
            }
        };
        CacheEngine.format(cache, 1, List.of(new io.writeboost.format.VolumeEntry(1, 8 << 20, "vol1", "backing1")));
        CacheEngine engine = CacheEngine.open(cache, java.util.Map.of(1, backing),
                new EngineConfig().knob(Knob.NR_MAX_BATCHED_MIGRATION, 1));
        java.lang.reflect.Field f = CacheEngine.class.getDeclaredField("lock");
        f.setAccessible(true);
        EngineLock engineLock = (EngineLock) f.get(engine);
        boolean locked = false;
        ExecutorService x = Executors.newSingleThreadExecutor(r -> new Thread(r, "X"));
        ExecutorService y = Executors.newSingleThreadExecutor(r -> new Thread(r, "Y"));
        byte[] v1 = filled(1), vx = filled(2), v2 = filled(3);
        try {
            engine.write(1, 0, 8, ByteBuffer.wrap(v1));
            engine.flushNow();
            engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
            engine.setKnob(Knob.FORCE_MIGRATE, 1);
            assertTrue(kReading.await(10, java.util.concurrent.TimeUnit.SECONDS), "batch K took V1 and reads it");
            Future<?> fx = x.submit(() -> {
                engine.write(1, 0, 8, ByteBuffer.wrap(vx));
                return null;
            });
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (engine.status().indexedLines() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(0, engine.status().indexedLines(), "X dropped L and waits for K");
            Future<?> fy = y.submit(() -> {
                engine.write(1, 0, 8, ByteBuffer.wrap(v2));
                return null;
            });
            assertTrue(yWrote.await(10, java.util.concurrent.TimeUnit.SECONDS), "Y wrote V2");
            engineLock.lock();
            locked = true;
            yMayLook.countDown();                          // Y's write ends; its look waits for the lock
            releaseK.countDown();
            assertTrue(kWrote.await(10, java.util.concurrent.TimeUnit.SECONDS), "K wrote V1 over V2");
            engineLock.unlock();
            locked = false;
            assertYHasNotReturnedOverV1(fy, media, v1);   // Y looks while K is in flight
            kMayFinish.countDown();
            assertTrue(xRewriting.await(10, java.util.concurrent.TimeUnit.SECONDS), "X rewrites after K");
            assertYHasNotReturnedOverV1(fy, media, v1);
            releaseX.countDown();
            fx.get(10, java.util.concurrent.TimeUnit.SECONDS);
            fy.get(10, java.util.concurrent.TimeUnit.SECONDS);
            ByteBuffer back = ByteBuffer.allocate(4096);
            engine.read(1, 0, 8, back);
            assertTrue(java.util.Arrays.equals(v2, back.array()) || java.util.Arrays.equals(vx, back.array()),
                    "after both writes, one of them");
        } finally {
            if (locked) {
                engineLock.unlock();
            }
            releaseK.countDown();
            kMayFinish.countDown();
            yMayLook.countDown();
            releaseX.countDown();
            x.shutdownNow();
            y.shutdownNow();
            engine.close();
        }
    }

    /** Y may still be settling (it waits for its turn); if it returned, the backing store must not hold V1. */
    private static void assertYHasNotReturnedOverV1(Future<?> fy, io.writeboost.testutil.PowerLossDevice media, byte[] v1)
            throws Exception {
        try {
            fy.get(2, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException stillSettling) {
            return;
        }
        ByteBuffer now = ByteBuffer.allocate(4096);
        media.read(now, 0);
        assertTrue(!java.util.Arrays.equals(v1, now.array()),
                "Y returned while the backing store held V1, older than both writes");
    }

    private static void hold(java.util.concurrent.CountDownLatch l) throws java.io.IOException {
        try {
            if (!l.await(20, java.util.concurrent.TimeUnit.SECONDS)) {
                throw new java.io.IOException("held I/O never released");
            }
        } catch (InterruptedException e) {
            throw new java.io.IOException(e);
        }
    }

    private static byte[] filled(int b) {
        byte[] a = new byte[4096];
        java.util.Arrays.fill(a, (byte) b);
        return a;
    }

    @Test
    void manyThreadsReadWriteFlushAndDiscardTheirOwnRegions() throws Exception {
        Rig rig = new Rig(6, 2, VOLUME_BYTES, new EngineConfig().ramBuffers(4).knob(Knob.BARRIER_DEADLINE_MS, 1));
        int threads = 6;
        int region = VOLUME_BYTES / 512 / 3;
        ExecutorService pool = Executors.newFixedThreadPool(threads + 1);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int dev = 1 + t % 2;
                int base = (t / 2) * region;
                long seed = t;
                done.add(pool.submit(() -> {
                    Random rnd = new Random(seed);
                    byte[] model = new byte[region * 512];
                    for (int op = 0; op < 3000; op++) {
                        int n = 1 + rnd.nextInt(40);
                        int at = rnd.nextInt(region - n);
                        int kind = rnd.nextInt(10);
                        if (kind < 5) {
                            byte[] data = new byte[n * 512];
                            rnd.nextBytes(data);
                            rig.engine.write(dev, base + at, n, ByteBuffer.wrap(data));
                            System.arraycopy(data, 0, model, at * 512, data.length);
                        } else if (kind < 8) {
                            ByteBuffer got = ByteBuffer.allocate(n * 512);
                            rig.engine.read(dev, base + at, n, got);
                            byte[] expected = java.util.Arrays.copyOfRange(model, at * 512, (at + n) * 512);
                            assertArrayEquals(expected, got.array(), "thread " + seed + " op " + op);
                        } else if (kind < 9) {
                            rig.engine.flush();
                        } else {
                            rig.engine.discard(dev, base + at, n);
                            java.util.Arrays.fill(model, at * 512, (at + n) * 512, (byte) 0);
                        }
                    }
                    return null;
                }));
            }
            Future<?> knobs = pool.submit(() -> {
                Random rnd = new Random(99);
                while (!done.stream().allMatch(Future::isDone)) {
                    rig.engine.setKnob(Knob.ALLOW_MIGRATE, rnd.nextInt(2));
                    Thread.sleep(rnd.nextInt(20));
                }
                return null;
            });
            for (Future<?> f : done) {
                f.get();
            }
            knobs.get();
            assertTrue(rig.engine.status().lastFlushedId() > 6, "the ring wrapped under the threads");
            assertEquals(null, rig.engine.status().failure());
        } finally {
            pool.shutdownNow();
            rig.engine.close();
        }
    }
}
