package io.writeboost.volume;

import io.writeboost.cache.CacheEngine;
import io.writeboost.format.Layout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * One cached volume seen as a byte-addressed file of fixed size. Sector-aligned requests go
 * straight to the engine; the rare unaligned edge is read, merged and written back, atomically
 * against every other change of the same sectors ({@link SectorStripes}).
 */
public final class Volume {
    private static final int BOUNCE_BYTES = (128 << 10) + 2 * Layout.SECTOR_SIZE;

    private final CacheEngine engine;
    private final int deviceId;
    private final String name;
    private final String backingPath;
    private final long size;
    private final SectorStripes stripes = new SectorStripes();
    private final ArrayDeque<ByteBuffer> bounce = new ArrayDeque<>();

    public Volume(CacheEngine engine, int deviceId, String name, String backingPath, long size) {
        this.engine = engine;
        this.deviceId = deviceId;
        this.name = name;
        this.backingPath = backingPath;
        this.size = size;
    }

    public int deviceId() {
        return deviceId;
    }

    public String name() {
        return name;
    }

    public String backingPath() {
        return backingPath;
    }

    public long size() {
        return size;
    }

    /** Reads into {@code dst} (position to limit) from {@code offset}; returns bytes read, short at the end. */
    public int read(long offset, ByteBuffer dst) throws IOException {
        if (offset >= size || !dst.hasRemaining()) {
            return 0;
        }
        int len = (int) Math.min(dst.remaining(), size - offset);
        if (aligned(offset, len)) {
            engine.read(deviceId, offset >> Layout.SECTOR_SHIFT, len >> Layout.SECTOR_SHIFT, dst);
            return len;
        }
        int done = 0;
        while (done < len) {
            int n = Math.min(len - done, BOUNCE_BYTES - 2 * Layout.SECTOR_SIZE);
            readUnaligned(offset + done, dst, dst.position() + done, n);
            done += n;
        }
        return len;
    }

    private void readUnaligned(long offset, ByteBuffer dst, int dstPos, int len) throws IOException {
        long first = offset >> Layout.SECTOR_SHIFT;
        long last = (offset + len - 1) >> Layout.SECTOR_SHIFT;
        int sectors = (int) (last - first + 1);
        ByteBuffer b = takeBounce();
        try {
            b.clear().limit(sectors << Layout.SECTOR_SHIFT);
            engine.read(deviceId, first, sectors, b);
            dst.put(dstPos, b, (int) (offset - (first << Layout.SECTOR_SHIFT)), len);
        } finally {
            giveBounce(b);
        }
    }

    /**
     * Writes {@code src} (position to limit) at {@code offset}; returns bytes written, short when
     * the write runs past the end. A write starting at or past the end fails: the volume's
     * size is fixed.
     */
    public int write(long offset, ByteBuffer src) throws IOException {
        if (!src.hasRemaining()) {
            return 0;
        }
        if (offset >= size) {
            throw new VolumeFullException(name + ": write at " + offset + " is past the end (" + size + " bytes)");
        }
        int len = (int) Math.min(src.remaining(), size - offset);
        if (aligned(offset, len)) {
            long first = offset >> Layout.SECTOR_SHIFT;
            int sectors = len >> Layout.SECTOR_SHIFT;
            long mask = SectorStripes.of(first, first + sectors - 1);
            stripes.lockShared(mask);
            try {
                engine.write(deviceId, first, sectors, src);
            } finally {
                stripes.unlockShared(mask);
            }
            return len;
        }
        int done = 0;
        while (done < len) {
            int n = Math.min(len - done, BOUNCE_BYTES - 2 * Layout.SECTOR_SIZE);
            writeUnaligned(offset + done, src, src.position() + done, n);
            done += n;
        }
        return len;
    }

    private void writeUnaligned(long offset, ByteBuffer src, int srcPos, int len) throws IOException {
        long first = offset >> Layout.SECTOR_SHIFT;
        long last = (offset + len - 1) >> Layout.SECTOR_SHIFT;
        long mask = SectorStripes.of(first, last);
        stripes.lockExclusive(mask);
        try {
            mergeAndWrite(offset, src, srcPos, len, first, last);
        } finally {
            stripes.unlockExclusive(mask);
        }
    }

    /** Expects the exclusive side of the stripes of sectors [first, last]. */
    private void mergeAndWrite(long offset, ByteBuffer src, int srcPos, int len, long first, long last) throws IOException {
        assert stripes.heldExclusively(SectorStripes.of(first, last));
        int sectors = (int) (last - first + 1);
        ByteBuffer b = takeBounce();
        try {
            b.clear().limit(sectors << Layout.SECTOR_SHIFT);
            int head = (int) (offset - (first << Layout.SECTOR_SHIFT));
            int tailEnd = head + len;
            // Only the edge sectors need their old content.
            if (head != 0) {
                b.limit(Layout.SECTOR_SIZE);
                engine.read(deviceId, first, 1, b);
            }
            if ((tailEnd & (Layout.SECTOR_SIZE - 1)) != 0 && (last != first || head == 0)) {
                ByteBuffer tail = b.duplicate();
                tail.limit(sectors << Layout.SECTOR_SHIFT).position((sectors - 1) << Layout.SECTOR_SHIFT);
                engine.read(deviceId, last, 1, tail);
            }
            b.limit(sectors << Layout.SECTOR_SHIFT).position(0);
            b.put(head, src, srcPos, len);
            engine.write(deviceId, first, sectors, b);
        } finally {
            giveBounce(b);
        }
    }

    /** fsync/fdatasync: returns once every write acknowledged before it is durable. */
    public void fsync() throws IOException {
        engine.flush(deviceId);
    }

    /** Punches [offset, offset+length): later reads return zeros. Partial sectors at the edges get zeros written. */
    public void punchHole(long offset, long length) throws IOException {
        long end = Math.min(size, offset + length);
        if (offset >= end) {
            return;
        }
        long firstWhole = (offset + Layout.SECTOR_SIZE - 1) >> Layout.SECTOR_SHIFT;
        long endWhole = end >> Layout.SECTOR_SHIFT;
        if (firstWhole < endWhole) {
            long mask = SectorStripes.of(firstWhole, endWhole - 1);
            stripes.lockShared(mask);
            try {
                engine.discard(deviceId, firstWhole, endWhole - firstWhole);
            } finally {
                stripes.unlockShared(mask);
            }
            zero(offset, (firstWhole << Layout.SECTOR_SHIFT) - offset);
            zero(endWhole << Layout.SECTOR_SHIFT, end - (endWhole << Layout.SECTOR_SHIFT));
        } else {
            zero(offset, end - offset);
        }
    }

    private void zero(long offset, long length) throws IOException {
        if (length > 0) {
            write(offset, ByteBuffer.allocate((int) length));
        }
    }

    private static boolean aligned(long offset, int len) {
        return ((offset | len) & (Layout.SECTOR_SIZE - 1)) == 0;
    }

    private ByteBuffer takeBounce() {
        synchronized (bounce) {
            ByteBuffer b = bounce.poll();
            if (b != null) {
                return b;
            }
        }
        return ByteBuffer.allocateDirect(BOUNCE_BYTES);
    }

    private void giveBounce(ByteBuffer b) {
        synchronized (bounce) {
            if (bounce.size() < 8) {
                bounce.push(b);
            }
        }
    }
}
