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

/** fusermount -u, SIGTERM and SIGINT stop cleanly; SIGKILL loses nothing that was fsynced. */
class StopTest {
    @Test
    void signalsStopCleanlyAndTheNextStartIsAClean(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 16 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        byte[] model = new byte[16 << 20];
        Random rnd = new Random(5);
        String[] first = Fixture.concat(args, "--format", "--cache-size", "8M");
        for (String how : new String[] {"TERM", "INT", "unmount"}) {
            Path log = dir.resolve("log-" + how);
            try (FuseServer s = FuseServer.start(mnt, log, first)) {
                first = args;
                try (FileChannel f = FileChannel.open(s.file("disk"), StandardOpenOption.WRITE)) {
                    for (int i = 0; i < 300; i++) {
                        byte[] data = new byte[4096];
                        rnd.nextBytes(data);
                        int at = rnd.nextInt(4096) * 4096;
                        f.write(ByteBuffer.wrap(data), at);
                        System.arraycopy(data, 0, model, at, 4096);
                    }
                }
                int status = how.equals("unmount") ? s.stop() : s.signal(how);
                assertEquals(0, status, "exit status after " + how);
            }
            String text = Files.readString(log);
            assertTrue(text.contains("stopped cleanly"), how + ": log says the stop was clean:\n" + text);
            try (FuseServer s = FuseServer.start(mnt, dir.resolve("check-" + how), args)) {
                assertTrue(Files.readString(dir.resolve("check-" + how)).contains("start after a clean stop"));
                assertArrayEquals(model, Files.readAllBytes(s.file("disk")), "data after stop by " + how);
            }
        }
    }

    @Test
    void killNineLosesNothingThatWasFsynced(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 16 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        byte[] model = new byte[16 << 20];
        Random rnd = new Random(9);
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "8M"))) {
            try (FileChannel f = FileChannel.open(s.file("disk"), StandardOpenOption.WRITE)) {
                for (int i = 0; i < 500; i++) {
                    byte[] data = new byte[4096];
                    rnd.nextBytes(data);
                    int at = rnd.nextInt(4096) * 4096;
                    f.write(ByteBuffer.wrap(data), at);
                    System.arraycopy(data, 0, model, at, 4096);
                }
                f.force(false);
            }
            s.signal("KILL");
        }
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), args)) {
            assertTrue(Files.readString(dir.resolve("log2")).contains("after a crash"));
            assertArrayEquals(model, Files.readAllBytes(s.file("disk")), "everything fsynced before the kill");
        }
    }
}
