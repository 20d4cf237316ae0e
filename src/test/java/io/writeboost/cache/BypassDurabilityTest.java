package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bypassed write that the backing store made durable as it wrote it (O_DIRECT with O_DSYNC)
 * costs the next flush no sync of that store: an fdatasync of a slow disk also waits for all
 * of writeback's buffered writes, and every transaction committing meanwhile waited with it.
 */
class BypassDurabilityTest {
    private static final int VOLUME = 16 << 20;

    /** Counts syncs; passes durable writes on to the file only when {@code durable}. */
    private static final class Counting extends DelegatingDevice {
        final AtomicInteger syncs = new AtomicInteger();
        final boolean durable;

        Counting(BlockDevice inner, boolean durable) {
            super(inner);
            this.durable = durable;
        }

        @Override
        public boolean writeDurably(ByteBuffer[] srcs, int n, long offset) throws IOException {
            return durable ? inner.writeDurably(srcs, n, offset) : super.writeDurably(srcs, n, offset);
        }

        @Override
        public void sync() throws IOException {
            syncs.incrementAndGet();
            inner.sync();
        }
    }

    private static int syncsOfAFlushAfterABypass(boolean durable) throws Exception {
        Path dir = Files.createDirectories(Path.of("target", "bypass-durability"));
        Path file = dir.resolve("backing-" + durable + ".img");
        Files.deleteIfExists(file);
        FileBlockDevice.createSparse(file, VOLUME).close();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(8), new Object());
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME, "v", "b")));
        try (FileBlockDevice store = FileBlockDevice.open(file)) {
            Counting backing = new Counting(store, durable);
            CacheEngine e = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing),
                    new EngineConfig().knob(Knob.WRITE_AROUND_MODE, 1));
            try {
                byte[] data = new byte[1 << 20];
                new Random(9).nextBytes(data);
                for (int p = 0; p < 8; p++) {
                    e.write(1, p * 256L, 256, ByteBuffer.wrap(data, p << 17, 128 << 10));
                }
                assertEquals(1 << 20, e.status().bypassedBytes(), "the writes went around the cache");
                int before = backing.syncs.get();
                e.flush();
                int syncs = backing.syncs.get() - before;
                ByteBuffer back = ByteBuffer.allocate(1 << 20);
                e.read(1, 0, 2048, back);
                assertArrayEquals(data, back.array());
                e.discard(1, 4096, 8);
                before = backing.syncs.get();
                e.flush();
                assertTrue(backing.syncs.get() - before >= 1, "a discard's punch is still synced by the flush");
                return syncs;
            } finally {
                e.close();
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void aFlushAfterDurableBypassesDoesNotSyncTheBackingStore() throws Exception {
        assertEquals(0, syncsOfAFlushAfterABypass(true));
    }

    @Test
    void aFlushAfterBypassesTheStoreCouldNotMakeDurableSyncsIt() throws Exception {
        assertTrue(syncsOfAFlushAfterABypass(false) >= 1);
    }
}
