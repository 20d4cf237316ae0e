package io.writeboost.device;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** writeThrough, O_DIRECT (aligned, gathered or not) or plain (unaligned), lands every byte where a plain write would. */
class FileBlockDeviceTest {
    private static ByteBuffer aligned(byte[] content) {
        ByteBuffer b = ByteBuffer.allocateDirect(content.length + 4096).alignedSlice(4096).limit(content.length).slice();
        b.put(content).flip();
        return b;
    }

    private static void check(Path file) throws Exception {
        Random rnd = new Random(3);
        byte[] a = new byte[8192], b = new byte[4096], c = new byte[12288], d = new byte[1000];
        for (byte[] x : new byte[][] {a, b, c, d}) {
            rnd.nextBytes(x);
        }
        try (FileBlockDevice dev = FileBlockDevice.open(file)) {
            dev.writeThrough(new ByteBuffer[] {aligned(a), aligned(b).asReadOnlyBuffer(), aligned(c)}, 3, 4096);   // one gathered O_DIRECT write (read-only, as the zeros of a first append)
            dev.writeThrough(aligned(b), 65536);                                                 // one O_DIRECT write
            dev.writeThrough(ByteBuffer.wrap(d), 70000);                                         // unaligned: a plain write
            dev.writeThrough(new ByteBuffer[] {aligned(b), ByteBuffer.wrap(d)}, 2, 131072);     // mixed: plain writes
            dev.sync();
            byte[] got = new byte[262144];
            dev.read(ByteBuffer.wrap(got), 0);
            byte[] want = new byte[262144];
            System.arraycopy(a, 0, want, 4096, a.length);
            System.arraycopy(b, 0, want, 4096 + a.length, b.length);
            System.arraycopy(c, 0, want, 4096 + a.length + b.length, c.length);
            System.arraycopy(b, 0, want, 65536, b.length);
            System.arraycopy(d, 0, want, 70000, d.length);
            System.arraycopy(b, 0, want, 131072, b.length);
            System.arraycopy(d, 0, want, 131072 + b.length, d.length);
            assertArrayEquals(want, got);
        }
        // And through another descriptor, around any cache this process could have.
        byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(file), 4096, 4096 + a.length);
        assertArrayEquals(a, onDisk);
    }

    @Test
    void writeThroughOnAFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("dev.img");
        FileBlockDevice.createSparse(file, 1 << 20).close();
        check(file);
    }

    /**
     * writeDurably on a file of a file system that takes O_DIRECT (the build directory's, not
     * a tmpfs): durable on return, every byte in place; unaligned buffers fall back to a
     * plain write and say they are not durable yet.
     */
    @Test
    void writeDurablyIsOneDirectSyncedWriteWhereAligned() throws Exception {
        Path dir = Files.createDirectories(Path.of("target", "device-test"));
        Path file = dir.resolve("durable.img");
        Files.deleteIfExists(file);
        FileBlockDevice.createSparse(file, 1 << 20).close();
        Random rnd = new Random(5);
        byte[] a = new byte[8192], b = new byte[4096], d = new byte[1000];
        rnd.nextBytes(a);
        rnd.nextBytes(b);
        rnd.nextBytes(d);
        try (FileBlockDevice dev = FileBlockDevice.open(file)) {
            org.junit.jupiter.api.Assertions.assertTrue(dev.writeDurably(new ByteBuffer[] {aligned(a), aligned(b)}, 2, 8192));
            org.junit.jupiter.api.Assertions.assertTrue(dev.writeDurably(new ByteBuffer[] {aligned(b)}, 1, 65536));
            org.junit.jupiter.api.Assertions.assertFalse(dev.writeDurably(new ByteBuffer[] {ByteBuffer.wrap(d)}, 1, 70000));
            dev.sync();
        } finally {
            byte[] got = Files.readAllBytes(file);
            Files.delete(file);
            assertArrayEquals(a, Arrays.copyOfRange(got, 8192, 8192 + a.length));
            assertArrayEquals(b, Arrays.copyOfRange(got, 8192 + a.length, 8192 + a.length + b.length));
            assertArrayEquals(b, Arrays.copyOfRange(got, 65536, 65536 + b.length));
            assertArrayEquals(d, Arrays.copyOfRange(got, 70000, 70000 + d.length));
        }
    }
}
