package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.SuperblockRecord;

import java.io.IOException;

/**
 * Writes the superblock record: last_migrated_segment_id, the last segment it vouches for as
 * durable (last_flushed_segment_id), and whether the stop was clean. Records alternate between
 * two copies by sequence number; each write is synced before it counts.
 *
 * <p>Thread-safe: writes are serialised on this object's own monitor (they do device I/O, so
 * never under the {@link EngineLock}; {@link #write} takes the engine lock briefly to read the
 * durable id). The recorded last_migrated id only grows, whoever calls.
 */
final class RecordWriter {
    private final BlockDevice device;
    private final long nonce;
    private final EngineLock lock;
    private final SegmentLog segments;

    private long sequence;
    private long recordedMigratedId;
    /** Highest segment id a record may vouch for as completely written (lowered when one fails its checksum). */
    private long vouchLimit = Long.MAX_VALUE;
    /** last_flushed_segment_id of the newest record written: what a start after a crash may take on trust. */
    private volatile long recordedDurableId;

    RecordWriter(BlockDevice device, long nonce, EngineLock lock, SegmentLog segments, long sequence, long migratedId) {
        this.device = device;
        this.nonce = nonce;
        this.lock = lock;
        this.segments = segments;
        this.sequence = sequence;
        this.recordedMigratedId = migratedId;
    }

    /** Writes and syncs a record; called without the engine lock. */
    synchronized void write(long migratedId, boolean clean) throws IOException {
        recordedMigratedId = Math.max(recordedMigratedId, migratedId);
        // Vouch only for segments a completed sync made durable before this record: one
        // merely written could be torn by a crash during the sync that follows.
        long durableId = lock.read(segments::lastDurableId);
        SuperblockRecord r = new SuperblockRecord(++sequence, nonce, recordedMigratedId, Math.min(durableId, vouchLimit), clean);
        device.write(r.encode(), r.offset());
        device.sync();
        recordedDurableId = r.lastFlushedId();
    }

    /** Segment {@code id} failed its checksum: no later record vouches for it or anything after it. */
    synchronized void stopVouchingFrom(long id) {
        vouchLimit = Math.min(vouchLimit, id - 1);
    }

    /** The last segment the newest record vouches for. Any thread. */
    long recordedDurableId() {
        return recordedDurableId;
    }
}
