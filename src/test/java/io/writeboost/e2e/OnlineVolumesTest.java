package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Volumes attached and detached on a running mount, through the launcher ({@code fuse-mount
 * attach|detach}) and through the control files, while ext4 on a loop device on the other
 * volume is written the whole time; refusals (a store already a volume, too small, in use; a
 * busy or unknown volume) exit 2 and change nothing; a SIGKILL during an attach or a detach
 * leaves a table the next start takes whole.
 */
class OnlineVolumesTest {
    static final int SMALL = 8 << 20;

    @Test
    void attachAndDetachWhileExt4IsWrittenOnTheOtherVolume(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt")), fs = Files.createDirectories(dir.resolve("fs"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 64 << 20);
        Path second = Fixture.sparse(dir.resolve("second.img"), SMALL), third = Fixture.sparse(dir.resolve("third.img"), SMALL);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk, "-o", "migrate_threshold=100"};
        Map<String, String> sums = new ConcurrentHashMap<>();
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "32M"));
             Loop loop = Loop.attach(server.file("disk"), "--direct-io=on")) {
            Loop.run("mkfs.ext4", "-q", loop.device.toString());
            Loop.run("mount", loop.device.toString(), fs.toString());
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> loadFailed = new AtomicReference<>();
            AtomicLong files = new AtomicLong();
            Thread load = new Thread(() -> ext4Load(fs, sums, stop, files, loadFailed));
            load.start();
            try {
                Fixture.waitFor("the ext4 load to start", 60, () -> files.get() >= 3);
                byte[] secondData = pattern(SMALL, 2);

                // Through the launcher.
                FuseServer.Result r = FuseServer.run("attach", mnt.toString(), "second=" + second);
                assertEquals(0, r.status(), r.stderr());
                assertTrue(r.stdout().contains("attached " + second + " as volume second (device id 2"), r.stdout());
                assertEquals(SMALL, Files.size(server.file("second")));
                assertEquals("2\n", server.read("devices/2/device_no"));
                assertEquals(second + "\n", server.read("devices/2/dev"));
                assertTrue(server.read("caches/1/metrics").contains("volume=\"second\""), "the metrics name the new volume");
                write(server.file("second"), secondData);
                assertArrayEquals(secondData, Files.readAllBytes(server.file("second")));
                assertTrue(Long.parseLong(server.read("devices/2/nr_dirty_caches").strip()) > 0, "its data is dirty in the cache");

                // Busy: a file of the volume is open.
                try (Loop busy = Loop.attach(server.file("second"))) {
                    List<String> before = list(mnt);
                    r = FuseServer.run("detach", mnt.toString(), "second");
                    assertEquals(2, r.status(), r.stdout() + r.stderr());
                    assertTrue(r.stderr().contains("is open") && r.stderr().contains("nothing was changed"), r.stderr());
                    assertEquals(before, list(mnt));
                }
                r = FuseServer.run("detach", mnt.toString(), "second");
                assertEquals(0, r.status(), r.stderr());
                assertTrue(r.stdout().contains("detached volume second"), r.stdout());
                assertFalse(list(mnt).contains("second"), "gone from the listing at once");
                assertFalse(list(mnt).contains("devices/2"));
                // The kernel may answer a lookup from its entry cache for a second (FUSE's entry_timeout).
                Fixture.waitFor("second to leave the kernel's cache", 10, () -> !Files.exists(server.file("second"))
                        && !Files.exists(server.file("devices/2")));
                assertFalse(server.read("caches/1/metrics").contains("volume=\"second\""));
                assertArrayEquals(secondData, Files.readAllBytes(second), "the detached store holds all its data");

                // Through the control files: a new id, never the detached one's.
                byte[] thirdData = pattern(SMALL, 3);
                Files.writeString(server.file("caches/1/attach"), "third=" + third + "\n");
                assertTrue(server.read("caches/1/attach").startsWith("attached " + third + " as volume third (device id 3"),
                        server.read("caches/1/attach"));
                assertEquals("3\n", server.read("devices/3/device_no"));
                write(server.file("third"), thirdData);
                Files.writeString(server.file("caches/1/detach"), "third\n");
                assertTrue(server.read("caches/1/detach").startsWith("detached volume third"), server.read("caches/1/detach"));
                assertFalse(list(mnt).contains("third"));
                assertArrayEquals(thirdData, Files.readAllBytes(third));

                refusalsChangeNothing(server, mnt, dir, disk, second);
                assertTrue(server.read("caches/1/status").startsWith("state: ok\n"));
            } finally {
                stop.set(true);
                load.join();
                Loop.run("umount", fs.toString());
            }
            if (loadFailed.get() != null) {
                throw new AssertionError("the ext4 load failed", loadFailed.get());
            }
            Loop.run("e2fsck", "-fn", loop.device.toString());
            Loop.run("mount", "-o", "ro", loop.device.toString(), fs.toString());
            try {
                for (Map.Entry<String, String> e : sums.entrySet()) {
                    assertEquals(e.getValue(), Fixture.sha256(fs.resolve(e.getKey())), e.getKey());
                }
            } finally {
                Loop.run("umount", fs.toString());
            }
            System.out.printf("OnlineVolumesTest: %d ext4 files written during the attaches and detaches, %d kept and checked%n",
                    files.get(), sums.size());
        }

        // An attached volume is in the table the next start checks.
        byte[] again = pattern(SMALL, 4);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), args)) {
            assertEquals(0, FuseServer.run("attach", mnt.toString(), "again=" + second).status());
            write(server.file("again"), again);
            assertEquals(0, server.stop());
        }
        FuseServer.Result refused = FuseServer.startExpectingRefusal(mnt, args);
        assertEquals(2, refused.status(), "a start without the attached volume is refused: " + refused.stderr());
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--backing", "again=" + second))) {
            assertArrayEquals(again, Files.readAllBytes(server.file("again")), "the attached volume after a restart");
            assertEquals("4\n", server.read("devices/4/device_no"));
        }
        // Its identity is recorded as format records one, for the same check at every start.
        String line = FuseServer.run("check", "--cache", dir.resolve("cache.img").toString()).stdout().lines()
                .filter(l -> l.contains("'again'")).findFirst().orElse("");
        assertTrue(line.contains("(file tag "), "the attached volume's identity: " + line);
    }

    /** Attach refusals through the launcher (exit 2) and through the control file (errno): the mount stays as it was. */
    private static void refusalsChangeNothing(FuseServer server, Path mnt, Path dir, Path disk, Path second) throws Exception {
        List<String> before = list(mnt);
        String status = volumesOf(server.read("caches/1/status"));
        Path empty = Files.createFile(dir.resolve("empty.img"));
        Path odd = Files.write(dir.resolve("odd.img"), new byte[1000]);
        Path inUse = Fixture.sparse(dir.resolve("inuse.img"), SMALL);
        Process holder = new ProcessBuilder("flock", "-x", inUse.toString(), "sleep", "120").start();
        try {
            Fixture.waitFor("flock to hold " + inUse, 30, () -> {
                try {
                    Loop.run("flock", "-n", inUse.toString(), "true");
                    return false;
                } catch (IOException held) {
                    return true;
                }
            });
            String[][] cases = {
                    {"disk2=" + disk, "is a volume already"},
                    {"other=" + second.resolveSibling("cache.img"), "cache device"},
                    {"disk=" + second, "a volume named 'disk' exists already"},
                    {"empty=" + empty, "not a positive multiple of 512"},
                    {"odd=" + odd, "not a positive multiple of 512"},
                    {"inuse=" + inUse, "in use by"},
                    {"missing=" + dir.resolve("missing.img"), "does not exist"}};
            for (String[] c : cases) {
                FuseServer.Result r = FuseServer.run("attach", mnt.toString(), c[0]);
                assertEquals(2, r.status(), c[0] + ": " + r.stdout() + r.stderr());
                assertTrue(r.stderr().contains(c[1]) && r.stderr().contains("nothing was changed"), c[0] + ": " + r.stderr());
                try {
                    Files.writeString(server.file("caches/1/attach"), c[0] + "\n");
                    fail("the attach file took " + c[0]);
                } catch (IOException expected) {
                    assertTrue(server.read("caches/1/attach").startsWith("refused: "), server.read("caches/1/attach"));
                }
                assertEquals(before, list(mnt), c[0]);
                assertEquals(status, volumesOf(server.read("caches/1/status")), c[0]);
            }
        } finally {
            holder.destroyForcibly();
            holder.waitFor();
        }
        FuseServer.Result r = FuseServer.run("detach", mnt.toString(), "nosuch");
        assertEquals(2, r.status(), r.stderr());
        r = FuseServer.run("detach", mnt.toString(), "disk");
        assertEquals(2, r.status(), "the busy (and only) volume: " + r.stderr());
        assertEquals(before, list(mnt));
    }

    /**
     * SIGKILL of the server during an attach and at moments of a detach with dirty data to
     * write back: the next start either has the volume with all its data, or not, and then
     * its store alone holds all its data.
     */
    @Test
    void killDuringAttachOrDetachLeavesAWholeTable(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), SMALL), second = Fixture.sparse(dir.resolve("second.img"), 32 << 20);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "disk=" + disk};
        String[] withSecond = Fixture.concat(args, "--backing", "second=" + second);
        byte[] diskData = pattern(SMALL, 1);
        try (FuseServer server = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "64M"))) {
            write(server.file("disk"), diskData);
        }
        int[] seen = new int[2];
        byte[] secondData = null;
        int[] delaysMs = {0, 20, 300};
        for (int round = 0; round < delaysMs.length * 2; round++) {
            boolean attaching = round % 2 == 0;
            int delay = delaysMs[round / 2];
            boolean has;
            FuseServer server = startAsTableSays(mnt, dir, args, withSecond);
            try {
                has = Files.exists(server.file("second"));
                seen[has ? 1 : 0]++;
                assertArrayEquals(diskData, Files.readAllBytes(server.file("disk")), "disk, round " + round);
                if (has) {
                    assertArrayEquals(secondData, Files.readAllBytes(server.file("second")), "second, round " + round);
                } else if (secondData != null) {
                    assertArrayEquals(secondData, Files.readAllBytes(second), "second's store, round " + round);
                }
                if (attaching == has) {
                    // The last kill came too late (or too early) to leave the state this round starts from.
                    Files.writeString(server.file("caches/1/" + (has ? "detach" : "attach")), has ? "second\n" : "second=" + second + "\n");
                    has = !has;
                }
                if (has) {
                    secondData = pattern(32 << 20, round);
                    write(server.file("second"), secondData);
                }
                String log = Files.readString(server.log);
                Process cmd = new ProcessBuilder(FuseServer.javaCommand(attaching ? "attach" : "detach", mnt.toString(),
                        attaching ? "second=" + second : "second")).redirectErrorStream(true).start();
                if (!attaching) {
                    Fixture.waitFor("the detach to start", 60, () -> Files.readString(server.log).length() > log.length()
                            && Files.readString(server.log).substring(log.length()).contains("detaching volume 'second'"));
                }
                Thread.sleep(delay);
                server.signal("KILL");
                cmd.waitFor();
            } finally {
                server.close();
            }
            if (attaching && secondData != null) {
                // Written before this round's attach: the store must still hold it whatever happened.
                assertArrayEquals(secondData, Files.readAllBytes(second), "second's store after a kill during the attach");
            }
        }
        System.out.printf("OnlineVolumesTest: %d kills during attaches and detaches; the next start had the volume %d time(s), "
                + "not %d time(s)%n", delaysMs.length * 2, seen[1], seen[0]);
        try (FuseServer server = startAsTableSays(mnt, dir, args, withSecond)) {
            assertArrayEquals(diskData, Files.readAllBytes(server.file("disk")));
            if (Files.exists(server.file("second"))) {
                assertArrayEquals(secondData, Files.readAllBytes(server.file("second")));
            } else {
                assertArrayEquals(secondData, Files.readAllBytes(second));
            }
        }
    }

    /** Starts with the backings the cache's table names: with {@code second} if it has it, else without. */
    private static FuseServer startAsTableSays(Path mnt, Path dir, String[] without, String[] with) throws Exception {
        FuseServer.Result check = FuseServer.run("check", "--cache", dir.resolve("cache.img").toString());
        boolean has = check.stdout().contains("'second'");
        return FuseServer.start(mnt, dir.resolve("log"), has ? with : without);
    }

    /** Files of random sizes written, fsynced and checksummed on the ext4 at {@code fs}, some deleted, until {@code stop}. */
    private static void ext4Load(Path fs, Map<String, String> sums, AtomicBoolean stop, AtomicLong files,
                                 AtomicReference<Throwable> failed) {
        Random rnd = new Random(11);
        try {
            for (int i = 0; !stop.get(); i++) {
                sums.put("file" + i, Fixture.writeRandomSynced(fs.resolve("file" + i), rnd, 1 << 20));
                files.incrementAndGet();
                // Every other old file goes: the file system fills up no further than about 20 MiB.
                if (i >= 40 && i % 2 == 0) {
                    for (int old = i - 40; old <= i - 39; old++) {
                        if (sums.remove("file" + old) != null) {
                            Files.delete(fs.resolve("file" + old));
                        }
                    }
                }
            }
        } catch (Throwable t) {
            failed.set(t);
        }
    }

    private static byte[] pattern(int size, int seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void write(Path image, byte[] data) throws IOException {
        try (FileChannel c = FileChannel.open(image, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.wrap(data), 0);
            c.force(false);
        }
    }

    private static List<String> list(Path mnt) throws IOException {
        try (var s = Files.list(mnt)) {
            List<String> names = new java.util.ArrayList<>(s.map(p -> p.getFileName().toString()).sorted().toList());
            try (var d = Files.list(mnt.resolve("devices"))) {
                d.map(p -> "devices/" + p.getFileName()).sorted().forEach(names::add);
            }
            return names;
        }
    }

    /** The status lines that name volumes. */
    private static String volumesOf(String status) {
        StringBuilder b = new StringBuilder();
        for (String line : status.split("\n")) {
            if (line.startsWith("dirty_lines.") || line.startsWith("backing_load.")) {
                b.append(line, 0, line.indexOf(':')).append('\n');
            }
        }
        return b.toString();
    }
}
