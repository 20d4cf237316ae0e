package io.writeboost.e2e;

import io.writeboost.format.Layout;
import io.writeboost.testutil.FuseServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The database pattern through the real mount: a 4 KiB write and an fdatasync, over and over.
 * Flushes append to the open segment, so ring slots fill to their 254 lines (format v1 took a
 * slot per flush), and everything is there after a restart.
 */
class PackedFlushTest {
    static final int VOLUME = 32 << 20;
    static final int WRITES = 1200;

    @Test
    void fsyncAfterEveryWriteFillsRingSlots(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), VOLUME);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        byte[] model = new byte[VOLUME];
        Random rnd = new Random(11);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "24M"))) {
            try (FileChannel f = FileChannel.open(server.file("disk"), StandardOpenOption.WRITE)) {
                for (int i = 0; i < WRITES; i++) {
                    byte[] data = new byte[4096];
                    rnd.nextBytes(data);
                    long at = 4096L * rnd.nextInt(VOLUME / 4096);
                    f.write(ByteBuffer.wrap(data), at);
                    f.force(false);
                    System.arraycopy(data, 0, model, (int) at, data.length);
                }
            }
            String status = server.read("caches/1/status");
            Matcher m = Pattern.compile("ring_lines_per_segment: ([0-9.]+) of (\\d+) \\((\\d+) segments sealed").matcher(status);
            assertTrue(m.find(), status);
            double perSegment = Double.parseDouble(m.group(1));
            long sealed = Long.parseLong(m.group(3));
            assertEquals(Layout.LINES_PER_SEGMENT, Integer.parseInt(m.group(2)));
            System.out.printf("PackedFlushTest: %d writes, each followed by fdatasync: %d segments sealed, %.1f lines per slot%n",
                    WRITES, sealed, perSegment);
            assertTrue(sealed >= WRITES / Layout.LINES_PER_SEGMENT - 1 && sealed <= WRITES / 200,
                    "slots consumed by " + WRITES + " fsync'd writes: " + sealed);
            assertTrue(perSegment >= 200, "lines stored per slot consumed: " + perSegment);
        }
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertArrayEquals(model, Files.readAllBytes(server.file("disk")), "the volume after a restart");
        }
    }

}
