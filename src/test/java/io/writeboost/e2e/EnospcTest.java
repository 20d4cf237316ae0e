package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A sparse cache file on a filesystem that runs out of space: the cache device fails its
 * writes, the mount fails over to the backing store (docs/ENGINE.md, "Failure") and keeps
 * serving, fsyncs included; the log and status say why; the next start refuses the abandoned
 * cache, and a new one formatted over it (no --force) serves the volume as it was.
 */
class EnospcTest {
    @Test
    void runningOutOfSpaceUnderTheCacheFailsOverAndLosesNothing(@TempDir Path dir) throws Exception {
        Path small = Files.createDirectories(dir.resolve("small")), mnt = Files.createDirectories(dir.resolve("mnt"));
        Loop.run("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", small.toString());
        try {
            Path disk = Fixture.sparse(dir.resolve("disk.img"), 64 << 20);
            String[] args = {"--cache", small.resolve("cache.img").toString(), "--backing", "data=" + disk};
            byte[] all = new byte[64 << 20];
            new Random(1).nextBytes(all);
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "48M", "--sparse"))) {
                try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.WRITE)) {
                    // 64 MiB of segments do not fit on a 12 MiB filesystem: every fsync must still succeed.
                    for (int i = 0; i < 64; i++) {
                        f.write(ByteBuffer.wrap(all, i << 20, 1 << 20), (long) i << 20);
                        f.force(false);
                    }
                }
                String log = Files.readString(dir.resolve("log"));
                assertTrue(log.contains("No space left on device") && log.contains("failing over"), "the log names the cause:\n" + log);
                String status = s.read("caches/1/status");
                assertTrue(status.startsWith("state: degraded: failed over:") && status.contains("marked abandoned"), status);
                assertTrue(status.contains("cache_mode: pass-through"), status);
                byte[] got = new byte[all.length];
                try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.READ)) {
                    f.read(ByteBuffer.wrap(got), 0);
                }
                assertArrayEquals(all, got, "the volume reads back whole");
            }
            assertArrayEquals(all, Files.readAllBytes(disk), "the backing store holds everything, written back or passed through");
            Loop.run("mount", "-o", "remount,size=64m", small.toString());
            FuseServer.Result refused = FuseServer.startExpectingRefusal(mnt, args);
            assertNotEquals(0, refused.status());
            assertTrue(refused.stderr().contains("abandoned") && refused.stderr().contains("--format"), refused.stderr());
            FuseServer.Result check = FuseServer.run("check", "--cache", small.resolve("cache.img").toString());
            assertEquals(1, check.status(), check.stdout());
            assertTrue(check.stdout().contains("ABANDONED"), check.stdout());
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), Fixture.concat(args, "--format"))) {
                byte[] got = new byte[all.length];
                try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.READ)) {
                    f.read(ByteBuffer.wrap(got), 0);
                }
                assertArrayEquals(all, got, "a new cache over the same backing store");
                assertTrue(s.read("caches/1/status").startsWith("state: ok\n"));
            }
        } finally {
            new ProcessBuilder("umount", "-l", small.toString()).start().waitFor();
        }
    }

    /** ext4 on a loop device over the volume while the cache device fails under it: e2fsck finds it clean. */
    @Test
    void ext4StaysCleanAcrossAFailover(@TempDir Path dir) throws Exception {
        Path small = Files.createDirectories(dir.resolve("small")), mnt = Files.createDirectories(dir.resolve("mnt"));
        Path fs = Files.createDirectories(dir.resolve("fs"));
        Loop.run("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", small.toString());
        try {
            Path disk = Fixture.sparse(dir.resolve("disk.img"), 128 << 20);
            String[] args = {"--cache", small.resolve("cache.img").toString(), "--backing", "disk=" + disk};
            Map<String, String> sums = new HashMap<>();
            Random rnd = new Random(7);
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "48M", "--sparse"))) {
                try (Loop loop = Loop.attach(s.file("disk"), "--direct-io=on")) {
                    Loop.run("mkfs.ext4", "-q", loop.device.toString());
                    Loop.run("mount", loop.device.toString(), fs.toString());
                    try {
                        for (int i = 0; i < 24; i++) {
                            byte[] data = new byte[1 + rnd.nextInt(3 << 20)];
                            rnd.nextBytes(data);
                            Path f = fs.resolve("file" + i);
                            Files.write(f, data);
                            Loop.run("sync", f.toString());
                            sums.put(f.getFileName().toString(), Fixture.sha256(f));
                        }
                    } finally {
                        Loop.run("umount", fs.toString());
                    }
                    assertTrue(s.read("caches/1/status").startsWith("state: degraded: failed over:"), s.read("caches/1/status"));
                    Loop.run("e2fsck", "-fn", loop.device.toString());
                }
            }
            Loop.run("mount", "-o", "remount,size=64m", small.toString());
            assertNotEquals(0, FuseServer.startExpectingRefusal(mnt, args).status(), "the abandoned cache is refused");
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), Fixture.concat(args, "--format"))) {
                try (Loop loop = Loop.attach(s.file("disk"), "--direct-io=on")) {
                    Loop.run("e2fsck", "-fn", loop.device.toString());
                    Loop.run("mount", loop.device.toString(), fs.toString());
                    try {
                        for (Map.Entry<String, String> e : sums.entrySet()) {
                            assertEquals(e.getValue(), Fixture.sha256(fs.resolve(e.getKey())), e.getKey() + " on a new cache");
                        }
                    } finally {
                        Loop.run("umount", fs.toString());
                    }
                }
            }
        } finally {
            new ProcessBuilder("umount", "-l", small.toString()).start().waitFor();
        }
    }
}
