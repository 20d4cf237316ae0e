package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stream's pieces reach the backing store in large requests whatever their arrival pattern
 * (docs/ENGINE.md, "Staging"): 128 KiB pieces, one after another as the kernel sends a
 * synchronous direct write, or from several threads at once, leave as 4 MiB requests, and a
 * read right after each write returns it. Requests are counted at the backing store, except
 * writeback's (there is none to do here anyway). The quiet time is long here, so that only full
 * windows and flushes write, whatever the machine's pace.
 */
@ExtendWith(QuietLogs.class)
class StreamStagingTest {
    static final int PIECE = 128 << 10;
    static final int VOLUME_BYTES = 64 << 20;
    static final long MIB_SECTORS = 2048;

    /** Requests (offset, bytes) sent to the backing store by any thread but writeback. */
    static final class CountingBacking extends DelegatingDevice {
        final List<long[]> requests = Collections.synchronizedList(new ArrayList<>());

        CountingBacking(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void write(ByteBuffer src, long offset) throws IOException {
            count(offset, src.remaining());
            inner.write(src, offset);
        }

        @Override
        public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws IOException {
            long total = 0;
            for (int i = 0; i < n; i++) {
                total += srcs[i].remaining();
            }
            count(offset, total);
            long pos = offset;
            for (int i = 0; i < n; i++) {
                int len = srcs[i].remaining();
                inner.write(srcs[i], pos);
                pos += len;
            }
        }

        private void count(long offset, long bytes) {
            if (!Thread.currentThread().getName().startsWith("wb-writeback")) {
                requests.add(new long[] {offset, bytes});
            }
        }
    }

    static final class Setup implements AutoCloseable {
        final Object power = new Object();
        final PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(64), power);
        final PowerLossDevice media = new PowerLossDevice("backing1", VOLUME_BYTES, power);
        final CountingBacking backing = new CountingBacking(media);
        CacheEngine engine;

        Setup() throws IOException {
            CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME_BYTES, "vol1", "backing1")));
            open();
        }

        void open() throws IOException {
            engine = CacheEngine.open(cache, Map.of(1, backing),
                    new EngineConfig().stagingQuietNanos(java.util.concurrent.TimeUnit.MINUTES.toNanos(10)));
        }

        /** Writes piece {@code p} of {@code data} (128 KiB at p * 128 KiB) and reads it straight back. */
        void writeAndReadBack(byte[] data, int p) throws IOException {
            engine.write(1, p * (long) (PIECE >> 9), PIECE >> 9, ByteBuffer.wrap(data, p * PIECE, PIECE));
            ByteBuffer back = ByteBuffer.allocate(PIECE);
            engine.read(1, p * (long) (PIECE >> 9), PIECE >> 9, back);
            assertArrayEquals(java.util.Arrays.copyOfRange(data, p * PIECE, (p + 1) * PIECE), back.array(),
                    "piece " + p + " read right after its write");
        }

        @Override
        public void close() throws IOException {
            engine.close();
        }
    }

    @Test
    void piecesArrivingOneAfterAnotherLeaveInLargeRequests() throws Exception {
        try (Setup s = new Setup()) {
            byte[] data = random(16 << 20, 1);
            for (int p = 0; p < data.length / PIECE; p++) {
                s.writeAndReadBack(data, p);
            }
            // The piece that brings the stream to sequential_cutoff (4 MiB) and every one after it.
            assertEquals((12L << 20) + PIECE, s.engine.status().bypassedBytes());
            s.engine.flush();
            assertLargeRequests(s, (12L << 20) + PIECE);
            assertSurvivesRestart(s, data);
        }
    }

    /**
     * The eight pieces of each 1 MiB request in flight together, in any order, as a loop
     * device's asynchronous direct write sends them; one request after another. (Pieces run
     * ahead of the stream by at most a request, within what {@link StreamTable} stitches: more,
     * and a piece may rightly start a stream of its own and go through the cache.)
     */
    @Test
    void piecesArrivingTogetherLeaveInLargeRequests() throws Exception {
        try (Setup s = new Setup()) {
            byte[] data = random(16 << 20, 2);
            int pieces = data.length / PIECE;
            int first = (4 << 20) / PIECE; // the stream's first 4 MiB, one after another
            for (int p = 0; p < first; p++) {
                s.writeAndReadBack(data, p);
            }
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                for (int request = first; request < pieces; request += 8) {
                    List<java.util.concurrent.Callable<Void>> together = new ArrayList<>();
                    for (int p = request; p < request + 8; p++) {
                        int piece = p;
                        together.add(() -> {
                            s.writeAndReadBack(data, piece);
                            return null;
                        });
                    }
                    Collections.shuffle(together, new Random(request));
                    for (Future<Void> f : pool.invokeAll(together)) {
                        f.get();
                    }
                }
            } finally {
                pool.shutdownNow();
            }
            assertEquals((12L << 20) + PIECE, s.engine.status().bypassedBytes(), "every piece past the cutoff went around");
            s.engine.flush();
            assertLargeRequests(s, (12L << 20) + PIECE);
            assertSurvivesRestart(s, data);
        }
    }

    /**
     * Pieces that straddle window boundaries (the stream starts 64 KiB into the volume) are
     * staged in both windows, and the run across the boundary still leaves as one request.
     */
    @Test
    void piecesAcrossWindowBoundariesLeaveWithTheirNeighbours() throws Exception {
        try (Setup s = new Setup()) {
            byte[] data = random(10 << 20, 5);
            long start = 128; // sectors
            for (int p = 0; p < data.length / PIECE; p++) {
                long at = start + p * (long) (PIECE >> 9);
                s.engine.write(1, at, PIECE >> 9, ByteBuffer.wrap(data, p * PIECE, PIECE));
                ByteBuffer back = ByteBuffer.allocate(PIECE);
                s.engine.read(1, at, PIECE >> 9, back);
                assertArrayEquals(java.util.Arrays.copyOfRange(data, p * PIECE, (p + 1) * PIECE), back.array(), "piece " + p);
            }
            s.engine.flush();
            boolean across = false;
            for (long[] r : s.backing.requests) {
                across |= r[0] <= (4 << 20) - (64 << 10) && r[0] + r[1] >= (8 << 20);
            }
            assertTrue(across, "one request from the first staged line (64 KiB before 4 MiB) to 8 MiB");
            s.engine.close();
            s.open();
            ByteBuffer back = ByteBuffer.allocate(data.length);
            s.engine.read(1, start, data.length >> 9, back);
            assertArrayEquals(data, back.array());
        }
    }

    /**
     * A write through the cache and a discard over staged lines come after them: the write
     * waits for its line's window to reach the backing store and then supersedes it, the
     * discard punches once the window is written. Reads spanning staged, cached and untouched
     * lines get each from its place, before and after.
     */
    @Test
    void writesAndDiscardsOverStagedLinesComeAfterThem() throws Exception {
        try (Setup s = new Setup()) {
            byte[] expected = new byte[12 << 20];
            byte[] data = random(8 << 20, 3);
            for (int p = 0; p < (7 << 20) / PIECE; p++) {   // [3.875, 7) MiB staged, the window not full
                s.writeAndReadBack(data, p);
            }
            System.arraycopy(data, 0, expected, 0, 7 << 20);
            assertReads(s, expected, "a stream staged");
            byte[] small = random(4096, 4);
            s.engine.write(1, 5 * MIB_SECTORS, 8, ByteBuffer.wrap(small)); // through the cache, over a staged line
            System.arraycopy(small, 0, expected, 5 << 20, small.length);
            assertReads(s, expected, "a cached write over a staged line");
            for (int p = (7 << 20) / PIECE; p < (7 << 20) / PIECE + 4; p++) { // the stream goes on: [7, 7.5) MiB staged
                s.writeAndReadBack(data, p);
            }
            System.arraycopy(data, 7 << 20, expected, 7 << 20, 512 << 10);
            assertReads(s, expected, "the stream staged again");
            s.engine.discard(1, 7 * MIB_SECTORS + 512, 16); // two staged lines
            java.util.Arrays.fill(expected, (7 << 20) + (256 << 10), (7 << 20) + (256 << 10) + 8192, (byte) 0);
            assertReads(s, expected, "a discard of staged lines");
            s.engine.flush();
            s.engine.close();
            s.open();
            assertReads(s, expected, "after a restart");
        }
    }

    /**
     * A backing store that fails the write-out: the staged lines stay readable, a flush and a
     * write through the cache over them get the error, and once the store works again the next
     * flush writes them out and the cached write goes through.
     */
    @Test
    void aFailedWriteOutKeepsTheLinesAndFailsTheFlush() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(64), power);
        PowerLossDevice media = new PowerLossDevice("backing1", VOLUME_BYTES, power);
        io.writeboost.testutil.FaultyDevice backing = new io.writeboost.testutil.FaultyDevice(media);
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME_BYTES, "vol1", "backing1")));
        CacheEngine engine = CacheEngine.open(cache, Map.of(1, backing), new EngineConfig());
        try {
            byte[] data = random(6 << 20, 6);
            backing.broken = true;
            for (int p = 0; p < data.length / PIECE; p++) {   // [3.875, 6) MiB staged
                engine.write(1, p * (long) (PIECE >> 9), PIECE >> 9, ByteBuffer.wrap(data, p * PIECE, PIECE));
            }
            ByteBuffer back = ByteBuffer.allocate(data.length);
            engine.read(1, 0, data.length >> 9, back);
            assertArrayEquals(data, back.array(), "staged lines read back while the store fails");
            assertTrue(assertThrows(IOException.class, engine::flush).getMessage().contains("staged lines"));
            byte[] line = random(4096, 7);
            assertThrows(IOException.class, () -> engine.write(1, 5 * MIB_SECTORS, 8, ByteBuffer.wrap(line)),
                    "a write through the cache over a staged line the store refuses");
            back.clear();
            engine.read(1, 0, data.length >> 9, back);
            assertArrayEquals(data, back.array(), "still readable after the failed attempts");

            backing.broken = false;
            engine.flush();
            ByteBuffer onMedia = ByteBuffer.allocate(2 << 20);
            media.read(onMedia, 4 << 20);
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 4 << 20, 6 << 20), onMedia.array(),
                    "the staged lines reached the backing store");
            engine.write(1, 5 * MIB_SECTORS, 8, ByteBuffer.wrap(line));
            System.arraycopy(line, 0, data, 5 << 20, line.length);
            engine.flush();
            back.clear();
            engine.read(1, 0, data.length >> 9, back);
            assertArrayEquals(data, back.array(), "with the cached write over them");
        } finally {
            backing.broken = false;
            engine.close();
        }
    }

    /**
     * A flush that finds a small window still filling (a journal's latest lines, say) logs its
     * lines in the cache instead of waiting for their backing write, which may sit behind a
     * writeback sync: no staged line reaches the backing store, the lines read back, and they
     * survive a power cut right after the flush. A large window is written out as before.
     */
    @Test
    void aFlushLogsASmallFillingWindowInTheCacheAndWritesALargeOneOut() throws Exception {
        try (Setup s = new Setup()) {
            byte[] data = random(6 << 20, 8);
            int small = (4 << 20) / PIECE + 2;   // [3.875, 4.25) MiB staged: 32 lines in one window, 64 in the next
            for (int p = 0; p < small; p++) {
                s.writeAndReadBack(data, p);
            }
            long stagedLines = ((4L << 20) + 2 * PIECE - ((4L << 20) - PIECE)) / Layout.LINE_SIZE;
            s.engine.flush();
            assertEquals(List.of(), s.backing.requests, "no backing write for the staged lines");
            assertEquals(stagedLines, s.engine.status().stagedLinesCachedAtFlush());
            assertEquals(0, s.engine.status().bypassedBytes(), "the flush took back what went around the cache");

            Object power = new Object();
            PowerLossDevice cacheAfter = s.cache.crash(new Random(8), power);
            PowerLossDevice mediaAfter = s.media.crash(new Random(9), power);
            s.engine.abort();
            s.engine = CacheEngine.open(cacheAfter, Map.of(1, mediaAfter), new EngineConfig());
            ByteBuffer back = ByteBuffer.allocate(small * PIECE);
            s.engine.read(1, 0, back.capacity() >> 9, back);
            assertArrayEquals(java.util.Arrays.copyOf(data, small * PIECE), back.array(), "after a power cut");
        }
        try (Setup s = new Setup()) {
            byte[] data = random(6 << 20, 10);
            for (int p = 0; p < data.length / PIECE; p++) {   // [4, 6) MiB: 512 lines in one window
                s.writeAndReadBack(data, p);
            }
            s.engine.flush();
            assertEquals(0, s.engine.status().stagedLinesCachedAtFlush() - 32, "only the 32 lines before 4 MiB");
            assertLargeRequests(s, 2 << 20);
            assertSurvivesRestart(s, data);
        }
        try (Setup s = new Setup()) {
            s.engine.setKnob(io.writeboost.knob.Knob.WRITE_AROUND_MODE, 1);
            byte[] data = random(6 << 20, 11);
            for (int p = 0; p < (4 << 20) / PIECE + 2; p++) {
                s.writeAndReadBack(data, p);
            }
            s.engine.flush();
            assertEquals(0, s.engine.status().stagedLinesCachedAtFlush(), "write-around keeps no dirty line, staged or not");
            assertEquals(0, s.engine.status().dirtyLines());
        }
    }

    private static void assertReads(Setup s, byte[] expected, String when) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(expected.length);
        s.engine.read(1, 0, expected.length >> 9, all);
        assertArrayEquals(expected, all.array(), when);
    }

    /** Every request is 1 MiB or more, and together they carry the stream's bypassed bytes once. */
    private static void assertLargeRequests(Setup s, long bypassed) {
        long total = 0;
        for (long[] r : s.backing.requests) {
            assertTrue(r[1] >= 1 << 20, "a request of " + r[1] + " bytes at " + r[0]);
            total += r[1];
        }
        assertEquals(bypassed, total, "the stream's bypassed bytes, each written once");
        assertEquals(s.backing.requests.size(), s.engine.status().bypassRequests(), "the status counts the same requests");
    }

    private static void assertSurvivesRestart(Setup s, byte[] data) throws IOException {
        s.engine.close();
        s.open();
        ByteBuffer back = ByteBuffer.allocate(data.length);
        s.engine.read(1, 0, data.length >> 9, back);
        assertArrayEquals(data, back.array());
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }
}
