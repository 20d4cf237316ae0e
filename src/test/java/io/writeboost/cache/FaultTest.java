package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.FaultyDevice;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** EIO from the cache device and the backing store: retried, reported, refused; never silently dropped. */
@ExtendWith(QuietLogs.class)
class FaultTest {
    static final int VOLUME = 4 << 20;
    final Object power = new Object();
    final PowerLossDevice cacheMedium = new PowerLossDevice("cache", (int) Layout.slotOffset(8), power);
    final PowerLossDevice backingMedium = new PowerLossDevice("backing", VOLUME, power);
    final FaultyDevice cache = new FaultyDevice(cacheMedium);
    final FaultyDevice backing = new FaultyDevice(backingMedium);

    CacheEngine open() throws IOException {
        return CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), new EngineConfig());
    }

    FaultTest() throws IOException {
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME, "v", "backing")));
    }

    static byte[] random(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    @Test
    void writebackRetriesWithBackoffAndReportsTheFault() throws Exception {
        CacheEngine e = open();
        try {
            byte[] data = random(new Random(1), 256 << 10);
            e.write(1, 0, data.length / 512, ByteBuffer.wrap(data));
            e.flushNow();
            backing.failWrites.set(3);
            e.setKnob(Knob.ALLOW_MIGRATE, 1);
            long deadline = System.nanoTime() + 20_000_000_000L;
            boolean sawFailing = false;
            while (e.status().dirtyLines() > 0 && System.nanoTime() < deadline) {
                sawFailing |= e.status().writebackFailing() != null;
                Thread.sleep(5);
            }
            assertEquals(0, e.status().dirtyLines(), "written back once the faults stopped");
            assertTrue(sawFailing, "status showed writeback failing while it did");
            assertEquals(3, e.status().writebackErrors(), "each injected fault counted once");
            assertNull(e.status().writebackFailing(), "cleared after a success");
            ByteBuffer back = ByteBuffer.allocate(data.length);
            backingMedium.read(back, 0);
            assertArrayEquals(data, back.array());
        } finally {
            e.close();
        }
    }

    @Test
    void aFailedBackingReadIsAnErrorToTheCallerAndNothingElse() throws Exception {
        CacheEngine e = open();
        try {
            byte[] data = random(new Random(2), 4096);
            e.write(1, 0, 8, ByteBuffer.wrap(data));
            backing.failReads.set(1);
            assertThrows(IOException.class, () -> e.read(1, 64, 8, ByteBuffer.allocate(4096)), "a miss needs the backing store");
            ByteBuffer got = ByteBuffer.allocate(4096);
            e.read(1, 0, 8, got);
            assertArrayEquals(data, got.array(), "cached data still served");
            e.read(1, 64, 8, ByteBuffer.allocate(4096));
            assertNull(e.status().failure());
        } finally {
            e.close();
        }
    }

    @Test
    void aTransientCacheWriteFaultIsRetried() throws Exception {
        CacheEngine e = open();
        try {
            cache.failWrites.set(2);
            e.write(1, 0, 8, ByteBuffer.wrap(new byte[4096]));
            e.flushNow();
            assertNull(e.status().failure());
            assertEquals(2, cache.injected.get());
        } finally {
            e.close();
        }
    }

    /**
     * A cache device that takes nothing at all: the engine fails over, but cannot mark the
     * cache abandoned, so it takes no write and no flush (docs/ENGINE.md, "Failure"), and the
     * device, once back, starts with what was acknowledged.
     */
    @Test
    void aBrokenCacheDeviceFailsOverReadOnlyButKeepsWhatWasAcknowledged() throws Exception {
        Random rnd = new Random(3);
        byte[] acked = random(rnd, 64 << 10), later = random(rnd, 64 << 10);
        CacheEngine e = open();
        e.write(1, 0, acked.length / 512, ByteBuffer.wrap(acked));
        e.flush();
        cache.broken = true;
        e.write(1, 1024, later.length / 512, ByteBuffer.wrap(later));
        assertThrows(IOException.class, e::flushNow, "the flush cannot be acknowledged");
        assertNull(e.status().failure(), "failed over, not failed");
        assertTrue(e.status().degraded().contains("READ-ONLY"), e.status().degraded());
        ByteBuffer got0 = ByteBuffer.allocate(later.length);
        e.read(1, 1024, later.length / 512, got0);
        assertArrayEquals(later, got0.array(), "reads are served, from the backing store the failover wrote back to");
        assertThrows(IOException.class, () -> e.write(1, 0, 8, ByteBuffer.allocate(4096)), "further writes refused");
        assertThrows(IOException.class, e::close);
        // The device comes back (replaced or repaired): what the flush acknowledged is there.
        cache.broken = false;
        CacheEngine again = open();
        try {
            ByteBuffer got = ByteBuffer.allocate(acked.length);
            again.read(1, 0, acked.length / 512, got);
            assertArrayEquals(acked, got.array());
        } finally {
            again.close();
        }
    }

    /**
     * A failed sync of the cache device is never retried into a success: the engine fails over,
     * and the flush that met it succeeds only because its data is synced on the backing store.
     */
    @Test
    void aFailedCacheSyncFailsOverAndTheFlushIsDurableOnTheBackingStore() throws Exception {
        byte[] data = random(new Random(4), 4096);
        CacheEngine e = open();
        try {
            e.write(1, 0, 8, ByteBuffer.wrap(data));
            cache.failSyncs.set(1);
            e.flushNow();
            assertNull(e.status().failure());
            assertNotNull(e.status().degraded(), "after a failed sync the cache device is given up");
            byte[] durable = java.util.Arrays.copyOf(backingMedium.durableBytes(), 4096); // what a power cut now leaves
            assertArrayEquals(data, durable, "the flush returned once the data was synced on the backing store");
        } finally {
            e.close();
        }
    }

    @Test
    void shortWritesOnEitherDeviceAreRewrittenWhole() throws Exception {
        CacheEngine e = open();
        try {
            byte[] data = random(new Random(5), 512 << 10);
            cache.shortWrites.set(2);
            e.write(1, 0, data.length / 512, ByteBuffer.wrap(data));
            e.flushNow();
            assertNull(e.status().failure(), "the flusher rewrote the segments the device cut short");
            backing.shortWrites.set(2);
            e.drain();
            assertTrue(e.status().writebackErrors() >= 1, "writeback saw the short write");
            ByteBuffer back = ByteBuffer.allocate(data.length);
            backingMedium.read(back, 0);
            assertArrayEquals(data, back.array(), "the backing store holds everything after the retries");
            assertEquals(4, cache.injected.get() + backing.injected.get());
        } finally {
            e.close();
        }
        CacheEngine again = open();
        try {
            assertEquals(0, again.status().dirtyLines());
        } finally {
            again.close();
        }
    }

    /**
     * An engine (writeback only with a full ring) holding {@code acked} at sector 0, flushed, and
     * with {@code bypassed} written around the cache at sector 1024, not yet synced (write-around
     * mode stays on).
     */
    private CacheEngine openWithAFlushedLineAndABypass(byte[] acked, byte[] bypassed) throws Exception {
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing),
                new EngineConfig().knob(Knob.HIGH_WATERMARK, 0));
        e.write(1, 0, 8, ByteBuffer.wrap(acked));
        e.flushNow();
        e.setKnob(Knob.WRITE_AROUND_MODE, 1);
        e.write(1, 1024, bypassed.length / 512, ByteBuffer.wrap(bypassed));
        return e;
    }

    /**
     * One rule for every sync: once one failed, no later flush succeeds, whoever's sync saw
     * the error. The kernel reports a write-back error once; the pages it concerned are gone
     * and the next sync returns 0, so a retried sync would have acknowledged data the disk no
     * longer has. Each variant lets a different sync meet the one failure, then checks that
     * every flush after it fails and that a start on healthy devices finds what was acknowledged.
     */
    private void aFailedSyncFailsEveryLaterFlush(String consumer) throws Exception {
        Random rnd = new Random(consumer.hashCode());
        byte[] acked = random(rnd, 4096);
        byte[] bypassed = random(rnd, 64 << 10);
        CacheEngine e = openWithAFlushedLineAndABypass(acked, bypassed);
        try {
            switch (consumer) {
                case "writeback" -> {
                    // Write-around mode writes back whatever is dirty at once, so the line above may
                    // be on the backing store by now: give writeback a dirty line of its own.
                    e.setKnob(Knob.WRITE_AROUND_MODE, 0);
                    e.write(1, 64, 8, ByteBuffer.wrap(random(rnd, 4096)));
                    e.flushNow();
                    backing.failSyncs.set(1);
                    e.setKnob(Knob.FORCE_MIGRATE, 1);
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while (e.status().failure() == null && System.nanoTime() < deadline) {
                        Thread.sleep(10);
                    }
                }
                case "discard" -> {
                    e.discard(1, 4096, 8);
                    backing.failSyncs.set(1);
                    assertThrows(IOException.class, e::flush, "the flush that met the failure");
                }
                default -> throw new IllegalArgumentException(consumer);
            }
            assertNotNull(e.status().failure(), "the engine reports the failed sync");
            assertThrows(IOException.class, e::flush, "a later flush fails too");
            assertThrows(IOException.class, e::flush, "and the one after it");
            assertThrows(IOException.class, () -> e.write(1, 16, 8, ByteBuffer.allocate(4096)), "writes are refused");
        } finally {
            assertThrows(IOException.class, e::close);
        }
        CacheEngine again = open();
        try {
            ByteBuffer got = ByteBuffer.allocate(4096);
            again.read(1, 0, 8, got);
            assertArrayEquals(acked, got.array(), "what the first flush acknowledged");
        } finally {
            again.close();
        }
    }

    @Test
    void aBackingSyncFailureMetByWritebackFailsLaterFlushes() throws Exception {
        aFailedSyncFailsEveryLaterFlush("writeback");
    }

    /**
     * A failed sync of the cache device met by the record writer fails over (FailoverTest has
     * the load); after it, the rule above holds for the backing store's syncs alone: once one
     * failed, no flush succeeds.
     */
    @Test
    void aCacheSyncFailureMetByTheRecordWriterFailsOver() throws Exception {
        Random rnd = new Random(6);
        byte[] acked = random(rnd, 4096);
        byte[] bypassed = random(rnd, 64 << 10);
        CacheEngine e = openWithAFlushedLineAndABypass(acked, bypassed);
        try {
            cache.failSyncs.set(1);
            // The record writer meets it: in this commit, or in a writeback commit running
            // meanwhile (write-around mode writes back whatever is dirty).
            try {
                e.setKnob(Knob.COMMIT_SUPER_BLOCK, 1);
            } catch (IOException expected) {
                // the commit met it; the failover goes on in the background
            }
            FailoverTest.awaitDegraded(e);
            e.flush();
            assertNull(e.status().failure());
            assertNotNull(e.status().degraded());
            byte[] durable = backingMedium.durableBytes();
            assertArrayEquals(acked, java.util.Arrays.copyOfRange(durable, 0, 4096), "the cached line, written back");
            assertArrayEquals(bypassed, java.util.Arrays.copyOfRange(durable, 1024 * 512, 1024 * 512 + bypassed.length),
                    "the bypassed write, synced");
            backing.failSyncs.set(1);
            e.write(1, 16, 8, ByteBuffer.allocate(4096));
            assertThrows(IOException.class, e::flush, "the flush that met the backing store's failed sync");
            assertThrows(IOException.class, e::flush, "a later flush fails too");
            assertNotNull(e.status().failure());
        } finally {
            assertThrows(IOException.class, e::close);
        }
        assertThrows(io.writeboost.format.FormatException.class, this::open, "the abandoned cache is refused");
    }

    @Test
    void aBackingSyncFailureMetByAFlushAfterADiscardFailsLaterFlushes() throws Exception {
        aFailedSyncFailsEveryLaterFlush("discard");
    }
}
