package io.writeboost.fuse;

import com.kenai.jffi.MemoryIO;
import io.writeboost.front.WriteboostFs;
import jnr.constants.platform.Errno;
import jnr.ffi.Pointer;
import jnr.ffi.types.mode_t;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.Statvfs;
import ru.serce.jnrfuse.struct.Timespec;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/**
 * The jnr-fuse (libfuse2) binding: translates each callback to {@link WriteboostFs}. The
 * kernel's buffers are wrapped as direct ByteBuffers, so data is copied once, between the
 * kernel's buffer and the engine's RAM segment or the device.
 */
public final class JnrFuseMount extends FuseStubFS {
    private static final MemoryIO MEMORY = MemoryIO.getInstance();

    private final WriteboostFs fs;
    private final ReadyListener ready;
    /** Every callback catches what its code lets through and hands it here ({@link CallbackFailures}). */
    private final CallbackFailures failures = new CallbackFailures();
    private final long uid, gid;
    private final long startSeconds = System.currentTimeMillis() / 1000;

    public JnrFuseMount(WriteboostFs fs, ReadyListener ready) {
        this.fs = fs;
        this.ready = ready;
        POSIX posix = POSIXFactory.getNativePOSIX();
        this.uid = posix.getuid();
        this.gid = posix.getgid();
        bindDataPath();
    }

    // Strong references: native code holds only the closures' addresses.
    private final RawDataPath.RawIo rawRead = this::rawRead;
    private final RawDataPath.RawIo rawWrite = this::rawWrite;

    /** Volumes' reads and writes skip jnr-fuse's per-call wrappers ({@link RawDataPath}); open sets fh for them. */
    private void bindDataPath() {
        RawDataPath.bind(fuseOperations, rawRead, rawWrite);
    }

    private int rawRead(Pointer path, Pointer buf, long size, long offset, Pointer fi) {
        try {
            long handle = RawDataPath.handle(fi);
            if (handle != 0) {
                return fs.readVolume(handle, wrap(buf, size), offset);
            }
            return read(path.getString(0), buf, size, offset, FuseFileInfo.of(fi));
        } catch (Throwable t) {
            return failures.answerEio("read", pathOf(path), t);
        }
    }

    private int rawWrite(Pointer path, Pointer buf, long size, long offset, Pointer fi) {
        try {
            long handle = RawDataPath.handle(fi);
            if (handle != 0) {
                return fs.writeVolume(handle, wrap(buf, size), offset);
            }
            return write(path.getString(0), buf, size, offset, FuseFileInfo.of(fi));
        } catch (Throwable t) {
            return failures.answerEio("write", pathOf(path), t);
        }
    }

    /** The path of a raw call, for a log line. */
    private static String pathOf(Pointer path) {
        try {
            return path == null ? null : path.getString(0);
        } catch (Throwable t) {
            return "(path unreadable)";
        }
    }

    /**
     * Mounts and serves until unmounted (blocking); returns after the FUSE loop has ended.
     * {@code asyncDio} and {@code parallelDirectWrites} grant the kernel features of the same
     * names ({@link FuseLoop.Grants}); the latter only for volume files.
     */
    public void serve(Path mountPoint, List<String> options, boolean asyncDio, boolean parallelDirectWrites) {
        String[] args = {getFSName(), "-f", mountPoint.toAbsolutePath().toString(), "-o", String.join(",", options)};
        this.mountPoint = mountPoint;
        mounted.set(true);
        try {
            FuseLoop.run(args, fuseOperations, "wb-fuse", new FuseLoop.Grants(asyncDio, parallelDirectWrites));
        } finally {
            // The loop has ended, so the kernel mount is gone: keep jnr-fuse's exit hook
            // from running fusermount on the path again.
            mounted.set(false);
        }
    }

    /** Asks the kernel to unmount (fusermount -u); serve() returns once the loop has ended. */
    public void requestUnmount() {
        umount();
    }

    @Override
    protected String getFSName() {
        return "writeboost";
    }

    @Override
    public Pointer init(Pointer conn) {
        try {
            ready.ready();
        } catch (Throwable t) {
            failures.report("FUSE init", t, "the mount is served all the same");
        }
        return null;
    }

    @Override
    public int getattr(String path, FileStat stat) {
        try {
            return attributes(path, stat);
        } catch (Throwable t) {
            return failures.answerEio("getattr", path, t);
        }
    }

    private int attributes(String path, FileStat stat) {
        WriteboostFs.Attr a = fs.getattr(path);
        if (a == null) {
            return -Errno.ENOENT.intValue();
        }
        int type = a.kind() == WriteboostFs.Kind.DIRECTORY ? FileStat.S_IFDIR : FileStat.S_IFREG;
        stat.st_mode.set(type | a.mode());
        stat.st_nlink.set(a.nlink());
        stat.st_size.set(a.size());
        stat.st_uid.set(uid);
        stat.st_gid.set(gid);
        stat.st_blksize.set(4096);
        stat.st_blocks.set((a.size() + 511) / 512);
        stat.st_mtim.tv_sec.set(startSeconds);
        stat.st_ctim.tv_sec.set(startSeconds);
        stat.st_atim.tv_sec.set(startSeconds);
        return 0;
    }

    @Override
    public int readdir(String path, Pointer buf, FuseFillDir filler, @off_t long offset, FuseFileInfo fi) {
        try {
            List<String> entries = fs.list(path);
            if (entries == null) {
                return fs.exists(path) ? -Errno.ENOTDIR.intValue() : -Errno.ENOENT.intValue();
            }
            filler.apply(buf, ".", null, 0);
            filler.apply(buf, "..", null, 0);
            for (String e : entries) {
                filler.apply(buf, e, null, 0);
            }
            return 0;
        } catch (Throwable t) {
            return failures.answerEio("readdir", path, t);
        }
    }

    @Override
    public int open(String path, FuseFileInfo fi) {
        try {
            int rc = fs.open(path, fi.flags.get());
            if (rc == 0) {
                long handle = fs.handleOf(path);
                fi.fh.set(handle);
                if (handle != 0) {
                    // Volumes only: the engine serves concurrent writes to one volume; a control
                    // file's write is a knob change, kept one at a time as before.
                    FuseLoop.grantParallelDirectWrites();
                }
            }
            return rc;
        } catch (Throwable t) {
            return failures.answerEio("open", path, t);
        }
    }

    // Reached from rawRead and rawWrite, which catch what these let through.
    @Override
    public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        return fs.read(path, wrap(buf, size), offset);
    }

    @Override
    public int write(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        return fs.write(path, wrap(buf, size), offset);
    }

    private static ByteBuffer wrap(Pointer p, long size) {
        return MEMORY.newDirectByteBuffer(p.address(), (int) size);
    }

    @Override
    public int fsync(String path, int isdatasync, FuseFileInfo fi) {
        try {
            return fs.fsync(path);
        } catch (Throwable t) {
            return failures.answerEio("fsync", path, t);
        }
    }

    @Override
    public int flush(String path, FuseFileInfo fi) {
        return 0;
    }

    @Override
    public int release(String path, FuseFileInfo fi) {
        try {
            fs.release(fi.fh.get());
            return 0;
        } catch (Throwable t) {
            return failures.answerEio("release", path, t);
        }
    }

    @Override
    public int truncate(String path, @off_t long size) {
        try {
            return fs.truncate(path, size);
        } catch (Throwable t) {
            return failures.answerEio("truncate", path, t);
        }
    }

    @Override
    public int ftruncate(String path, @off_t long size, FuseFileInfo fi) {
        try {
            return fs.truncate(path, size);
        } catch (Throwable t) {
            return failures.answerEio("ftruncate", path, t);
        }
    }

    @Override
    public int fallocate(String path, int mode, @off_t long off, @off_t long length, FuseFileInfo fi) {
        try {
            return fs.fallocate(path, mode, off, length);
        } catch (Throwable t) {
            return failures.answerEio("fallocate", path, t);
        }
    }

    @Override
    public int statfs(String path, Statvfs st) {
        try {
            return fileSystemStats(st);
        } catch (Throwable t) {
            return failures.answerEio("statfs", path, t);
        }
    }

    private int fileSystemStats(Statvfs st) {
        WriteboostFs.FsStats s = fs.statfs();
        st.f_bsize.set(s.blockSize());
        st.f_frsize.set(s.blockSize());
        st.f_blocks.set(s.blocks());
        st.f_bfree.set(0);
        st.f_bavail.set(0);
        st.f_files.set(s.files());
        st.f_ffree.set(0);
        st.f_favail.set(0);
        st.f_namemax.set(255);
        return 0;
    }

    @Override
    public int access(String path, int mask) {
        try {
            return fs.exists(path) ? 0 : -Errno.ENOENT.intValue();
        } catch (Throwable t) {
            return failures.answerEio("access", path, t);
        }
    }

    // The tree is fixed: nothing can be created, removed, renamed or re-owned. The calls below
    // that only return an errno cannot throw; those that look the path up catch as above.
    @Override
    public int mknod(String path, @mode_t long mode, long rdev) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int mkdir(String path, @mode_t long mode) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int create(String path, @mode_t long mode, FuseFileInfo fi) {
        try {
            return fs.exists(path) ? -Errno.EEXIST.intValue() : -Errno.EPERM.intValue();
        } catch (Throwable t) {
            return failures.answerEio("create", path, t);
        }
    }

    @Override
    public int unlink(String path) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int rmdir(String path) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int rename(String oldpath, String newpath) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int symlink(String oldpath, String newpath) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int link(String oldpath, String newpath) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int chmod(String path, @mode_t long mode) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int chown(String path, long uid, long gid) {
        return -Errno.EPERM.intValue();
    }

    @Override
    public int utimens(String path, Timespec[] timespec) {
        try {
            return fs.exists(path) ? -Errno.EPERM.intValue() : -Errno.ENOENT.intValue();
        } catch (Throwable t) {
            return failures.answerEio("utimens", path, t);
        }
    }
}
