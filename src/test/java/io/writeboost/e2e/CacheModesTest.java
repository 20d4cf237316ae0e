package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** cache_mode through the mount: write-through on the volume file, and switching under an ext4 load. */
class CacheModesTest {
    /**
     * With -o cache_mode=write-through every write to the volume file is in the backing file
     * when it returns and nr_dirty_caches stays 0; lines written whole are then read from the
     * cache. The mode survives a stop and start without the option; a bad value is refused
     * with EINVAL and changes nothing.
     */
    @Test
    void writeThroughOnTheVolumeFile(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 32 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        Random rnd = new Random(25);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"),
                Fixture.concat(args, "--format", "--cache-size", "24M", "-o", "cache_mode=write-through"))) {
            assertEquals("write-through\n", server.read("caches/1/cache_mode"));
            try (FileChannel vol = FileChannel.open(server.file("disk"), StandardOpenOption.READ, StandardOpenOption.WRITE);
                 FileChannel back = FileChannel.open(disk, StandardOpenOption.READ)) {
                for (int i = 0; i < 400; i++) {
                    byte[] data = new byte[512 * (1 + rnd.nextInt(128))];
                    rnd.nextBytes(data);
                    long at = 512L * rnd.nextInt((32 << 20) / 512 - 128);
                    vol.write(ByteBuffer.wrap(data), at);
                    ByteBuffer got = ByteBuffer.allocate(data.length);
                    back.read(got, at);
                    assertArrayEquals(data, got.array(), "write " + i + " is in the backing file when it returns");
                    if (i % 40 == 0) {
                        assertEquals("0\n", server.read("devices/1/nr_dirty_caches"));
                    }
                }
                vol.force(false);
                assertEquals("0\n", server.read("devices/1/nr_dirty_caches"));

                long hitsBefore = Fixture.field(server.read("caches/1/status"), "read_hits_clean");
                byte[][] lines = new byte[100][4096];
                for (int i = 0; i < lines.length; i++) {
                    rnd.nextBytes(lines[i]);
                    vol.write(ByteBuffer.wrap(lines[i]), i * 64L * 4096);
                }
                for (int i = 0; i < lines.length; i++) {
                    ByteBuffer got = ByteBuffer.allocate(4096);
                    vol.read(got, i * 64L * 4096);
                    assertArrayEquals(lines[i], got.array());
                }
                long hits = Fixture.field(server.read("caches/1/status"), "read_hits_clean") - hitsBefore;
                assertEquals(lines.length, hits, "lines written whole are read from the cache");
            }
            String status = server.read("caches/1/status");
            assertTrue(status.contains("\ncache_mode: write-through\n"), status);
            assertEquals(0, server.stop());
        }
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertEquals("write-through\n", server.read("caches/1/cache_mode"), "the mode survives a restart");
            for (String bad : new String[] {"writeback\n", "1\n", "write-back \n", "WRITE-BACK\n"}) {
                assertThrows(IOException.class, () -> Files.writeString(server.file("caches/1/cache_mode"), bad), bad);
                assertEquals("write-through\n", server.read("caches/1/cache_mode"), "unchanged after " + bad.strip());
            }
            assertEquals("0\n", server.read("caches/1/write_around_mode"));
            Files.writeString(server.file("caches/1/write_around_mode"), "1\n");
            assertEquals("write-around\n", server.read("caches/1/cache_mode"), "write_around_mode is an alias");
        }
    }

    /**
     * ext4 on a loop device over the mount, with files written and fsync'd all along, while the
     * mode goes from write-back to write-through and then to pass-through: the dirty lines are
     * written back with no one asking, e2fsck finds the file system clean through the mount and
     * on the backing file alone, every file reads back, and the mode survives a restart.
     */
    @Test
    void switchingUnderAnExt4LoadEndsWithNoDirtyLine(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt")), fs = Files.createDirectories(dir.resolve("fs"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 128 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        Map<String, String> sums = new ConcurrentHashMap<>();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "48M"))) {
            try (Loop loop = Loop.attach(server.file("disk"), "--direct-io=on")) {
                Loop.run("mkfs.ext4", "-q", loop.device.toString());
                Loop.run("mount", loop.device.toString(), fs.toString());
                try {
                    Random rnd = new Random(11);
                    for (int i = 0; i < 10; i++) {
                        writeFile(fs.resolve("before" + i), rnd, 2 << 20, sums);
                    }
                    Loop.run("sync");
                    assertTrue(Long.parseLong(server.read("devices/1/nr_dirty_caches").strip()) > 0, "data sits in the cache");
                    AtomicBoolean stop = new AtomicBoolean();
                    Future<?> load = pool.submit(() -> {
                        Random r = new Random(12);
                        for (int i = 0; !stop.get(); i++) {
                            writeFile(fs.resolve("load" + (i % 40)), r, 512 << 10, sums);
                        }
                        return null;
                    });
                    Thread.sleep(1000);
                    Files.writeString(server.file("caches/1/cache_mode"), "write-through\n");
                    assertTrue(server.read("caches/1/status").contains("\ncache_mode: write-through"));
                    Thread.sleep(1500);
                    Files.writeString(server.file("caches/1/cache_mode"), "pass-through");
                    Thread.sleep(1000);
                    stop.set(true);
                    load.get(60, TimeUnit.SECONDS);
                    Loop.run("sync");
                    Fixture.waitFor("nr_dirty_caches to reach 0", 120,
                            () -> server.read("devices/1/nr_dirty_caches").equals("0\n"));
                    for (Map.Entry<String, String> e : sums.entrySet()) {
                        assertEquals(e.getValue(), Fixture.sha256(fs.resolve(e.getKey())), e.getKey());
                    }
                } finally {
                    pool.shutdownNow();
                    Loop.run("umount", fs.toString());
                }
                Loop.run("e2fsck", "-fn", loop.device.toString());
            }
            assertEquals("0\n", server.read("devices/1/nr_dirty_caches"));
            String log = Files.readString(server.log);
            assertTrue(log.contains("cache_mode write-back -> write-through"), "the switch is logged");
            assertTrue(log.contains("cache_mode write-through -> pass-through"), "the switch is logged");
            assertEquals(0, server.stop());
        }
        // No dirty line was left: the backing file alone holds the file system.
        try (Loop loop = Loop.attach(disk)) {
            Loop.run("e2fsck", "-fn", loop.device.toString());
            Loop.run("mount", "-o", "ro", loop.device.toString(), fs.toString());
            try {
                for (Map.Entry<String, String> e : sums.entrySet()) {
                    assertEquals(e.getValue(), Fixture.sha256(fs.resolve(e.getKey())), e.getKey() + " on the backing file");
                }
            } finally {
                Loop.run("umount", fs.toString());
            }
        }
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertEquals("pass-through\n", server.read("caches/1/cache_mode"), "the mode survives a restart");
        }
    }

    /** Writes a file of random size (at most {@code max}), fsyncs it, and remembers its checksum. */
    private static void writeFile(Path f, Random rnd, int max, Map<String, String> sums) throws Exception {
        byte[] data = new byte[1 + rnd.nextInt(max)];
        rnd.nextBytes(data);
        try (FileChannel c = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            c.write(ByteBuffer.wrap(data));
            c.force(true);
        }
        sums.put(f.getFileName().toString(), Fixture.sha256(f));
    }
}
