package io.writeboost.testutil;

import io.writeboost.device.BlockDevice;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A device that hangs on command, as a dying disk does rather than fail: once armed, every
 * write touching bytes [writesFrom, writesTo), every sync, or every read touching
 * [readsFrom, readsTo) blocks until {@link #release}, and then completes on the inner device
 * (a call that returns minutes late). Counts the calls it held.
 */
public final class HangingDevice extends DelegatingDevice {
    /** How long a held call waits for {@link #release} before it goes on anyway: a test that forgot to release still ends. */
    private static final long HOLD_LIMIT_SECONDS = 300;
    public volatile long writesFrom, writesTo;
    public volatile long readsFrom, readsTo;
    public volatile boolean syncs;
    public final AtomicInteger held = new AtomicInteger();
    private final CountDownLatch released = new CountDownLatch(1);

    public HangingDevice(BlockDevice inner) {
        super(inner);
    }

    /** Lets every held call go on, and holds no more. */
    public void release() {
        writesTo = readsTo = 0;
        syncs = false;
        released.countDown();
    }

    private void hold(boolean armed) throws IOException {
        if (!armed || released.getCount() == 0) {
            return;
        }
        held.incrementAndGet();
        try {
            released.await(HOLD_LIMIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    private static boolean touches(long offset, int length, long from, long to) {
        return offset < to && offset + length > from;
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        hold(touches(offset, dst.remaining(), readsFrom, readsTo));
        inner.read(dst, offset);
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        hold(touches(offset, src.remaining(), writesFrom, writesTo));
        inner.write(src, offset);
    }

    @Override
    public void sync() throws IOException {
        hold(syncs);
        inner.sync();
    }
}
