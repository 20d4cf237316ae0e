package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.FuseServer.Result;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What a start finds at its mount point, on real FUSE mounts: the mount a killed server left
 * behind (ENOTCONN) is cleared with a log line and the log replayed, as systemd's
 * Restart=on-failure needs; the live mount of another server is refused and left serving.
 */
class StaleMountTest {
    @TempDir
    Path dir;

    @Test
    void theMountOfAKilledServerIsClearedAndTheLogReplayed() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "data=" + disk};
        byte[] data = new byte[256 << 10];
        new Random(16).nextBytes(data);
        try {
            FuseServer first = FuseServer.start(mnt, dir.resolve("log1"), Fixture.concat(args, "--format", "--cache-size", "8M"));
            try (FileChannel f = FileChannel.open(first.file("data"), StandardOpenOption.WRITE)) {
                f.write(ByteBuffer.wrap(data), 4096);
                f.force(false);
            }
            ProcessHandle server = ProcessHandle.of(first.pid()).orElseThrow();
            server.destroyForcibly();
            server.onExit().get(60, TimeUnit.SECONDS);
            // Listing, not stat: stat may answer from cached attributes for a second.
            try (var entries = Files.newDirectoryStream(mnt)) {
                fail("the dead server's mount still answers: " + entries.iterator().hasNext());
            } catch (FileSystemException e) {
                assertTrue(FuseServer.mounted(mnt), "the killed server's mount stays behind: " + e);
            }

            try (FuseServer second = FuseServer.start(mnt, dir.resolve("log2"), args)) {
                String log = Files.readString(second.log);
                assertTrue(log.contains("WARN") && log.contains(mnt + ": a stale FUSE mount (fuse.writeboost from writeboost) is in the way"),
                        log);
                assertTrue(log.contains(mnt + ": stale mount cleared"), log);
                assertTrue(log.contains("start after a crash (log replay)"), log);
                byte[] read = new byte[data.length];
                try (FileChannel f = FileChannel.open(second.file("data"), StandardOpenOption.READ)) {
                    f.read(ByteBuffer.wrap(read), 4096);
                }
                assertArrayEquals(data, read, "what was synced before the kill");
                assertEquals(1, Files.readString(Path.of("/proc/mounts")).split(" " + mnt + " ", -1).length - 1,
                        "one mount at the mount point: the stale one is gone");
            }
        } finally {
            // A failure above may leave the dead mount: it must not outlive the test.
            if (FuseServer.mounted(mnt)) {
                new ProcessBuilder("fusermount", "-u", "-z", mnt.toString()).inheritIO().start().waitFor();
            }
        }
    }

    @Test
    void aLiveMountOfAnotherServerIsRefusedAndLeftAlone() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        Path other = Fixture.sparse(dir.resolve("other.img"), 8 << 20);
        try (FuseServer live = FuseServer.start(mnt, dir.resolve("log1"), "--cache", dir.resolve("cache.img").toString(), "--format",
                "--cache-size", "8M", "--backing", "data=" + disk)) {
            Result r = FuseServer.run("--foreground", "--cache", dir.resolve("cache2.img").toString(), "--format", "--cache-size", "8M",
                    "--backing", "data=" + other, "--log-file", dir.resolve("log2").toString(), mnt.toString());
            assertEquals(2, r.status(), r.stderr());
            assertEquals("fuse-mount: " + mnt + ": something is already mounted there\n", r.stderr());
            assertTrue(live.alive(), "the live server goes on");
            assertTrue(live.read("caches/1/status").contains("state: ok"), "and its mount still serves");
            try (var entries = Files.list(mnt)) { // an open directory would keep the mount busy at the stop
                assertTrue(entries.anyMatch(p -> p.getFileName().toString().equals("data")));
            }
        }
    }
}
