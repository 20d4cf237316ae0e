package io.writeboost.e2e;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;

/** Small helpers shared by the end-to-end tests. */
final class Fixture {
    private Fixture() {}

    /** {@code a} followed by {@code b}: a command line with a few more arguments. */
    static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The number on the status file's line {@code name: N}; fails the test when there is none. */
    static long field(String status, String name) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^" + name + ": (\\d+)").matcher(status);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), name + " in status:\n" + status);
        return Long.parseLong(m.group(1));
    }

    /** A sparse file of {@code size} bytes. */
    static Path sparse(Path file, long size) throws IOException {
        try (FileChannel c = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.allocate(1), size - 1);
        }
        return file;
    }

    /** Writes up to {@code maxBytes} random bytes to a new file and fsyncs it; returns its {@link #sha256}. */
    static String writeRandomSynced(Path file, Random rnd, int maxBytes) throws Exception {
        byte[] data = new byte[rnd.nextInt(maxBytes)];
        rnd.nextBytes(data);
        try (FileChannel c = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.wrap(data));
            c.force(true);
        }
        return sha256(file);
    }

    static String sha256(Path file) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static void waitFor(String what, long seconds, Check check) throws Exception {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        while (!check.done()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + seconds + " s waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    interface Check {
        boolean done() throws Exception;
    }
}
