package io.writeboost.device;

import jnr.constants.platform.Errno;
import jnr.constants.platform.OpenFlags;
import jnr.posix.FileStat;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One process's exclusive use of a cache device or a backing store, for as long as it may
 * write to it: a server, or an offline tool that writes. Two such processes on one device
 * would each replay, write back and record the cache as if alone.
 * <p>
 * The lock is flock(2) on a descriptor of its own, not FileChannel.lock: that one is an
 * fcntl lock, which belongs to the process, so closing any other descriptor of the same file
 * (every check that opens a device and closes it again) would drop it, and a second lock
 * in the same JVM throws OverlappingFileLockException instead of saying who holds it. An
 * flock belongs to its open file description: it lasts until this object closes it or the
 * process dies (a crash releases it, as the kernel closes the descriptor), other descriptors
 * do not touch it, and a second one in the same process is refused like any other. The
 * descriptor is close-on-exec, so that a child (fusermount) cannot keep it past the server.
 * <p>
 * A block device is also opened with O_EXCL, the claim mkfs and mount make: while held, mkfs
 * refuses the device and a mount of it fails, and a device that is mounted, or part of a
 * RAID, LVM or device-mapper device, is refused here. The claim is the kernel's and covers
 * every name of the device, where the flock covers one device node; the flock stays because
 * the claim does not tell who holds it, and /proc/locks does.
 * <p>
 * Both are advisory towards plain opens: {@code check} and {@code dump} read a device in use
 * (and say so, from {@link #holderPid}).
 */
public final class DeviceLock implements Closeable {
    /** The device is held by another process, or by another lock in this one; the message names the holder. */
    public static final class HeldException extends IOException {
        private final long holderPid;

        HeldException(Path path, String role, long holderPid, String holder) {
            super(path + " (" + role + ") is in use by " + holder);
            this.holderPid = holderPid;
        }

        /** The holder's PID as {@link #holderPid(Path)} gives it. */
        public long holderPid() {
            return holderPid;
        }
    }

    /** {@link #holderPid} when no process holds the lock, as far as /proc/locks tells. */
    public static final long NONE = -1;

    private static final int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    /** Locks held by this process, by device and inode: a second one here says which role has it. */
    private static final Map<String, String> HELD_HERE = new HashMap<>();

    private final Path path;
    private final String key;
    private int fd;

    private DeviceLock(Path path, String key, int fd) {
        this.path = path;
        this.key = key;
        this.fd = fd;
    }

    /**
     * Takes the lock on {@code path} (an existing regular file or block device), or throws
     * {@link HeldException} naming who holds it; {@code role} ("cache", "backing store")
     * goes into messages. Never waits.
     */
    public static DeviceLock acquire(Path path, String role) throws IOException {
        boolean blockDevice = NativeIo.isBlockDevice(path.toString());
        int flags = OpenFlags.O_RDONLY.intValue() | OpenFlags.O_CLOEXEC.intValue()
                | (blockDevice ? OpenFlags.O_EXCL.intValue() : 0);
        int fd = NativeIo.POSIX.open(path.toString(), flags, 0);
        if (fd < 0) {
            int errno = NativeIo.POSIX.errno();
            if (blockDevice && errno == Errno.EBUSY.intValue()) {
                String here;
                synchronized (HELD_HERE) {
                    here = HELD_HERE.get(keyOf(path));
                }
                long self = ProcessHandle.current().pid();
                if (here != null) {
                    throw new HeldException(path, role, self, "this process (as the " + here + ")");
                }
                long pid = holderPid(path);
                throw new HeldException(path, role, pid, pid == NONE ? claimedBy(path) + " (an exclusive open of it is refused)"
                        : named(pid));
            }
            throw new IOException(path + ": cannot open: " + NativeIo.lastError() + " (" + role + ")");
        }
        try {
            String key = key(fd);
            synchronized (HELD_HERE) {
                String here = HELD_HERE.get(key);
                if (here != null) {
                    throw new HeldException(path, role, ProcessHandle.current().pid(), "this process (as the " + here + ")");
                }
                if (NativeIo.POSIX.flock(fd, LOCK_EX | LOCK_NB) != 0) {
                    int errno = NativeIo.POSIX.errno();
                    if (errno != Errno.EWOULDBLOCK.intValue() && errno != Errno.EAGAIN.intValue()) {
                        throw new IOException(path + ": cannot lock: " + NativeIo.lastError() + " (" + role + ")");
                    }
                    long pid = holderPid(path);
                    throw new HeldException(path, role, pid, pid == NONE ? "another process" : named(pid));
                }
                HELD_HERE.put(key, role);
            }
            return new DeviceLock(path, key, fd);
        } catch (IOException | RuntimeException e) {
            NativeIo.POSIX.close(fd);
            throw e;
        }
    }

    /** Whether {@code path} is something to lock: an existing regular file or block device. */
    public static boolean lockable(Path path) {
        return Files.isRegularFile(path) || NativeIo.isBlockDevice(path.toString());
    }

    /**
     * The PID of the process that holds the lock on {@code path} ({@code ProcessHandle.current().pid()}
     * for this one), 0 for one whose PID is not visible here (another PID namespace), or
     * {@link #NONE} when /proc/locks shows no lock on it. It only reads: a check that took the
     * lock, even briefly, could make a server starting meanwhile refuse to start.
     */
    public static long holderPid(Path path) {
        String key = keyOf(path);
        return key == null ? NONE : holderOf(key);
    }

    /** "process PID", "this process" or "another process": the message when no one above names it better. */
    private static String named(long pid) {
        return pid == ProcessHandle.current().pid() ? "this process" : pid > 0 ? "process " + pid : "another process";
    }

    /** Releases the lock (and a block device's claim); a second call does nothing. */
    @Override
    public void close() {
        synchronized (HELD_HERE) {
            if (fd < 0) {
                return;
            }
            // Explicit: the unlock holds even if a descriptor of this description were shared.
            NativeIo.POSIX.flock(fd, LOCK_UN);
            NativeIo.POSIX.close(fd);
            fd = -1;
            HELD_HERE.remove(key);
        }
    }

    public Path path() {
        return path;
    }

    /** The key of {@code path}, null when it cannot be stat'ed. */
    private static String keyOf(Path path) {
        FileStat st = NativeIo.POSIX.allocateStat();
        return NativeIo.POSIX.stat(path.toString(), st) != 0 ? null : key(st);
    }

    private static String key(int fd) throws IOException {
        FileStat st = NativeIo.POSIX.allocateStat();
        if (NativeIo.POSIX.fstat(fd, st) != 0) {
            throw new IOException("fstat: " + NativeIo.lastError());
        }
        return key(st);
    }

    /** Device and inode as /proc/locks writes them: major and minor in hex, the inode in decimal. */
    private static String key(FileStat st) {
        long dev = st.dev();
        long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
        long minor = (dev & 0xff) | ((dev >>> 12) & ~0xffL);
        return Long.toHexString(major) + ":" + Long.toHexString(minor) + ":" + st.ino();
    }

    private static long holderOf(String key) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/locks"));
        } catch (IOException e) {
            return NONE;
        }
        long self = ProcessHandle.current().pid();
        long found = NONE;
        for (String line : lines) {
            // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146411 0 EOF"; a waiter's line has "->" after the number.
            String[] f = line.trim().split("\\s+");
            if (f.length < 6 || !f[1].equals("FLOCK") || !keyMatches(f[5], key)) {
                continue;
            }
            try {
                // 0 or -1: a process outside this PID namespace.
                long pid = Math.max(0, Long.parseLong(f[4]));
                if (found == NONE || found == self) {
                    found = pid;
                }
            } catch (NumberFormatException ignored) {
                // Not a lock line.
            }
        }
        return found;
    }

    /** Leading zeros aside ("fe:00" against "fe:0"). */
    private static boolean keyMatches(String field, String key) {
        String[] a = field.split(":"), b = key.split(":");
        if (a.length != 3) {
            return false;
        }
        try {
            return Long.parseLong(a[0], 16) == Long.parseLong(b[0], 16) && Long.parseLong(a[1], 16) == Long.parseLong(b[1], 16)
                    && Long.parseLong(a[2]) == Long.parseLong(b[2]);
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /**
     * Who has claimed a block device, when it is not a writeboost process: where it is
     * mounted, or the devices built on it (/sys/dev/block/MAJ:MIN/holders).
     */
    private static String claimedBy(Path path) {
        FileStat st = NativeIo.POSIX.allocateStat();
        if (NativeIo.POSIX.stat(path.toString(), st) != 0) {
            return "another process";
        }
        long rdev = st.rdev();
        long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
        long minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
        String majMin = major + ":" + minor;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                // "36 35 8:1 / /srv rw,relatime ...": the third field is the device, the fifth the mount point.
                String[] f = line.split(" ");
                if (f.length > 4 && f[2].equals(majMin)) {
                    return "a file system mounted at " + f[4].replace("\\040", " ");
                }
            }
        } catch (IOException ignored) {
            // No mount table to read: the holders, or the generic answer.
        }
        List<String> holders = new ArrayList<>();
        try (DirectoryStream<Path> d = Files.newDirectoryStream(Path.of("/sys/dev/block", majMin, "holders"))) {
            d.forEach(p -> holders.add("/dev/" + p.getFileName()));
        } catch (IOException ignored) {
            // No holders directory: the generic answer.
        }
        return holders.isEmpty() ? "another process or the kernel" : String.join(", ", holders) + " (built on it)";
    }
}
