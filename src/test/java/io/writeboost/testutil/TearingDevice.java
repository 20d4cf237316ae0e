package io.writeboost.testutil;

import io.writeboost.device.BlockDevice;

import java.nio.ByteBuffer;

/**
 * An in-memory device that copies in 64-byte steps and yields between them, as a file read or
 * written through the page cache may: a read that overlaps a write or a discard of the same
 * bytes can see some steps old and some new. Nothing here is atomic on purpose; what the engine
 * promises per sector it has to make true itself.
 */
public final class TearingDevice implements BlockDevice {
    private static final int STEP = 64;
    private final byte[] data;
    private final String name;

    public TearingDevice(String name, int size) {
        this.name = name;
        this.data = new byte[size];
    }

    @Override
    public long size() {
        return data.length;
    }

    @Override
    public void read(ByteBuffer dst, long offset) {
        int n = dst.remaining(), at = (int) offset, to = dst.position();
        for (int i = 0; i < n; i += STEP) {
            dst.put(to + i, data, at + i, Math.min(STEP, n - i));
            Thread.yield();
        }
        dst.position(to + n);
    }

    @Override
    public void write(ByteBuffer src, long offset) {
        int n = src.remaining(), at = (int) offset, from = src.position();
        for (int i = 0; i < n; i += STEP) {
            src.get(from + i, data, at + i, Math.min(STEP, n - i));
            Thread.yield();
        }
        src.position(from + n);
    }

    @Override
    public void sync() {
    }

    @Override
    public void discard(long offset, long length) {
        for (long i = 0; i < length; i += STEP) {
            java.util.Arrays.fill(data, (int) (offset + i), (int) Math.min(offset + length, offset + i + STEP), (byte) 0);
            Thread.yield();
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void close() {
    }
}
