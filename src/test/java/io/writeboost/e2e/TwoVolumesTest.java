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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Two volumes share one cache; each holds its own data, at the same offsets, before and after writeback. */
class TwoVolumesTest {
    @Test
    void volumesDoNotSeeEachOthersData(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path a = Fixture.sparse(dir.resolve("a.img"), 8 << 20), b = Fixture.sparse(dir.resolve("b.img"), 4 << 20);
        // migrate_threshold 100: write back whatever the disk's load (load-based writeback is LoadTest's).
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", a.toString(), "--backing", "second=" + b,
                "-o", "migrate_threshold=100"};
        byte[] imageA = new byte[8 << 20], imageB = new byte[4 << 20];
        Arrays.fill(imageA, 0, 1 << 20, (byte) 'A');
        Arrays.fill(imageB, 0, 1 << 20, (byte) 'B');
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "8M"))) {
            assertEquals(8 << 20, Files.size(server.file("a.img")));
            assertEquals(4 << 20, Files.size(server.file("second")));
            write(server.file("a.img"), imageA);
            write(server.file("second"), imageB);
            assertArrayEquals(imageA, Files.readAllBytes(server.file("a.img")));
            assertArrayEquals(imageB, Files.readAllBytes(server.file("second")));
            assertEquals("1\n", server.read("devices/1/device_no"));
            assertEquals("2\n", server.read("devices/2/device_no"));
            assertEquals("256\n", server.read("devices/1/nr_dirty_caches"));
            assertEquals("256\n", server.read("devices/2/nr_dirty_caches"));
            assertEquals(0, server.stop());
        }
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertArrayEquals(imageA, Files.readAllBytes(server.file("a.img")), "volume 1 after restart");
            assertArrayEquals(imageB, Files.readAllBytes(server.file("second")), "volume 2 after restart");
            Files.writeString(server.file("caches/1/allow_migrate"), "1");
            Fixture.waitFor("both volumes written back", 60, () -> server.read("devices/1/nr_dirty_caches").equals("0\n")
                    && server.read("devices/2/nr_dirty_caches").equals("0\n"));
        }
        assertArrayEquals(imageA, Files.readAllBytes(a), "backing store 1");
        assertArrayEquals(imageB, Files.readAllBytes(b), "backing store 2");
    }

    private static void write(Path image, byte[] data) throws Exception {
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.wrap(data, 0, 1 << 20), 0);
            f.force(false);
        }
    }
}
