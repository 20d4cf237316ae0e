package io.writeboost.device;

import io.writeboost.testutil.Loop;
import jnr.constants.platform.OpenFlags;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lock a server or a writing tool holds on each device: refused to a second holder in
 * this process and in another one, naming it; kept while other descriptors of the file come
 * and go; released by close and by the holder's death; on a block device, a claim that keeps
 * mkfs off.
 */
class DeviceLockTest {
    private static final long SELF = ProcessHandle.current().pid();

    @TempDir
    Path dir;

    private Path file() throws Exception {
        Path f = dir.resolve("dev.img");
        Files.write(f, new byte[4096]);
        return f;
    }

    @Test
    void aSecondLockInThisProcessIsRefusedAndAClosedOneIsTakenAgain() throws Exception {
        Path f = file();
        DeviceLock first = DeviceLock.acquire(f, "cache");
        DeviceLock.HeldException e = assertThrows(DeviceLock.HeldException.class, () -> DeviceLock.acquire(f, "backing store"));
        assertEquals(f + " (backing store) is in use by this process (as the cache)", e.getMessage());
        assertEquals(SELF, e.holderPid());
        assertEquals(SELF, DeviceLock.holderPid(f));
        first.close();
        first.close();
        assertEquals(DeviceLock.NONE, DeviceLock.holderPid(f), "nothing in /proc/locks after close");
        try (DeviceLock again = DeviceLock.acquire(f, "cache")) {
            assertEquals(SELF, DeviceLock.holderPid(again.path()));
        }
        assertEquals(DeviceLock.NONE, DeviceLock.holderPid(f));
    }

    /** What an fcntl lock (FileChannel.lock) would not survive: every check opens the device and closes it again. */
    @Test
    void otherDescriptorsOfTheFileClosedInThisProcessLeaveItHeld() throws Exception {
        Path f = file();
        try (DeviceLock lock = DeviceLock.acquire(f, "cache")) {
            FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE).close();
            FileBlockDevice.open(f).close();
            assertEquals(SELF, DeviceLock.holderPid(f));
            assertThrows(DeviceLock.HeldException.class, () -> DeviceLock.acquire(f, "cache"));
        }
    }

    @Test
    void anotherProcessIsNamedAndItsDeathReleasesTheLock() throws Exception {
        Path f = file();
        Process holder = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), Holder.class.getName(), f.toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("held", out.readLine(), "the holder took the lock");
            DeviceLock.HeldException e = assertThrows(DeviceLock.HeldException.class, () -> DeviceLock.acquire(f, "cache"));
            assertEquals(f + " (cache) is in use by process " + holder.pid(), e.getMessage());
            assertEquals(holder.pid(), e.holderPid());
            assertEquals(holder.pid(), DeviceLock.holderPid(f));

            holder.destroyForcibly();
            assertTrue(holder.waitFor(30, TimeUnit.SECONDS));
            try (DeviceLock lock = DeviceLock.acquire(f, "cache")) {
                assertEquals(SELF, DeviceLock.holderPid(f), "a killed holder's lock is gone with it");
            }
        } finally {
            holder.destroyForcibly();
            holder.waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aLockedBlockDeviceKeepsMkfsOffAndAClaimedOneIsRefused() throws Exception {
        Path backingFile = dir.resolve("loop.img");
        try (FileChannel c = FileChannel.open(backingFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            c.write(java.nio.ByteBuffer.allocate(1), (8 << 20) - 1);
        }
        try (Loop loop = Loop.attach(backingFile)) {
            try (DeviceLock lock = DeviceLock.acquire(loop.device, "backing store")) {
                Process mkfs = new ProcessBuilder("mkfs.ext4", "-q", "-F", loop.device.toString()).redirectErrorStream(true).start();
                mkfs.getOutputStream().close();
                String said = new String(mkfs.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertTrue(mkfs.waitFor(60, TimeUnit.SECONDS));
                assertNotEquals(0, mkfs.exitValue(), "mkfs refuses a locked device: " + said);
                assertTrue(said.contains("in use"), said);
            }
            // Someone else's exclusive open (as mkfs or a mount makes): refused, though no flock is there to name.
            int claim = NativeIo.POSIX.open(loop.device.toString(), OpenFlags.O_RDONLY.intValue() | OpenFlags.O_EXCL.intValue(), 0);
            assertTrue(claim >= 0, NativeIo.lastError());
            try {
                DeviceLock.HeldException e = assertThrows(DeviceLock.HeldException.class,
                        () -> DeviceLock.acquire(loop.device, "backing store"));
                assertEquals(loop.device + " (backing store) is in use by another process or the kernel (an exclusive open of "
                        + "it is refused)", e.getMessage());
            } finally {
                NativeIo.POSIX.close(claim);
            }
            DeviceLock.acquire(loop.device, "backing store").close();
        }
        assertEquals(8 << 20, Files.size(backingFile));
        assertTrue(java.util.Arrays.equals(new byte[8 << 20], Files.readAllBytes(backingFile)), "mkfs wrote nothing");
    }

    @Test
    void aMountedBlockDeviceIsRefusedNamingTheMountPoint() throws Exception {
        Path backingFile = dir.resolve("fs.img");
        try (FileChannel c = FileChannel.open(backingFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            c.write(java.nio.ByteBuffer.allocate(1), (8 << 20) - 1);
        }
        Loop.run("mkfs.ext4", "-q", backingFile.toString());
        Path mountPoint = Files.createDirectories(dir.resolve("m"));
        try (Loop loop = Loop.attach(backingFile)) {
            Loop.run("mount", loop.device.toString(), mountPoint.toString());
            try {
                DeviceLock.HeldException e = assertThrows(DeviceLock.HeldException.class,
                        () -> DeviceLock.acquire(loop.device, "backing store"));
                assertEquals(loop.device + " (backing store) is in use by a file system mounted at " + mountPoint
                        + " (an exclusive open of it is refused)", e.getMessage());
            } finally {
                Loop.run("umount", mountPoint.toString());
            }
        }
    }

    /** Holds the lock on its argument until killed, for the test above: says "held" once it does. */
    public static final class Holder {
        public static void main(String[] args) throws Exception {
            DeviceLock lock = DeviceLock.acquire(Path.of(args[0]), "cache");
            System.out.println("held");
            System.out.flush();
            Thread.sleep(TimeUnit.MINUTES.toMillis(10));
            lock.close();
        }
    }
}
