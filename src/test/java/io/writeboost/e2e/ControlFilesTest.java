package io.writeboost.e2e;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.FuseServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Every control file of a real mount: its value, a valid write, and every kind of bad write. */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ControlFilesTest {
    @TempDir
    static Path dir;
    static FuseServer server;

    @BeforeAll
    static void mount() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        server = FuseServer.start(mnt, dir.resolve("log"), "--cache", dir.resolve("cache.img").toString(), "--format",
                "--cache-size", "8M", "--cache-id", "3", "--backing", "vol=" + dir.resolve("disk.img"));
    }

    @AfterAll
    static void unmount() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    static String path(Knob k) {
        return (k.scope == Knob.Scope.CACHE ? "caches/3/" : "devices/1/") + k.fileName;
    }

    @Test
    void treeHasEveryKnobAndNothingElse() throws Exception {
        List<String> cache = new ArrayList<>(), dev = new ArrayList<>();
        for (Knob k : Knob.values()) {
            (k.scope == Knob.Scope.CACHE ? cache : dev).add(k.fileName);
        }
        for (io.writeboost.knob.Command c : io.writeboost.knob.Command.values()) {
            cache.add(c.fileName);
        }
        cache.add("stat");
        cache.add("status");
        cache.add("metrics");
        assertEquals(sorted(cache), list("caches/3"));
        assertEquals(sorted(dev), list("devices/1"));
        assertEquals(List.of("caches", "devices", "vol"), list(""));
    }

    private static List<String> sorted(List<String> l) {
        l.sort(null);
        return l;
    }

    private static List<String> list(String rel) throws IOException {
        try (var s = Files.list(server.file(rel))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    @Order(1)
    void readOnlyValuesOfAFreshCache() throws Exception {
        assertEquals("3\n", server.read("devices/1/cache_id"));
        assertEquals("1\n", server.read("devices/1/device_no"));
        assertEquals(dir.resolve("disk.img").toAbsolutePath() + "\n", server.read("devices/1/dev"));
        assertEquals("0\n", server.read("devices/1/nr_dirty_caches"));
        assertEquals("0\n", server.read("caches/3/last_flushed_segment_id"));
        assertEquals("0\n", server.read("caches/3/last_migrated_segment_id"));
        assertTrue(server.read("caches/3/status").contains("cache_id: 3\n"));
        assertEquals(17, server.read("caches/3/stat").lines().count(), "a header and 16 counters");
    }

    @Test
    void everyWritableKnobTakesValidValuesAndRefusesBadOnes() throws Exception {
        for (Knob k : Knob.values()) {
            String file = path(k);
            String before = server.read(file);
            assertTrue(before.endsWith("\n") && before.strip().matches("\\d+|/.*|[a-z-]+"), file + " reads as a value and a newline: " + before);
            if (k.access == Knob.Access.READ_ONLY) {
                refused(file, "1\n", before);
                refused(file, before, before);
                continue;
            }
            // Writing nothing (": > file") reaches the server as no write at all: nothing changes.
            Files.writeString(server.file(file), "");
            assertEquals(before, server.read(file), file + " after an empty write");
            for (String bad : new String[] {"\n", "abc\n", "-1\n", "1x\n", " 1\n", "0x1\n", "1.5\n",
                    (k.max == Long.MAX_VALUE ? "99999999999999999999" : Long.toString(k.max + 1)) + "\n",
                    k.min > 0 ? (k.min - 1) + "\n" : "99999999999999999999\n"}) {
                refused(file, bad, before);
            }
            if (k.access == Knob.Access.ACTION) {
                Files.writeString(server.file(file), "1\n");
                assertEquals("0\n", server.read(file));
            } else {
                Files.writeString(server.file(file), k.format(k.max) + "\n");
                assertEquals(k.format(k.max) + "\n", server.read(file), file);
                Files.writeString(server.file(file), k.format(k.min));
                assertEquals(k.format(k.min) + "\n", server.read(file), file + " (no newline written)");
                Files.writeString(server.file(file), before);
                assertEquals(before, server.read(file));
            }
        }
        // Knobs back at their defaults for the other tests.
        for (Knob k : Knob.values()) {
            if (k.access == Knob.Access.READ_WRITE) {
                assertEquals(k.format(k.defaultValue) + "\n", server.read(path(k)), path(k));
            }
        }
    }

    private static void refused(String file, String value, String expectedAfter) throws Exception {
        try {
            Files.writeString(server.file(file), value);
            fail(file + " accepted '" + value.replace("\n", "\\n") + "'");
        } catch (IOException expected) {
            // EINVAL for a bad value, EACCES for a read-only file
        }
        assertEquals(expectedAfter, server.read(file), file + " changed after a refused write");
    }

    /**
     * A number past Long.MAX_VALUE, written as a user would ({@code echo N > file} in a shell):
     * refused with EINVAL, so the shell's echo fails and returns (a write answered with 0 bytes
     * would have it retry for ever), nothing changes, and the mount serves on, many refusals later.
     */
    @Test
    void aNumberPastLongMaxFromTheShellIsRefusedAndTheMountServesOn() throws Exception {
        String cutoff = path(Knob.SEQUENTIAL_CUTOFF);
        String before = server.read(cutoff);
        String[] huge = {"9223372036854775808", "9999999999999999999", "18446744073709551616", "9".repeat(100),
                "00009223372036854775808"};
        for (int round = 0; round < 3; round++) {
            for (String value : huge) {
                shellEchoRefused(cutoff, value);
                assertEquals(before, server.read(cutoff), cutoff + " changed after a refused write of " + value);
            }
        }
        for (Knob k : Knob.values()) {
            if (k.writable()) {
                String was = server.read(path(k));
                shellEchoRefused(path(k), "9223372036854775808");
                assertEquals(was, server.read(path(k)), path(k));
            }
        }
        assertTrue(server.read("caches/3/status").startsWith("state: ok\n"), "status is served, its state first");
        Files.writeString(server.file(cutoff), "1048576\n");
        assertEquals("1048576\n", server.read(cutoff), "a valid value still takes effect");
        Files.writeString(server.file(cutoff), before);
        assertEquals(before, server.read(cutoff));
        assertTrue(server.alive());
    }

    /** Runs {@code echo VALUE > FILE} in bash (10 s at most) and checks that it fails with EINVAL. */
    private static void shellEchoRefused(String file, String value) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("timeout", "10", "bash", "-c", "echo " + value + " > \"$0\"", server.file(file).toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("LC_ALL", "C");
        Process p = pb.start();
        String stderr = new String(p.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        if (!p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("echo " + value + " > " + file + " did not return");
        }
        assertEquals(1, p.exitValue(), "echo " + value + " > " + file + " returns with an error (124: timed out): " + stderr);
        assertTrue(stderr.contains("write error: Invalid argument"), stderr);
    }

    @Test
    void actionsActWhenWritten() throws Exception {
        try (var f = java.nio.channels.FileChannel.open(server.file("vol"), java.nio.file.StandardOpenOption.WRITE)) {
            f.write(java.nio.ByteBuffer.allocate(4096), 0);
        }
        Files.writeString(server.file("caches/3/flush_current_buffer"), "1");
        assertTrue(Long.parseLong(server.read("caches/3/last_flushed_segment_id").strip()) >= 1, "the buffer was flushed");
        long flushedBytes = server.read("caches/3/status").lines().filter(l -> l.startsWith("flushed_bytes: "))
                .mapToLong(l -> Long.parseLong(l.substring("flushed_bytes: ".length()))).findFirst().orElse(-1);
        assertTrue(flushedBytes >= 8192, "status counts the segment written (header and line): " + flushedBytes);
        Files.writeString(server.file("caches/3/clear_stat"), "1");
        assertTrue(server.read("caches/3/stat").lines().skip(1).allMatch(l -> l.endsWith(" 0")), "counters cleared");
        Files.writeString(server.file("caches/3/commit_super_block"), "1");
    }
}
