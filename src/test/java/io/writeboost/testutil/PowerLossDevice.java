package io.writeboost.testutil;

import io.writeboost.device.BlockDevice;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * An in-memory block device that remembers which writes are not yet synced. At a simulated
 * power loss each unsynced write is dropped, kept, or torn (only some of its 512 B sectors
 * reach the medium), in a random order, as a volatile disk cache may do. Without a crash it
 * is simply a RAM disk.
 */
public final class PowerLossDevice implements BlockDevice {
    private static final int SECTOR = 512;

    private final String name;
    /** Devices sharing one power supply fail together and are serialised on it, so a crash is one instant for all. */
    private final Object power;
    private final byte[] durable;
    private final byte[] visible;
    private final List<long[]> pendingRanges = new ArrayList<>();
    private final List<byte[]> pendingData = new ArrayList<>();
    private boolean dead;
    private long writes, syncs;
    /** Runs after each completed write, sync or discard (outside the power lock); tests cut the power from it. */
    public volatile Runnable afterCall;

    public PowerLossDevice(String name, int size, Object power) {
        this(name, new byte[size], power);
    }

    /** A device whose durable content is {@code image} (taken over, not copied). */
    public static PowerLossDevice of(String name, byte[] image, Object power) {
        return new PowerLossDevice(name, image, power);
    }

    private PowerLossDevice(String name, byte[] image, Object power) {
        this.name = name;
        this.power = power;
        this.durable = image;
        this.visible = image.clone();
    }

    @Override
    public long size() {
        return durable.length;
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        synchronized (power) {
            check(offset, dst.remaining());
            dst.put(visible, (int) offset, dst.remaining());
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        synchronized (power) {
            int n = src.remaining();
            check(offset, n);
            byte[] data = new byte[n];
            src.get(data);
            System.arraycopy(data, 0, visible, (int) offset, n);
            pendingRanges.add(new long[] {offset, n});
            pendingData.add(data);
            writes++;
        }
        called();
    }

    private void called() {
        Runnable r = afterCall;
        if (r != null) {
            r.run();
        }
    }

    @Override
    public void sync() throws IOException {
        synchronized (power) {
            check(0, 0);
            for (int i = 0; i < pendingData.size(); i++) {
                System.arraycopy(pendingData.get(i), 0, durable, (int) pendingRanges.get(i)[0], pendingData.get(i).length);
            }
            pendingRanges.clear();
            pendingData.clear();
            syncs++;
        }
        called();
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        synchronized (power) {
            write(ByteBuffer.wrap(new byte[(int) length]), offset);
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void close() {
    }

    public long writes() {
        synchronized (power) {
            return writes;
        }
    }

    public long syncs() {
        synchronized (power) {
            return syncs;
        }
    }

    public int unsyncedWrites() {
        synchronized (power) {
            return pendingData.size();
        }
    }

    /**
     * Cuts the power: this device fails every later call, and the returned device holds what
     * survived: all synced data plus each unsynced write dropped, kept whole, or torn at
     * 512 B granularity, applied in a random order.
     */
    public PowerLossDevice crash(Random rnd, Object newPower) {
        synchronized (power) {
            dead = true;
            byte[] image = durable.clone();
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < pendingData.size(); i++) {
                order.add(i);
            }
            Collections.shuffle(order, rnd);
            for (int i : order) {
                byte[] data = pendingData.get(i);
                int off = (int) pendingRanges.get(i)[0];
                int fate = rnd.nextInt(3);
                if (fate == 0) {
                    continue;
                }
                for (int s = 0; s < data.length; s += SECTOR) {
                    if (fate == 1 || rnd.nextBoolean()) {
                        System.arraycopy(data, s, image, off + s, Math.min(SECTOR, data.length - s));
                    }
                }
            }
            return new PowerLossDevice(name, image, newPower);
        }
    }

    /** A fresh device holding exactly the current visible content, as after a clean stop. */
    public PowerLossDevice reopen(Object newPower) {
        synchronized (power) {
            return new PowerLossDevice(name, visible.clone(), newPower);
        }
    }

    /** Direct access to the visible bytes, for corrupting them in tests. */
    public byte[] visibleBytes() {
        synchronized (power) {
            return visible;
        }
    }

    /** A copy of what survives a power cut now: the bytes the last sync made durable. */
    public byte[] durableBytes() {
        synchronized (power) {
            return durable.clone();
        }
    }

    /** Overwrites bytes both visibly and durably, as a corruption of the medium would. */
    public void corrupt(int offset, byte[] bytes) {
        synchronized (power) {
            System.arraycopy(bytes, 0, visible, offset, bytes.length);
            System.arraycopy(bytes, 0, durable, offset, bytes.length);
        }
    }

    private void check(long offset, long length) throws IOException {
        if (dead) {
            throw new IOException(name + ": power lost");
        }
        if (offset < 0 || offset + length > durable.length) {
            throw new IOException(name + ": access [" + offset + ", " + (offset + length) + ") beyond " + durable.length);
        }
    }
}
