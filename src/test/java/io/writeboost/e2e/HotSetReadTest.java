package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Read caching through the real mount, with direct 4 KiB reads of a hot set in random order.
 * With the default knobs the first pass only remembers the lines, the second admits them, and
 * the third hits the cache (the seed's stat matrix and the status's read_hits_clean say so);
 * after a clean stop and a restart, the first pass hits (a warm start); with
 * {@code -o read_cache_second_access=0} a hot set read twice hits the second time. The data
 * read is the backing file's every time.
 */
class HotSetReadTest {
    static final int VOLUME = 64 << 20;
    static final int HOT = 1024;

    @Test
    void aHotSetReadAgainHitsTheCache(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), VOLUME);
        byte[] content = new byte[VOLUME];
        new Random(7).nextBytes(content);
        Files.write(disk, content);
        Random rnd = new Random(11);
        long[] hot = randomLines(rnd, 0);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        long admitted;
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "32M"))) {
            long[] pass1 = readPass(server, hot, content, rnd);
            assertEquals(0, Fixture.field(server.read("caches/1/status"), "read_cache_admissions"), "a first miss only remembers a line");
            assertEquals(0, pass1[0], "pass 1 misses");
            long[] pass2 = readPass(server, hot, content, rnd);
            admitted = Fixture.field(server.read("caches/1/status"), "read_cache_admissions");
            assertTrue(admitted >= HOT * 95 / 100, "the second pass admits the hot set: " + admitted);
            assertEquals(0, pass2[0], "pass 2 misses too: it admits");
            long[] pass3 = readPass(server, hot, content, rnd);
            String status = server.read("caches/1/status");
            System.out.printf("HotSetReadTest: %d lines, hits per pass %d, %d, %d; %s%n", HOT, pass1[0], pass2[0], pass3[0],
                    status.lines().filter(l -> l.startsWith("read_hit_ratio")).findFirst().orElse(""));
            assertEquals(admitted, pass3[0], "the third pass hits every admitted line (stat matrix)");
            assertEquals(admitted, Fixture.field(status, "read_hits_clean"));
            assertEquals(admitted, Fixture.field(status, "clean_lines"));
            assertEquals(0, Fixture.field(status, "dirty_lines"));
            assertTrue(Fixture.field(status, "segments_awaiting_writeback") >= 3, "sealed segments of clean lines");
            assertEquals(0, Fixture.field(status, "segments_with_dirty_lines"), "none of them needs backing I/O");
        }
        long[] other = randomLines(rnd, VOLUME / 2 / 4096);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "-o", "read_cache_second_access=0"))) {
            // A warm start: the clean stop kept the hot set, and its first pass hits.
            assertEquals(admitted, Fixture.field(server.read("caches/1/status"), "warm_clean_lines"), "the start kept the hot set");
            long[] warm = readPass(server, hot, content, rnd);
            System.out.printf("HotSetReadTest: after a clean stop, the first pass hits %d of %d lines%n", warm[0], HOT);
            assertEquals(admitted, warm[0], "the first pass after the restart hits every line kept");
            assertEquals(0, readPass(server, other, content, rnd)[0]);
            long[] second = readPass(server, other, content, rnd);
            assertEquals(HOT, second[0], "with read_cache_second_access=0 a hot set read twice hits the second time");
        }
    }

    /** HOT distinct lines in the half of the volume from {@code from}, each 2 lines apart at least (no sequential runs). */
    private static long[] randomLines(Random rnd, long from) {
        long[] lines = new long[HOT];
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (int i = 0; i < HOT; ) {
            long l = from + 2L * rnd.nextInt(VOLUME / 2 / 4096 / 2);
            if (seen.add(l)) {
                lines[i++] = l;
            }
        }
        return lines;
    }

    /**
     * Reads every line of {@code hot} once, in a new random order, with O_DIRECT (the page
     * cache would hide the mount); checks the data; returns the read hits the stat matrix
     * counted during the pass.
     */
    private static long[] readPass(FuseServer server, long[] hot, byte[] content, Random rnd) throws Exception {
        long before = readHits(server);
        long[] order = hot.clone();
        for (int i = order.length - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            long t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(2 * 4096).alignedSlice(4096);
        byte[] got = new byte[4096];
        try (FileChannel f = FileChannel.open(server.file("disk"), StandardOpenOption.READ,
                com.sun.nio.file.ExtendedOpenOption.DIRECT)) {
            for (long line : order) {
                buf.clear().limit(4096);
                while (buf.hasRemaining()) {
                    if (f.read(buf, line * 4096 + buf.position()) < 0) {
                        throw new AssertionError("end of volume at line " + line);
                    }
                }
                buf.get(0, got);
                assertArrayEquals(Arrays.copyOfRange(content, (int) (line * 4096), (int) (line * 4096) + 4096), got, "line " + line);
            }
        }
        return new long[] {readHits(server) - before};
    }

    /** Read hits in the stat matrix (write 0, hit 1, any on_buffer, any fullsize). */
    private static long readHits(FuseServer server) throws Exception {
        long n = 0;
        for (String l : server.read("caches/1/stat").split("\n")) {
            String[] f = l.split(" ");
            if (!l.startsWith("#") && f.length == 5 && f[0].equals("0") && f[1].equals("1")) {
                n += Long.parseLong(f[4]);
            }
        }
        return n;
    }


}
