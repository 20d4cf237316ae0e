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
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The volume file through a real FUSE mount against a model: unaligned reads and writes of up
 * to 300 KiB at byte offsets (across lines and segments), fsyncs, a restart in the middle, and
 * the fixed size.
 */
class ImageFileTest {
    static final int VOLUME = 12 << 20;

    @Test
    void randomReadsAndWritesMatchAModelAcrossARestart(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("cache.img"), disk = dir.resolve("disk.img"), mnt = dir.resolve("mnt");
        Files.createDirectories(mnt);
        try (FileChannel c = FileChannel.open(disk, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.allocate(1), VOLUME - 1);
        }
        byte[] model = new byte[VOLUME];
        Random rnd = new Random(2024);
        String[] args = {"--cache", cache.toString(), "--backing", "vol=" + disk, "-o", "barrier_deadline_ms=1"};
        FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "6M"));
        try {
            for (int round = 0; round < 2; round++) {
                try (FileChannel f = FileChannel.open(server.file("vol"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                    assertEquals(VOLUME, f.size());
                    for (int op = 0; op < 400; op++) {
                        int len = 1 + rnd.nextInt(rnd.nextBoolean() ? 4096 : 300 << 10);
                        long at = rnd.nextInt(VOLUME - len);
                        if (rnd.nextInt(3) > 0) {
                            byte[] data = new byte[len];
                            rnd.nextBytes(data);
                            ByteBuffer b = ByteBuffer.wrap(data);
                            while (b.hasRemaining()) {
                                f.write(b, at + b.position());
                            }
                            System.arraycopy(data, 0, model, (int) at, len);
                        } else {
                            ByteBuffer b = ByteBuffer.allocate(len);
                            while (b.hasRemaining()) {
                                f.read(b, at + b.position());
                            }
                            assertArrayEquals(java.util.Arrays.copyOfRange(model, (int) at, (int) at + len), b.array(),
                                    "round " + round + " op " + op + ": read of " + len + " at " + at);
                        }
                        if (op % 50 == 49) {
                            f.force(false);
                        }
                    }
                }
                assertArrayEquals(model, Files.readAllBytes(server.file("vol")), "whole volume, round " + round);
                assertEquals(0, server.stop(), "clean stop");
                server = FuseServer.start(mnt, dir.resolve("log"), args);
                assertArrayEquals(model, Files.readAllBytes(server.file("vol")), "whole volume after restart " + round);
            }
            // The size is the backing store's and stays so.
            try (FileChannel f = FileChannel.open(server.file("vol"), StandardOpenOption.WRITE)) {
                assertThrows(java.io.IOException.class, () -> f.truncate(VOLUME / 2));
                assertThrows(java.io.IOException.class, () -> f.write(ByteBuffer.allocate(512), VOLUME));
                assertEquals(VOLUME, f.size());
            }
        } finally {
            server.close();
        }
    }

}
