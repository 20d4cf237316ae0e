package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.FaultyDevice;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.AbstractQueuedSynchronizer;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A backing store that fails every write, under a small ring: once the ring is full of dirty
 * lines that writeback cannot write back, writers wait for a slot. The engine must stay
 * manageable meanwhile (status answers, write-around mode takes effect for new writes), and
 * {@code io_timeout_ms} turns the endless wait into a failed write.
 */
@ExtendWith(QuietLogs.class)
class StuckBackingStoreTest {
    private static final int VOLUME = 64 << 20;

    @Test
    void writersWaitingForASlotLeaveTheEngineManageableAndFailOnceIoTimeoutIsSet() throws Exception {
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(6), new Object());
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME, "v", "b")));
        FaultyDevice backing = new FaultyDevice(new PowerLossDevice("b", VOLUME, new Object()));
        backing.failWrites.set(Integer.MAX_VALUE);
        CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), new EngineConfig());
        try {
            AtomicLong written = new AtomicLong();
            AtomicReference<IOException> failed = new AtomicReference<>();
            Thread writer = new Thread(() -> {
                ByteBuffer line = ByteBuffer.allocate(Layout.LINE_SIZE);
                try {
                    long lines = VOLUME / Layout.LINE_SIZE;
                    for (long l = 0; l < lines; l++) {
                        // Scattered, so that no stream forms and goes around the ring.
                        long at = l * 7919 % lines;
                        e.write(1, at * Layout.SECTORS_PER_LINE, Layout.SECTORS_PER_LINE, line.clear());
                        written.incrementAndGet();
                    }
                } catch (IOException x) {
                    failed.set(x);
                }
            }, "writer");
            writer.start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            // Waiting with every slot in use: a writer also waits, briefly, for a sync of the
            // cache device before it opens a segment too far ahead of the last one synced.
            while (!(LockSupport.getBlocker(writer) instanceof AbstractQueuedSynchronizer.ConditionObject
                    && writer.getState() == Thread.State.WAITING
                    && CompletableFuture.supplyAsync(e::status).get(10, TimeUnit.SECONDS).pacing().ringSlotsInUse() >= 6)) {
                if (!writer.isAlive() || System.nanoTime() > deadline) {
                    fail("the writer did not come to wait for a slot: " + written.get() + " lines, " + failed.get());
                }
                Thread.sleep(5);
            }
            long before = written.get();
            assertTrue(before > 0, "the ring took lines before it was full");

            Status st = CompletableFuture.supplyAsync(e::status).get(10, TimeUnit.SECONDS);
            while (st.writebackErrors() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
                st = CompletableFuture.supplyAsync(e::status).get(10, TimeUnit.SECONDS);
            }
            assertTrue(st.writebackErrors() > 0, "writeback failed, and the status says so: " + st.writebackErrors());

            e.setKnob(Knob.WRITE_AROUND_MODE, 1);
            CompletableFuture<Void> around = CompletableFuture.runAsync(() -> {
                try {
                    e.write(1, (VOLUME >> Layout.SECTOR_SHIFT) - Layout.SECTORS_PER_LINE, Layout.SECTORS_PER_LINE,
                            ByteBuffer.allocate(Layout.LINE_SIZE));
                } catch (IOException x) {
                    throw new RuntimeException(x);
                }
            });
            Throwable aroundFailure = assertThrows(Exception.class, () -> around.get(10, TimeUnit.SECONDS));
            assertTrue(String.valueOf(aroundFailure.getCause()).contains("injected"),
                    "a write after write_around_mode=1 goes to the backing store at once (and fails with it), "
                            + "not to the ring: " + aroundFailure);
            assertTrue(writer.isAlive(), "the write waiting for a slot still waits");

            e.setKnob(Knob.IO_TIMEOUT_MS, 200);
            writer.join(10_000);
            assertTrue(!writer.isAlive(), "the waiting write gave up once io_timeout_ms was set");
            assertTrue(String.valueOf(failed.get()).contains("io_timeout_ms"), "it failed for the timeout: " + failed.get());
            assertEquals(before, written.get(), "no write completed after the ring was full");
        } finally {
            e.close();
        }
    }
}
