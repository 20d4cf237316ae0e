package io.writeboost.server;

import jnr.constants.platform.Errno;
import jnr.constants.platform.OpenFlags;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;
import org.apache.logging.log4j.LogManager;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What is at the mount point before a start. The case that needs care is a server that died
 * without unmounting (kill -9, a crash, the OOM killer): its FUSE mount stays, and every call
 * on it fails with ENOTCONN until someone unmounts it. Left alone it would keep every restart
 * (systemd's Restart=on-failure) from mounting, so a start clears such a mount itself, with a
 * lazy unmount. ENOTCONN is the proof that nobody serves it any more: a live server, however
 * slow or stopped, answers or blocks, and its mount is refused as before.
 */
public final class MountPoint {
    private MountPoint() {}

    private static final POSIX POSIX = POSIXFactory.getNativePOSIX();

    /** The mount on top at a path, from /proc/self/mountinfo. */
    public record Mount(String target, String fsType, String source) {
        boolean isFuse() {
            return fsType.equals("fuse") || fsType.startsWith("fuse.");
        }
    }

    /**
     * A mount at {@code dir} whose server is gone, or null: opening the path fails with ENOTCONN
     * and the mount on top there is a FUSE mount.
     */
    public static Mount staleFuseMount(Path dir) {
        String path = resolved(dir);
        // opendir, not stat: stat may answer from the attributes the kernel cached (for a second,
        // libfuse's default) and succeed on a mount whose server died a moment ago, while
        // opendir always asks the server.
        int fd = POSIX.open(path, OpenFlags.O_RDONLY.intValue() | OpenFlags.O_DIRECTORY.intValue(), 0);
        if (fd >= 0) {
            POSIX.close(fd);
            return null;
        }
        if (POSIX.errno() != Errno.ENOTCONN.intValue()) {
            return null;
        }
        Mount m = mountAt(path);
        return m != null && m.isFuse() ? m : null;
    }

    /**
     * The last (topmost) mount whose target is {@code path}, or null.
     */
    public static Mount mountAt(String path) {
        Mount top = null;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"), StandardCharsets.UTF_8)) {
                String[] f = line.split(" ");
                int dash = List.of(f).indexOf("-");
                if (f.length > 4 && dash > 0 && f.length > dash + 2 && unescape(f[4]).equals(path)) {
                    top = new Mount(path, f[dash + 1], unescape(f[dash + 2]));
                }
            }
        } catch (IOException e) {
            return null;
        }
        return top;
    }

    /**
     * The path as /proc/self/mountinfo names it: the parent resolved (symbolic links), the last
     * part as given, since resolving it would stat the dead mount itself.
     */
    static String resolved(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        Path parent = abs.getParent();
        if (parent == null) {
            return abs.toString();
        }
        try {
            return parent.toRealPath().resolve(abs.getFileName()).toString();
        } catch (IOException e) {
            return abs.toString();
        }
    }

    static String unescape(String s) {
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }

    /**
     * Detaches the dead mount at {@code dir} (fusermount -u -z; umount -l where fusermount is
     * missing or refuses), logging why, and checks that the directory underneath can take the
     * new mount: a directory, no other mount left there, empty.
     */
    static void clearStale(Path dir) throws RequestException {
        String path = resolved(dir);
        Mount m = staleFuseMount(dir);
        // Null: someone cleared it meanwhile; what is there now is checked all the same.
        if (m != null) {
            LogManager.getLogger(MountPoint.class).warn("{}: a stale FUSE mount ({} from {}) is in the way: its server is gone "
                    + "(Transport endpoint is not connected), most likely killed or crashed; clearing it with a lazy unmount", path,
                    m.fsType(), m.source());
            String fusermount = run("fusermount", "-u", "-z", path);
            if (fusermount != null && staleFuseMount(dir) != null) {
                String umount = run("umount", "-l", path);
                if (umount != null) {
                    throw new RequestException(path + ": cannot clear the stale FUSE mount of a dead server there (fusermount -u -z: "
                            + fusermount + "; umount -l: " + umount + "); unmount it by hand (fusermount -uz " + path + ")");
                }
            }
        }
        if (!Files.isDirectory(dir)) {
            throw new RequestException(path + ": after clearing a stale FUSE mount, the mount point is not a directory");
        }
        Mount under = mountAt(path);
        if (under != null) {
            throw new RequestException(path + ": after clearing a stale FUSE mount, " + under.fsType() + " from " + under.source()
                    + " is mounted there");
        }
        try (var entries = Files.list(dir)) {
            if (entries.findAny().isPresent()) {
                throw new RequestException(path + ": after clearing a stale FUSE mount, the mount point is not empty");
            }
        } catch (IOException e) {
            throw new RequestException(path + ": cannot list the mount point: " + e.getMessage());
        }
        if (m != null) {
            LogManager.getLogger(MountPoint.class).info("{}: stale mount cleared", path);
        }
    }

    /** Runs a command; null when it exits 0, else what it said (or why it could not run). */
    private static String run(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return "no answer in 30 s";
            }
            return p.exitValue() == 0 ? null : (out.isEmpty() ? "exit status " + p.exitValue() : out);
        } catch (IOException e) {
            return e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }
}
