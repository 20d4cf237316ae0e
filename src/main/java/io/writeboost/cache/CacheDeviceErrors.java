package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.device.DeviceLoad;
import io.writeboost.knob.Knob;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The cache device as the running engine sees it: every error it returns is counted, and the
 * engine fails over ({@link Health#cacheDeviceFailed}) once the count passes io_error_limit,
 * or at once when a sync fails (nothing written before a failed sync may be taken as durable,
 * and a retry could succeed without it). A failed write is only counted here: the flusher
 * retries it, and fails over when the retries fail too. Counting every call's outcome in one
 * place means no read of the cache device (a read hit, an older copy fetched for a partial
 * write, writeback, verification) escapes the limit.
 *
 * <p>Thread-safe: the count is atomic; the limit is read from the knob at each error.
 */
final class CacheDeviceErrors implements BlockDevice {
    private final BlockDevice device;
    private final KnobValues knobs;
    private final Health health;
    private final AtomicLong errors = new AtomicLong();

    CacheDeviceErrors(BlockDevice device, KnobValues knobs, Health health) {
        this.device = device;
        this.knobs = knobs;
        this.health = health;
    }

    /** Errors the cache device returned since start. */
    long errors() {
        return errors.get();
    }

    private IOException counted(IOException e) {
        long n = errors.incrementAndGet();
        long limit = knobs.get(Knob.IO_ERROR_LIMIT);
        if (n > limit) {
            health.cacheDeviceFailed(new IOException(device.name() + " returned " + n + " error(s), more than io_error_limit "
                    + limit + "; the last: " + e.getMessage(), e));
        }
        return e;
    }

    @Override
    public long size() {
        return device.size();
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        try {
            device.read(dst, offset);
        } catch (IOException e) {
            throw counted(e);
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        try {
            device.write(src, offset);
        } catch (IOException e) {
            throw counted(e);
        }
    }

    @Override
    public void writeThrough(ByteBuffer src, long offset) throws IOException {
        try {
            device.writeThrough(src, offset);
        } catch (IOException e) {
            throw counted(e);
        }
    }

    @Override
    public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws IOException {
        try {
            device.writeThrough(srcs, n, offset);
        } catch (IOException e) {
            throw counted(e);
        }
    }

    @Override
    public boolean writeDurably(ByteBuffer[] srcs, int n, long offset) throws IOException {
        try {
            return device.writeDurably(srcs, n, offset);
        } catch (IOException e) {
            throw counted(e);
        }
    }

    @Override
    public void sync() throws IOException {
        try {
            device.sync();
        } catch (IOException e) {
            counted(e);
            health.cacheDeviceFailed(new IOException("syncing " + device.name() + " failed: " + e.getMessage(), e));
            throw e;
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        try {
            device.discard(offset, length);
        } catch (IOException e) {
            throw counted(e);
        }
    }

    @Override
    public String name() {
        return device.name();
    }

    @Override
    public DeviceLoad load() {
        return device.load();
    }

    /** The engine does not own the device: its opener closes it. */
    @Override
    public void close() {
    }
}
