package io.writeboost.cache;

import io.writeboost.knob.Knob;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * dm-writeboost's timed tasks: seal a RAM segment that has sat partly filled for
 * flush_current_buffer_interval seconds, and write the superblock record every
 * commit_super_block_interval seconds. Also, once the flushed log has grown
 * {@link #VOUCH_SEGMENTS} past what the last record vouches for, syncs the cache device and
 * writes a record vouching for it: a start after a crash reads in full only the segments past
 * that point, so this bounds its time whether or not anyone calls fsync, for the cost of
 * two syncs per 256 MiB of log. And it samples the backing stores' load for
 * {@link Writeback#sampleLoadIfDue}, which cannot while a long batch or sync holds it up.
 */
final class Periodic extends Daemon {
    private static final Logger log = LogManager.getLogger(Periodic.class);
    private static final long TICK_MS = 200;
    static final long VOUCH_SEGMENTS = 256;

    private final EngineLock lock;
    private final SegmentLog segments;
    private final RecordWriter records;
    private final Durability durability;
    private final KnobValues knobs;
    private final long vouchSegments;
    private final Writeback writeback;

    Periodic(int cacheId, Health health, EngineLock lock, SegmentLog segments, RecordWriter records, Durability durability,
             KnobValues knobs, long vouchSegments, Writeback writeback) {
        super("periodic", cacheId, health);
        this.lock = lock;
        this.segments = segments;
        this.records = records;
        this.durability = durability;
        this.knobs = knobs;
        this.vouchSegments = vouchSegments;
        this.writeback = writeback;
    }

    @Override
    protected void work() throws Exception {
        long lastCommit = System.nanoTime();
        while (true) {
            boolean commit = false, vouch = false;
            lock.lock();
            try {
                lock.awaitTick(TICK_MS, TimeUnit.MILLISECONDS);
                if (health.stopped()) {
                    return;
                }
                long now = System.nanoTime();
                long flushInterval = knobs.get(Knob.FLUSH_CURRENT_BUFFER_INTERVAL);
                if (flushInterval > 0) {
                    segments.sealIfOlderThan(TimeUnit.SECONDS.toNanos(flushInterval));
                }
                long commitInterval = knobs.get(Knob.COMMIT_SUPER_BLOCK_INTERVAL);
                if (commitInterval > 0 && now - lastCommit >= TimeUnit.SECONDS.toNanos(commitInterval)) {
                    commit = true;
                    lastCommit = now;
                }
                vouch = segments.lastFlushedId() - records.recordedDurableId() >= vouchSegments;
            } finally {
                lock.unlock();
            }
            writeback.sampleLoadIfDue();
            try {
                if (vouch) {
                    durability.vouchForFlushed();
                } else if (commit) {
                    durability.commitRecord();
                }
            } catch (IOException ex) {
                log.error("periodic superblock commit failed: {}", ex.toString());
            }
        }
    }
}
