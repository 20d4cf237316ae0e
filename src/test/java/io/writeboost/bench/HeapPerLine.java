package io.writeboost.bench;

import com.sun.management.HotSpotDiagnosticMXBean;
import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Benchmark: heap per 4 KiB cache line. Opens an engine on a sparse cache of CACHE_GIB GiB,
 * fills every line with a dirty sector (so the index is full), and prints the heap growth
 * measured after GC next to the figure computed from the array sizes, structure by structure.
 * Then stops the engine cleanly and starts it again on the full cache, and measures again: a
 * start loads every segment's header, and whatever it keeps of them counts too. Prints;
 * asserts nothing. Usage: bench/heap-per-line [CACHE_GIB, default 2]
 *
 * <p>The measured figure is the heap in use after GC before the engine opened and while it
 * is open, so it counts everything the engine allocates, object headers and the collector's
 * rounding included: G1 gives an array larger than half a region whole regions of its own,
 * and the rest of its last region stays unused.
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
            // Writeback only when the ring is full: every line stays indexed, and the restart replays every segment.
            EngineConfig config = new EngineConfig().knob(Knob.HIGH_WATERMARK, 0);
            System.out.printf("G1 region size %s bytes (-Xmx %d MiB)%n", regionSize(), Runtime.getRuntime().maxMemory() >> 20);
            long before = usedHeap();
            CacheEngine e = CacheEngine.open(cache, vols, config);
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
            for (Map.Entry<String, Long> s : e.heapBytesByStructure().entrySet()) {
                System.out.printf("  %-50s %12d bytes  %6.3f per line%n", s.getKey(), s.getValue(), (double) s.getValue() / lines);
            }
            e.close();

            e = CacheEngine.open(cache, vols, config);
            e.flush(); // returns once every replayed segment's checksum is verified
            long restarted = usedHeap();
            System.out.printf("after a clean stop and a start that loaded the %d segments: %d lines indexed, heap growth measured "
                    + "after GC: %.2f bytes per line%n", e.recovery().replay().size(), e.status().indexedLines(),
                    (double) (restarted - before) / lines);
            e.close();
        } finally {
            Files.deleteIfExists(cacheFile);
            Files.deleteIfExists(backingFile);
            Files.deleteIfExists(dir);
        }
    }

    private static String regionSize() {
        try {
            return ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class).getVMOption("G1HeapRegionSize").getValue();
        } catch (RuntimeException e) {
            return "unknown";
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
