package io.writeboost.e2e;

import io.writeboost.format.Layout;
import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.FuseServer.Result;
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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Config files, safe detach (drain, --drain-on-stop) and the offline tools, on real mounts and files. */
class OperationsTest {
    @TempDir
    Path dir;

    private byte[] writeRandom(FuseServer s, int volumeBytes, int writes, long seed) throws Exception {
        byte[] model = new byte[volumeBytes];
        Random rnd = new Random(seed);
        try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            f.read(ByteBuffer.wrap(model), 0);
            for (int i = 0; i < writes; i++) {
                byte[] d = new byte[512 * (1 + rnd.nextInt(24))];
                rnd.nextBytes(d);
                int at = 512 * rnd.nextInt(volumeBytes / 512 - 24);
                f.write(ByteBuffer.wrap(d), at);
                System.arraycopy(d, 0, model, at, d.length);
            }
            f.force(false);
        }
        return model;
    }

    private Path config(String... lines) throws Exception {
        Path f = dir.resolve("wb.conf");
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    @Test
    void configFileIsReadAndTheCommandLineOverridesIt() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        // A '#' inside a value is part of it unless whitespace comes before it; a quoted value is taken whole.
        Path disk = Fixture.sparse(dir.resolve("disk#1.img"), 8 << 20);
        Path conf = config("# a comment", "cache = \"" + dir.resolve("cache #2.img") + "\"   # trailing comment",
                "backing = data=" + disk + "\t# the volume", "mountpoint = " + dir.resolve("elsewhere"),
                "allow_migrate = 1", "barrier_deadline_ms = 7", "", "cache-id = 4", "async-dio = off", "parallel-direct-writes = no");
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), "--config", conf.toString(), "--format", "--cache-size", "8M",
                "-o", "allow_migrate=0", "--async-dio", "on")) {
            assertEquals("0\n", s.read("caches/4/allow_migrate"), "-o overrides the file");
            assertEquals("7\n", s.read("caches/4/barrier_deadline_ms"), "from the file");
            assertTrue(Files.exists(s.file("data")));
            assertEquals(disk.toAbsolutePath() + "\n", s.read("devices/1/dev"));
            assertTrue(Files.size(dir.resolve("cache #2.img")) == 8 << 20, "the cache file, named as quoted");
            String log = Files.readString(s.log);
            assertTrue(log.contains("async direct I/O on, parallel direct writes off"), "the file turns one off, the command line "
                    + "the other on again");
            assertTrue(log.contains("FUSE_ASYNC_DIO granted"));
        }
    }

    @Test
    void configErrorsNameTheFileAndLine() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        String cache = "cache = " + dir.resolve("cache.img");
        String[][] cases = {
                {"unknown key 'colour'", cache, "colour = blue"},
                {":2: -o allow_migrate=5: allow_migrate: 5 is out of range 0..1", cache, "allow_migrate = 5"},
                {":3: format belongs on the command line", "# x", cache, "format = yes"},
                {":1: expected 'key = value'", "cache /x"},
                {":2: drain-on-stop = maybe: expected yes or no", cache, "drain-on-stop = maybe"},
                {":2: log-level has no value", cache, "log-level ="},
                {":3: allow_migrate is given a second time (first on line 2); give each key once", cache, "allow_migrate = 1",
                        "allow_migrate = 0"},
                {":3: cache is given a second time (first on line 1)", cache, "# the same again", cache},
                {":1: cache: the value's opening \" has no closing \"", "cache = \"" + dir.resolve("cache.img")},
        };
        for (String[] c : cases) {
            Path conf = config(java.util.Arrays.copyOfRange(c, 1, c.length));
            Result r = FuseServer.run("--config", conf.toString(), "--backing", "data=" + dir.resolve("disk.img"), mnt.toString());
            assertEquals(2, r.status(), r.stderr());
            assertTrue(r.stderr().contains(conf + ":") && r.stderr().contains(c[0]), "'" + c[0] + "' in: " + r.stderr());
        }
        assertFalse(Files.exists(dir.resolve("cache.img")));
    }

    @Test
    void drainLeavesTheBackingStoreHoldingTheVolume() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 16 << 20);
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), "--cache", dir.resolve("cache.img").toString(), "--format",
                "--cache-size", "12M", "--backing", "data=" + disk)) {
            byte[] model = writeRandom(s, 16 << 20, 1500, 1);
            assertTrue(Long.parseLong(s.read("devices/1/nr_dirty_caches").strip()) > 0);
            Files.writeString(s.file("caches/1/drain"), "1");
            assertEquals("0\n", s.read("devices/1/nr_dirty_caches"), "drain returns when nothing is dirty");
            assertArrayEquals(model, Files.readAllBytes(disk), "the backing store alone holds the volume");
            assertTrue(Files.readString(dir.resolve("log")).contains("drain: done"));
        }
    }

    /**
     * A format version 1 cache (the golden image, with dirty data for two volumes) is refused
     * by a start, named by check, and upgraded in place by `fuse-mount upgrade`: a wrong
     * backing store changes nothing, the right ones receive the data, and the cache then
     * mounts as version 2 and serves the same volumes; a second upgrade has nothing to do.
     */
    @Test
    void aVersion1CacheIsUpgradedInPlace() throws Exception {
        Path cache = dir.resolve("v1.img");
        try (java.io.InputStream in = new java.util.zip.GZIPInputStream(Files.newInputStream(Path.of("test-images/cache-format-v1.img.gz")))) {
            Files.write(cache, in.readAllBytes());
        }
        byte[] v1 = Files.readAllBytes(cache);
        Path g1 = Fixture.sparse(dir.resolve("golden1.img"), 1 << 20), g2 = Fixture.sparse(dir.resolve("golden2.img"), 512 << 10);
        String[] backings = {"--backing", "golden1=" + g1, "--backing", "golden2=" + g2};
        String[] args = Fixture.concat(new String[] {"--cache", cache.toString()}, backings);
        Path mnt = Files.createDirectories(dir.resolve("mnt"));

        Result start = FuseServer.run(Fixture.concat(args, "--foreground", mnt.toString()));
        assertEquals(2, start.status(), start.stderr());
        assertTrue(start.stderr().contains("fuse-mount upgrade"), "the refusal says what to do: " + start.stderr());
        Result wrong = FuseServer.run("upgrade", "--cache", cache.toString(), "--backing", "golden2=" + g2, "--backing", "golden1=" + g1);
        assertEquals(2, wrong.status(), wrong.stdout() + wrong.stderr());
        assertTrue(wrong.stderr().contains("give --backing golden1=PATH"), wrong.stderr());
        assertArrayEquals(v1, Files.readAllBytes(cache), "a refused upgrade leaves the cache as it was");
        assertArrayEquals(new byte[1 << 20], Files.readAllBytes(g1), "and the backing stores");

        Result up = FuseServer.run(Fixture.concat(new String[] {"upgrade"}, args));
        assertEquals(0, up.status(), up.stdout() + up.stderr());
        assertTrue(up.stdout().contains("wrote back 2 line(s) (10 sectors) and punched 1 discarded line(s) from segments 1..2"), up.stdout());
        byte[] want2 = new byte[512 << 10];
        for (int sector = 24; sector < 32; sector++) {
            int w = sector < 26 ? 4 : 3; // the merged line: sectors 24-25 from the newer write
            for (int i = 0; i < 512; i++) {
                want2[sector * 512 + i] = (byte) (w * 31 + 2 * 7 + sector * 3 + i);
            }
        }
        assertArrayEquals(want2, Files.readAllBytes(g2), "volume golden2 on its backing store");
        Result check = FuseServer.run("check", "--cache", cache.toString());
        assertEquals(0, check.status(), check.stdout() + check.stderr());
        Result again = FuseServer.run(Fixture.concat(new String[] {"upgrade"}, args));
        assertEquals(0, again.status(), again.stderr());
        assertTrue(again.stdout().contains("already format version 2"), again.stdout());
        // An upgrade cut between the new superblock and its record: a re-run says how to finish.
        byte[] upgraded = Files.readAllBytes(cache);
        try (FileChannel c = FileChannel.open(cache, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.allocate(8192), 64 * 1024); // both record copies
        }
        Result cut = FuseServer.run(Fixture.concat(new String[] {"upgrade"}, args));
        assertEquals(1, cut.status(), cut.stdout() + cut.stderr());
        assertTrue(cut.stdout().contains("--format --force"), cut.stdout());
        Files.write(cache, upgraded);

        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertArrayEquals(want2, Files.readAllBytes(s.file("golden2")), "the volume through the upgraded cache");
            assertEquals(0, s.stop());
        }
    }

    @Test
    void drainOnStopAndTheOfflineTools() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 16 << 20);
        Path cache = dir.resolve("cache.img");
        String[] args = {"--cache", cache.toString(), "--backing", "data=" + disk};
        byte[] model;
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "12M"))) {
            model = writeRandom(s, 16 << 20, 1500, 2);
            assertEquals(0, s.stop());
        }
        // Dirty data stayed in the cache: check reports it, dump lists it.
        Result check = FuseServer.run("check", "--cache", cache.toString());
        assertEquals(0, check.status(), check.stdout() + check.stderr());
        assertTrue(check.stdout().contains("OK: no problems found"));
        long dirty = Long.parseLong(check.stdout().replaceAll("(?s).*dirty lines of volume 1 'data': (\\d+).*", "$1"));
        assertTrue(dirty > 0, check.stdout());
        assertFalse(check.stdout().contains("\r"), "no progress bar when not on a terminal");
        Result dump = FuseServer.run("dump", "--cache", cache.toString(), "--json");
        assertEquals(0, dump.status());
        assertTrue(dump.stdout().lines().anyMatch(l -> l.contains("\"device\":1") && l.contains("\"tombstone\":false")), dump.stdout());
        assertTrue(dump.stdout().lines().allMatch(l -> l.startsWith("{") && l.endsWith("}")), "JSON lines");
        Result human = FuseServer.run("dump", "--cache", cache.toString());
        assertTrue(human.stdout().contains(" dirty\n"), human.stdout());

        // Offline writeback: the backing store then holds the volume; a second run has nothing to do.
        Result wb = FuseServer.run(Fixture.concat(new String[] {"writeback"}, args));
        assertEquals(0, wb.status(), wb.stdout() + wb.stderr());
        assertArrayEquals(model, Files.readAllBytes(disk), "backing store after offline writeback");
        Result again = FuseServer.run(Fixture.concat(new String[] {"writeback"}, args));
        assertEquals(0, again.status());
        assertTrue(again.stdout().contains("writing back 0 dirty line(s)"), again.stdout());
        Result wrong = FuseServer.run("writeback", "--cache", cache.toString(), "--backing", "data=" + dir.resolve("other.img"));
        assertEquals(2, wrong.status(), "a backing store that does not exist is refused: " + wrong.stderr());

        // --drain-on-stop: the stop writes everything back.
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), Fixture.concat(args, "--drain-on-stop"))) {
            model = writeRandom(s, 16 << 20, 800, 3);
            assertEquals(0, s.stop());
        }
        assertArrayEquals(model, Files.readAllBytes(disk), "backing store after --drain-on-stop");
        check = FuseServer.run("check", "--cache", cache.toString());
        assertTrue(check.stdout().contains("dirty lines of volume 1 'data': 0"), check.stdout());

        // Corrupt the newest segment: the clean stop vouched for it, so its data is lost
        // acknowledged data; check exits 1, says which segment and which range.
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log3"), args)) {
            writeRandom(s, 16 << 20, 10, 4);
            assertEquals(0, s.stop());
        }
        String last = FuseServer.run("check", "--cache", cache.toString()).stdout()
                .replaceAll("(?s).*continues at (\\d+).*", "$1");
        long newest = Long.parseLong(last) - 1;
        int segments = (int) Layout.segmentsFor(Files.size(cache));
        try (FileChannel f = FileChannel.open(cache, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.wrap(new byte[] {0x5a, 0x5a}), Layout.slotOffset(Layout.slotOf(newest, segments)) + io.writeboost.format.SegmentHeader.lineOffset(0) + 100);
        }
        check = FuseServer.run("check", "--cache", cache.toString());
        assertEquals(1, check.status(), check.stdout());
        assertTrue(check.stdout().contains("PROBLEM: LOST ACKNOWLEDGED DATA: segment " + newest + " (slot "
                + Layout.slotOf(newest, segments) + "), which the superblock record vouches for as durable, fails its checksum"),
                check.stdout());
        assertTrue(check.stdout().contains("    device 1 (data) sectors "), check.stdout());
        Result notACache = FuseServer.run("check", "--cache", disk.toString());
        assertEquals(1, notACache.status());
        assertTrue(notACache.stderr().contains("not a formatted cache device"), notACache.stderr());
    }
}
