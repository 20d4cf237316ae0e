package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.FuseServer.Result;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
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

/**
 * One process at a time writes a cache and its backing stores: against a mounted cache, a
 * second server (on another mount point, also one with its own cache over the same backing
 * store), `--format --force`, the offline writeback and the upgrade exit 2 with one line
 * naming the server, and the server goes on with its data intact; check and dump read it and
 * say it is in use. Without the lock, writeback replayed the cached V1 over the bypassed V2
 * on the backing store, and the second server and the format ran beside the first.
 */
class ExclusiveUseTest {
    private static final int LINE = 64 << 10;

    @TempDir
    Path dir;
    Path mnt, mnt2, disk, cache;
    String[] args;
    FuseServer first;

    @BeforeEach
    void mounted() throws Exception {
        mnt = Files.createDirectories(dir.resolve("mnt"));
        mnt2 = Files.createDirectories(dir.resolve("mnt2"));
        disk = Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        cache = dir.resolve("cache.img");
        args = new String[] {"--cache", cache.toString(), "--backing", "data=" + disk};
        first = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "8M"));
    }

    @AfterEach
    void stopped() throws Exception {
        first.close();
    }

    private static byte[] block(long seed) {
        byte[] b = new byte[4096];
        new Random(seed).nextBytes(b);
        return b;
    }

    private void write(byte[] data, boolean fsync) throws Exception {
        try (FileChannel f = FileChannel.open(first.file("data"), StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.wrap(data), LINE);
            if (fsync) {
                f.force(false);
            }
        }
    }

    private void fsync() throws Exception {
        try (FileChannel f = FileChannel.open(first.file("data"), StandardOpenOption.WRITE)) {
            f.force(false);
        }
    }

    private static byte[] at(Path file) throws Exception {
        byte[] got = new byte[4096];
        try (FileChannel f = FileChannel.open(file, StandardOpenOption.READ)) {
            f.read(ByteBuffer.wrap(got), LINE);
        }
        return got;
    }

    /** One line, exit 2, naming the first server by its PID and command line. */
    private void refusedNamingTheServer(Result r, String prefix, Path device, String role) {
        assertEquals(2, r.status(), r.stdout() + r.stderr());
        assertEquals(1, r.stderr().strip().lines().count(), "one line: " + r.stderr());
        String start = prefix + device + " (" + role + ") is in use by process " + first.pid() + " (fuse-mount --foreground ";
        assertTrue(r.stderr().startsWith(start), "'" + start + "...' in: " + r.stderr());
        assertTrue(r.stderr().endsWith(" " + mnt + "); nothing was changed\n"), r.stderr());
        assertTrue(r.stdout().isEmpty(), r.stdout());
    }

    @Test
    void aSecondServerIsRefusedNamingTheFirstWhichKeepsServing() throws Exception {
        byte[] v1 = block(1);
        write(v1, true);

        Result same = FuseServer.startExpectingRefusal(mnt2, Fixture.concat(args, "--log-file", dir.resolve("log2").toString()));
        refusedNamingTheServer(same, "fuse-mount: ", cache, "cache");
        Path cache2 = dir.resolve("cache2.img");
        Result overTheSameDisk = FuseServer.startExpectingRefusal(mnt2, "--cache", cache2.toString(), "--format",
                "--cache-size", "8M", "--backing", "data=" + disk, "--log-file", dir.resolve("log3").toString());
        refusedNamingTheServer(overTheSameDisk, "fuse-mount: ", disk, "backing store");
        assertFalse(Files.exists(cache2), "no cache file created");

        // The tools that only read do, and say the cache is in use.
        String inUse = cache + " is in use by process " + first.pid() + " (fuse-mount --foreground ";
        Result check = FuseServer.run("check", "--cache", cache.toString());
        assertTrue(check.stdout().contains("IN USE: " + inUse), check.stdout());
        assertTrue(check.stdout().contains("clean shutdown: no (in use)"), check.stdout());
        Result dump = FuseServer.run("dump", "--cache", cache.toString(), "--json");
        assertEquals(0, dump.status(), dump.stderr());
        assertTrue(dump.stderr().startsWith("fuse-mount dump: " + inUse), dump.stderr());
        assertTrue(dump.stdout().lines().allMatch(l -> l.startsWith("{") && l.endsWith("}")), "JSON lines: " + dump.stdout());

        assertTrue(first.alive());
        assertTrue(first.read("caches/1/status").contains("state: ok"));
        assertArrayEquals(v1, at(first.file("data")), "the first server serves what it was given");
        assertEquals(0, first.stop());
        // The stop let go of the devices: the offline writeback runs, and puts V1 on the disk.
        Result wb = FuseServer.run(Fixture.concat(new String[] {"writeback"}, args));
        assertEquals(0, wb.status(), wb.stdout() + wb.stderr());
        assertArrayEquals(v1, at(disk));
    }

    @Test
    void offlineWritebackAndUpgradeAreRefusedAndChangeNothing() throws Exception {
        byte[] v1 = block(1), v2 = block(2);
        write(v1, true);
        Files.writeString(first.file("caches/1/write_around_mode"), "1");
        write(v2, false); // straight to the disk; V1's tombstone is in RAM until the next fsync

        Result wb = FuseServer.run(Fixture.concat(new String[] {"writeback"}, args));
        refusedNamingTheServer(wb, "fuse-mount writeback: ", cache, "cache");
        Result up = FuseServer.run(Fixture.concat(new String[] {"upgrade"}, args));
        refusedNamingTheServer(up, "fuse-mount upgrade: ", cache, "cache");

        fsync();
        assertArrayEquals(v2, at(first.file("data")), "V2 through the mount");
        assertEquals(0, first.stop());
        assertArrayEquals(v2, at(disk), "V2 on the backing store: the cached V1 was not written over it");
    }

    @Test
    void formatForceIsRefusedAndChangesNothing() throws Exception {
        byte[] v1 = block(1);
        write(v1, true);
        String formatted = FuseServer.run("check", "--cache", cache.toString()).stdout().lines().findFirst().orElseThrow();

        Result r = FuseServer.startExpectingRefusal(mnt2, Fixture.concat(args, "--format", "--force", "--log-file",
                dir.resolve("log2").toString()));
        refusedNamingTheServer(r, "fuse-mount: ", cache, "cache");

        assertArrayEquals(v1, at(first.file("data")));
        assertEquals(0, first.stop());
        Result check = FuseServer.run("check", "--cache", cache.toString());
        assertEquals(0, check.status(), check.stdout());
        assertEquals(formatted, check.stdout().lines().findFirst().orElseThrow(), "the same cache id and format time");
        assertFalse(check.stdout().contains("IN USE"), check.stdout());
        assertTrue(check.stdout().contains("dirty lines of volume 1 'data': 1\n"), "V1 is still in the cache: " + check.stdout());
        Result wb = FuseServer.run(Fixture.concat(new String[] {"writeback"}, args));
        assertEquals(0, wb.status(), wb.stdout() + wb.stderr());
        assertArrayEquals(v1, at(disk), "and reaches the disk");
    }
}
