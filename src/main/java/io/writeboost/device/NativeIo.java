package io.writeboost.device;

import jnr.constants.platform.Errno;
import jnr.ffi.LibraryLoader;
import jnr.posix.FileStat;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * The few system calls the JDK does not offer: the size of a block device (FileChannel.size()
 * says 0 for one) and fallocate(PUNCH_HOLE).
 */
final class NativeIo {
    private NativeIo() {}

    static final int O_RDONLY = 0, O_RDWR = 2, SEEK_END = 2;
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;

    public interface LibC {
        int fallocate(int fd, int mode, long offset, long len);
    }

    static final POSIX POSIX = POSIXFactory.getNativePOSIX();
    private static volatile LibC libc;

    static LibC libc() {
        LibC l = libc;
        if (l == null) {
            synchronized (NativeIo.class) {
                if (libc == null) {
                    libc = LibraryLoader.create(LibC.class).load("c");
                }
                l = libc;
            }
        }
        return l;
    }

    static boolean isBlockDevice(String path) {
        FileStat st = POSIX.allocateStat();
        return POSIX.stat(path, st) == 0 && st.isBlockDev();
    }

    static String lastError() {
        int errno = POSIX.errno();
        Errno e = Errno.valueOf(errno);
        return (e == null ? "errno " + errno : e.name()) + " (" + POSIX.strerror(errno) + ")";
    }
}
