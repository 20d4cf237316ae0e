package io.writeboost.front;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.VolumeRefusedException;
import io.writeboost.knob.Command;
import io.writeboost.knob.KnobException;
import io.writeboost.volume.Volume;
import io.writeboost.volume.VolumeFullException;
import io.writeboost.volume.Volumes;
import jnr.constants.platform.Errno;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The mount's file tree and semantics, independent of any FUSE binding: one image file per
 * volume at the root, control directories below {@code caches/} and {@code devices/}. Every
 * call returns a result or a negative errno, as FUSE expects; a binding only translates.
 *
 * <p>The tree changes when a volume is attached or detached ({@link Command}): its maps are
 * concurrent, and a volume's leaving the tree and its files' opens are serialised on this
 * object, so that a detach never removes a volume a file is open on.
 */
public final class WriteboostFs {
    private static final Logger log = LogManager.getLogger(WriteboostFs.class);

    public static final int O_ACCMODE = 3, O_RDONLY = 0;
    public static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02, FALLOC_FL_ZERO_RANGE = 0x10;

    public enum Kind { DIRECTORY, IMAGE, CONTROL }

    /** What getattr reports; {@code mode} holds permission bits only. */
    public record Attr(Kind kind, int mode, long size, int nlink) {
    }

    public record FsStats(long blockSize, long blocks, long files) {
    }

    private final Map<String, Volume> images = new ConcurrentHashMap<>();
    /** Volumes by file handle ({@link #handleOf}); slot 0 stays empty: handle 0 is "not a volume"; a detached one's slot is emptied. */
    private final List<Volume> byHandle = new CopyOnWriteArrayList<>();
    private final Map<String, ControlFile> controls = new ConcurrentHashMap<>();
    private final Map<String, List<String>> dirs = new ConcurrentHashMap<>();
    private final CacheEngine engine;
    private final Volumes volumes;
    /** Attaches and detaches backing stores for the volume commands; null where the mount cannot (no server). */
    private final VolumeControl control;
    /** Open files of each volume, by handle; guarded by this, like a volume's leaving {@link #images}. */
    private final Map<Long, Integer> opens = new HashMap<>();

    public WriteboostFs(CacheEngine engine, List<Volume> volumes) {
        this(engine, new Volumes(volumes), null, "dev");
    }

    private WriteboostFs(CacheEngine engine, Volumes volumes, VolumeControl control, String version) {
        this(engine, volumes, new EngineMetrics(engine, volumes, version), control);
    }

    /**
     * With the metrics the server also serves over HTTP, so that the {@code metrics} file and
     * the listener are one renderer, and the server's {@link VolumeControl} for attach and detach.
     */
    public WriteboostFs(CacheEngine engine, Volumes volumes, EngineMetrics metrics, VolumeControl control) {
        this.engine = engine;
        this.volumes = volumes;
        this.control = control;
        List<String> root = new CopyOnWriteArrayList<>();
        byHandle.add(null);
        dirs.put("/", root);
        for (Volume v : volumes.list()) {
            images.put("/" + v.name(), v);
            byHandle.add(v);
            root.add(v.name());
        }
        root.add("caches");
        root.add("devices");
        List<String> caches = new CopyOnWriteArrayList<>(), devices = new CopyOnWriteArrayList<>();
        dirs.put("/caches", caches);
        dirs.put("/devices", devices);
        for (Map.Entry<String, Map<String, ControlFile>> d : ControlFiles.build(engine, volumes, metrics, this::runCommand)
                .entrySet()) {
            String dir = d.getKey();
            (dir.startsWith("/caches/") ? caches : devices).add(dir.substring(dir.lastIndexOf('/') + 1));
            addDir(dir, d.getValue());
        }
    }

    private void addDir(String dir, Map<String, ControlFile> files) {
        dirs.put(dir, new CopyOnWriteArrayList<>(files.keySet()));
        for (Map.Entry<String, ControlFile> f : files.entrySet()) {
            controls.put(dir + "/" + f.getKey(), f.getValue());
        }
    }

    private void removeDir(String dir) {
        List<String> files = dirs.remove(dir);
        if (files != null) {
            for (String f : files) {
                controls.remove(dir + "/" + f);
            }
        }
    }

    /** Runs a volume command written to its control file; returns the outcome line. */
    private String runCommand(Command c, String argument) throws IOException {
        if (control == null) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.INVALID, "this mount cannot change its volumes");
        }
        String arg = argument.endsWith("\n") ? argument.substring(0, argument.length() - 1) : argument;
        return switch (c) {
            case ATTACH -> attach(arg);
            case DETACH -> detach(arg);
        };
    }

    /** "[NAME=]PATH": adds the store as a volume, then its image file and devices/ directory. */
    private String attach(String spec) throws IOException {
        int eq = spec.indexOf('=');
        String name = eq > 0 && !spec.substring(0, eq).contains("/") ? spec.substring(0, eq) : null;
        String path = name != null ? spec.substring(eq + 1) : spec;
        if (path.isEmpty() || !path.startsWith("/") || path.chars().anyMatch(ch -> ch < 0x20)) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.INVALID, "'" + spec
                    + "' is not [NAME=]PATH with an absolute PATH");
        }
        Path store = Path.of(path);
        if (name == null) {
            name = store.getFileName() == null ? "" : store.getFileName().toString();
        }
        Volume v = control.attach(name, store);
        synchronized (this) {
            byHandle.add(v);
            volumes.add(v);
            addDir("/devices/" + v.deviceId(), ControlFiles.deviceDir(engine, v));
            dirs.get("/devices").add(Integer.toString(v.deviceId()));
            images.put("/" + v.name(), v);
            List<String> root = dirs.get("/");
            root.add(root.size() - 2, v.name());
        }
        return "attached " + path + " as volume " + v.name() + " (device id " + v.deviceId() + ", " + v.size() + " bytes)";
    }

    /**
     * NAME: refused while a file of the volume is open (after a short wait for releases the
     * kernel may still be delivering), else hidden from new opens, detached, and removed.
     */
    private String detach(String name) throws IOException {
        Volume v;
        synchronized (this) {
            v = images.get("/" + name);
            if (v == null || name.isEmpty() || name.contains("/")) {
                throw new VolumeRefusedException(VolumeRefusedException.Reason.NO_SUCH_VOLUME, "no volume named '" + name + "'");
            }
            long handle = byHandle.indexOf(v);
            long deadline = System.nanoTime() + RELEASE_WAIT_NANOS;
            while (opens.getOrDefault(handle, 0) > 0 && System.nanoTime() < deadline) {
                try {
                    wait(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            int open = opens.getOrDefault(handle, 0);
            if (open > 0) {
                throw new VolumeRefusedException(VolumeRefusedException.Reason.BUSY, "volume '" + name + "' is open (" + open
                        + " open file(s): a loop device, a mount or a process); close it first (losetup -d, umount)");
            }
            images.remove("/" + name);
            dirs.get("/").remove(name);
        }
        try {
            control.detach(v);
        } catch (IOException | RuntimeException e) {
            synchronized (this) {
                images.put("/" + name, v);
                List<String> root = dirs.get("/");
                root.add(root.size() - 2, name);
            }
            throw e;
        }
        synchronized (this) {
            volumes.remove(v);
            byHandle.set(byHandle.indexOf(v), null);
            dirs.get("/devices").remove(Integer.toString(v.deviceId()));
            removeDir("/devices/" + v.deviceId());
        }
        return "detached volume " + name + " (device id " + v.deviceId() + "): " + v.backingPath() + " holds all its data";
    }

    /**
     * How long a detach waits for a volume's last release: the kernel sends it after close(2)
     * has returned, and a loop device let go of (losetup -d) closes its file a moment later.
     */
    private static final long RELEASE_WAIT_NANOS = 5_000_000_000L;

    /** The attributes of {@code path}, or null when it does not exist. */
    public Attr getattr(String path) {
        Volume v = images.get(path);
        if (v != null) {
            return new Attr(Kind.IMAGE, 0600, v.size(), 1);
        }
        ControlFile c = controls.get(path);
        if (c != null) {
            long size;
            try {
                size = c.read().getBytes(StandardCharsets.UTF_8).length;
            } catch (IOException e) {
                size = 0;
            }
            return new Attr(Kind.CONTROL, c.writable() ? 0644 : 0444, size, 1);
        }
        List<String> d = dirs.get(path);
        if (d != null) {
            return new Attr(Kind.DIRECTORY, 0755, 0, 2);
        }
        return null;
    }

    /** Entries of a directory (without . and ..), or null when {@code path} is not one. */
    public List<String> list(String path) {
        List<String> d = dirs.get(path);
        return d == null ? null : Collections.unmodifiableList(d);
    }

    public int open(String path, int flags) {
        if (images.containsKey(path)) {
            synchronized (this) {
                Volume v = images.get(path);
                if (v == null) {
                    return -Errno.ENOENT.intValue(); // detached meanwhile
                }
                opens.merge((long) byHandle.indexOf(v), 1, Integer::sum);
            }
            return 0;
        }
        ControlFile c = controls.get(path);
        if (c != null) {
            return (flags & O_ACCMODE) != O_RDONLY && !c.writable() ? -Errno.EACCES.intValue() : 0;
        }
        return notAFile(path);
    }

    /** The error for a call on a file at {@code path}, which is neither an image nor a control file. */
    private int notAFile(String path) {
        return dirs.containsKey(path) ? -Errno.EISDIR.intValue() : -Errno.ENOENT.intValue();
    }

    /**
     * A file handle for an open of {@code path}: a volume's number, which {@link #readVolume}
     * and {@link #writeVolume} take instead of a path; 0 for any other file.
     */
    public long handleOf(String path) {
        Volume v = images.get(path);
        return v == null ? 0 : byHandle.indexOf(v);
    }

    /** The last close of an open file: {@code handle} as {@link #handleOf} gave it (0 for a control file). */
    public void release(long handle) {
        if (handle == 0) {
            return;
        }
        synchronized (this) {
            opens.computeIfPresent(handle, (h, n) -> n > 1 ? n - 1 : null);
            notifyAll();
        }
    }

    /** A read of the volume behind {@code handle} (from {@link #handleOf}, not 0). */
    public int readVolume(long handle, ByteBuffer dst, long offset) {
        return readVolume(byHandle.get((int) handle), dst, offset);
    }

    /** A write to the volume behind {@code handle} (from {@link #handleOf}, not 0). */
    public int writeVolume(long handle, ByteBuffer src, long offset) {
        return writeVolume(byHandle.get((int) handle), src, offset);
    }

    private static int readVolume(Volume v, ByteBuffer dst, long offset) {
        try {
            return v.read(offset, dst);
        } catch (IOException e) {
            log.error("{}: read of {} bytes at {} failed: {}", v.name(), dst.remaining(), offset, e.toString());
            return -Errno.EIO.intValue();
        }
    }

    private static int writeVolume(Volume v, ByteBuffer src, long offset) {
        try {
            return v.write(offset, src);
        } catch (VolumeFullException e) {
            return -Errno.ENOSPC.intValue();
        } catch (IOException e) {
            log.error("{}: write of {} bytes at {} failed: {}", v.name(), src.remaining(), offset, e.toString());
            return -Errno.EIO.intValue();
        }
    }

    public int read(String path, ByteBuffer dst, long offset) {
        Volume v = images.get(path);
        if (v != null) {
            return readVolume(v, dst, offset);
        }
        ControlFile c = controls.get(path);
        if (c == null) {
            return notAFile(path);
        }
        try {
            byte[] content = c.read().getBytes(StandardCharsets.UTF_8);
            if (offset >= content.length) {
                return 0;
            }
            int n = (int) Math.min(dst.remaining(), content.length - offset);
            dst.put(dst.position(), content, (int) offset, n);
            return n;
        } catch (IOException e) {
            log.error("{}: read failed: {}", path, e.toString());
            return -Errno.EIO.intValue();
        }
    }

    public int write(String path, ByteBuffer src, long offset) {
        Volume v = images.get(path);
        if (v != null) {
            return writeVolume(v, src, offset);
        }
        ControlFile c = controls.get(path);
        if (c == null) {
            return notAFile(path);
        }
        if (!c.writable()) {
            log.warn("{}: refused a write: the file is read-only", path);
            return -Errno.EACCES.intValue();
        }
        int n = src.remaining();
        if (offset != 0) {
            log.warn("{}: refused a write at offset {}: write the whole value at once", path, offset);
            return -Errno.EINVAL.intValue();
        }
        byte[] bytes = new byte[n];
        src.get(src.position(), bytes);
        String value = new String(bytes, StandardCharsets.ISO_8859_1);
        try {
            c.write(value);
            log.info("{} <- {}", path, value.strip());
            return n;
        } catch (KnobException e) {
            log.warn("{}: refused: {}", path, e.getMessage());
            return -Errno.EINVAL.intValue();
        } catch (VolumeRefusedException e) {
            log.warn("{}: refused {}: {}", path, value.strip(), e.getMessage());
            return -errno(e.reason()).intValue();
        } catch (IOException e) {
            log.error("{}: {} failed: {}", path, value.strip(), e.toString());
            return -Errno.EIO.intValue();
        }
    }

    public int fsync(String path) {
        Volume v = images.get(path);
        if (v == null) {
            return controls.containsKey(path) || dirs.containsKey(path) ? 0 : -Errno.ENOENT.intValue();
        }
        try {
            v.fsync();
            return 0;
        } catch (IOException e) {
            log.error("{}: fsync failed: {}", v.name(), e.toString());
            return -Errno.EIO.intValue();
        }
    }

    public int truncate(String path, long size) {
        Volume v = images.get(path);
        if (v != null) {
            if (size == v.size()) {
                return 0;
            }
            log.warn("{}: refused truncate to {} bytes: a volume's size is fixed at {} (its backing store's)", v.name(), size, v.size());
            return -Errno.EPERM.intValue();
        }
        ControlFile c = controls.get(path);
        if (c != null) {
            // "echo 1 > file" opens with O_TRUNC before it writes: allowed, and a no-op.
            return !c.writable() ? -Errno.EACCES.intValue() : size == 0 ? 0 : -Errno.EINVAL.intValue();
        }
        return notAFile(path);
    }

    public int fallocate(String path, int mode, long offset, long length) {
        Volume v = images.get(path);
        if (v == null) {
            return controls.containsKey(path) ? -Errno.EOPNOTSUPP.intValue() : -Errno.ENOENT.intValue();
        }
        if (offset < 0 || length <= 0) {
            return -Errno.EINVAL.intValue();
        }
        boolean keepSize = (mode & FALLOC_FL_KEEP_SIZE) != 0;
        int op = mode & ~FALLOC_FL_KEEP_SIZE;
        if (op != 0 && op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) {
            return -Errno.EOPNOTSUPP.intValue();
        }
        if (op == FALLOC_FL_PUNCH_HOLE && !keepSize) {
            return -Errno.EINVAL.intValue(); // as fallocate(2) requires
        }
        if (!keepSize && offset + length > v.size()) {
            return -Errno.EFBIG.intValue();
        }
        if (op == 0) {
            return 0; // allocating space inside a fixed-size volume: nothing to do
        }
        try {
            // Punch and zero-range both mean "reads return zeros"; a discard gives exactly that.
            v.punchHole(offset, length);
            return 0;
        } catch (IOException e) {
            log.error("{}: discard of {} bytes at {} failed: {}", v.name(), length, offset, e.toString());
            return -Errno.EIO.intValue();
        }
    }

    public FsStats statfs() {
        long total = 0;
        for (Volume v : volumes.list()) {
            total += v.size();
        }
        return new FsStats(4096, total / 4096, images.size() + controls.size() + dirs.size());
    }

    private static Errno errno(VolumeRefusedException.Reason r) {
        return switch (r) {
            case EXISTS -> Errno.EEXIST;
            case BUSY -> Errno.EBUSY;
            case NO_SUCH_VOLUME -> Errno.ENOENT;
            case INVALID -> Errno.EINVAL;
            case NO_ROOM -> Errno.ENOSPC;
        };
    }

    public boolean exists(String path) {
        return images.containsKey(path) || controls.containsKey(path) || dirs.containsKey(path);
    }
}
