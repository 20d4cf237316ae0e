package io.writeboost.testutil;

import io.writeboost.device.BlockDevice;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A device that counts reads, writes and syncs, and can hold one read back: after
 * {@link #stallNextRead} the next read gets its data from the inner device at once (what the
 * device held then) and then waits until {@link #release} before it returns, so that a test
 * can change the device while a reader holds data that is now stale.
 */
public final class StallingDevice extends DelegatingDevice {
    public final AtomicLong reads = new AtomicLong();
    public final AtomicLong writes = new AtomicLong();
    public final AtomicLong syncs = new AtomicLong();
    private volatile CountDownLatch stalled;
    private volatile CountDownLatch released;

    public StallingDevice(BlockDevice inner) {
        super(inner);
    }

    private volatile long stallOffset = -1;

    public void stallNextRead() {
        stallNextReadAt(-1);
    }

    /** Holds the next read that starts at byte {@code offset} (-1: any), once it has its data. */
    public void stallNextReadAt(long offset) {
        stallOffset = offset;
        released = new CountDownLatch(1);
        stalled = new CountDownLatch(1);
    }

    /** Waits until the armed read has its data and is held. */
    public void awaitStalled() throws InterruptedException {
        if (!stalled.await(10, TimeUnit.SECONDS)) {
            throw new AssertionError("no read reached the device");
        }
    }

    public void release() {
        released.countDown();
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        reads.incrementAndGet();
        inner.read(dst, offset);
        CountDownLatch s = stalled;
        if (s != null && s.getCount() > 0 && (stallOffset < 0 || stallOffset == offset)) {
            synchronized (this) {
                if (stalled != s || s.getCount() == 0) {
                    return;
                }
                s.countDown();
            }
            try {
                if (!released.await(10, TimeUnit.SECONDS)) {
                    throw new IOException("stalled read never released");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        writes.incrementAndGet();
        inner.write(src, offset);
    }

    @Override
    public void sync() throws IOException {
        syncs.incrementAndGet();
        inner.sync();
    }
}
