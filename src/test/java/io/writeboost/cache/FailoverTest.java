package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.LostRange;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobException;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.FaultyDevice;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import io.writeboost.testutil.SectorModel;
import io.writeboost.testutil.StallingDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A cache device that fails under a writing, fsyncing load: the engine fails over to the
 * backing store (docs/ENGINE.md, "Failure"). Every request is answered; the backing store
 * ends with every line written except the ranges reported lost; status says degraded; a start
 * on the abandoned cache is refused, also once the device works again.
 */
@ExtendWith(QuietLogs.class)
class FailoverTest {
    static final int VOLUME = 4 << 20;
    static final int SECTORS = VOLUME / 512;
    final Object power = new Object();
    final PowerLossDevice cacheMedium = new PowerLossDevice("cache", (int) Layout.slotOffset(8), power);
    final PowerLossDevice backingMedium = new PowerLossDevice("backing", VOLUME, power);
    final FaultyDevice cache = new FaultyDevice(cacheMedium);
    final FaultyDevice backing = new FaultyDevice(backingMedium);
    /** Per sector, the id of the last write the engine acknowledged (writes are issued one at a time). */
    final long[] exact = new long[SECTORS];
    /** Sectors a failed write touched: they may hold its data or the older one. */
    final BitSet uncertain = new BitSet(SECTORS);
    final SectorModel model = new SectorModel(1, SECTORS);
    long nextId;
    int failedWrites, failedFlushes;

    FailoverTest() throws IOException {
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME, "v", "backing")));
    }

    CacheEngine open(EngineConfig config) throws IOException {
        return CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), config);
    }

    /** One write of the load; returns whether it was acknowledged. Checks that it reads back. */
    boolean write(CacheEngine e, int at, int n) throws IOException {
        long id = ++nextId;
        try {
            e.write(1, at, n, SectorModel.stamped(id, 1, at, n));
        } catch (IOException ex) {
            failedWrites++;
            uncertain.set(at, at + n);
            for (int s = at; s < at + n; s++) {
                model.written(1, s, id);
            }
            return false;
        }
        for (int s = at; s < at + n; s++) {
            exact[s] = id;
            uncertain.clear(s);
            model.written(1, s, id);
        }
        ByteBuffer back = ByteBuffer.allocate(n * 512);
        e.read(1, at, n, back);
        for (int i = 0; i < n; i++) {
            assertEquals(id, SectorModel.decode(back, i * 512, 1, at + i), "sector " + (at + i) + " reads back its write");
        }
        return true;
    }

    boolean flush(CacheEngine e) {
        try {
            e.flush();
            model.flushed();
            return true;
        } catch (IOException ex) {
            failedFlushes++;
            return false;
        }
    }

    /**
     * Random writes of 1 to 64 sectors with an fsync every few, until {@code ops} operations
     * past the moment the engine reported degraded (or {@code limit} in all).
     */
    void load(CacheEngine e, Random rnd, int ops, int limit) throws IOException {
        int after = -1;
        for (int i = 0; i < limit && (after < 0 || i < after + ops); i++) {
            loadOp(e, rnd);
            if (after < 0 && e.status().degraded() != null) {
                after = i;
            }
        }
    }

    /** {@code ops} operations of the load, whatever the engine's state; returns how many of its writes were acknowledged. */
    int run(CacheEngine e, Random rnd, int ops) throws IOException {
        int acked = 0;
        for (int i = 0; i < ops; i++) {
            acked += loadOp(e, rnd) ? 1 : 0;
        }
        return acked;
    }

    private boolean loadOp(CacheEngine e, Random rnd) throws IOException {
        int n = 1 + rnd.nextInt(64);
        int at = rnd.nextInt(SECTORS - n);
        boolean acked = write(e, at, n);
        if (rnd.nextInt(6) == 0) {
            flush(e);
        }
        return acked;
    }

    /** The backing store holds every acknowledged write except in the ranges reported lost. */
    void backingHoldsEverythingBut(List<LostRange> lost) throws IOException {
        backingHolds(backingMedium, exact, uncertain, lost);
    }

    /**
     * Volume 1's backing store {@code medium} holds, at each sector, write {@code exact[s]} (the
     * last acknowledged one), or any write's data where {@code uncertain} (a failed write touched
     * it), except in the ranges {@code lost}.
     */
    static void backingHolds(BlockDevice medium, long[] exact, BitSet uncertain, List<LostRange> lost) throws IOException {
        int sectors = exact.length;
        BitSet lostSectors = new BitSet(sectors);
        for (LostRange r : lost) {
            assertEquals(1, r.device());
            lostSectors.set((int) r.firstSector(), (int) r.lastSector() + 1);
        }
        ByteBuffer all = ByteBuffer.allocate(sectors * 512);
        medium.read(all, 0);
        for (int s = 0; s < sectors; s++) {
            long got = SectorModel.decode(all, s * 512, 1, s);
            if (lostSectors.get(s)) {
                continue;
            }
            if (uncertain.get(s)) {
                assertTrue(got >= 0, "sector " + s + " is a write's data: " + SectorModel.describe(all, s * 512));
            } else if (got != exact[s]) {
                fail("sector " + s + " holds write " + got + " on the backing store, not the acknowledged " + exact[s]);
            }
        }
    }

    /** A start on the abandoned cache is refused before it writes anything, and says to format a new one. */
    void startIsRefused() {
        FormatException refused = assertThrows(FormatException.class, () -> open(new EngineConfig()).close());
        assertTrue(refused.getMessage().contains("abandoned") && refused.getMessage().contains("--format"), refused.getMessage());
    }

    static Status awaitDegraded(CacheEngine e) throws InterruptedException {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (System.nanoTime() < deadline) {
            Status st = e.status();
            if (st.degraded() != null && st.degraded().startsWith("failed over")) {
                return st;
            }
            Thread.sleep(5);
        }
        fail("the engine did not fail over: " + e.status().summary());
        return null;
    }

    /** The failover met dirty lines, so the test shows them carried over. */
    static void assertWroteBack(Status st) {
        assertTrue(writtenBack(st) > 0, "the failover had dirty lines to write back: " + st.degraded());
    }

    /** The dirty lines the failover wrote back, as status says; -1 if it does not say. */
    static long writtenBack(Status st) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+) dirty line\\(s\\) written back").matcher(st.degraded());
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    @Test
    void aFailedSyncFailsOverAndLosesNothing() throws Exception {
        Random rnd = new Random(11);
        CacheEngine e = open(new EngineConfig());
        try {
            run(e, rnd, 300);
            assertTrue(flush(e));
            cache.failSyncs.set(1);
            load(e, rnd, 200, 2000);
            Status st = awaitDegraded(e);
            assertWroteBack(st);
            assertTrue(st.degraded().contains("marked abandoned"), st.degraded());
            assertNull(st.failure(), "a failover is not a failure");
            assertEquals(CacheMode.PASS_THROUGH, st.cacheMode());
            assertEquals(0, st.dirtyLines(), "every dirty line written back or given up");
            assertEquals(0, st.lostLines(), "the cache device still returned every line");
            assertEquals(0, failedWrites, "every write was answered with success");
            assertEquals(0, failedFlushes, "every flush too: what it covers is on the backing store");
            assertThrows(KnobException.class, () -> e.setKnob(Knob.CACHE_MODE, CacheMode.WRITE_BACK.ordinal()),
                    "a degraded cache stays pass-through");
            backingHoldsEverythingBut(List.of());
        } finally {
            e.close();
        }
        backingHoldsEverythingBut(List.of());
        startIsRefused();
    }

    @Test
    void everyWriteFailingAfterSomeFailsOverReadOnlyUntilTheDeviceTakesTheMark() throws Exception {
        Random rnd = new Random(12);
        CacheEngine e = open(new EngineConfig());
        try {
            run(e, rnd, 300);
            assertTrue(flush(e));
            cache.writesBeforeBreaking.set(20);
            load(e, rnd, 100, 3000);
            Status st = awaitDegraded(e);
            assertWroteBack(st);
            assertTrue(st.degraded().contains("READ-ONLY"), st.degraded());
            int writesFailed = failedWrites, flushesFailed = failedFlushes;
            assertEquals(0, run(e, rnd, 60), "no write is taken while the mark is not on the device");
            assertEquals(writesFailed + 60, failedWrites);
            assertTrue(failedFlushes > flushesFailed, "no fsync either");
            assertEquals(0, st.lostLines());
            backingHoldsEverythingBut(List.of()); // reads were served throughout: write() read each write back
            // The device works again: the mark lands, and the volume takes writes and fsyncs.
            cache.writesBeforeBreaking.set(-1);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!e.status().degraded().contains("marked abandoned") && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(e.status().degraded().contains("marked abandoned"), e.status().degraded());
            int failedBefore = failedWrites + failedFlushes;
            assertEquals(200, run(e, rnd, 200), "every write is taken once the mark is on the device");
            assertTrue(flush(e));
            assertEquals(failedBefore, failedWrites + failedFlushes, "nothing fails once the mark is on the device");
        } finally {
            e.close();
        }
        backingHoldsEverythingBut(List.of());
        startIsRefused();
    }

    /**
     * The device never takes the mark while the engine runs, then works again: nothing was
     * taken after the failover (no write, no fsync), so the start it cannot refuse replays the
     * old log and loses nothing a flush acknowledged.
     */
    @Test
    void aDeviceThatTakesNoMarkGetsNoWriteSoItsReplayLosesNothingAcknowledged() throws Exception {
        Random rnd = new Random(13);
        CacheEngine e = open(new EngineConfig());
        try {
            run(e, rnd, 300);
            assertTrue(flush(e));
            cache.writesBeforeBreaking.set(10);
            load(e, rnd, 100, 3000);
            assertWroteBack(awaitDegraded(e));
        } finally {
            assertThrows(IOException.class, e::close, "the stop's flush cannot be acknowledged either");
        }
        backingHoldsEverythingBut(List.of());
        cache.writesBeforeBreaking.set(-1);
        CacheEngine again = open(new EngineConfig());
        try {
            ByteBuffer all = ByteBuffer.allocate(VOLUME);
            again.read(1, 0, SECTORS, all);
            for (int s = 0; s < SECTORS; s++) {
                long got = SectorModel.decode(all, s * 512, 1, s);
                assertTrue(model.allowed(1, s, got), "sector " + s + ": write " + got + " is neither what the last "
                        + "acknowledged flush covered nor written since");
            }
        } finally {
            again.close();
        }
    }

    @Test
    void readErrorsPastTheLimitFailOverAndReportTheUnreadableSlotsLinesLost() throws Exception {
        // No writeback: the lines stay dirty in the cache until the failover.
        CacheEngine e = open(new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        Random rnd = new Random(14);
        try {
            e.setKnob(Knob.IO_ERROR_LIMIT, 2);
            // Lines 0..599: segment 1 (slot 0) holds 0..253, segment 2 (slot 1) 254..507, the open segment the rest.
            for (int line = 0; line < 600; line++) {
                write(e, line * 8, 8);
            }
            assertTrue(flush(e));
            cache.failReadsFrom = Layout.slotOffset(1);
            cache.failReadsTo = Layout.slotOffset(2);
            ByteBuffer buf = ByteBuffer.allocate(4096);
            assertThrows(IOException.class, () -> e.read(1, 254 * 8, 8, buf.clear()), "a line only the bad slot holds");
            assertThrows(IOException.class, () -> e.read(1, 300 * 8, 8, buf.clear()), "another");
            assertNull(e.status().degraded(), "two errors are within io_error_limit 2");
            // The third error fails over; the line was lost, so the read fails as a bad sector's would.
            assertThrows(IOException.class, () -> e.read(1, 400 * 8, 8, buf.clear()), "a lost line is not read from the backing store");
            Status st = awaitDegraded(e);
            assertWroteBack(st);
            assertEquals(254, st.lostLines(), "the bad slot's lines are reported lost");
            assertEquals(List.of(new LostRange(1, 254 * 8, 508 * 8 - 1)), st.lostRanges());
            assertTrue(st.cacheDeviceErrors() >= 3);
            assertEquals(0, failedWrites);
            buf.clear();
            e.read(1, 100 * 8, 8, buf);
            assertEquals(exact[100 * 8], SectorModel.decode(buf, 0, 1, 100 * 8), "a line written back reads from the backing store");
            // Pass-through from now on, writes and flushes included; the first flush reports the loss.
            assertEquals(200, run(e, rnd, 200));
            assertTrue(flush(e));
            assertEquals(0, failedWrites);
            assertEquals(1, failedFlushes, "the first flush after the failover reports the loss, later ones succeed");
        } finally {
            e.close();
        }
        backingHoldsEverythingBut(List.of(new LostRange(1, 254 * 8, 508 * 8 - 1)));
        cache.failReadsTo = 0;
        startIsRefused();
    }

    /**
     * The flush's segment is written (its RAM copy freed), then its sync fails and the device
     * no longer returns it: the failover reports its lines lost. The flush that covered them
     * fails, the first flush after the failover fails, later ones succeed; the lost sectors read
     * as EIO until written or discarded.
     */
    @Test
    void dataLostInTheFailoverFailsTheFlushesThatCoveredItAndItsReads() throws Exception {
        CacheEngine e = open(new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        try {
            // Segment 1 (lines 0..253) is sealed and written, its RAM copy freed; 254..299 stay in the open segment.
            for (int line = 0; line < 300; line++) {
                write(e, line * 8, 8);
            }
            cache.failSyncs.set(1);
            cache.failReadsTo = Long.MAX_VALUE;
            assertFalse(flush(e), "the flush covering the lost lines fails");
            Status st = awaitDegraded(e);
            assertEquals(254, st.lostLines(), st.degraded());
            assertEquals(List.of(new LostRange(1, 0, 254 * 8 - 1)), st.lostRanges());
            assertThrows(IOException.class, () -> e.flush(1), "the volume's first fsync after the failover reports the loss too");
            e.flush(1);
            assertTrue(flush(e), "reported once: later flushes succeed");
            ByteBuffer buf = ByteBuffer.allocate(8 * 512);
            assertThrows(IOException.class, () -> e.read(1, 0, 8, buf.clear()), "a lost line");
            assertThrows(IOException.class, () -> e.read(1, 254 * 8 - 5, 8, buf.clear()), "a read touching the last lost sector");
            buf.clear();
            e.read(1, 254 * 8, 8, buf);
            assertEquals(exact[254 * 8], SectorModel.decode(buf, 0, 1, 254 * 8), "a line written back from RAM is not lost");
            assertTrue(write(e, 0, 4), "a write covers half a lost line");
            assertThrows(IOException.class, () -> e.read(1, 0, 8, buf.clear()), "its other half is still lost");
            e.discard(1, 4, 4);
            buf.clear();
            e.read(1, 0, 8, buf);
            for (int s = 4; s < 8; s++) {
                assertEquals(0, SectorModel.decode(buf, s * 512, 1, s), "a discarded sector reads zeros");
            }
            assertThrows(IOException.class, () -> e.read(1, 8, 8, buf.clear()), "the next line is still lost");
            assertTrue(flush(e));
        } finally {
            e.close();
        }
    }

    /** A sync of the stop's last record fails: the stop fails, and no failover starts after it returned. */
    @Test
    void aCacheDeviceErrorWhileStoppingFailsTheStopAndStartsNoFailover() throws Exception {
        CacheEngine e = open(new EngineConfig());
        cache.failSyncs.set(1);
        assertThrows(IOException.class, e::close);
        assertEquals(0, cache.failSyncs.get(), "the record's sync failed");
        Status st = e.status();
        assertNull(st.degraded(), "no failover after the stop: " + st.degraded());
        assertNotNull(st.failure(), "the stop's error is a failure");
    }

    /** Counted down by the backing store's first sync, which then waits for {@link #resume}. */
    final CountDownLatch syncing = new CountDownLatch(1);
    final CountDownLatch resume = new CountDownLatch(1);
    /** The backing store, its first sync held (for engines opened with no writeback, whose first sync is the failover's). */
    final BlockDevice held = new DelegatingDevice(backing) {
        @Override
        public void sync() throws IOException {
            syncing.countDown();
            try {
                resume.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException ex) {
                throw new IOException(ex);
            }
            inner.sync();
        }
    };

    /**
     * Writes lines 0 to {@code lines - 1}, then fails the cache device's next sync under a
     * flush (on the returned thread) and returns once the failover is held in its sync of the
     * backing store, every dirty line written back.
     */
    Thread failOverUntilTheBackingSync(CacheEngine e, int lines) throws Exception {
        for (int line = 0; line < lines; line++) {
            write(e, line * 8, 8);
        }
        cache.failSyncs.set(1);
        Thread flushing = new Thread(() -> flush(e));
        flushing.start();
        assertTrue(syncing.await(20, TimeUnit.SECONDS), "the failover syncs the backing store");
        return flushing;
    }

    /**
     * The engine is aborted (a power cut) while its failover syncs the backing store: the
     * failover ends without writing anything more (no abandoned record on the cache device).
     */
    @Test
    void anAbortedEnginesFailoverWritesNothingMore() throws Exception {
        StallingDevice counted = new StallingDevice(cache);
        CacheEngine e = CacheEngine.open(counted, Map.of(1, held), new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        Thread flushing = failOverUntilTheBackingSync(e, 100);
        Thread aborting = new Thread(e::abort); // returns once the failover has ended
        aborting.start();
        while (e.status().failure() == null) {
            Thread.sleep(1);
        }
        long cacheWrites = counted.writes.get();
        resume.countDown();
        aborting.join();
        flushing.join();
        assertEquals(cacheWrites, counted.writes.get(), "no abandoned record (nor anything else) after the abort");
        assertEquals(1, failedFlushes, "the flush waiting for the failover gets the abort's error");
    }

    /**
     * While the failover syncs the backing store (every dirty line written back, none lost), a
     * read is served from the backing store at once instead of waiting for the failover's end.
     */
    @Test
    void aReadWhileTheFailoverRunsIsServedOnceItsLinesAreWrittenBack() throws Exception {
        CacheEngine e = CacheEngine.open(cache, Map.of(1, held), new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        try {
            Thread flushing = failOverUntilTheBackingSync(e, 300);
            ByteBuffer got = ByteBuffer.allocate(300 * 8 * 512);
            Throwable[] error = new Throwable[1];
            Thread reading = new Thread(() -> {
                try {
                    e.read(1, 0, 300 * 8, got);
                } catch (Throwable t) {
                    error[0] = t;
                }
            });
            reading.start();
            reading.join(20_000); // a bound for a read of the page cache, not a measurement
            boolean served = !reading.isAlive();
            assertNotNull(e.status().degraded(), "the failover is still under way");
            resume.countDown();
            reading.join();
            flushing.join();
            assertTrue(served, "the read was served while the failover synced the backing store");
            assertNull(error[0]);
            for (int s = 0; s < 300 * 8; s++) {
                assertEquals(exact[s], SectorModel.decode(got, s * 512, 1, s), "sector " + s);
            }
            awaitDegraded(e);
        } finally {
            resume.countDown();
            e.close();
        }
    }

    /** Randomly placed dirty lines of one segment go back in backing address order. */
    @Test
    void theWriteBackGoesInBackingOrder() throws Exception {
        List<Long> offsets = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        BlockDevice recorded = new DelegatingDevice(backing) {
            @Override
            public void write(ByteBuffer src, long offset) throws IOException {
                offsets.add(offset);
                inner.write(src, offset);
            }
        };
        CacheEngine e = CacheEngine.open(cache, Map.of(1, recorded), new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        try {
            List<Integer> order = new java.util.ArrayList<>();
            for (int line = 0; line < 200; line += 2) { // every other line: no two meet on the backing store
                order.add(line);
            }
            java.util.Collections.shuffle(order, new Random(15));
            for (int line : order) {
                write(e, line * 8, 8);
            }
            assertTrue(offsets.isEmpty(), "random lines are cached, not bypassed");
            cache.failSyncs.set(1);
            assertTrue(flush(e));
            assertEquals(100, writtenBack(awaitDegraded(e)));
            assertEquals(100, offsets.size(), "one write a line");
            for (int i = 1; i < offsets.size(); i++) {
                assertTrue(offsets.get(i) > offsets.get(i - 1), "write " + i + " at " + offsets.get(i) + " after " + offsets.get(i - 1));
            }
        } finally {
            e.close();
        }
        backingHoldsEverythingBut(List.of());
    }
}
