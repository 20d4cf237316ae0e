package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.StallingDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Read caching: admission, scan resistance, writes and discards over clean lines, ring reuse, the read/write race, recovery. */
class ReadCacheTest {
    static final int VOLUME_BYTES = 64 << 20;

    private final Random rnd = new Random(13);
    private Object power = new Object();
    private PowerLossDevice cache;
    private PowerLossDevice backingMedia;
    private StallingDevice backing;
    private CacheEngine engine;
    private EngineConfig config;
    private final ExecutorService pool = Executors.newCachedThreadPool();

    private void start(int segments, EngineConfig config) throws IOException {
        this.config = config;
        cache = new PowerLossDevice("cache", (int) Layout.slotOffset(segments), power);
        backingMedia = new PowerLossDevice("backing1", VOLUME_BYTES, power);
        byte[] initial = new byte[VOLUME_BYTES];
        rnd.nextBytes(initial);
        backingMedia.write(ByteBuffer.wrap(initial), 0);
        backingMedia.sync();
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME_BYTES, "vol1", "backing1")));
        open();
    }

    private void open() throws IOException {
        backing = new StallingDevice(backingMedia);
        engine = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), config);
    }

    /** Power cut: the engine is abandoned, both devices keep what a sync made durable. */
    private void crashAndRecover() throws IOException {
        Object old = power;
        power = new Object();
        synchronized (old) {
            cache = cache.crash(rnd, power);
            backingMedia = backingMedia.crash(rnd, power);
        }
        engine.abort();
        open();
    }

    @AfterEach
    void stop() throws IOException {
        pool.shutdownNow();
        if (engine != null) {
            engine.close();
        }
    }

    private byte[] read(long lineNo) throws IOException {
        return read(lineNo, 1);
    }

    private byte[] read(long lineNo, int nLines) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(nLines * Layout.LINE_SIZE);
        engine.read(1, lineNo * 8, nLines * 8, b);
        return b.array();
    }

    private byte[] backingLine(long lineNo) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(Layout.LINE_SIZE);
        backingMedia.read(b, lineNo * Layout.LINE_SIZE);
        return b.array();
    }

    private byte[] randomLine() {
        byte[] b = new byte[Layout.LINE_SIZE];
        rnd.nextBytes(b);
        return b;
    }

    @Test
    void aLineIsAdmittedOnItsSecondMissAndThenHitsTheCacheDevice() throws Exception {
        start(8, new EngineConfig());
        byte[] expected = backingLine(5);
        assertArrayEquals(expected, read(5));
        Status st = engine.status();
        assertEquals(0, st.readCacheAdmissions(), "a first miss is only remembered");
        assertEquals(0, st.cleanLines());
        assertArrayEquals(expected, read(5));
        st = engine.status();
        assertEquals(1, st.readCacheAdmissions(), "the second miss admits the line");
        assertEquals(1, st.cleanLines());
        assertEquals(0, st.dirtyLines(), "a clean line is not dirty");
        engine.flushNow(); // the clean line goes to the cache device with its segment
        long backingReads = backing.reads.get();
        assertArrayEquals(expected, read(5));
        assertEquals(backingReads, backing.reads.get(), "the third read came from the cache device");
        st = engine.status();
        assertEquals(1, st.readHitsClean());
        assertEquals(1, st.stat(false, true, false, true), "the seed's matrix counts it as a full-size read hit");
        assertEquals(2, st.stat(false, false, false, true), "and the two misses before it");
        assertEquals(0, backing.writes.get() + backing.syncs.get(), "read caching writes nothing to the backing store");
    }

    @Test
    void withSecondAccessOffTheFirstMissAdmitsAndThresholdZeroTurnsReadCachingOff() throws Exception {
        start(8, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        read(3);
        assertEquals(1, engine.status().readCacheAdmissions());
        engine.setKnob(Knob.READ_CACHE_THRESHOLD, 0);
        read(4);
        read(4);
        assertEquals(1, engine.status().readCacheAdmissions(), "read_cache_threshold 0: nothing more admitted");
    }

    @Test
    void aSequentialRunLongerThanTheThresholdIsNotAdmitted() throws Exception {
        start(8, new EngineConfig().knob(Knob.READ_CACHE_THRESHOLD, 4));
        for (int pass = 0; pass < 2; pass++) {
            for (long line = 100; line < 116; line++) {
                read(line);
            }
        }
        // Each pass is one run: its first 4 lines may be admitted (on the second pass), the rest not.
        assertEquals(4, engine.status().readCacheAdmissions());
        read(200, 8);
        read(200, 8);
        assertEquals(4, engine.status().readCacheAdmissions(), "one request of 8 lines is a run of 8");
        // Far from both runs: a read up to 2 MiB past a run's end counts with it (pieces of one
        // large request arrive out of order).
        read(2000, 4);
        read(2000, 4);
        assertEquals(8, engine.status().readCacheAdmissions(), "a request of 4 lines is not");
    }

    /**
     * A hot set of 1000 lines read three times, then a scan of 6000 other lines, each read once
     * in random order (more than the 4064-line cache holds), then the hot set again. With the
     * second-access filter the scan admits nothing and the hot set still hits; without it
     * (the control) the scan fills the ring and FIFO eviction pushes the hot set out.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 0})
    void aOnePassScanDoesNotPushOutLinesReadManyTimes(int secondAccess) throws Exception {
        start(16, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, secondAccess));
        long[] hot = new long[1000];
        for (int i = 0; i < hot.length; i++) {
            hot[i] = 2L * i;
        }
        for (int pass = 0; pass < 3; pass++) {
            for (long line : hot) {
                read(line);
            }
        }
        long admittedHot = engine.status().readCacheAdmissions();
        assertTrue(admittedHot >= 950, "the hot set is admitted: " + admittedHot);
        long[] scan = new long[6000];
        for (int i = 0; i < scan.length; i++) {
            scan[i] = 2001 + 2L * i;
        }
        for (int i = scan.length - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            long t = scan[i];
            scan[i] = scan[j];
            scan[j] = t;
        }
        for (long line : scan) {
            read(line);
            // Without the filter, a miss the ring has no room for yet (writeback is giving up
            // the oldest clean segments) is read again until admitted: the control must not
            // depend on how the writeback thread is scheduled.
            for (int tries = 0; secondAccess == 0 && engine.status().cleanLines() > 0 && !admitted(line) && tries < 2000; tries++) {
                Thread.sleep(1);
                read(line);
            }
        }
        Status st = engine.status();
        long fromScan = st.readCacheAdmissions() - admittedHot;
        long hitsBefore = st.readHitsClean();
        for (long line : hot) {
            read(line);
        }
        long hits = engine.status().readHitsClean() - hitsBefore;
        System.out.printf("ReadCacheTest: second access %d: %d hot lines admitted, %d scan lines admitted, %d of 1000 hot "
                + "lines hit after the scan%n", secondAccess, admittedHot, fromScan, hits);
        if (secondAccess == 1) {
            assertEquals(0, fromScan, "a line read once is not admitted");
            assertTrue(hits >= 950, "the hot set still hits after the scan: " + hits + " of 1000");
        } else {
            assertEquals(scan.length, fromScan, "without the filter the whole scan is admitted");
            assertTrue(hits < 500, "and pushes the hot set out: " + hits + " of 1000 still hit");
        }
    }

    /** Whether a read of {@code line} now is served by a clean line (it counts as a clean hit). */
    private boolean admitted(long line) throws IOException {
        long before = engine.status().readHitsClean();
        read(line);
        return engine.status().readHitsClean() > before;
    }

    @Test
    void aWriteToACleanLineSupersedesIt() throws Exception {
        start(8, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        for (boolean onDevice : new boolean[]{false, true}) {
            long lineNo = onDevice ? 11 : 10;
            byte[] expected = backingLine(lineNo);
            read(lineNo);
            assertEquals(1, engine.status().cleanLines());
            if (onDevice) {
                engine.flush(); // frozen: the write takes a new line
            }
            byte[] part = new byte[2 * Layout.SECTOR_SIZE];
            rnd.nextBytes(part);
            engine.write(1, lineNo * 8 + 3, 2, ByteBuffer.wrap(part));
            System.arraycopy(part, 0, expected, 3 * Layout.SECTOR_SIZE, part.length);
            Status st = engine.status();
            assertEquals(0, st.cleanLines(), "the clean line is gone");
            assertEquals(1, st.dirtyLines(), "the write's line is dirty with its two sectors");
            assertArrayEquals(expected, read(lineNo));
            engine.flushNow();
            assertArrayEquals(expected, read(lineNo));
            engine.drain();
            assertArrayEquals(expected, backingLine(lineNo), "written back: only the write's sectors changed");
        }
    }

    @Test
    void aDiscardDropsACleanLine() throws Exception {
        start(8, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        read(20);
        read(21);
        engine.flushNow();
        assertEquals(2, engine.status().cleanLines());
        engine.discard(1, 20 * 8, 8);
        engine.discard(1, 21 * 8 + 2, 2);
        assertEquals(0, engine.status().cleanLines());
        assertEquals(0, engine.status().dirtyLines(), "line 21, discarded in part, is dropped, not zeroed in the cache");
        assertArrayEquals(new byte[Layout.LINE_SIZE], read(20));
        byte[] partly = backingLine(21);
        java.util.Arrays.fill(partly, 2 * Layout.SECTOR_SIZE, 4 * Layout.SECTOR_SIZE, (byte) 0);
        assertArrayEquals(partly, read(21));
        engine.flushNow();
        assertArrayEquals(new byte[Layout.LINE_SIZE], read(20), "line 20 was admitted again, as zeros");
        assertArrayEquals(partly, read(21));
    }

    @Test
    void slotsHoldingOnlyCleanLinesAreReusedWithoutBackingStoreIo() throws Exception {
        // high_watermark 0: writeback only for a full ring, so that the dirty segment stays.
        start(8, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0).knob(Knob.HIGH_WATERMARK, 0));
        byte[] dirty = randomLine();
        engine.write(1, 0, 8, ByteBuffer.wrap(dirty));
        engine.flushNow(); // segment 1 holds a dirty line: writeback may not pass it (allow_migrate 0)
        int ringLines = 8 * Layout.LINES_PER_SEGMENT;
        for (int i = 0; i < ringLines; i++) {
            read(2 + 2L * i);
        }
        Status st = engine.status();
        assertEquals(1, st.dirtyLines());
        assertTrue(st.readCacheAdmissions() <= 7 * Layout.LINES_PER_SEGMENT,
                "admission stops at the writers' reserve while the oldest segment is dirty: " + st.readCacheAdmissions());
        engine.write(1, 8, 8, ByteBuffer.wrap(randomLine())); // a writer still finds room at once
        engine.drain(); // now segment 1 is written back, and with it the clean segments after it
        long writesAfterDrain = backing.writes.get();
        long syncsAfterDrain = backing.syncs.get();
        long admittedBefore = engine.status().readCacheAdmissions();
        // Admission never waits for room, and writeback gives clean slots up on its own
        // thread: a pass can outrun it (by far on a loaded machine), so read the region again
        // until more than two rings' worth went in, for up to a minute.
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (engine.status().readCacheAdmissions() - admittedBefore <= 2L * ringLines && System.nanoTime() < deadline) {
            for (int i = 0; i < 3 * ringLines; i++) {
                read(4100 + 2L * i);
            }
        }
        st = engine.status();
        assertTrue(st.readCacheAdmissions() - admittedBefore > 2 * ringLines,
                "clean-only slots were reused: " + (st.readCacheAdmissions() - admittedBefore) + " lines admitted into a ring of "
                        + ringLines);
        assertEquals(writesAfterDrain, backing.writes.get(), "giving up clean lines writes nothing to the backing store");
        assertEquals(syncsAfterDrain, backing.syncs.get());
        // Oldest first: a line admitted now hits (a miss the ring had no room for is read again
        // until writeback has given up the oldest slots), the first one admitted above, whose
        // slot has been reused since, does not.
        long newest = 4099;
        boolean hit = false;
        for (long until = System.nanoTime() + 60_000_000_000L; !hit && System.nanoTime() < until; ) {
            read(newest);
            hit = admitted(newest);
            Thread.sleep(hit ? 0 : 1);
        }
        assertTrue(hit, "a line admitted after the ring turned over hits");
        assertArrayEquals(backingLine(newest), read(newest));
        long hitsBefore = engine.status().readHitsClean();
        assertArrayEquals(backingLine(4100), read(4100));
        assertEquals(hitsBefore, engine.status().readHitsClean(), "the oldest admission was evicted");
        assertArrayEquals(dirty, read(0));
    }

    /** How a line's backing-store copy changes while a read miss of it holds the older copy. */
    enum Change { CACHED_WRITE_WRITTEN_BACK, DISCARD, BYPASSED_WRITE }

    @Test
    void aWriteWhileAMissReadsTheBackingStoreDropsTheAdmission() throws Exception {
        raceWith(Change.CACHED_WRITE_WRITTEN_BACK);
    }

    @Test
    void aDiscardWhileAMissReadsTheBackingStoreDropsTheAdmission() throws Exception {
        raceWith(Change.DISCARD);
    }

    @Test
    void aBypassedWriteWhileAMissReadsTheBackingStoreDropsTheAdmission() throws Exception {
        raceWith(Change.BYPASSED_WRITE);
    }

    /**
     * A reader misses lines 7 and 9 (line 8 is dirty in the cache, so they are two backing
     * runs), gets line 7's backing copy V1, and is held in its read of line 9; meanwhile line 7
     * changes (for a cached write, it is also written back so that it leaves the index); then
     * the reader goes on to admit what it read. Admitting line 7 would serve V1 over the newer
     * data from then on. (The reader is held in its second run, not in line 7's: a change of
     * sectors a read is reading waits for the read, BackingRanges, so the race the guard is for
     * opens between a run's read and the admission.)
     */
    private void raceWith(Change change) throws Exception {
        start(8, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        long lineNo = 7;
        byte[] v1 = backingLine(lineNo), v9 = backingLine(9);
        byte[] v2 = change == Change.DISCARD ? new byte[Layout.LINE_SIZE] : randomLine();
        byte[] dirty8 = randomLine();
        engine.write(1, 8 * 8, 8, ByteBuffer.wrap(dirty8));
        backing.stallNextReadAt(9L * Layout.LINE_SIZE);
        Future<byte[]> reader = pool.submit(() -> read(lineNo, 3));
        backing.awaitStalled();
        switch (change) {
            case CACHED_WRITE_WRITTEN_BACK -> {
                engine.write(1, lineNo * 8, 8, ByteBuffer.wrap(v2));
                engine.drain();
                assertEquals(0, engine.status().indexedLines(), "written back, the lines left the index");
            }
            case DISCARD -> engine.discard(1, lineNo * 8, 8);
            case BYPASSED_WRITE -> {
                engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
                engine.write(1, lineNo * 8, 8, ByteBuffer.wrap(v2));
                engine.setKnob(Knob.WRITE_AROUND_MODE, 0);
            }
        }
        assertArrayEquals(v2, backingLine(lineNo));
        backing.release();
        byte[] got = reader.get();
        assertArrayEquals(v1, java.util.Arrays.copyOfRange(got, 0, Layout.LINE_SIZE), "the racing read returns what it read");
        assertArrayEquals(v9, java.util.Arrays.copyOfRange(got, 2 * Layout.LINE_SIZE, 3 * Layout.LINE_SIZE));
        assertArrayEquals(v2, read(lineNo), "reads after the change see it, not the racing read's stale copy");
        assertEquals(2, engine.status().readCacheAdmissions(),
                "line 9 admitted, the racing read's line 7 dropped; the read after the change admitted line 7");
        engine.flushNow();
        assertArrayEquals(v2, read(lineNo));
    }

    @Test
    void cleanLinesComeBackAfterAStopAndAfterACrash() throws Exception {
        start(8, new EngineConfig().knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        byte[] dirty = randomLine();
        engine.write(1, 0, 8, ByteBuffer.wrap(dirty));
        for (long line = 1; line <= 10; line++) {
            read(line);
        }
        engine.flush();
        assertEquals(10, engine.status().cleanLines());
        engine.close();
        open();
        assertEquals(10, engine.status().cleanLines(), "a clean stop: the clean lines are kept");
        assertEquals(10, engine.status().warmCleanLines());
        assertEquals(1, engine.status().dirtyLines());
        for (long line = 1; line <= 10; line++) {
            assertArrayEquals(backingLine(line), read(line));
        }
        assertEquals(10, engine.status().readHitsClean(), "and hit at once");
        engine.flush();
        crashAndRecover();
        assertEquals(10, engine.status().warmCleanLines(), "a crash: the clean lines are kept");
        assertArrayEquals(dirty, read(0));
        for (long line = 1; line <= 10; line++) {
            assertArrayEquals(backingLine(line), read(line));
        }
        assertEquals(10, engine.status().readHitsClean());
    }

    /**
     * The case recovery must get right: a dirty copy D of a line in an earlier segment, a clean
     * entry C of the same line in a later one (here with data the backing store does not hold,
     * the worst a torn or stale clean entry could claim), a crash. Replaying C as the line's
     * newest copy, or letting it take D's place, would drop a dirty sector the backing store
     * does not have; replay must leave D current.
     */
    @Test
    void aCleanEntryAfterADirtyCopyDoesNotDropIt() throws Exception {
        start(8, new EngineConfig());
        byte[] d = randomLine();
        engine.write(1, 9 * 8, 8, ByteBuffer.wrap(d));
        engine.flushNow(); // segment 1, durable, not written back
        engine.abort();
        byte[] c = randomLine();
        ByteBuffer slot = ByteBuffer.allocateDirect(SegmentHeader.usedBytes(1));
        slot.put(SegmentHeader.lineOffset(0), ByteBuffer.wrap(c), 0, c.length);
        long[] keys = {LineKey.of(1, 9)};
        long[] clean = {1L};
        SegmentHeader.encode(slot, 2, engine.superblock().nonce(), 1, 0, keys, new byte[1], clean, 0);
        CRC32C crc = new CRC32C();
        SegmentHeader.updateDataCrc(crc, slot, 0, 1);
        SegmentHeader.seal(slot, 0, (int) crc.getValue());
        cache.write(slot, Layout.slotOffset(1));
        cache.sync();
        SegmentHeader decoded = SegmentHeader.decode(slot, 0);
        assertTrue(decoded.clean[0], "the entry decodes as clean");
        assertEquals(0, decoded.dirty[0]);
        open();
        assertEquals(2, engine.recovery().replay().size(), "the segment with the clean entry was replayed");
        assertArrayEquals(d, read(9), "the dirty copy is still the line's newest");
        assertEquals(1, engine.status().dirtyLines());
        assertEquals(0, engine.status().cleanLines());
        engine.drain();
        assertArrayEquals(d, backingLine(9));
    }
}
