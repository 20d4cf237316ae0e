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
 * <p>Every call is also entered in {@link InFlightCalls} while it is outstanding, for
 * {@link CacheWatchdog} (a call that does not return fails over too) and for the failover's
 * <em>fence</em> ({@link #fence}): from then on the device takes only the failover's own calls
 * ({@link #admitCurrentThread}), and a call outstanding at the fence that returns later throws
 * instead of returning. The failover can then go on without the threads stuck in the device: none of
 * them acts on what the device gives it afterwards (writeback writing an old copy over what the
 * failover wrote back, say).
 *
 * <p>Thread-safe: the count is atomic; the limit is read from the knob at each error. The fence
 * is a volatile read after the call's slot is released, and the failover sets it before it looks
 * at the slots: either the call sees the fence, or the failover sees the call ended.
 */
final class CacheDeviceErrors implements BlockDevice {
    private final BlockDevice device;
    private final KnobValues knobs;
    private final Health health;
    private final AtomicLong errors = new AtomicLong();
    private final InFlightCalls calls = new InFlightCalls();
    private volatile boolean fenced;
    /** Threads the fence lets through: the failover's. Looked at only once fenced. */
    private final ThreadLocal<Boolean> admitted = ThreadLocal.withInitial(() -> false);

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

    /**
     * From now on the device takes the calls of admitted threads only, and a call outstanding
     * now fails when it returns (see the class comment). Set by the failover before it looks
     * for stuck threads; never cleared.
     */
    void fence() {
        fenced = true;
    }

    /** Lets the current thread's calls through the fence (the failover's threads). */
    void admitCurrentThread() {
        admitted.set(true);
    }

    /** Whether {@code t} is in a call it began before the fence: it may be left behind, since it can act on nothing the call returns. */
    boolean stuckBehindFence(Thread t) {
        return fenced && calls.holds(t);
    }

    /** The oldest call outstanding longer than {@code nanos} ("read", "write", "sync" or "discard"), or null. */
    String overdue(long nanos) {
        return calls.overdue(nanos);
    }

    private int begin(int kind) throws IOException {
        int slot = calls.begin(kind);
        if (fenced && !admitted.get()) {
            calls.end(slot);
            throw refused();
        }
        return slot;
    }

    /** Releases the slot, then looks at the fence: the order the fence's argument needs. */
    private void end(int slot) throws IOException {
        calls.end(slot);
        if (fenced && !admitted.get()) {
            throw refused();
        }
    }

    private IOException refused() {
        return new IOException(device.name() + ": the cache failed over from this device; its calls are no longer taken");
    }

    @Override
    public long size() {
        return device.size();
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        int slot = begin(InFlightCalls.READ);
        try {
            device.read(dst, offset);
        } catch (IOException e) {
            throw counted(e);
        } finally {
            end(slot);
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        int slot = begin(InFlightCalls.WRITE);
        try {
            device.write(src, offset);
        } catch (IOException e) {
            throw counted(e);
        } finally {
            end(slot);
        }
    }

    @Override
    public void writeThrough(ByteBuffer src, long offset) throws IOException {
        int slot = begin(InFlightCalls.WRITE);
        try {
            device.writeThrough(src, offset);
        } catch (IOException e) {
            throw counted(e);
        } finally {
            end(slot);
        }
    }

    @Override
    public void writeThrough(ByteBuffer[] srcs, int n, long offset) throws IOException {
        int slot = begin(InFlightCalls.WRITE);
        try {
            device.writeThrough(srcs, n, offset);
        } catch (IOException e) {
            throw counted(e);
        } finally {
            end(slot);
        }
    }

    @Override
    public boolean writeDurably(ByteBuffer[] srcs, int n, long offset) throws IOException {
        int slot = begin(InFlightCalls.WRITE);
        boolean durable;
        try {
            durable = device.writeDurably(srcs, n, offset);
        } catch (IOException e) {
            throw counted(e);
        } finally {
            end(slot);
        }
        return durable;
    }

    @Override
    public void sync() throws IOException {
        int slot = begin(InFlightCalls.SYNC);
        try {
            device.sync();
        } catch (IOException e) {
            counted(e);
            health.cacheDeviceFailed(new IOException("syncing " + device.name() + " failed: " + e.getMessage(), e));
            throw e;
        } finally {
            end(slot);
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        int slot = begin(InFlightCalls.DISCARD);
        try {
            device.discard(offset, length);
        } catch (IOException e) {
            throw counted(e);
        } finally {
            end(slot);
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
