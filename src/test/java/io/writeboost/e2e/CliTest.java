package io.writeboost.e2e;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.FuseServer.Result;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kind of bad input to fuse-mount: a one-line message, exit status 2, nothing mounted,
 * and the cache file byte for byte as it was.
 */
class CliTest {
    @TempDir
    Path dir;
    Path cache, disk, small, mnt;
    String cacheSum;

    @BeforeEach
    void formattedCache() throws Exception {
        mnt = Files.createDirectories(dir.resolve("mnt"));
        disk = Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        small = Fixture.sparse(dir.resolve("small.img"), 4 << 20);
        cache = dir.resolve("cache.img");
        // A formatted cache holding dirty data.
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), "--cache", cache.toString(), "--format",
                "--cache-size", "6M", "--backing", "disk=" + disk)) {
            try (FileChannel f = FileChannel.open(s.file("disk"), StandardOpenOption.WRITE)) {
                f.write(ByteBuffer.wrap(new byte[8192]), 0);
            }
            assertEquals(0, s.stop());
        }
        cacheSum = Fixture.sha256(cache);
    }

    private void refused(String expectedMessage, String... args) throws Exception {
        Result r = FuseServer.run(args);
        assertEquals(2, r.status(), "exit status for " + String.join(" ", args) + "; stderr: " + r.stderr());
        assertTrue(r.stderr().contains(expectedMessage), "message '" + expectedMessage + "' in: " + r.stderr());
        assertEquals(1, r.stderr().strip().lines().count(), "one line: " + r.stderr());
        assertFalse(r.stderr().contains("at io.writeboost") || r.stderr().contains("Exception"), "no stack trace: " + r.stderr());
        assertEquals(cacheSum, Fixture.sha256(cache), "cache file unchanged");
        assertFalse(Files.readString(Path.of("/proc/mounts")).contains(mnt.toString()), "nothing mounted");
    }

    private String[] mount(String... extra) {
        String[] base = {"--cache", cache.toString(), "--backing", "disk=" + disk};
        String[] all = Fixture.concat(base, extra);
        return Fixture.concat(all, mnt.toString());
    }

    @Test
    void aFormatVersion1CacheIsRefusedNotMisreadNorFormattedOver() throws Exception {
        // The committed golden image of format version 1, with backing stores of its volume table's sizes.
        try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(Path.of("test-images/cache-format-v1.img.gz")))) {
            Files.write(cache, in.readAllBytes());
        }
        cacheSum = Fixture.sha256(cache);
        Path g1 = Fixture.sparse(dir.resolve("g1.img"), 1 << 20), g2 = Fixture.sparse(dir.resolve("g2.img"), 512 << 10);
        String[] v1 = {"--cache", cache.toString(), "--backing", "golden1=" + g1, "--backing", "golden2=" + g2};
        refused("format version 1", Fixture.concat(v1, mnt.toString()));
        refused("format version 1, which this build cannot read", Fixture.concat(v1, "--format", mnt.toString()));
    }

    @Test
    void missingOrBadArguments() throws Exception {
        refused("--cache is required", "--backing", disk.toString(), mnt.toString());
        refused("at least one --backing is required", "--cache", cache.toString(), mnt.toString());
        refused("MOUNTPOINT is required", "--cache", cache.toString(), "--backing", disk.toString());
        refused("Unrecognized option: --bogus", Fixture.concat(mount(), "--bogus"));
        refused("one MOUNTPOINT expected", Fixture.concat(mount(), "extra"));
        refused("--cache-id x: not a number", mount("--cache-id", "x"));
        refused("--log-level loud", mount("--log-level", "loud"));
        refused("--force only applies with --format", mount("--force"));
        refused("async-dio = maybe: expected yes or no", mount("--async-dio", "maybe"));
    }

    @Test
    void missingFilesAndBadMountPoints() throws Exception {
        refused("no such file or device", "--cache", cache.toString(), "--backing", dir.resolve("nope.img").toString(), mnt.toString());
        refused("is a directory", "--cache", cache.toString(), "--backing", dir.toString(), mnt.toString());
        Files.writeString(mnt.resolve("junk"), "x");
        refused("mount point is not empty", mount());
        Files.delete(mnt.resolve("junk"));
        refused("mount point is not a directory", "--cache", cache.toString(), "--backing", "disk=" + disk, disk.toString());
        refused("no such file or device", "--cache", dir.resolve("none.img").toString(), "--backing", "disk=" + disk, mnt.toString());
    }

    @Test
    void badVolumeNames() throws Exception {
        refused("not a plain file name", "--cache", cache.toString(), "--backing", "a/b=" + disk, mnt.toString());
        refused("not a plain file name", "--cache", cache.toString(), "--backing", "caches=" + disk, mnt.toString());
        refused("not a plain file name", "--cache", cache.toString(), "--backing", "..=" + disk, mnt.toString());
        refused("two volumes are named", "--cache", cache.toString(), "--backing", "x=" + disk, "--backing", "x=" + small, mnt.toString());
        refused("is given twice", "--cache", cache.toString(), "--backing", "x=" + disk, "--backing", "y=" + disk, mnt.toString());
    }

    @Test
    void badKnobs() throws Exception {
        refused("unknown knob 'no_such_knob'", mount("-o", "no_such_knob=1"));
        refused("out of range 0..1", mount("-o", "allow_migrate=2"));
        refused("is not a non-negative decimal number", mount("-o", "barrier_deadline_ms=fast"));
        refused("read-only and cannot be set", mount("-o", "last_flushed_segment_id=5"));
        refused("an action and cannot be set", mount("-o", "flush_current_buffer=1"));
        refused("expected KNOB=VALUE", mount("-o", "allow_migrate"));
        refused("out of range 0..100", mount("-o", "migrate_threshold=101"));
        // Past Long.MAX_VALUE, whatever the number of digits: out of range like any other value.
        refused("-o sequential_cutoff=9223372036854775808: sequential_cutoff: 9223372036854775808 is out of range 0..1073741824",
                mount("-o", "sequential_cutoff=9223372036854775808"));
        refused("is out of range 0..1073741824", mount("-o", "allow_migrate=1,sequential_cutoff=" + "9".repeat(100)));
        refused("is not a non-negative decimal number", mount("-o", "sequential_cutoff=-9223372036854775809"));
        refused("cache_mode: 'writeback' is not one of write-back, write-through, write-around, pass-through",
                mount("-o", "cache_mode=writeback"));
        for (Knob k : Knob.values()) {
            if (k.access == Knob.Access.READ_WRITE && k.max < Long.MAX_VALUE) {
                refused(k.named() ? "is not one of" : "out of range", mount("-o", k.fileName + "=" + (k.max + 1)));
            }
        }
    }

    @Test
    void wrongBackingStores() throws Exception {
        refused("wrong backing store?", "--cache", cache.toString(), "--backing", "disk=" + small, mnt.toString());
        refused("formatted for 1 backing store(s)", "--cache", cache.toString(), "--backing", "disk=" + disk, "--backing", small.toString(), mnt.toString());
        refused("was formatted with 'disk'", "--cache", cache.toString(), "--backing", "other=" + disk, mnt.toString());
        refused("is cache 1, not --cache-id 2", mount("--cache-id", "2"));
        refused("no writeboost superblock", "--cache", small.toString(), "--backing", "disk=" + disk, mnt.toString());
        refused("given both as the cache and as a backing store", "--cache", disk.toString(), "--backing", "disk=" + disk, mnt.toString());
    }

    /** From an issue: these were refused only once the cache file existed, with a stack trace and exit status 1. */
    @Test
    void devicesNoVolumeCanLiveOnAreRefusedBeforeAnythingIsCreated() throws Exception {
        Path odd = dir.resolve("1000-bytes.img");
        Files.write(odd, new byte[1000]);
        Path empty = Files.createFile(dir.resolve("empty.img"));
        Path fresh = dir.resolve("fresh.img");
        String notADevice = ": neither a regular file nor a block device (backing store)";
        String[][] cases = {
            {"/dev/null", "/dev/null" + notADevice},
            {"/dev/zero", "/dev/zero" + notADevice},
            {odd.toString(), "backing store " + odd + ": size 1000 is not a positive multiple of 512 bytes"},
            {empty.toString(), "backing store " + empty + ": size 0 is not a positive multiple of 512 bytes"},
        };
        for (String[] c : cases) {
            refused(c[1], "--foreground", "--cache", fresh.toString(), "--format", "--cache-size", "6M", "--backing", "v=" + c[0],
                    mnt.toString());
            assertFalse(Files.exists(fresh), "no cache file created for " + c[0]);
            refused(c[1], "--foreground", "--cache", cache.toString(), "--format", "--force", "--backing", "disk=" + c[0], mnt.toString());
            refused(c[1], "--foreground", "--cache", cache.toString(), "--backing", "disk=" + c[0], mnt.toString());
            refused(c[1], "writeback", "--cache", cache.toString(), "--backing", "disk=" + c[0]);
        }
        assertArrayEquals(new byte[1000], Files.readAllBytes(odd), "the 1,000-byte backing store unchanged");
        assertEquals(0, Files.size(empty), "the empty backing store unchanged");
        refused("/dev/zero: neither a regular file nor a block device (cache)", "--cache", "/dev/zero", "--format",
                "--backing", "disk=" + disk, mnt.toString());
        refused("/dev/zero: neither a regular file nor a block device (cache)", "--cache", "/dev/zero", "--backing", "disk=" + disk,
                mnt.toString());
    }

    @Test
    void formatIsRefusedWhereItWouldLoseDataOrCannotWork() throws Exception {
        refused("holds 2 dirty line(s) not yet written back", mount("--format"));
        refused("exists already", mount("--format", "--cache-size", "8M"));
        refused("a cache needs at least 3145728 bytes", "--cache", dir.resolve("new.img").toString(), "--format", "--cache-size", "2M",
                "--backing", "disk=" + disk, mnt.toString());
        assertFalse(Files.exists(dir.resolve("new.img")), "no cache file created");
        refused("give --cache-size to create it", "--cache", dir.resolve("new.img").toString(), "--format", "--backing", "disk=" + disk, mnt.toString());
        refused("--sparse only applies with --format --cache-size", mount("--sparse"));
        Path tiny = Fixture.sparse(dir.resolve("tiny.img"), 2 << 20);
        refused("too small for a cache", "--cache", tiny.toString(), "--format", "--backing", "disk=" + disk, mnt.toString());
        // With --force the dirty cache is formatted after all.
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), "--cache", cache.toString(), "--format", "--force",
                "--backing", "disk=" + disk)) {
            assertEquals("0\n", s.read("devices/1/nr_dirty_caches"));
        }
    }

    @Test
    void aCreatedCacheFileIsWrittenOutUnlessSparseIsAsked() throws Exception {
        assertTrue(allocatedBytes(cache) >= 6L << 20, "every block of the 6 MiB cache file is allocated: " + allocatedBytes(cache));
        Path sparse = dir.resolve("sparse.img");
        Path disk2 = Fixture.sparse(dir.resolve("disk2.img"), 8 << 20);
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), "--cache", sparse.toString(), "--format",
                "--cache-size", "64M", "--sparse", "--backing", "disk=" + disk2)) {
            assertEquals(64L << 20, Files.size(sparse));
            assertTrue(allocatedBytes(sparse) < 4L << 20, "a --sparse cache takes space only as it is written: "
                    + allocatedBytes(sparse));
        }
    }

    private static long allocatedBytes(Path p) throws Exception {
        Process pr = new ProcessBuilder("stat", "-c", "%b %B", p.toString()).start();
        String[] f = new String(pr.getInputStream().readAllBytes()).trim().split(" ");
        assertEquals(0, pr.waitFor());
        return Long.parseLong(f[0]) * Long.parseLong(f[1]);
    }

    @Test
    void helpAndVersionTellTheTruth() throws Exception {
        Result help = FuseServer.run("--help");
        assertEquals(0, help.status());
        for (String opt : new String[] {"--cache", "--backing", "--format", "--cache-size", "--sparse", "--force", "--cache-id", "-o",
                "--foreground", "--log-file", "--log-level", "--demo", "--version", "--async-dio", "--parallel-direct-writes",
                "--accept-data-loss", "--metrics-listen"}) {
            assertTrue(help.stdout().contains(opt), "--help mentions " + opt);
        }
        for (Knob k : Knob.values()) {
            assertTrue(help.stdout().contains(k.fileName), "--help lists knob " + k.fileName);
        }
        Result version = FuseServer.run("--version");
        assertEquals(0, version.status());
        assertTrue(version.stdout().startsWith("writeboost "));
    }
}
