package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.BackingIdentity;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.format.VolumeTable;
import io.writeboost.recovery.Recovery;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The volume table while the cache runs: attaches and detaches volumes, each change written
 * as the next {@link VolumeTable} copy and synced before it counts (docs/FORMAT.md, "Volume
 * table copies"). The one sync of that copy is the instant a change happens: a crash before it
 * leaves the old table, after it the new one, and nothing else on the cache device depends on
 * which.
 *
 * <p>Thread-safe: changes are serialised on this object's monitor, which is held across their
 * device I/O and writeback waits but never together with the {@link EngineLock} across I/O;
 * the engine lock is taken only for the RAM steps.
 */
final class VolumeChanges {
    private static final Logger log = LogManager.getLogger(VolumeChanges.class);

    private final BlockDevice cache;
    private final EngineLock lock;
    private final Health health;
    private final LineTable lines;
    private final SegmentLog segments;
    private final BackingStores backings;
    private final KnobValues knobs;
    private final Writeback writeback;
    private final RecordWriter records;
    private final Durability durability;
    private final StreamStaging staging;

    /** The newest table written (or read at start); guarded by this. */
    private VolumeTable table;
    /** The header with the current table, for any thread. */
    private volatile Superblock superblock;

    VolumeChanges(BlockDevice cache, Superblock superblock, VolumeTable table, EngineLock lock, Health health, LineTable lines,
                  SegmentLog segments, BackingStores backings, KnobValues knobs, Writeback writeback, RecordWriter records,
                  Durability durability, StreamStaging staging) {
        this.cache = cache;
        this.superblock = superblock.withVolumes(table.volumes());
        this.table = table;
        this.lock = lock;
        this.health = health;
        this.lines = lines;
        this.segments = segments;
        this.backings = backings;
        this.knobs = knobs;
        this.writeback = writeback;
        this.records = records;
        this.durability = durability;
        this.staging = staging;
    }

    Superblock superblock() {
        return superblock;
    }

    /**
     * Adds {@code device} as volume {@code name} under a device id no line in the cache can
     * name; {@code path} is recorded for the operator, {@code identity} for the check at every
     * later start that the store is still this one (as format records it). The caller has checked that the store
     * is not in use elsewhere and not a volume under another name; this checks the name, the
     * size and the table's room. Returns the new entry once its table copy is durable.
     */
    synchronized VolumeEntry attach(String name, String path, BackingIdentity identity, BlockDevice device) throws IOException {
        health.checkUsable();
        checkName(name);
        int pathLimit = identity.kind() == BackingIdentity.Kind.NONE ? Integer.MAX_VALUE : VolumeEntry.MAX_PATH_BYTES;
        if (path.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > pathLimit) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.INVALID, path + ": path longer than "
                    + VolumeEntry.MAX_PATH_BYTES + " bytes");
        }
        for (VolumeEntry v : table.volumes()) {
            if (v.name().equals(name)) {
                throw new VolumeRefusedException(VolumeRefusedException.Reason.EXISTS, "a volume named '" + name
                        + "' exists already (device id " + v.deviceId() + ", " + v.path() + ")");
            }
        }
        try {
            CacheEngine.checkVolume(Layout.MIN_DEVICE_ID, device.size(), device.name());
        } catch (FormatException e) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.INVALID, e.getMessage());
        }
        int id = freeId();
        VolumeEntry entry = new VolumeEntry(id, device.size(), name, path, identity);
        List<VolumeEntry> volumes = new ArrayList<>(table.volumes());
        volumes.add(entry);
        write(table.next(volumes, table.retiredAt()));
        lock.lock();
        try {
            knobs.resetMigrateThreshold(id);
            backings.add(id, device);
        } finally {
            lock.unlock();
        }
        writeback.watchLoad(id);
        log.info("attached {} as volume '{}' (device id {}, {} bytes; volume table generation {})", path, name, id, device.size(),
                table.generation());
        return entry;
    }

    /**
     * Removes volume {@code deviceId}: requests naming it are refused from now on, its dirty
     * lines are written back (writeback runs as for a drain until none is left, sealing the open
     * segment as it goes), its store synced, its clean lines dropped, the superblock record
     * written, and then the table without it. The caller has made sure nobody uses the volume.
     * Refused for the last volume (a cache has at least one). Returns the removed entry; the
     * caller closes the store.
     */
    synchronized VolumeEntry detach(int deviceId) throws IOException {
        health.checkUsable();
        VolumeEntry entry = null;
        List<VolumeEntry> rest = new ArrayList<>();
        for (VolumeEntry v : table.volumes()) {
            if (v.deviceId() == deviceId) {
                entry = v;
            } else {
                rest.add(v);
            }
        }
        if (entry == null) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.NO_SUCH_VOLUME, "no volume with device id " + deviceId);
        }
        if (rest.isEmpty()) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.INVALID, "'" + entry.name()
                    + "' is the cache's only volume; stop the cache instead (with --drain-on-stop to leave the store complete)");
        }
        long t0 = System.nanoTime();
        log.info("detaching volume '{}' (device id {}): writing back {} dirty line(s)", entry.name(), deviceId,
                lock.read(() -> lines.dirtyLines(deviceId)));
        backings.refuseRequests(deviceId, true);
        boolean removed = false;
        try {
            staging.writeOutAll();
            durability.flushNow();
            awaitWrittenBack(deviceId, entry.name());
            backings.sync(deviceId, false);
            long retiredAt;
            int dropped;
            lock.lock();
            try {
                dropped = lines.dropDevice(deviceId);
                // The open segment may hold a clean line of the volume; no later segment can.
                retiredAt = Math.max(1, segments.currentId());
            } finally {
                lock.unlock();
            }
            // The record first: a start after the table's change replays no segment that
            // held a dirty line of the volume, so nothing is written back to a store it has left.
            durability.commitRecord();
            long[] retired = table.retiredAt();
            retired[deviceId] = retiredAt;
            write(table.next(rest, retired));
            removed = true;
            writeback.unwatchLoad(deviceId);
            lock.lock();
            try {
                backings.remove(deviceId);
            } finally {
                lock.unlock();
            }
            log.info("detached volume '{}' (device id {}, {}) in {} ms: its store holds all its data; {} clean line(s) dropped; "
                    + "volume table generation {}", entry.name(), deviceId, entry.path(), (System.nanoTime() - t0) / 1_000_000,
                    dropped, table.generation());
            return entry;
        } finally {
            if (!removed) {
                backings.refuseRequests(deviceId, false);
            }
        }
    }

    /** Lock not held: returns once {@code deviceId} has no dirty line, writeback forced to run meanwhile. */
    private void awaitWrittenBack(int deviceId, String name) throws IOException {
        long lastReport = System.nanoTime();
        lock.lock();
        try {
            segments.beginDrain();
            try {
                while (lines.dirtyLines(deviceId) > 0) {
                    health.checkUsable();
                    if (segments.openHasLines()) {
                        segments.seal();
                    }
                    lock.awaitChangedNanos(TimeUnit.MILLISECONDS.toNanos(100));
                    long now = System.nanoTime();
                    if (now - lastReport > TimeUnit.SECONDS.toNanos(2)) {
                        lastReport = now;
                        log.info("detaching '{}': {} dirty line(s) left", name, lines.dirtyLines(deviceId));
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while writing back volume '" + name + "'", e);
            } finally {
                segments.endDrain();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * An id no line in the cache names: one never used since the format, else one whose
     * volume was detached before the segments written back (the newest record says so).
     */
    private int freeId() throws IOException {
        boolean[] taken = new boolean[Layout.MAX_DEVICE_ID + 1];
        for (VolumeEntry v : table.volumes()) {
            taken[v.deviceId()] = true;
        }
        long[] retired = table.retiredAt();
        for (int id = Layout.MIN_DEVICE_ID; id <= Layout.MAX_DEVICE_ID; id++) {
            if (!taken[id] && retired[id] == 0) {
                return id;
            }
        }
        durability.commitRecord();
        long migrated = records.recordedMigratedId();
        for (int id = Layout.MIN_DEVICE_ID; id <= Layout.MAX_DEVICE_ID; id++) {
            if (!taken[id] && retired[id] <= migrated) {
                return id;
            }
        }
        throw new VolumeRefusedException(VolumeRefusedException.Reason.NO_ROOM, table.volumes().size() == Layout.MAX_DEVICE_ID
                ? "the cache has " + Layout.MAX_DEVICE_ID + " volumes, as many as it can"
                : "every free device id still names lines of a detached volume that are not written back yet; try again "
                + "once writeback has caught up (or write 1 to drain)");
    }

    static void checkName(String name) throws VolumeRefusedException {
        String problem = VolumeEntry.nameProblem(name);
        if (problem != null) {
            throw new VolumeRefusedException(VolumeRefusedException.Reason.INVALID, problem);
        }
    }

    /** Writes {@code next} to its copy and syncs; from then on it is the table. A failed write or sync fails over (docs/ENGINE.md, "Failure"). */
    private void write(VolumeTable next) throws IOException {
        try {
            Recovery.writeVolumeTable(cache, next);
        } catch (IOException e) {
            // The copy may or may not be durable: only the next start, reading it back, can tell.
            health.cacheDeviceFailed(new IOException("writing volume table generation " + next.generation() + " to " + cache.name()
                    + " failed: " + e.getMessage(), e));
            throw e;
        }
        table = next;
        superblock = superblock.withVolumes(next.volumes());
    }
}
