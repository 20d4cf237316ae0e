package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The backing stores by device id, their sizes, and which were changed outside writeback since
 * their last sync: punched by a discard or written by a bypassed write. Such a change is
 * durable once its store is synced; the next flush does that.
 *
 * <p>Thread-safe: the device table is fixed at start; the changed flags are atomic.
 */
final class BackingStores {
    private final BlockDevice[] devices = new BlockDevice[Layout.MAX_DEVICE_ID + 1];
    private final long[] sectors = new long[Layout.MAX_DEVICE_ID + 1];
    private final boolean[] known = new boolean[Layout.MAX_DEVICE_ID + 1];
    private final AtomicIntegerArray changedSinceSync = new AtomicIntegerArray(Layout.MAX_DEVICE_ID + 1);

    BackingStores(Map<Integer, BlockDevice> byId) {
        for (Map.Entry<Integer, BlockDevice> e : byId.entrySet()) {
            devices[e.getKey()] = e.getValue();
            sectors[e.getKey()] = e.getValue().size() / Layout.SECTOR_SIZE;
            known[e.getKey()] = true;
        }
    }

    /** The store of {@code deviceId}, or null. */
    BlockDevice get(int deviceId) {
        return devices[deviceId];
    }

    /** Which device ids this cache serves, indexed by id (for replay). */
    boolean[] knownDevices() {
        return known;
    }

    void checkRange(int dev, long sector, long nSectors) throws IOException {
        if (dev < 0 || dev > Layout.MAX_DEVICE_ID || devices[dev] == null) {
            throw new IllegalArgumentException("no volume with device id " + dev);
        }
        if (sector < 0 || nSectors < 0 || sector + nSectors > sectors[dev]) {
            throw new IOException("sectors [" + sector + ", " + (sector + nSectors) + ") are outside volume " + dev + " ("
                    + sectors[dev] + " sectors)");
        }
    }

    /** Punches a range of a store (not synced; {@link #syncChanged} does that). */
    void punch(int dev, long sector, long nSectors) throws IOException {
        devices[dev].discard(sector << Layout.SECTOR_SHIFT, nSectors << Layout.SECTOR_SHIFT);
        changedSinceSync.set(dev, 1);
    }

    /**
     * A write to a store outside writeback completed (a bypassed write): the next flush syncs
     * it. Called after the write, so that a flush that sees the flag clear cannot be one
     * that the write's caller waits on.
     */
    void changed(int dev) {
        changedSinceSync.set(dev, 1);
    }

    /** Syncs every store punched or written by a bypass since its last sync. */
    void syncChanged() throws IOException {
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            if (changedSinceSync.getAndSet(dev, 0) != 0) {
                try {
                    devices[dev].sync();
                } catch (IOException e) {
                    changedSinceSync.set(dev, 1);
                    throw e;
                }
            }
        }
    }
}
