package io.writeboost.bench;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Benchmark: heap per 4 KiB cache line. Opens an engine on a sparse cache of CACHE_GIB GiB,
 * fills every line with a dirty sector (so the index is full), and prints the heap growth
 * measured after GC next to the figure computed from the array sizes. Prints; asserts nothing.
 * Usage: bench/heap-per-line [CACHE_GIB, default 2]
 */
public final class HeapPerLine {
    public static void main(String[] args) throws Exception {
        long gib = args.length > 0 ? Long.parseLong(args[0]) : 2;
        Path dir = Files.createTempDirectory("wb-heap");
        Path cacheFile = dir.resolve("cache.img"), backingFile = dir.resolve("backing.img");
        long cacheBytes = (gib << 30) + Layout.SUPERBLOCK_REGION_SIZE;
        long backingBytes = 4 * (gib << 30);
        try (FileBlockDevice cache = FileBlockDevice.createSparse(cacheFile, cacheBytes);
             FileBlockDevice backing = FileBlockDevice.createSparse(backingFile, backingBytes)) {
            CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, backingBytes, "v", backing.name())));
            Map<Integer, BlockDevice> vols = Map.of(1, backing);
            long before = usedHeap();
            CacheEngine e = CacheEngine.open(cache, vols, new EngineConfig());
            long lines = (long) e.status().nrSegments() * Layout.LINES_PER_SEGMENT;
            ByteBuffer sector = ByteBuffer.allocateDirect(512);
            long t0 = System.nanoTime();
            for (long i = 0; i < lines; i++) {
                e.write(1, i * 8, 1, sector);
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            long after = usedHeap();
            System.out.printf("cache of %d GiB: %d lines, %d indexed after one write each (%.1f s)%n", gib, lines,
                    e.status().indexedLines(), secs);
            System.out.printf("heap growth measured after GC: %.2f bytes per line%n", (double) (after - before) / lines);
            System.out.printf("computed from the arrays:      %.2f bytes per line (target: at most 16)%n", e.heapBytesPerLine());
            e.close();
        } finally {
            Files.deleteIfExists(cacheFile);
            Files.deleteIfExists(backingFile);
            Files.deleteIfExists(dir);
        }
    }

    private static long usedHeap() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 4; i++) {
            System.gc();
            Thread.sleep(50);
        }
        return rt.totalMemory() - rt.freeMemory();
    }
}
