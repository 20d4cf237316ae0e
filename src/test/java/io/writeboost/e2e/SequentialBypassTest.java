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
 * A sequential copy through the real mount with the default sequential_cutoff (4 MiB):
 * {@code dd bs=1M oflag=direct} of 16 MiB onto the volume file goes around the cache after its
 * first 4 MiB (status counts the bypassed bytes, the dirty lines stay at about those 4 MiB, the
 * backing file holds the rest once an fsync has returned), in backing requests of 1 MiB or more
 * on average although the kernel sends dd's 128 KiB pieces one after another (the staging
 * buffer gathers them), and a random write that follows still lands in the cache. The volume
 * is intact after a restart.
 */
class SequentialBypassTest {
    static final int VOLUME = 64 << 20;
    static final int COPY = 16 << 20;
    static final long AT = 8 << 20;

    @Test
    void sequentialCopyBypassesTheCacheAndRandomWritesDoNot(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), VOLUME);
        byte[] source = new byte[COPY];
        new Random(13).nextBytes(source);
        Path input = Files.write(dir.resolve("input"), source);
        byte[] model = new byte[VOLUME];
        System.arraycopy(source, 0, model, (int) AT, COPY);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "32M"))) {
            Process dd = new ProcessBuilder("dd", "if=" + input, "of=" + server.file("disk"), "bs=1M", "count=" + (COPY >> 20),
                    "seek=" + (AT >> 20), "oflag=direct", "conv=notrunc", "status=none").redirectErrorStream(true).start();
            String ddOut = new String(dd.getInputStream().readAllBytes());
            assertEquals(0, dd.waitFor(), "dd: " + ddOut);

            String status = server.read("caches/1/status");
            long bypassed = Fixture.field(status, "bypassed_bytes");
            long dirty = Fixture.field(status, "dirty_lines");
            System.out.printf("SequentialBypassTest: dd of %d MiB: %d bytes bypassed, %d dirty line(s), %s%n", COPY >> 20,
                    bypassed, dirty, status.lines().filter(l -> l.startsWith("bypassed_bytes")).findFirst().orElse(""));
            // The stream reaches the cutoff after 4 MiB; the 128 KiB pieces of a request arrive
            // out of order, so a few more may go through the cache while they are stitched.
            assertTrue(bypassed >= COPY - (5 << 20), status);
            assertEquals(COPY, bypassed + dirty * 4096, "every line of the copy either bypassed or is dirty in the cache:\n" + status);
            // Staged lines reach the backing store in the background; an fsync waits for them.
            try (FileChannel f = FileChannel.open(server.file("disk"), StandardOpenOption.WRITE)) {
                f.force(false);
            }
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^bypassed_bytes: \\d+ \\(in (\\d+) backing request")
                    .matcher(server.read("caches/1/status"));
            assertTrue(m.find(), status);
            long requests = Long.parseLong(m.group(1));
            assertTrue(requests > 0 && bypassed / requests >= 1 << 20, requests + " backing requests for " + bypassed + " bytes");
            byte[] onBacking = new byte[COPY - (5 << 20)];
            try (FileChannel b = FileChannel.open(disk, StandardOpenOption.READ)) {
                b.read(ByteBuffer.wrap(onBacking), AT + (5 << 20));
            }
            assertArrayEquals(Arrays.copyOfRange(source, 5 << 20, COPY), onBacking, "the backing file holds the bypassed data");

            // A random write after the copy is not part of its stream: it goes to the cache.
            try (FileChannel f = FileChannel.open(server.file("disk"), StandardOpenOption.WRITE)) {
                byte[] line = new byte[4096];
                Arrays.fill(line, (byte) 0x5a);
                long at = 40L << 20;
                f.write(ByteBuffer.wrap(line), at);
                System.arraycopy(line, 0, model, (int) at, line.length);
            }
            String after = server.read("caches/1/status");
            assertEquals(bypassed, Fixture.field(after, "bypassed_bytes"), after);
            assertEquals(dirty + 1, Fixture.field(after, "dirty_lines"), after);
        }
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertArrayEquals(model, Files.readAllBytes(server.file("disk")), "the volume after a restart");
        }
    }


}
