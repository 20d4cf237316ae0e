package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The backing stores by device id, their sizes, and which were changed outside writeback since
 * their last sync: punched by a discard or written by a bypassed write. Such a change is
 * durable once its store is synced; the next flush does that.
 *
 * <p>The engine's reads, writes, punches and syncs of the stores go through here, so that no
 * read overlaps a change of the same sectors ({@link BackingRanges}) and so that the engine
 * knows how busy each store keeps it ({@link BackingBusy}); {@link #get} is for sizes, names
 * and the kernel's load probes.
 *
 * <p>Thread-safe: the change generations and refusing flags are atomic; the syncs
 * {@link #syncChanged} runs are serialised per store (its monitor in {@code syncing}). The device table changes only
 * when a volume is attached or detached ({@link VolumeChanges}): a store is added before any
 * request can name its id, and removed once no request can; the id reaches request threads
 * through the front's volume map and the daemons through the engine lock, both of which order
 * the table's plain writes before their reads.
 */
final class BackingStores {
    private final BlockDevice[] devices = new BlockDevice[Layout.MAX_DEVICE_ID + 1];
    private final long[] sectors = new long[Layout.MAX_DEVICE_ID + 1];
    private final boolean[] known = new boolean[Layout.MAX_DEVICE_ID + 1];
    /** Per store: counts its changes outside writeback (bypassed writes, punches). */
    private final AtomicLongArray changes = new AtomicLongArray(Layout.MAX_DEVICE_ID + 1);
    /** Per store: the highest change count read just before a completed sync began (every sync, writeback's included). */
    private final AtomicLongArray synced = new AtomicLongArray(Layout.MAX_DEVICE_ID + 1);
    private final Object[] syncing = new Object[Layout.MAX_DEVICE_ID + 1];
    /** 1 while a volume is being detached: requests naming it are refused, the engine's own I/O goes on. */
    private final AtomicIntegerArray refusing = new AtomicIntegerArray(Layout.MAX_DEVICE_ID + 1);
    private final BackingRanges ranges = new BackingRanges();
    private final BackingBusy busy = new BackingBusy();

    /** Told of a failed sync (see {@link #sync}). */
    private final Health health;

    BackingStores(Map<Integer, BlockDevice> byId, Health health) {
        this.health = health;
        for (int i = 0; i < syncing.length; i++) {
            syncing[i] = new Object();
        }
        for (Map.Entry<Integer, BlockDevice> e : byId.entrySet()) {
            devices[e.getKey()] = e.getValue();
            sectors[e.getKey()] = e.getValue().size() / Layout.SECTOR_SIZE;
            known[e.getKey()] = true;
        }
    }

    /** A volume attached while running: its store serves requests from now on. */
    void add(int deviceId, BlockDevice device) {
        sectors[deviceId] = device.size() / Layout.SECTOR_SIZE;
        synced.set(deviceId, changes.get(deviceId));
        refusing.set(deviceId, 0);
        devices[deviceId] = device;
        known[deviceId] = true;
    }

    /** A detached volume: no line of it is left in the cache and no request names it any more. */
    void remove(int deviceId) {
        known[deviceId] = false;
        devices[deviceId] = null;
        sectors[deviceId] = 0;
        refusing.set(deviceId, 0);
    }

    /** While {@code on}, requests naming {@code deviceId} are refused ({@link #checkRange}); a detach sets it first. */
    void refuseRequests(int deviceId, boolean on) {
        refusing.set(deviceId, on ? 1 : 0);
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
        if (refusing.get(dev) != 0) {
            throw new IOException("volume " + dev + " is being detached");
        }
        if (sector < 0 || nSectors < 0 || sector + nSectors > sectors[dev]) {
            throw new IOException("sectors [" + sector + ", " + (sector + nSectors) + ") are outside volume " + dev + " ("
                    + sectors[dev] + " sectors)");
        }
    }

    /** Reads {@code dst.remaining()} bytes (whole sectors) of a store from {@code sector} on. */
    void read(int dev, ByteBuffer dst, long sector) throws IOException {
        int entry = ranges.acquireRead(dev, sector, sector + (dst.remaining() >> Layout.SECTOR_SHIFT));
        try {
            busy.begin(dev, false);
            try {
                devices[dev].read(dst, sector << Layout.SECTOR_SHIFT);
            } finally {
                busy.end(dev, false);
            }
        } finally {
            // Released whatever happened: a range left held would stall every later overlapping request.
            ranges.release(entry);
        }
    }

    /**
     * Writes {@code src.remaining()} bytes (whole sectors) to a store from {@code sector} on,
     * not synced; {@code through}: past the page cache where the store allows it
     * ({@link BlockDevice#writeThrough}); {@code writeback}: one of writeback's own ({@link BackingBusy}).
     */
    void write(int dev, ByteBuffer src, long sector, boolean through, boolean writeback) throws IOException {
        int entry = ranges.acquireWrite(dev, sector, sector + (src.remaining() >> Layout.SECTOR_SHIFT));
        try {
            busy.begin(dev, writeback);
            try {
                if (through) {
                    devices[dev].writeThrough(src, sector << Layout.SECTOR_SHIFT);
                } else {
                    devices[dev].write(src, sector << Layout.SECTOR_SHIFT);
                }
            } finally {
                busy.end(dev, writeback);
            }
        } finally {
            ranges.release(entry);
        }
    }

    /**
     * The first {@code n} buffers as one run from {@code sector} on, past the page cache where
     * allowed, and durable on return where the store can do that for these bytes alone
     * ({@link BlockDevice#writeDurably}). Returns whether it was; if not, the store is marked
     * changed, so that the next flush syncs it.
     */
    boolean writeDurably(int dev, ByteBuffer[] srcs, int n, long sector) throws IOException {
        long bytes = 0;
        for (int i = 0; i < n; i++) {
            bytes += srcs[i].remaining();
        }
        boolean durable;
        int entry = ranges.acquireWrite(dev, sector, sector + (bytes >> Layout.SECTOR_SHIFT));
        try {
            busy.begin(dev, false);
            try {
                durable = devices[dev].writeDurably(srcs, n, sector << Layout.SECTOR_SHIFT);
            } finally {
                busy.end(dev, false);
            }
        } finally {
            ranges.release(entry);
        }
        if (!durable) {
            changed(dev);
        }
        return durable;
    }

    /** Punches a range of a store (not synced; {@link #syncChanged} does that). */
    void punch(int dev, long sector, long nSectors) throws IOException {
        int entry = ranges.acquireWrite(dev, sector, sector + nSectors);
        try {
            busy.begin(dev, false);
            try {
                devices[dev].discard(sector << Layout.SECTOR_SHIFT, nSectors << Layout.SECTOR_SHIFT);
            } finally {
                busy.end(dev, false);
            }
        } finally {
            ranges.release(entry);
        }
        changed(dev);
    }

    /**
     * A write to a store outside writeback completed (a bypassed write): the next flush syncs
     * it. Called after the write, so that a flush that sees the flag clear cannot be one
     * that the write's caller waits on.
     */
    void changed(int dev) {
        changes.incrementAndGet(dev);
    }

    /**
     * Whether a change outside writeback (a bypassed write not durable by itself, a punch)
     * completed on the store and no sync has completed since: data read from it now may not
     * be durable. Read caching asks, to know whether a start may keep what it caches.
     */
    boolean unsynced(int dev) {
        long c = changes.get(dev);
        return synced.get(dev) < c;
    }

    /**
     * Syncs a store: every completed write to it is on stable storage when this returns;
     * {@code writeback}: for writeback. A failed sync fails the engine, whoever asked for it:
     * the kernel reports a write-back error once per open file, after which the pages it
     * concerned are gone and later syncs succeed, so a retry could turn a lost bypassed write
     * or punch into an fsync that returns success. Writeback's own lines stay dirty in the
     * cache and are written back at the next start.
     */
    void sync(int dev, boolean writeback) throws IOException {
        busy.begin(dev, writeback);
        try {
            long covers = changes.get(dev);
            devices[dev].sync();
            synced.accumulateAndGet(dev, covers, Math::max);
        } catch (IOException e) {
            health.fail(new IOException("syncing backing store " + devices[dev].name() + " failed: " + e.getMessage(), e));
            throw e;
        } finally {
            busy.end(dev, writeback);
        }
    }

    /** Milliseconds the store has had a request of the engine's in flight since start, writeback's counted or not. */
    long busyMillis(int dev, boolean withWriteback) {
        return busy.busyMillis(dev, withWriteback);
    }

    /**
     * Returns once every change to a store completed before the call (a punch, a bypassed
     * write) is synced: by a sync that began after the change, this call's or a concurrent
     * one's (group commit). A flush that finds another's sync under way waits for it and for
     * one more when that one began before its changes: it never returns on a sync still running.
     * Once a store's sync failed the engine has failed, and no later call returns success.
     */
    void syncChanged() throws IOException {
        for (int dev = 1; dev <= Layout.MAX_DEVICE_ID; dev++) {
            long target = changes.get(dev);
            if (synced.get(dev) >= target) {
                continue;
            }
            synchronized (syncing[dev]) {
                if (synced.get(dev) < target) {
                    sync(dev, false);
                }
            }
        }
        health.checkNotFailed();
    }
}
