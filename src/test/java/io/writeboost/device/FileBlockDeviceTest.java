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
}
