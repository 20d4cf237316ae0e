package io.writeboost.testutil;

import io.writeboost.device.BlockDevice;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A device that passes every call to another: tests override the calls they want to watch,
 * stall or fail. writeThrough is left to the interface's default, which goes through this
 * device's {@link #write}, so an override of write sees segment writes too.
 */
public class DelegatingDevice implements BlockDevice {
    protected final BlockDevice inner;

    public DelegatingDevice(BlockDevice inner) {
        this.inner = inner;
    }

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        inner.read(dst, offset);
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        inner.write(src, offset);
    }

    @Override
    public void sync() throws IOException {
        inner.sync();
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        inner.discard(offset, length);
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
