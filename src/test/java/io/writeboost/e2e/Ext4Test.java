package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a user does: losetup on the image, mkfs.ext4, mount, write, e2fsck, stop, start, check again. */
class Ext4Test {
    @Test
    void ext4OnALoopDeviceSurvivesAStopAndStart(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt")), fs = Files.createDirectories(dir.resolve("fs"));
        Fixture.sparse(dir.resolve("disk.img"), 128 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + dir.resolve("disk.img")};
        Map<String, String> sums = new HashMap<>();
        Random rnd = new Random(7);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "48M"))) {
            assertTrue(Files.readString(server.log).contains("FUSE_ASYNC_DIO granted"), "the loop device's I/O is asynchronous");
            try (Loop loop = Loop.attach(server.file("disk"), "--direct-io=on")) {
                Loop.run("mkfs.ext4", "-q", loop.device.toString());
                Loop.run("mount", loop.device.toString(), fs.toString());
                try {
                    for (int i = 0; i < 20; i++) {
                        byte[] data = new byte[rnd.nextInt(3 << 20)];
                        rnd.nextBytes(data);
                        Path f = fs.resolve("file" + i);
                        Files.write(f, data);
                        sums.put(f.getFileName().toString(), Fixture.sha256(f));
                    }
                    Loop.run("sync");
                } finally {
                    Loop.run("umount", fs.toString());
                }
                Loop.run("e2fsck", "-fn", loop.device.toString());
            }
            assertTrue(Long.parseLong(server.read("devices/1/nr_dirty_caches").strip()) > 0, "data sits in the cache");
            assertEquals(0, server.stop());
        }
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            try (Loop loop = Loop.attach(server.file("disk"), "--direct-io=on")) {
                Loop.run("e2fsck", "-fn", loop.device.toString());
                Loop.run("mount", loop.device.toString(), fs.toString());
                try {
                    for (Map.Entry<String, String> e : sums.entrySet()) {
                        assertEquals(e.getValue(), Fixture.sha256(fs.resolve(e.getKey())), e.getKey() + " after restart");
                    }
                } finally {
                    Loop.run("umount", fs.toString());
                }
            }
        }
    }
}
