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
    /** Writes (and discards) that still succeed before every later one fails; negative: no such limit. */
    public final AtomicLong writesBeforeBreaking = new AtomicLong(-1);
    /** Reads that touch bytes [failReadsFrom, failReadsTo) fail (a bad region of the medium). */
    public volatile long failReadsFrom, failReadsTo;
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

    private void maybeFailWrite(String what) throws IOException {
        maybeFail(failWrites, what);
        if (writesBeforeBreaking.getAndUpdate(n -> n > 0 ? n - 1 : n) == 0) {
            injected.incrementAndGet();
            throw new IOException(inner.name() + ": Input/output error (injected " + what + " fault: the device broke)");
        }
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        maybeFail(failReads, "read");
        if (offset < failReadsTo && offset + dst.remaining() > failReadsFrom) {
            injected.incrementAndGet();
            throw new IOException(inner.name() + ": Input/output error (injected read fault at a bad region)");
        }
        inner.read(dst, offset);
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        maybeFailWrite("write");
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
        maybeFailWrite("discard");
        inner.discard(offset, length);
    }
}
