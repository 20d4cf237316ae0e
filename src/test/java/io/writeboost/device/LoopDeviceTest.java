package io.writeboost.device;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine with real loop devices as cache and backing store (the kernel's block layer, not files). */
class LoopDeviceTest {
    @Test
    void blockDeviceSizeComesFromTheDeviceNotFstat(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("disk.img");
        try (FileBlockDevice f = FileBlockDevice.createSparse(file, 12L << 20)) {
            assertFalse(f.isBlockDevice());
        }
        try (Loop loop = Loop.attach(file); FileBlockDevice dev = FileBlockDevice.open(loop.device)) {
            assertTrue(dev.isBlockDevice());
            assertEquals(12L << 20, dev.size());
        }
    }

    @Test
    void engineOnLoopDevicesKeepsDataAcrossRestartAndWritesItBack(@TempDir Path dir) throws Exception {
        Path cacheFile = dir.resolve("cache.img"), backingFile = dir.resolve("backing.img");
        long backingBytes = 16L << 20;
        FileBlockDevice.createSparse(cacheFile, Layout.slotOffset(6)).close();
        FileBlockDevice.createSparse(backingFile, backingBytes).close();
        byte[] model = new byte[(int) backingBytes];
        Random rnd = new Random(11);
        try (Loop cacheLoop = Loop.attach(cacheFile); Loop backingLoop = Loop.attach(backingFile)) {
            try (FileBlockDevice cache = FileBlockDevice.open(cacheLoop.device);
                 FileBlockDevice backing = FileBlockDevice.open(backingLoop.device)) {
                CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, backingBytes, "vol", backing.name())));
                CacheEngine e = CacheEngine.open(cache, Map.of(1, backing), new EngineConfig());
                try {
                    for (int i = 0; i < 3000; i++) {
                        int n = 1 + rnd.nextInt(32);
                        int sector = rnd.nextInt((int) (backingBytes / 512) - n);
                        byte[] data = new byte[n * 512];
                        rnd.nextBytes(data);
                        e.write(1, sector, n, ByteBuffer.wrap(data));
                        System.arraycopy(data, 0, model, sector * 512, data.length);
                        if (i % 300 == 0) {
                            e.flush();
                        }
                    }
                } finally {
                    e.close();
                }
                e = CacheEngine.open(cache, Map.of(1, backing), new EngineConfig());
                try {
                    ByteBuffer all = ByteBuffer.allocateDirect((int) backingBytes);
                    e.read(1, 0, (int) (backingBytes / 512), all);
                    byte[] got = new byte[(int) backingBytes];
                    all.get(0, got);
                    assertArrayEquals(model, got, "volume after restart on loop devices");
                    e.drain();
                } finally {
                    e.close();
                }
            }
        }
        // Detached: the backing file alone now holds the volume.
        assertArrayEquals(model, Files.readAllBytes(backingFile), "backing file after writeback");
    }
}
