package io.writeboost.bench;

import jnr.constants.platform.Errno;
import jnr.ffi.Pointer;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import io.writeboost.fuse.FuseLoop;
import io.writeboost.fuse.RawDataPath;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Benchmark peer: a jnr-fuse filesystem that does nothing, one file "null" whose reads and
 * writes return at once, mounted with writeboost's FUSE options and served by writeboost's
 * {@link FuseLoop}, read and write bound as writeboost binds them ({@link RawDataPath}). What
 * it reaches is the ceiling of the Java FUSE transport as writeboost uses it.
 * It grants the kernel what writeboost grants (FUSE_ASYNC_DIO, and parallel direct writes to
 * "null"), so that it stays the ceiling.
 * Usage: NullFuse MOUNTPOINT SIZE_BYTES [--stock | --jnr-binding | --no-grants] (blocks until
 * unmounted); --stock serves it with jnr-fuse's own loop and bindings, --jnr-binding with
 * writeboost's loop and jnr-fuse's bindings, --no-grants without the two kernel features, for
 * comparison.
 */
public final class NullFuse extends FuseStubFS {
    private final long size;

    NullFuse(long size) {
        this.size = size;
    }

    public static void main(String[] args) {
        NullFuse fs = new NullFuse(Long.parseLong(args[1]));
        String options = String.join(",", Arrays.asList("direct_io", "big_writes", "max_write=131072", "max_read=131072",
                "default_permissions", "fsname=nullfuse", "subtype=nullfuse", "max_background=64", "congestion_threshold=48"));
        String mode = args.length > 2 ? args[2] : "";
        if (!mode.equals("--stock") && !mode.equals("--jnr-binding")) {
            RawDataPath.bind(fs.fuseOperations, fs.rawRead, fs.rawWrite);
        }
        if (mode.equals("--stock")) {
            fs.mount(Path.of(args[0]), true, false, new String[] {"-o", options});
        } else {
            FuseLoop.run(new String[] {"nullfuse", "-f", Path.of(args[0]).toAbsolutePath().toString(), "-o", options},
                    fs.fuseOperations, "null-fuse", mode.equals("--no-grants") ? FuseLoop.Grants.NONE : FuseLoop.Grants.ALL);
        }
    }

    @Override
    public int getattr(String path, FileStat stat) {
        if (path.equals("/")) {
            stat.st_mode.set(FileStat.S_IFDIR | 0755);
            stat.st_nlink.set(2);
            return 0;
        }
        if (path.equals("/null")) {
            stat.st_mode.set(FileStat.S_IFREG | 0600);
            stat.st_nlink.set(1);
            stat.st_size.set(size);
            return 0;
        }
        return -Errno.ENOENT.intValue();
    }

    @Override
    public int readdir(String path, Pointer buf, FuseFillDir filler, @off_t long offset, FuseFileInfo fi) {
        filler.apply(buf, ".", null, 0);
        filler.apply(buf, "..", null, 0);
        filler.apply(buf, "null", null, 0);
        return 0;
    }

    @Override
    public int open(String path, FuseFileInfo fi) {
        if (!path.equals("/null")) {
            return -Errno.ENOENT.intValue();
        }
        FuseLoop.grantParallelDirectWrites();
        return 0;
    }

    // What writeboost's binding does per call: fh from the fuse_file_info, the buffer wrapped.
    private final RawDataPath.RawIo rawRead = this::rawRead;
    private final RawDataPath.RawIo rawWrite = this::rawWrite;

    private int rawRead(Pointer path, Pointer buf, long n, long offset, Pointer fi) {
        RawDataPath.handle(fi);
        MEMORY.newDirectByteBuffer(buf.address(), (int) n);
        return (int) Math.max(0, Math.min(n, size - offset));
    }

    private int rawWrite(Pointer path, Pointer buf, long n, long offset, Pointer fi) {
        RawDataPath.handle(fi);
        MEMORY.newDirectByteBuffer(buf.address(), (int) n);
        return (int) n;
    }

    private static final com.kenai.jffi.MemoryIO MEMORY = com.kenai.jffi.MemoryIO.getInstance();

    @Override
    public int read(String path, Pointer buf, @size_t long n, @off_t long offset, FuseFileInfo fi) {
        return (int) Math.max(0, Math.min(n, size - offset));
    }

    @Override
    public int write(String path, Pointer buf, @size_t long n, @off_t long offset, FuseFileInfo fi) {
        return (int) n;
    }

    @Override
    public int fsync(String path, int datasync, FuseFileInfo fi) {
        return 0;
    }

    @Override
    public int truncate(String path, @off_t long n) {
        return 0;
    }
}
