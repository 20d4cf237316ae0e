package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** allow_migrate 1 drains the cache; the backing file then equals the volume byte for byte. */
class WritebackTest {
    @Test
    void allowMigrateDrainsDirtyLinesToTheBackingStore(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 32 << 20);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), "--cache", dir.resolve("cache.img").toString(),
                "--format", "--cache-size", "24M", "--backing", "disk=" + disk, "-o", "migrate_threshold=100")) {
            Random rnd = new Random(3);
            try (FileChannel f = FileChannel.open(server.file("disk"), StandardOpenOption.WRITE)) {
                for (int i = 0; i < 2000; i++) {
                    byte[] data = new byte[512 * (1 + rnd.nextInt(16))];
                    rnd.nextBytes(data);
                    f.write(ByteBuffer.wrap(data), 512L * rnd.nextInt((32 << 20) / 512 - 16));
                }
                f.force(false);
            }
            assertTrue(Long.parseLong(server.read("devices/1/nr_dirty_caches").strip()) > 0);
            byte[] volume = Files.readAllBytes(server.file("disk"));
            Files.writeString(server.file("caches/1/allow_migrate"), "1");
            Fixture.waitFor("nr_dirty_caches to reach 0", 60,
                    () -> server.read("devices/1/nr_dirty_caches").equals("0\n"));
            assertEquals(server.read("caches/1/last_flushed_segment_id"), server.read("caches/1/last_migrated_segment_id"));
            assertArrayEquals(volume, Files.readAllBytes(disk), "backing file equals the volume");
        }
    }
}
