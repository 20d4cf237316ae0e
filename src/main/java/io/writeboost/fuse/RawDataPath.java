package io.writeboost.fuse;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.Delegate;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.FuseOperations;

/**
 * read and write bound as libfuse calls them, path and fuse_file_info left as pointers.
 * jnr-fuse's own binding decodes the path into a String and builds a FuseFileInfo struct
 * object on every call: in a JFR profile of 4 KiB reads through writeboost that was 40 % of
 * the Java time on the request threads, more than the cache engine's share. A file system
 * that sets fh at open can serve these two calls from fh alone.
 */
public final class RawDataPath {
    private RawDataPath() {}

    /** One of read or write: {@code int (*)(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi)}. */
    public interface RawIo {
        @Delegate
        int call(Pointer path, Pointer buf, @size_t long size, @off_t long offset, Pointer fi);
    }

    /** Offset of fh in struct fuse_file_info, as jnr-fuse lays the struct out. */
    private static final long FH_OFFSET =
            FuseFileInfo.of(jnr.ffi.Memory.allocateDirect(jnr.ffi.Runtime.getSystemRuntime(), 64)).fh.offset();

    /** The fh an open set, from the fuse_file_info pointer of a read or write (0 without one). */
    public static long handle(Pointer fi) {
        return fi == null ? 0 : fi.getLong(FH_OFFSET);
    }

    /**
     * Replaces the read and write entries of {@code ops} (before the mount). The caller keeps
     * {@code read} and {@code write} reachable for as long as the mount lives: native code
     * holds only their closures' addresses.
     */
    public static void bind(FuseOperations ops, RawIo read, RawIo write) {
        jnr.ffi.Runtime rt = jnr.ffi.Runtime.getSystemRuntime();
        Pointer mem = jnr.ffi.Struct.getMemory(ops);
        mem.putPointer(ops.read.offset(), rt.getClosureManager().getClosurePointer(RawIo.class, read));
        mem.putPointer(ops.write.offset(), rt.getClosureManager().getClosurePointer(RawIo.class, write));
    }
}
