package io.writeboost.device;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A regular file or a block device (a disk, a partition, a loop device) opened read-write.
 * I/O goes through a FileChannel; a second descriptor from open(2) serves lseek and fallocate,
 * which FileChannel lacks.
 */
public final class FileBlockDevice implements BlockDevice {
    private final Path path;
    private final FileChannel channel;
    private final int fd;
    private final long size;
    private final boolean blockDevice;
    /** The same file opened with O_DIRECT, for {@link #writeThrough}; null where the filesystem refuses it (tmpfs). */
    private volatile FileChannel direct;
    private volatile boolean directTried;
    /** The same file opened with O_DIRECT and O_DSYNC, for {@link #writeDurably}; null where refused. */
    private volatile FileChannel directSync;
    private volatile boolean directSyncTried;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    private FileBlockDevice(Path path, FileChannel channel, int fd, long size, boolean blockDevice) {
        this.path = path;
        this.channel = channel;
        this.fd = fd;
        this.size = size;
        this.blockDevice = blockDevice;
    }

    /** Opens an existing file or block device for reading and writing. */
    public static FileBlockDevice open(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new IOException(path + ": no such file or device");
        }
        if (Files.isDirectory(path)) {
            throw new IOException(path + ": is a directory, not a file or block device");
        }
        boolean blockDevice = NativeIo.isBlockDevice(path.toString());
        if (!blockDevice && !Files.isRegularFile(path)) {
            throw new IOException(path + ": neither a regular file nor a block device");
        }
        FileChannel channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        int fd = NativeIo.POSIX.open(path.toString(), NativeIo.O_RDWR, 0);
        if (fd < 0) {
            String err = NativeIo.lastError();
            channel.close();
            throw new IOException(path + ": cannot open: " + err);
        }
        long size = blockDevice ? NativeIo.POSIX.lseekLong(fd, 0, NativeIo.SEEK_END) : channel.size();
        if (size < 0) {
            String err = NativeIo.lastError();
            channel.close();
            NativeIo.POSIX.close(fd);
            throw new IOException(path + ": cannot determine size: " + err);
        }
        return new FileBlockDevice(path, channel, fd, size, blockDevice);
    }

    /**
     * Creates a regular file of {@code size} bytes with every block written (zeros), synced,
     * and opens it. A segment written later then overwrites allocated blocks: on a filesystem
     * a sync need not also commit block allocation (measured on ext4: 2,202 against 555
     * fdatasync'd 512 KiB writes a second into a written versus a fallocated file). When the
     * filesystem runs out of space meanwhile, the partial file is removed and the error says so.
     */
    public static FileBlockDevice createWritten(Path path, long size) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer zeros = ByteBuffer.allocateDirect(8 << 20);
            for (long pos = 0; pos < size; ) {
                zeros.clear().limit((int) Math.min(zeros.capacity(), size - pos));
                while (zeros.hasRemaining()) {
                    pos += ch.write(zeros, pos);
                }
            }
            ch.force(true);
        } catch (IOException e) {
            Files.deleteIfExists(path);
            throw new IOException(path + ": cannot create a " + size + "-byte cache file: " + e.getMessage()
                    + " (the partial file was removed)", e);
        }
        return open(path);
    }

    /** Creates (or extends) a sparse regular file of {@code size} bytes and opens it. */
    public static FileBlockDevice createSparse(Path path, long size) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            if (ch.size() < size) {
                ch.write(ByteBuffer.allocate(1), size - 1);
            }
        }
        return open(path);
    }

    @Override
    public long size() {
        return size;
    }

    public boolean isBlockDevice() {
        return blockDevice;
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        checkRange(offset, dst.remaining());
        long pos = offset;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, pos);
            if (n < 0) {
                throw new IOException(path + ": unexpected end of device at byte " + pos);
            }
            pos += n;
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        checkRange(offset, src.remaining());
        long pos = offset;
        while (src.hasRemaining()) {
            pos += channel.write(src, pos);
        }
    }

    /**
     * O_DIRECT when {@code src} is a direct buffer and it, its length and {@code offset} are
     * 4 KiB aligned; else a plain write. A segment written through the page cache costs a copy
     * into it and, at the next sync, the kernel's writeback of those pages, which kept the
     * engine's random-write ingest well below the disk's sequential O_DIRECT bandwidth
     * (docs/PERFORMANCE.md). The
     * kernel keeps the two paths coherent: a direct write first writes back and afterwards
     * drops the cached pages of its range, so buffered reads that follow see its bytes.
     */
    @Override
    public void writeThrough(ByteBuffer src, long offset) throws IOException {
        FileChannel d = directChannel();
        if (d == null || !directAligned(src, offset)) {
            write(src, offset);
            return;
        }
        checkRange(offset, src.remaining());
        int start = src.position();
        try {
            long pos = offset;
            while (src.hasRemaining()) {
                pos += d.write(src, pos);
            }
        } catch (IOException e) {
            giveUpDirect(d, e);
            src.position(start);
            write(src, offset);
        }
    }

    /** One gathering O_DIRECT write when every buffer allows it; else one write after the other. */
    @Override
    public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws IOException {
        FileChannel d = directChannel();
        long total = 0;
        boolean aligned = d != null && n > 1;
        for (int i = 0; i < n && aligned; i++) {
            aligned = directAligned(srcs[i], offset + total);
            total += srcs[i].remaining();
        }
        if (!aligned) {
            BlockDevice.super.writeThrough(srcs, n, offset);
            return;
        }
        checkRange(offset, total);
        int[] starts = new int[n];
        for (int i = 0; i < n; i++) {
            starts[i] = srcs[i].position();
        }
        try {
            // The channel's position is shared state: gathering writes on it go one at a time.
            synchronized (d) {
                d.position(offset);
                long done = 0;
                while (done < total) {
                    done += d.write(srcs, 0, n);
                }
            }
        } catch (IOException e) {
            giveUpDirect(d, e);
            for (int i = 0; i < n; i++) {
                srcs[i].position(starts[i]);
            }
            BlockDevice.super.writeThrough(srcs, n, offset);
        }
    }

    /**
     * One O_DIRECT | O_DSYNC write when every buffer allows it, durable on return; else
     * {@link #writeThrough} and false. A large write that must be durable before a flush
     * returns costs its own bytes this way, where an fdatasync of the device would also wait
     * for everything else the page cache holds for it (a backing store's buffered writeback).
     */
    @Override
    public boolean writeDurably(ByteBuffer[] srcs, int n, long offset) throws IOException {
        FileChannel d = directSyncChannel();
        long total = 0;
        boolean aligned = d != null;
        for (int i = 0; i < n && aligned; i++) {
            aligned = directAligned(srcs[i], offset + total);
            total += srcs[i].remaining();
        }
        if (!aligned) {
            writeThrough(srcs, n, offset);
            return false;
        }
        checkRange(offset, total);
        int[] starts = new int[n];
        for (int i = 0; i < n; i++) {
            starts[i] = srcs[i].position();
        }
        try {
            if (n == 1) {
                long pos = offset;
                while (srcs[0].hasRemaining()) {
                    pos += d.write(srcs[0], pos);
                }
            } else {
                synchronized (d) {
                    d.position(offset);
                    long done = 0;
                    while (done < total) {
                        done += d.write(srcs, 0, n);
                    }
                }
            }
            return true;
        } catch (IOException e) {
            if (e.getMessage() == null || !e.getMessage().contains("Invalid argument")) {
                throw e;
            }
            org.apache.logging.log4j.LogManager.getLogger(FileBlockDevice.class)
                    .warn("{}: O_DIRECT | O_DSYNC write refused ({}); such writes are synced with the device from now on",
                            path, e.toString());
            directSync = null;
            d.close();
            for (int i = 0; i < n; i++) {
                srcs[i].position(starts[i]);
            }
            writeThrough(srcs, n, offset);
            return false;
        }
    }

    private FileChannel directSyncChannel() {
        if (!directSyncTried) {
            synchronized (this) {
                if (!directSyncTried) {
                    try {
                        directSync = FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.DSYNC,
                                com.sun.nio.file.ExtendedOpenOption.DIRECT);
                    } catch (IOException | UnsupportedOperationException e) {
                        directSync = null;
                    }
                    directSyncTried = true;
                }
            }
        }
        return directSync;
    }

    private static final int DIRECT_ALIGN = 4096;

    private static boolean directAligned(ByteBuffer b, long offset) {
        return b.isDirect() && (offset & (DIRECT_ALIGN - 1)) == 0 && (b.remaining() & (DIRECT_ALIGN - 1)) == 0
                && b.alignmentOffset(b.position(), DIRECT_ALIGN) == 0;
    }

    /**
     * Rethrows {@code e} unless it is the EINVAL of a device whose alignment rules differ from
     * what {@link #directAligned} assumes; then this file is written through the page cache
     * from now on, and the caller rewrites its bytes that way.
     */
    private void giveUpDirect(FileChannel d, IOException e) throws IOException {
        if (e.getMessage() == null || !e.getMessage().contains("Invalid argument")) {
            throw e;
        }
        org.apache.logging.log4j.LogManager.getLogger(FileBlockDevice.class)
                .warn("{}: O_DIRECT write refused ({}); writing through the page cache from now on", path, e.toString());
        direct = null;
        d.close();
    }

    private FileChannel directChannel() {
        if (!directTried) {
            synchronized (this) {
                if (!directTried) {
                    try {
                        direct = FileChannel.open(path, StandardOpenOption.WRITE, com.sun.nio.file.ExtendedOpenOption.DIRECT);
                    } catch (IOException | UnsupportedOperationException e) {
                        org.apache.logging.log4j.LogManager.getLogger(FileBlockDevice.class)
                                .info("{}: O_DIRECT refused ({}); segments are written through the page cache", path, e.toString());
                    }
                    directTried = true;
                }
            }
        }
        return direct;
    }

    @Override
    public void sync() throws IOException {
        channel.force(false);
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        checkRange(offset, length);
        if (length == 0) {
            return;
        }
        int rc = NativeIo.libc().fallocate(fd, NativeIo.FALLOC_FL_PUNCH_HOLE | NativeIo.FALLOC_FL_KEEP_SIZE, offset, length);
        if (rc != 0) {
            // A filesystem or device without hole punching still has to read back zeros.
            writeZeros(offset, length);
        }
    }

    private void writeZeros(long offset, long length) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(length, 1 << 20));
        long pos = offset, end = offset + length;
        while (pos < end) {
            zeros.clear().limit((int) Math.min(zeros.capacity(), end - pos));
            write(zeros, pos);
            pos += zeros.limit();
        }
    }

    private void checkRange(long offset, long length) throws IOException {
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new IOException(path + ": access [" + offset + ", " + (offset + length) + ") beyond size " + size);
        }
    }

    @Override
    public String name() {
        return path.toString();
    }

    @Override
    public DeviceLoad load() {
        return DeviceLoad.of(path, blockDevice);
    }

    public Path path() {
        return path;
    }

    /**
     * Closes the device; a second call does nothing (a detached volume's store is closed at the
     * detach and again with the server's other devices: closing the descriptor number twice could
     * close whatever file took that number meanwhile).
     */
    @Override
    public void close() throws IOException {
        if (closed.getAndSet(true)) {
            return;
        }
        try {
            channel.close();
            FileChannel d = direct;
            if (d != null) {
                d.close();
            }
            FileChannel ds = directSync;
            if (ds != null) {
                ds.close();
            }
        } finally {
            NativeIo.POSIX.close(fd);
        }
    }
}
