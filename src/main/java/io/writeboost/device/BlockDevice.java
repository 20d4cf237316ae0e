package io.writeboost.device;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * What the engine needs of a cache device or a backing store: positional I/O of whole
 * buffers, a durability barrier, and discard. Implementations must allow concurrent
 * positional calls from several threads.
 */
public interface BlockDevice extends Closeable {
    /** Size in bytes, fixed for the device's lifetime. */
    long size();

    /** Fills {@code dst} from its position to its limit with bytes starting at {@code offset}. */
    void read(ByteBuffer dst, long offset) throws IOException;

    /** Writes {@code src} from its position to its limit at {@code offset}. */
    void write(ByteBuffer src, long offset) throws IOException;

    /**
     * Like {@link #write}, for a large write whose bytes the caller keeps in its own memory
     * while they matter: the page cache need not hold them, so an implementation may send
     * them straight to the device (O_DIRECT) when {@code src} and {@code offset} allow it.
     */
    default void writeThrough(ByteBuffer src, long offset) throws IOException {
        write(src, offset);
    }

    /**
     * {@link #writeThrough} of the first {@code n} buffers of {@code srcs}, one after the
     * other from {@code offset} on: one call, so that an implementation can make it one
     * device write.
     */
    default void writeThrough(ByteBuffer[] srcs, int n, long offset) throws IOException {
        long pos = offset;
        for (int i = 0; i < n; i++) {
            int len = srcs[i].remaining();
            writeThrough(srcs[i], pos);
            pos += len;
        }
    }

    /**
     * {@link #writeThrough(ByteBuffer[], int, long)}, and on stable storage when it returns if
     * the implementation can make it so without syncing anything else (O_DIRECT with O_DSYNC:
     * the device flushes its write cache for these bytes, not the page cache of the whole
     * device). Returns whether it did; false: written as by writeThrough, a {@link #sync} is
     * still due.
     */
    default boolean writeDurably(ByteBuffer[] srcs, int n, long offset) throws IOException {
        writeThrough(srcs, n, offset);
        return false;
    }

    /** Returns once every completed write is on stable storage (fdatasync). */
    void sync() throws IOException;

    /** Drops the range; later reads of it return zeros. */
    void discard(long offset, long length) throws IOException;

    /** A name for logs and errors, usually the path. */
    String name();

    /** How busy the device underneath is, for load-based writeback; null when unknown. */
    default DeviceLoad load() {
        return null;
    }
}
