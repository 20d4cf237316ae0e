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
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A sparse cache file on a filesystem that runs out of space: the fsync that cannot be
 * honoured fails, the log says why, and after the filesystem grows the cache starts again
 * with everything acknowledged before intact.
 */
class EnospcTest {
    @Test
    void runningOutOfSpaceUnderTheCacheIsAClearErrorAndCorruptsNothing(@TempDir Path dir) throws Exception {
        Path small = Files.createDirectories(dir.resolve("small")), mnt = Files.createDirectories(dir.resolve("mnt"));
        Loop.run("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", small.toString());
        try {
            Path disk = Fixture.sparse(dir.resolve("disk.img"), 64 << 20);
            String[] args = {"--cache", small.resolve("cache.img").toString(), "--backing", "data=" + disk};
            byte[] acked = new byte[4 << 20];
            new Random(1).nextBytes(acked);
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "48M", "--sparse"))) {
                try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.WRITE)) {
                    f.write(ByteBuffer.wrap(acked), 0);
                    f.force(false);
                    byte[] more = new byte[1 << 20];
                    try {
                        for (int i = 4; i < 64; i++) {
                            f.write(ByteBuffer.wrap(more), (long) i << 20);
                            f.force(false);
                        }
                        fail("32+ MiB of segments fit on a 12 MiB filesystem?");
                    } catch (IOException expected) {
                        // fsync (or a later write) fails once the cache file cannot grow
                    }
                }
                String log = Files.readString(dir.resolve("log"));
                assertTrue(log.contains("No space left on device"), "the log names the cause:\n" + log);
                assertTrue(s.read("caches/1/status").contains("state: failed"), "status shows the failure");
            }
            Loop.run("mount", "-o", "remount,size=64m", small.toString());
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), args)) {
                byte[] got = new byte[acked.length];
                try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.READ)) {
                    f.read(ByteBuffer.wrap(got), 0);
                }
                assertArrayEquals(acked, got, "what the first fsync acknowledged");
            }
            FuseServer.Result check = FuseServer.run("check", "--cache", small.resolve("cache.img").toString());
            assertTrue(check.status() == 0, check.stdout());
        } finally {
            new ProcessBuilder("umount", "-l", small.toString()).start().waitFor();
        }
    }
}
