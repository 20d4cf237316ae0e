package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.LostRange;
import io.writeboost.format.SegmentHeader;
import io.writeboost.knob.Knob;
import io.writeboost.recovery.LostDataException;
import io.writeboost.testutil.Rig;
import io.writeboost.testutil.QuietLogs;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Recovery after ring wrap-around, a torn last segment and a corrupt header; what a clean stop leaves. */
@ExtendWith(QuietLogs.class)
class RecoveryTest {
    static final int VOLUME_BYTES = 4 << 20;

    private static byte[] line(Random rnd) {
        byte[] b = new byte[Layout.LINE_SIZE];
        rnd.nextBytes(b);
        return b;
    }

    /** Segments 1..n, line i of volume 1 alone in segment i + 1; returns the lines' data. */
    private static byte[][] oneLineSegments(Rig rig, Random rnd, int n) throws IOException {
        byte[][] data = new byte[n][];
        for (int i = 0; i < n; i++) {
            data[i] = line(rnd);
            rig.engine.write(1, i * 8L, 8, ByteBuffer.wrap(data[i]));
            rig.engine.flushNow();
        }
        return data;
    }

    private static byte[] readLine(CacheEngine e, int dev, long lineNo) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(Layout.LINE_SIZE);
        e.read(dev, lineNo * 8, 8, b);
        return b.array();
    }

    @Test
    void freshFormatReplaysNothing() throws Exception {
        Rig rig = new Rig(4, 1, VOLUME_BYTES, new EngineConfig());
        try {
            assertEquals(0, rig.engine.recovery().replay().size());
            assertEquals(1, rig.engine.recovery().nextId());
            assertTrue(rig.engine.recovery().cleanShutdown());
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void cleanStopAfterWritebackReplaysNothing() throws Exception {
        Rig rig = new Rig(4, 1, VOLUME_BYTES, new EngineConfig());
        Random rnd = new Random(1);
        byte[] data = line(rnd);
        rig.engine.write(1, 80, 8, ByteBuffer.wrap(data));
        rig.engine.drain();
        rig.restart();
        try {
            assertEquals(0, rig.engine.recovery().replay().size(), "written-back segments are not replayed");
            assertTrue(rig.engine.recovery().cleanShutdown());
            assertEquals(1, rig.engine.recovery().lastMigratedId());
            assertArrayEquals(data, readLine(rig.engine, 1, 10));
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void cleanStopKeepsDirtyDataAndReplaysOnlyWhatIsNotWrittenBack() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig());
        Random rnd = new Random(2);
        byte[] first = line(rnd), second = line(rnd);
        rig.engine.write(1, 0, 8, ByteBuffer.wrap(first));
        rig.engine.drain();                       // segment 1 written back
        rig.engine.write(1, 8, 8, ByteBuffer.wrap(second));
        rig.restart();                            // segment 2 sealed at stop, still dirty
        try {
            assertEquals(1, rig.engine.recovery().replay().size());
            assertEquals(2, rig.engine.recovery().replay().get(0).id());
            assertEquals(1, rig.engine.recovery().replayedLines());
            assertEquals(null, rig.engine.recovery().replay().get(0).keys(), "the running engine keeps no segment's entries");
            assertThrows(IllegalStateException.class, () -> rig.engine.recovery().dirtyLines(),
                    "a count over the entries is refused, not answered as 0");
            assertEquals(1, rig.engine.status().dirtyLines());
            assertArrayEquals(first, readLine(rig.engine, 1, 0));
            assertArrayEquals(second, readLine(rig.engine, 1, 1));
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void ringWrapsManyTimesAndRecovers() throws Exception {
        Rig rig = new Rig(3, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(2));
        Random rnd = new Random(3);
        int lines = VOLUME_BYTES / Layout.LINE_SIZE;
        byte[][] model = new byte[lines][];
        // 4000 line writes = 15+ segments through a ring of 3: writers must wait for writeback.
        // A stride coprime with the line count never revisits a line within 254 writes, so no
        // write lands in place in the open segment and the count of segments does not depend
        // on when a flush froze its lines (with random lines about one write in eight landed in
        // place, and the assertion below failed now and then).
        for (int i = 0; i < 4000; i++) {
            int l = (int) ((i * 389L) % lines);
            model[l] = line(rnd);
            rig.engine.write(1, l * 8L, 8, ByteBuffer.wrap(model[l]));
        }
        assertTrue(rig.engine.status().lastFlushedId() > 3 * 4, "the ring wrapped at least 4 times");
        rig.engine.flush();
        rig.crashAndRecover(rnd);
        try {
            for (int l = 0; l < lines; l++) {
                assertArrayEquals(model[l] == null ? new byte[Layout.LINE_SIZE] : model[l], readLine(rig.engine, 1, l), "line " + l);
            }
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void tornLastSegmentIsNotReplayedAndOlderDataStands() throws Exception {
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig());
        Random rnd = new Random(4);
        byte[] old = line(rnd), newer = line(rnd), other = line(rnd);
        rig.engine.write(1, 0, 8, ByteBuffer.wrap(old));
        rig.engine.flushNow();                    // segment 1
        rig.engine.write(1, 0, 8, ByteBuffer.wrap(newer));
        rig.engine.write(1, 64, 8, ByteBuffer.wrap(other));
        rig.engine.flushNow();                    // segment 2
        long torn = rig.engine.status().lastFlushedId();
        rig.engine.abort();                       // a crash: no record vouches for segment 2
        // Tear segment 2: its second line never reached the medium.
        int slot = Layout.slotOf(torn, 8);
        rig.cache.corrupt((int) Layout.slotOffset(slot) + SegmentBuffer.lineOffset(1) + 100, new byte[] {1, 2, 3});
        rig.cache = rig.cache.reopen(rig.power);
        rig.open();
        try {
            assertTrue(rig.engine.recovery().torn());
            assertEquals(1, rig.engine.recovery().replay().size());
            assertEquals(torn, rig.engine.recovery().nextId(), "the torn segment's id is taken again");
            assertArrayEquals(old, readLine(rig.engine, 1, 0), "the older copy stands");
            assertArrayEquals(new byte[Layout.LINE_SIZE], readLine(rig.engine, 1, 8));
            // The log continues over the torn slot and survives another restart.
            rig.engine.write(1, 0, 8, ByteBuffer.wrap(newer));
            rig.restart();
            assertFalse(rig.engine.recovery().torn());
            assertArrayEquals(newer, readLine(rig.engine, 1, 0));
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void corruptVouchedSegmentFailsTheRunAndTheNextStartRefusesUntilTheLossIsAccepted() throws Exception {
        // Without the verifier thread, the flush below is what finds the damage.
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig().backgroundVerification(false));
        Random rnd = new Random(5);
        byte[][] data = oneLineSegments(rig, rnd, 4);
        rig.engine.close();
        // Flip a byte inside segment 3's line (its header copy has a checksum of its own; a
        // damaged copy is as good as none, see corruptHeaderCopy...).
        int slot = Layout.slotOf(3, 8);
        byte[] image = rig.cache.visibleBytes();
        int at = (int) Layout.slotOffset(slot) + SegmentHeader.lineOffset(0) + 3;
        rig.cache.corrupt(at, new byte[] {(byte) (image[at] ^ 0x40)});
        rig.cache = rig.cache.reopen(rig.power);
        rig.open();
        // The clean stop's record vouches for all four: the start trusts their headers, and
        // the flush, verifying what is left, finds segment 3 before acknowledging anything.
        assertEquals(4, rig.engine.recovery().replay().size());
        IOException refused = assertThrows(IOException.class, rig.engine::flush);
        assertTrue(refused.getMessage().contains("segment 3") && refused.getMessage().contains("checksum"), refused.getMessage());
        assertThrows(IOException.class, rig.engine::close);
        // The failed run's record still vouches for segment 3 and asks for a full check: the
        // next start finds the damage and refuses, writing nothing. (Before issue 14 it cut
        // the log before segment 3 and came up as if nothing had happened.)
        rig.cache = rig.cache.reopen(rig.power);
        byte[] before = rig.cache.visibleBytes().clone();
        LostDataException lost = assertThrows(LostDataException.class, rig::open);
        assertEquals(java.util.List.of(3L, 4L), lost.loss().segments(), "the corrupt segment and the one it cuts off");
        assertEquals(2, lost.loss().dirtyLines());
        assertEquals(java.util.List.of(new LostRange(1, 16, 31)), lost.loss().ranges());
        assertTrue(lost.getMessage().contains("device 1 (vol1) sectors 16-31") && lost.getMessage().contains("--accept-data-loss"),
                lost.getMessage());
        assertArrayEquals(before, rig.cache.visibleBytes(), "a refused start writes nothing");
        assertThrows(LostDataException.class, rig::open, "and refuses again, as long as nobody decides");

        CacheEngine accepted = CacheEngine.open(rig.cache, new java.util.LinkedHashMap<>(rig.backings),
                new EngineConfig().backgroundVerification(false).acceptDataLoss(true));
        try {
            assertEquals(2, accepted.recovery().replay().size());
            assertEquals(java.util.List.of(3L, 4L), accepted.recovery().discarded());
            assertArrayEquals(data[0], readLine(accepted, 1, 0));
            assertArrayEquals(data[1], readLine(accepted, 1, 1));
            // Segments 3 and 4 are lost, as reported: never garbage, the backing's zeros.
            assertArrayEquals(new byte[Layout.LINE_SIZE], readLine(accepted, 1, 2));
            assertArrayEquals(new byte[Layout.LINE_SIZE], readLine(accepted, 1, 3));
            assertEquals(2, accepted.status().lostLines());
            accepted.flush();
        } finally {
            accepted.close();
        }
        rig.cache = rig.cache.reopen(rig.power);
        rig.open();
        try {
            assertEquals(0, rig.engine.recovery().discarded().size(), "erased segments do not come back");
            assertEquals(null, rig.engine.recovery().loss(), "the accepted loss is not found again");
            assertEquals(2, rig.engine.status().lostLines(), "the status keeps showing it until the next format");
            assertEquals(java.util.List.of(new LostRange(1, 16, 31)), rig.engine.status().lostRanges());
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void afterACleanStopHeadersAreTrustedAndDataIsVerifiedBeforeUse() throws Exception {
        // Without the verifier thread: the read below must find the damage itself.
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig().backgroundVerification(false));
        Random rnd = new Random(7);
        byte[][] data = oneLineSegments(rig, rnd, 3);
        rig.restart();
        try {
            assertEquals(3, rig.engine.recovery().replay().size());
            assertTrue(rig.engine.recovery().replay().stream().noneMatch(io.writeboost.recovery.ReplaySegment::verified),
                    "a clean stop's record vouches for every segment: none read in full at start");
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(data[i], readLine(rig.engine, 1, i));
            }
            rig.engine.flush();
            assertEquals(0, rig.engine.unverifiedSlots(), "a flush returns only once every segment is verified");
        } finally {
            rig.engine.close();
        }
        // At rest, the medium flips a bit in segment 2's data.
        rig.cache.corrupt((int) Layout.slotOffset(Layout.slotOf(2, 8)) + SegmentBuffer.lineOffset(0) + 7, new byte[] {42});
        rig.cache = rig.cache.reopen(rig.power);
        rig.open();
        assertThrows(IOException.class, () -> readLine(rig.engine, 1, 1), "never served unverified");
        assertThrows(IOException.class, () -> rig.engine.write(1, 40, 8, ByteBuffer.wrap(line(rnd))), "the cache has failed");
        assertThrows(IOException.class, rig.engine::flush, "nothing acknowledged over a log that is cut short");
        assertTrue(String.valueOf(rig.engine.status().failure()).contains("checksum"), rig.engine.status().failure());
        assertThrows(IOException.class, rig.engine::close);
        rig.cache = rig.cache.reopen(rig.power);
        LostDataException lost = assertThrows(LostDataException.class, rig::open, "this start verifies segment 2 and refuses");
        assertEquals(java.util.List.of(2L, 3L), lost.loss().segments());
    }

    @Test
    void aVerifierOvertakenByAFlushDoesNotMistakeTheReusedSlotForCorruption() throws Exception {
        Rig rig = new Rig(6, 1, VOLUME_BYTES, new EngineConfig());
        Random rnd = new Random(8);
        int lps = Layout.LINES_PER_SEGMENT;
        byte[][] model = new byte[VOLUME_BYTES / Layout.LINE_SIZE][];
        for (int l = 0; l < 3 * lps; l++) {
            model[l] = line(rnd);
            rig.engine.write(1, l * 8L, 8, ByteBuffer.wrap(model[l]));
        }
        rig.engine.close();                       // segments 1..4 vouched for by the clean stop
        java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
        io.writeboost.device.BlockDevice gated = new io.writeboost.testutil.DelegatingDevice(rig.cache.reopen(rig.power)) {
            @Override
            public void read(ByteBuffer dst, long offset) throws IOException {
                if (Thread.currentThread().getName().startsWith("wb-verifier")) {
                    try {
                        gate.await();             // the verifier stalls after it chose its slot
                    } catch (InterruptedException e) {
                        throw new IOException(e);
                    }
                }
                super.read(dst, offset);
            }
        };
        CacheEngine e = CacheEngine.open(gated, new java.util.LinkedHashMap<>(rig.backings), rig.config);
        try {
            e.flush();                            // verifies every slot itself, the verifier's included
            e.setKnob(Knob.ALLOW_MIGRATE, 1);
            for (int l = 3 * lps; l < 9 * lps; l++) {
                model[l % model.length] = line(rnd);
                e.write(1, (l % model.length) * 8L, 8, ByteBuffer.wrap(model[l % model.length]));
            }
            e.flush();
            assertTrue(e.status().lastFlushedId() > 6, "the ring wrapped: the verifier's slot holds a newer segment");
            gate.countDown();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().startsWith("wb-verifier"))
                    && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(null, e.status().failure(), "the verifier's late read of a reused slot is not corruption");
            for (int l = 0; l < model.length; l++) {
                if (model[l] != null) {
                    assertArrayEquals(model[l], readLine(e, 1, l), "line " + l);
                }
            }
        } finally {
            gate.countDown();
            e.close();
        }
    }

    @Test
    void twoSegmentCacheWorks() throws Exception {
        Rig rig = new Rig(2, 1, VOLUME_BYTES, new EngineConfig());
        Random rnd = new Random(6);
        byte[][] model = new byte[64][];
        try {
            for (int i = 0; i < 2000; i++) {
                int l = rnd.nextInt(64);
                model[l] = line(rnd);
                rig.engine.write(1, l * 8L, 8, ByteBuffer.wrap(model[l]));
                if (i % 500 == 0) {
                    rig.restart();
                }
            }
            rig.restart();
            for (int l = 0; l < 64; l++) {
                assertArrayEquals(model[l] == null ? new byte[Layout.LINE_SIZE] : model[l], readLine(rig.engine, 1, l));
            }
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void partialSectorWritesComposeOverBaseData() throws Exception {
        Rig rig = new Rig(4, 1, VOLUME_BYTES, new EngineConfig().knob(Knob.ALLOW_MIGRATE, 1));
        Random rnd = new Random(7);
        int sectors = 64 * 8;
        byte[] image = new byte[sectors * 512];
        rnd.nextBytes(image);
        try {
            rig.engine.write(1, 0, sectors, ByteBuffer.wrap(image));
            rig.engine.drain();                   // base data now on the backing store only
            for (int i = 0; i < 600; i++) {
                int n = 1 + rnd.nextInt(3);
                int s = rnd.nextInt(sectors - n);
                byte[] part = new byte[n * 512];
                rnd.nextBytes(part);
                rig.engine.write(1, s, n, ByteBuffer.wrap(part));
                System.arraycopy(part, 0, image, s * 512, part.length);
                if (i % 97 == 0) {
                    rig.engine.flushNow();
                }
            }
            ByteBuffer got = ByteBuffer.allocate(image.length);
            rig.engine.read(1, 0, sectors, got);
            assertArrayEquals(image, got.array(), "before restart");
            rig.restart();
            got.clear();
            rig.engine.read(1, 0, sectors, got);
            assertArrayEquals(image, got.array(), "after restart");
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void statsCountOneWriteAndOneReadExactlyOnce() throws Exception {
        Rig rig = new Rig(4, 1, VOLUME_BYTES, new EngineConfig());
        try {
            rig.engine.clearStats();
            rig.engine.write(1, 16, 8, ByteBuffer.wrap(new byte[4096]));
            Status st = rig.engine.status();
            assertEquals(1, st.stat(true, false, false, true));
            assertEquals(1, java.util.Arrays.stream(st.stats()).sum());
            rig.engine.read(1, 16, 8, ByteBuffer.allocate(4096));
            st = rig.engine.status();
            assertEquals(1, st.stat(false, true, true, true));
            assertEquals(2, java.util.Arrays.stream(st.stats()).sum());
        } finally {
            rig.engine.close();
        }
    }
}
