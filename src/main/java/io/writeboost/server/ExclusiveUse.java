package io.writeboost.server;

import io.writeboost.device.DeviceLock;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The locks ({@link DeviceLock}) of a process that may write a cache and its backing stores:
 * a server from its first check to its last write, or an offline tool that writes (writeback,
 * upgrade). Taken before anything is read for a decision, so that a request refused because
 * another process holds a device has changed nothing; released once the devices are closed.
 * <p>
 * A path that does not exist yet, or is neither a regular file nor a block device, is left
 * to the checks that refuse it with their own message; a cache file this process creates is
 * locked by {@link #add} once it exists.
 */
public final class ExclusiveUse implements Closeable {
    private final List<DeviceLock> locks = new ArrayList<>();

    private ExclusiveUse() {}

    /**
     * Locks the cache, then each backing store; a device held elsewhere is refused, naming its
     * holder, and so is one that cannot be opened (the request's fault, as in {@link Preflight}).
     */
    public static ExclusiveUse acquire(Path cache, List<ServerSettings.Backing> backings) throws RequestException {
        ExclusiveUse use = new ExclusiveUse();
        try {
            use.add(cache, "cache");
            for (ServerSettings.Backing b : backings) {
                use.add(b.path(), "backing store");
            }
            return use;
        } catch (RequestException e) {
            use.close();
            throw new RequestException(e.getMessage() + "; nothing was changed");
        } catch (RuntimeException e) {
            use.close();
            throw e;
        }
    }

    /** Locks one more device (the cache file this process has just created). */
    public synchronized void add(Path path, String role) throws RequestException {
        if (!DeviceLock.lockable(path)) {
            return;
        }
        Path absolute = path.toAbsolutePath();
        try {
            locks.add(DeviceLock.acquire(absolute, role));
        } catch (DeviceLock.HeldException e) {
            long pid = e.holderPid();
            String message = pid > 0 && pid != ProcessHandle.current().pid()
                    ? absolute + " (" + role + ") is in use by " + LockHolder.describe(pid) : e.getMessage();
            throw new RequestException(message);
        } catch (IOException e) {
            throw new RequestException(e.getMessage());
        }
    }

    /** Releases the lock on {@code path} (a detached volume's store), if this holds one. */
    public synchronized void release(Path path) {
        Path absolute = path.toAbsolutePath();
        locks.removeIf(l -> {
            if (l.path().equals(absolute)) {
                l.close();
                return true;
            }
            return false;
        });
    }

    /**
     * Who holds {@code cache}'s lock ("process PID (COMMAND)"), null when nobody does: for
     * the tools that read without it.
     */
    public static String holder(Path cache) {
        return LockHolder.of(cache.toAbsolutePath());
    }

    @Override
    public synchronized void close() {
        for (DeviceLock l : locks) {
            l.close();
        }
        locks.clear();
    }
}
