package io.writeboost.testutil;

import io.writeboost.device.BlockDevice;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A device that fails on command: the next N writes, reads or syncs throw EIO, or all of them
 * do until told otherwise. Counts what it injected.
 */
public final class FaultyDevice extends DelegatingDevice {
    public final AtomicInteger failWrites = new AtomicInteger();
    public final AtomicInteger failReads = new AtomicInteger();
    public final AtomicInteger failSyncs = new AtomicInteger();
    /** The next N writes put only the first half of their data on the device, then fail (a short write, then EIO). */
    public final AtomicInteger shortWrites = new AtomicInteger();
    public volatile boolean broken;
    public final AtomicLong injected = new AtomicLong();
    /** What load() reports; null: unknown. */
    public volatile io.writeboost.device.DeviceLoad load;

    @Override
    public io.writeboost.device.DeviceLoad load() {
        return load;
    }

    public FaultyDevice(BlockDevice inner) {
        super(inner);
    }

    private void maybeFail(AtomicInteger counter, String what) throws IOException {
        if (broken || counter.getAndUpdate(n -> n > 0 ? n - 1 : 0) > 0) {
            injected.incrementAndGet();
            throw new IOException(inner.name() + ": Input/output error (injected " + what + " fault)");
        }
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        maybeFail(failReads, "read");
        inner.read(dst, offset);
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        maybeFail(failWrites, "write");
        if (src.remaining() >= 1024 && shortWrites.getAndUpdate(n -> n > 0 ? n - 1 : 0) > 0) {
            ByteBuffer half = src.duplicate();
            half.limit(half.position() + (half.remaining() / 2 & ~511));
            inner.write(half, offset);
            injected.incrementAndGet();
            throw new IOException(inner.name() + ": short write, then Input/output error (injected)");
        }
        inner.write(src, offset);
    }

    @Override
    public void sync() throws IOException {
        maybeFail(failSyncs, "sync");
        inner.sync();
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        maybeFail(failWrites, "discard");
        inner.discard(offset, length);
    }
}
