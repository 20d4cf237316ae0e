package io.writeboost.front;

import io.writeboost.cache.CacheEngine;
import io.writeboost.knob.KnobException;
import io.writeboost.volume.Volume;
import io.writeboost.volume.VolumeFullException;
import jnr.constants.platform.Errno;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The mount's file tree and semantics, independent of any FUSE binding: one image file per
 * volume at the root, control directories below {@code caches/} and {@code devices/}. Every
 * call returns a result or a negative errno, as FUSE expects; a binding only translates.
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

    private final Map<String, Volume> images = new LinkedHashMap<>();
    /** Volumes by file handle ({@link #handleOf}); slot 0 stays empty: handle 0 is "not a volume". */
    private final List<Volume> byHandle = new ArrayList<>();
    private final Map<String, ControlFile> controls = new LinkedHashMap<>();
    private final Map<String, List<String>> dirs = new LinkedHashMap<>();
    private final long totalBytes;

    public WriteboostFs(CacheEngine engine, List<Volume> volumes) {
        this(engine, volumes, new EngineMetrics(engine, volumes, "dev"));
    }

    /** With the metrics the server also serves over HTTP, so that the {@code metrics} file and the listener are one renderer. */
    public WriteboostFs(CacheEngine engine, List<Volume> volumes, EngineMetrics metrics) {
        List<String> root = new ArrayList<>();
        long total = 0;
        byHandle.add(null);
        for (Volume v : volumes) {
            images.put("/" + v.name(), v);
            byHandle.add(v);
            root.add(v.name());
            total += v.size();
        }
        this.totalBytes = total;
        root.add("caches");
        root.add("devices");
        dirs.put("/", root);
        List<String> caches = new ArrayList<>(), devices = new ArrayList<>();
        dirs.put("/caches", caches);
        dirs.put("/devices", devices);
        for (Map.Entry<String, Map<String, ControlFile>> d : ControlFiles.build(engine, volumes, metrics).entrySet()) {
            String dir = d.getKey();
            (dir.startsWith("/caches/") ? caches : devices).add(dir.substring(dir.lastIndexOf('/') + 1));
            dirs.put(dir, new ArrayList<>(d.getValue().keySet()));
            for (Map.Entry<String, ControlFile> f : d.getValue().entrySet()) {
                controls.put(dir + "/" + f.getKey(), f.getValue());
            }
        }
    }

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
        return new FsStats(4096, totalBytes / 4096, images.size() + controls.size() + dirs.size());
    }

    public boolean exists(String path) {
        return images.containsKey(path) || controls.containsKey(path) || dirs.containsKey(path);
    }
}
