package io.writeboost.bench;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The engine without FUSE, each figure next to its yardstick measured in the same run on the
 * same disk:
 * <ol>
 *   <li>random 4 KiB writes into the cache (flushed at the end) vs. sequential 1 MiB O_DIRECT
 *       writes of the same volume of data to a plain file: the seed's "97 %", in -Dbench.rounds
 *       (3) alternating rounds; and vs. buffered writes synced at the end;</li>
 *   <li>writeback of those lines to the backing store vs. the backing store's own random 4 KiB
 *       writes of the same count (synced);</li>
 *   <li>start-up of the full cache after a crash (no fsync ever called; then with an fsync every
 *       64 MiB) and after a clean stop (headers only, checksums behind the start), with the
 *       page cache dropped when root.</li>
 * </ol>
 * Prints figures; asserts nothing. Usage: bench/engine [CACHE_GIB, default 2] [DIR, default /tmp/wb-engine-bench]
 */
public final class EngineBench {
    public static void main(String[] args) throws Exception {
        long gib = args.length > 0 ? Long.parseLong(args[0]) : 2;
        Path dir = Path.of(args.length > 1 ? args[1] : "/tmp/wb-engine-bench");
        Files.createDirectories(dir);
        long cacheBytes = Layout.SUPERBLOCK_REGION_SIZE + (gib << 30);
        long backingBytes = 4 * (gib << 30);
        Path cachePath = dir.resolve("cache.img"), backingPath = dir.resolve("backing.img"), plain = dir.resolve("plain.img");
        for (Path p : List.of(cachePath, backingPath, plain)) {
            Files.deleteIfExists(p);
        }
        long lines = Layout.segmentsFor(cacheBytes) * Layout.LINES_PER_SEGMENT * 9 / 10;
        long bytes = lines * Layout.LINE_SIZE;
        System.out.printf("engine bench in %s: cache %d GiB, %d random 4 KiB writes (%.0f MiB)%n", dir, gib, lines, bytes / 1048576.0);

        double bufferedMBps = sequentialWrite(plain, bytes, false);
        System.out.printf("sequential 1 MiB writes to a plain file, buffered, synced at the end: %8.1f MB/s%n", bufferedMBps);
        Files.delete(plain);

        // The disk is shared and its speed drifts: the ingest and its yardstick take turns,
        // each on fresh files, and each round's ratio is printed.
        int rounds = Integer.getInteger("bench.rounds", 3);
        ByteBuffer line = ByteBuffer.allocateDirect(Layout.LINE_SIZE);
        SplittableRandom rnd = new SplittableRandom(1);
        long backingLines = backingBytes / Layout.LINE_SIZE;
        double[] ratios = new double[rounds];
        for (int round = 1; round < rounds; round++) {
            double seq = sequentialWrite(plain, bytes, true);
            Files.delete(plain);
            double ingest;
            try (FileBlockDevice cache = FileBlockDevice.createSparse(cachePath, cacheBytes);
                 FileBlockDevice backing = FileBlockDevice.createSparse(backingPath, backingBytes)) {
                CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, backingBytes, "v", backing.name())));
                CacheEngine e = CacheEngine.open(cache, Map.of(1, backing), config());
                ingest = ingest(e, lines, line, rnd, backingLines);
                e.close();
            }
            Files.delete(cachePath);
            Files.delete(backingPath);
            ratios[round - 1] = ingest / seq;
            System.out.printf("round %d: O_DIRECT sequential 1 MiB writes %8.1f MB/s, engine random 4 KiB ingest %8.1f MB/s: %.2f x%n",
                    round, seq, ingest, ingest / seq);
        }
        double seqMBps = sequentialWrite(plain, bytes, true);
        Files.delete(plain);

        try (FileBlockDevice cache = FileBlockDevice.createSparse(cachePath, cacheBytes);
             FileBlockDevice backing = FileBlockDevice.createSparse(backingPath, backingBytes)) {
            CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, backingBytes, "v", backing.name())));
            Map<Integer, BlockDevice> vols = Map.of(1, backing);
            CacheEngine e = CacheEngine.open(cache, vols, config());
            double ingest = ingest(e, lines, line, rnd, backingLines);
            ratios[rounds - 1] = ingest / seqMBps;
            System.out.printf("round %d: O_DIRECT sequential 1 MiB writes %8.1f MB/s, engine random 4 KiB ingest %8.1f MB/s: %.2f x "
                    + "(%.2f x the buffered writes)%n", rounds, seqMBps, ingest, ingest / seqMBps, ingest / bufferedMBps);
            double[] sorted = ratios.clone();
            java.util.Arrays.sort(sorted);
            System.out.printf("engine random 4 KiB ingest against the disk's O_DIRECT sequential bandwidth: median %.2f x over %d rounds %s%n",
                    sorted[rounds / 2], rounds, java.util.Arrays.toString(ratios));

            long dirty = e.status().dirtyLines();
            long t1 = System.nanoTime();
            e.drain();
            double wbSecs = (System.nanoTime() - t1) / 1e9;
            double wbMBps = dirty * 4096.0 / wbSecs / 1e6;
            System.out.printf("writeback of %d dirty lines to the backing store:  %8.1f MB/s (%.1f s)%n", dirty, wbMBps, wbSecs);
            e.close();

            long n = Math.min(dirty, 200_000);
            double randMBps = randomWrites(backing, n);
            System.out.printf("the backing store's own random 4 KiB writes (%d):  %8.1f MB/s -> writeback is %.2f x that%n", n,
                    randMBps, wbMBps / randMBps);

            // Fill the cache again, never calling fsync, and stop as a crash would: only the
            // periodic daemon's syncs and records (every 256 segments) vouch for the log.
            e = CacheEngine.open(cache, vols, config());
            for (long i = 0; i < lines; i++) {
                line.putLong(0, i);
                e.write(1, rnd.nextLong(backingLines) * 8, 8, line);
            }
            e.abort();
            boolean dropped = dropPageCache();
            long t2 = System.nanoTime();
            e = CacheEngine.open(cache, vols, config());
            double crashSecs = (System.nanoTime() - t2) / 1e9;
            System.out.printf("start of a %d GiB cache holding %d dirty lines after a crash, no fsync ever called: %.2f s "
                    + "(%d of %d segments read in full at start; page cache %s)%n", gib, e.status().dirtyLines(), crashSecs,
                    verifiedAtStart(e), e.recovery().replay().size(), dropped ? "dropped first" : "warm: not root");
            e.close();

            // A crash as it usually comes: the log was synced now and then (a filesystem
            // commits every few seconds), so the periodic record vouches for most of it.
            e = CacheEngine.open(cache, vols, config());
            for (long i = 0; i < lines / 4; i++) {
                line.putLong(0, i);
                e.write(1, rnd.nextLong(backingLines) * 8, 8, line);
                if (i % 16384 == 0) {
                    e.flush();
                }
            }
            e.flush();
            Thread.sleep(500); // one tick of the periodic daemon
            e.abort();
            dropped = dropPageCache();
            long t4 = System.nanoTime();
            e = CacheEngine.open(cache, vols, config());
            double crashSyncedSecs = (System.nanoTime() - t4) / 1e9;
            System.out.printf("start of a %d GiB cache holding %d dirty lines after a crash, the log synced every 64 MiB before it: "
                    + "%.2f s (%d of %d segments read in full at start; page cache %s)%n", gib, e.status().dirtyLines(), crashSyncedSecs,
                    verifiedAtStart(e), e.recovery().replay().size(), dropped ? "dropped first" : "warm: not root");
            e.close();

            // After a clean stop the record vouches for every segment: headers only, then the
            // checksums in the background; a flush returns once they are all verified.
            dropped = dropPageCache();
            long t3 = System.nanoTime();
            e = CacheEngine.open(cache, vols, config());
            double startSecs = (System.nanoTime() - t3) / 1e9;
            ByteBuffer probe = ByteBuffer.allocateDirect(Layout.LINE_SIZE);
            e.read(1, 0, 8, probe);
            double firstReadSecs = (System.nanoTime() - t3) / 1e9;
            e.flush();
            double verifiedSecs = (System.nanoTime() - t3) / 1e9;
            System.out.printf("start of a %d GiB cache holding %d dirty lines after a clean stop: %.2f s to open (page cache %s), "
                    + "first read done at %.2f s, every segment verified (first flush returns) at %.2f s%n", gib,
                    e.status().dirtyLines(), startSecs, dropped ? "dropped first" : "warm: not root", firstReadSecs, verifiedSecs);
            System.out.printf("heap for line metadata and index: %.2f bytes per 4 KiB line%n", e.heapBytesPerLine());
            e.close();
        } finally {
            Files.deleteIfExists(cachePath);
            Files.deleteIfExists(backingPath);
        }
    }

    /** Knobs for every engine the bench opens, from -Dbench.knobs=name=value[,name=value]. */
    static EngineConfig config() {
        EngineConfig c = new EngineConfig();
        String spec = System.getProperty("bench.knobs", "");
        for (String kv : spec.split(",")) {
            if (!kv.isBlank()) {
                String[] p = kv.split("=", 2);
                c.knob(io.writeboost.knob.Knob.byName(p[0].trim()), Long.parseLong(p[1].trim()));
            }
        }
        return c;
    }

    /** Replayed segments a start read and verified in full (the rest came from their headers). */
    static long verifiedAtStart(CacheEngine e) {
        return e.recovery().replay().stream().filter(io.writeboost.recovery.ReplaySegment::verified).count();
    }

    /** Random 4 KiB writes of {@code lines} lines into {@code e}, flushed: MB/s. */
    static double ingest(CacheEngine e, long lines, ByteBuffer line, SplittableRandom rnd, long backingLines) throws IOException {
        long t0 = System.nanoTime();
        for (long i = 0; i < lines; i++) {
            line.putLong(0, i);
            e.write(1, rnd.nextLong(backingLines) * 8, 8, line);
        }
        e.flush();
        return lines * (double) Layout.LINE_SIZE / ((System.nanoTime() - t0) / 1e9) / 1e6;
    }

    static double sequentialWrite(Path file, long bytes, boolean direct) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(2 << 20).alignedSlice(4096).limit(1 << 20).slice();
        long t0 = System.nanoTime();
        java.util.Set<java.nio.file.OpenOption> options = new java.util.HashSet<>(List.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE));
        if (direct) {
            options.add(com.sun.nio.file.ExtendedOpenOption.DIRECT);
        }
        try (FileChannel ch = FileChannel.open(file, options)) {
            for (long off = 0; off < bytes; off += buf.capacity()) {
                buf.clear();
                while (buf.hasRemaining()) {
                    ch.write(buf, off + buf.position());
                }
            }
            ch.force(false);
        }
        return bytes / ((System.nanoTime() - t0) / 1e9) / 1e6;
    }

    static double randomWrites(FileBlockDevice dev, long count) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(Layout.LINE_SIZE);
        SplittableRandom rnd = new SplittableRandom(2);
        long lines = dev.size() / Layout.LINE_SIZE;
        long t0 = System.nanoTime();
        for (long i = 0; i < count; i++) {
            buf.clear();
            dev.write(buf, rnd.nextLong(lines) * Layout.LINE_SIZE);
        }
        dev.sync();
        return count * 4096.0 / ((System.nanoTime() - t0) / 1e9) / 1e6;
    }

    static boolean dropPageCache() {
        try {
            new ProcessBuilder("sync").start().waitFor();
            Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3");
            return true;
        } catch (Exception e) {
            return false;
        }
    }
}
