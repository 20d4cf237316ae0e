package io.writeboost.e2e;

import io.writeboost.cache.CacheEngine;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.BackingIdentity;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.recovery.Recovery;
import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.FuseServer.Result;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two backing files of one size that trade paths between stops (as /dev/sdb and /dev/sdc may
 * at boot): the start is refused, exit 2, naming both, with nothing written; the accept option
 * starts it and records the stores as found; a cache formatted before identities starts with
 * a warning.
 */
class BackingIdentityTest {
    @TempDir
    Path dir;
    Path cache, a, b, mnt;

    @BeforeEach
    void files() throws Exception {
        mnt = Files.createDirectories(dir.resolve("mnt"));
        a = Fixture.sparse(dir.resolve("a.img"), 8 << 20);
        b = Fixture.sparse(dir.resolve("b.img"), 8 << 20);
        cache = dir.resolve("cache.img");
    }

    private String[] mount(String... extra) {
        return Fixture.concat(new String[] {"--cache", cache.toString(), "--backing", "a=" + a, "--backing", "b=" + b}, extra);
    }

    private static byte[] block(int fill) {
        byte[] d = new byte[8192];
        Arrays.fill(d, (byte) fill);
        return d;
    }

    private static void write(Path file, byte[] data) throws Exception {
        try (FileChannel f = FileChannel.open(file, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.wrap(data), 0);
            f.force(true);
        }
    }

    private static byte[] head(Path file) throws Exception {
        byte[] d = new byte[8192];
        try (FileChannel f = FileChannel.open(file)) {
            f.read(ByteBuffer.wrap(d), 0);
        }
        return d;
    }

    private Superblock superblock() throws Exception {
        try (FileBlockDevice c = FileBlockDevice.open(cache)) {
            return Recovery.readSuperblock(c);
        }
    }

    /** Formats with volume a dirty with 0xAA and b dirty with 0xBB (allow_migrate is off: they stay in the cache). */
    private void formatWithDirtyLines() throws Exception {
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), mount("--format", "--cache-size", "8M", "--sparse"))) {
            write(s.file("a"), block(0xAA));
            write(s.file("b"), block(0xBB));
            assertEquals(0, s.stop());
        }
        assertArrayEquals(new byte[8192], head(a), "the line is dirty in the cache, not yet on a");
    }

    private void swap() throws Exception {
        Path t = dir.resolve("t.img");
        Files.move(a, t);
        Files.move(b, a);
        Files.move(t, b);
    }

    @Test
    void swappedBackingFilesAreRefusedUntilAccepted() throws Exception {
        formatWithDirtyLines();
        Superblock before = superblock();
        assertEquals(BackingIdentity.Kind.FILE_TAG, before.volumes().get(0).identity().kind());
        assertNotEquals(before.volumes().get(0).identity(), before.volumes().get(1).identity(), "two files, two tags");
        Result check = FuseServer.run("check", "--cache", cache.toString());
        assertTrue(check.stdout().contains("volume 1 'a': 8388608 bytes, backing store " + a + " (" + before.volumes().get(0).identity() + ")"),
                check.stdout());
        swap();
        String sumA = Fixture.sha256(a), sumB = Fixture.sha256(b), sumCache = Fixture.sha256(cache);

        Result r = FuseServer.startExpectingRefusal(mnt, mount());
        assertEquals(2, r.status(), r.stderr());
        String err = r.stderr().strip();
        assertEquals(1, err.lines().count(), "one line: " + err);
        assertTrue(err.contains("backing store " + a + " given for volume 'a' is not the one " + cache + " was formatted on"), err);
        assertTrue(err.contains("recorded " + before.volumes().get(0).identity()), err);
        assertTrue(err.contains("found " + before.volumes().get(1).identity() + ", the store volume 'b' was formatted on"), err);
        assertTrue(err.contains("--accept-moved-backing a"), err);
        // The offline writeback would write the dirty lines too: the same refusal.
        Result w = FuseServer.run("writeback", "--cache", cache.toString(), "--backing", "a=" + a, "--backing", "b=" + b);
        assertEquals(2, w.status(), w.stderr());
        assertTrue(w.stderr().contains("is not the one"), w.stderr());
        assertEquals(sumA, Fixture.sha256(a), "a unchanged");
        assertEquals(sumB, Fixture.sha256(b), "b unchanged");
        assertEquals(sumCache, Fixture.sha256(cache), "the cache's header and record unchanged");
        assertFalse(Files.readString(Path.of("/proc/mounts")).contains(mnt.toString()), "nothing mounted");

        // Accepted: the stores as found now are recorded, and the next start needs no option.
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), mount("--accept-moved-backing", "a", "--accept-moved-backing", "b"))) {
            assertArrayEquals(block(0xAA), head(s.file("a")), "volume a serves its dirty lines");
            assertEquals(0, s.stop());
        }
        Superblock after = superblock();
        assertEquals(before.volumes().get(1).identity(), after.volumes().get(0).identity());
        assertEquals(before.volumes().get(0).identity(), after.volumes().get(1).identity());
        assertEquals(before.nonce(), after.nonce());
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log3"), mount())) {
            assertArrayEquals(block(0xBB), head(s.file("b")));
            assertEquals(0, s.stop());
        }
    }

    @Test
    void aCacheFormattedWithoutIdentitiesStartsWithAWarningAndTheOptionRecordsThem() throws Exception {
        try (FileBlockDevice c = FileBlockDevice.createSparse(cache, 8 << 20)) {
            // What a build before identities wrote: identity kind 0.
            CacheEngine.format(c, 1, List.of(new VolumeEntry(1, 8 << 20, "a", a.toString()), new VolumeEntry(2, 8 << 20, "b", b.toString())));
        }
        assertEquals(BackingIdentity.NONE, superblock().volumes().get(0).identity());
        swap();
        Path log = dir.resolve("log");
        try (FuseServer s = FuseServer.start(mnt, log, mount())) {
            assertEquals(0, s.stop());
        }
        assertTrue(Files.readString(log).contains("volume 'a' of " + cache + " has no backing store identity recorded"), Files.readString(log));
        assertEquals(BackingIdentity.NONE, superblock().volumes().get(0).identity(), "a plain start records nothing");

        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), mount("--accept-moved-backing", "a"))) {
            assertEquals(0, s.stop());
        }
        Superblock sb = superblock();
        assertEquals(BackingIdentity.Kind.FILE_TAG, sb.volumes().get(0).identity().kind());
        assertEquals(BackingIdentity.NONE, sb.volumes().get(1).identity());
        swap();
        assertEquals(2, FuseServer.startExpectingRefusal(mnt, mount()).status(), "a's identity is checked from then on");
    }

    @Test
    void aCopyWithoutItsTagIsRefusedAndAcceptingItTagsIt() throws Exception {
        formatWithDirtyLines();
        Path copy = dir.resolve("copy.img");
        Files.copy(a, copy);   // copies the bytes, not the extended attributes
        Files.move(copy, a, StandardCopyOption.REPLACE_EXISTING);
        Result r = FuseServer.startExpectingRefusal(mnt, mount());
        assertEquals(2, r.status(), r.stderr());
        assertTrue(r.stderr().contains("found file inode"), r.stderr());
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), mount("--accept-moved-backing", "a"))) {
            assertArrayEquals(block(0xAA), head(s.file("a")));
            assertEquals(0, s.stop());
        }
        assertEquals(BackingIdentity.Kind.FILE_TAG, superblock().volumes().get(0).identity().kind());
    }

    @Test
    void theAcceptOptionNamesAVolume() throws Exception {
        formatWithDirtyLines();
        Result r = FuseServer.startExpectingRefusal(mnt, mount("--accept-moved-backing", "c"));
        assertEquals(2, r.status());
        assertTrue(r.stderr().contains("--accept-moved-backing c: no volume of that name (volumes: a, b)"), r.stderr());
    }
}
