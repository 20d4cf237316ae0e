package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.LostRange;
import io.writeboost.format.SuperblockRecord;

import java.io.IOException;
import java.util.List;

/**
 * Writes the superblock record: last_migrated_segment_id, the last segment it vouches for as
 * durable (last_flushed_segment_id), whether the stop was clean, and the cache mode. Records alternate between
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
    /**
     * Set when a segment a record vouched for failed its checksum: every later record asks the
     * next start to verify the vouched segments before it starts, so that it finds the damage
     * and refuses, instead of this run's last record hiding it by vouching for less.
     */
    private boolean verifyAtStart;
    /** Data loss accepted since the format, carried by every record (see {@link SuperblockRecord}); a failover adds to it. */
    private long lostLines;
    private long lostRangesTotal;
    private List<LostRange> lostRanges;
    /** Set by a failover: every later record says the cache is abandoned, so that no start replays it. */
    private boolean abandoned;
    /** last_flushed_segment_id of the newest record written: what a start after a crash may take on trust. */
    private volatile long recordedDurableId;

    RecordWriter(BlockDevice device, long nonce, EngineLock lock, SegmentLog segments, long sequence, long migratedId,
                 long lostLines, long lostRangesTotal, List<LostRange> lostRanges, Health health, KnobValues knobs) {
        this.health = health;
        this.knobs = knobs;
        this.device = device;
        this.nonce = nonce;
        this.lock = lock;
        this.segments = segments;
        this.sequence = sequence;
        this.recordedMigratedId = migratedId;
        this.lostLines = lostLines;
        this.lostRangesTotal = lostRangesTotal;
        this.lostRanges = List.copyOf(lostRanges);
    }

    private final Health health;
    /** Read for the cache mode each record carries, so that the mode survives a restart. */
    private final KnobValues knobs;

    /** Writes and syncs a record; called without the engine lock. A failed sync fails over (docs/ENGINE.md, "Failure"). */
    synchronized void write(long migratedId, boolean clean) throws IOException {
        recordedMigratedId = Math.max(recordedMigratedId, migratedId);
        // Vouch only for segments a completed sync made durable before this record: one
        // merely written could be torn by a crash during the sync that follows.
        long durableId = lock.read(segments::lastDurableId);
        SuperblockRecord r = new SuperblockRecord(++sequence, nonce, recordedMigratedId, durableId, clean && !verifyAtStart,
                verifyAtStart, lostLines, lostRangesTotal, lostRanges, knobs.mode().ordinal(), abandoned);
        device.write(r.encode(), r.offset());
        try {
            device.sync();
        } catch (IOException e) {
            // As for a segment's sync: once a sync of the cache device failed, nothing written
            // before it may be taken as durable, and a retry would only hide the loss.
            health.cacheDeviceFailed(new IOException("syncing the superblock record on " + device.name() + " failed: "
                    + e.getMessage(), e));
            throw e;
        }
        recordedDurableId = r.lastFlushedId();
    }

    /**
     * After a failover: from now on every record says the cache is abandoned, with the lines
     * the failover could not write back added to the loss; writes one to each copy (A and B,
     * each synced), so that neither copy a start may read is an older record. Returns whether
     * both made it; the failover calls again until they do (a failing device may take writes
     * again later). Called without the engine lock.
     */
    synchronized boolean abandon(long moreLostLines, List<LostRange> moreLost) {
        if (!abandoned) {
            abandoned = true;
            List<LostRange> all = new java.util.ArrayList<>(lostRanges);
            all.addAll(moreLost);
            lostRanges = List.copyOf(all.subList(0, Math.min(all.size(), SuperblockRecord.MAX_STORED_RANGES)));
            lostLines += moreLostLines;
            lostRangesTotal += moreLost.size();
        }
        boolean written = true;
        for (int copy = 0; copy < 2; copy++) {
            SuperblockRecord r = new SuperblockRecord(++sequence, nonce, recordedMigratedId, recordedDurableId, false,
                    verifyAtStart, lostLines, lostRangesTotal, lostRanges, knobs.mode().ordinal(), true);
            try {
                device.write(r.encode(), r.offset());
                device.sync();
            } catch (IOException e) {
                written = false;
            }
        }
        return written;
    }

    /** Whether a failover abandoned the cache (every record written since says so). */
    synchronized boolean abandoned() {
        return abandoned;
    }

    /** A vouched segment failed its checksum: every later record asks the next start to verify. */
    synchronized void verifyAtNextStart() {
        verifyAtStart = true;
    }

    /** last_migrated_segment_id of the newest record written. */
    synchronized long recordedMigratedId() {
        return recordedMigratedId;
    }

    /** The last segment the newest record vouches for. Any thread. */
    long recordedDurableId() {
        return recordedDurableId;
    }
}
