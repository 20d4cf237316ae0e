package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Replayed segments whose checksum is still unchecked, by slot: recovery took their headers on
 * the superblock record's word that they were written completely (a full read of a large
 * cache takes longer than a start should). Each is verified before its data is first read, by
 * the {@link Verifier} in the background, and all of them before any flush is acknowledged or
 * any writeback starts, so a segment the device corrupted at rest costs nothing that was
 * acknowledged in this run and nothing already on the backing stores. Segments written back
 * before the start, loaded for their clean lines, are verified the same way before they are
 * read, but nothing waits for them, and one that fails only loses its clean lines.
 *
 * <p>Thread-safe. The per-slot flags are guarded by the {@link EngineLock}; the count of
 * unverified slots is volatile so that the read path skips every check once it is 0.
 * {@link #ensureVerified} is called without the lock, {@link #awaitAll} with it.
 */
final class SegmentVerification {
    private static final Logger log = LogManager.getLogger(SegmentVerification.class);

    private final BlockDevice device;
    private final int cacheId;
    private final EngineLock lock;
    private final SegmentLog segments;
    private final LineTable lines;
    private final RecordWriter records;
    private final Health health;
    private final boolean[] slotUnverified;
    /** Sequence number of the header copy each unverified slot's segment was loaded from. */
    private final int[] slotSeq;
    /** Ids from here on were written by this run: a slot holding one was reused since the start and needs no check. */
    private final long firstIdOfRun;
    /**
     * Unverified slots of segments already written back, loaded for their clean lines alone:
     * nothing acknowledged depends on them, so flushes do not wait for them, and a failed
     * check only drops their clean lines.
     */
    private final boolean[] slotCleanOnly;
    private volatile int unverifiedSlots;
    /** Unverified slots that are not {@link #slotCleanOnly}: flushes and writeback wait for them. */
    private volatile int unverifiedReplayed;
    private final ConcurrentLinkedQueue<ByteBuffer> buffers = new ConcurrentLinkedQueue<>();
    private final long startedNanos = System.nanoTime();

    SegmentVerification(BlockDevice device, int cacheId, EngineLock lock, SegmentLog segments, LineTable lines,
                        RecordWriter records, Health health, long firstIdOfRun) {
        this.firstIdOfRun = firstIdOfRun;
        this.device = device;
        this.cacheId = cacheId;
        this.lock = lock;
        this.segments = segments;
        this.lines = lines;
        this.records = records;
        this.health = health;
        this.slotUnverified = new boolean[segments.nrSegments()];
        this.slotSeq = new int[segments.nrSegments()];
        this.slotCleanOnly = new boolean[segments.nrSegments()];
    }

    /**
     * At start, before any other thread runs: recovery loaded {@code slot}'s segment from its
     * header copy {@code seq} alone; {@code cleanOnly}: a segment already written back, loaded
     * for its clean lines.
     */
    void markUnverified(int slot, int seq, boolean cleanOnly) {
        slotUnverified[slot] = true;
        slotSeq[slot] = seq;
        slotCleanOnly[slot] = cleanOnly;
        unverifiedSlots++;
        if (!cleanOnly) {
            unverifiedReplayed++;
        }
    }

    /** Replayed slots (not written back before the start) still unverified: what flushes and writeback wait for. Any thread, no lock. */
    int unverifiedReplayed() {
        return unverifiedReplayed;
    }

    /** Slots still unverified. Any thread, no lock. */
    int unverifiedSlots() {
        return unverifiedSlots;
    }

    /** Called without the lock before data is read from the cache device in {@code slot}: verifies its segment first if needed. */
    void ensureVerified(int slot) throws IOException {
        if (unverifiedSlots == 0) {
            return;
        }
        long id;
        int nrLines, seq;
        lock.lock();
        try {
            if (!slotUnverified[slot]) {
                return;
            }
            id = segments.segmentIn(slot);
            if (id >= firstIdOfRun) {
                // Reused since start (a written-back segment's slot): what it holds now was written in this run.
                markVerified(slot);
                return;
            }
            nrLines = lines.linesUsed(slot);
            seq = slotSeq[slot];
        } finally {
            lock.unlock();
        }
        ByteBuffer buf = buffers.poll();
        if (buf == null) {
            buf = ByteBuffer.allocateDirect(Layout.SEGMENT_SIZE);
        }
        try {
            buf.clear().limit(SegmentHeader.usedBytes(nrLines));
            device.read(buf, Layout.slotOffset(slot));
            buf.flip();
            SegmentHeader h = SegmentHeader.decode(buf, SegmentHeader.copyOffset(seq));
            if (h == null || h.id != id || h.nrLines != nrLines || h.seq != seq || !h.dataValid(buf)) {
                // Another thread may have verified this slot while we read it, and writeback
                // reused it since: only a slot still flagged still holds the segment we meant.
                lock.lock();
                try {
                    if (!slotUnverified[slot] || segments.segmentIn(slot) != id) {
                        return;
                    }
                    if (slotCleanOnly[slot]) {
                        int dropped = lines.dropCleanIn(slot);
                        log.warn("cache {}: segment {} (slot {}), written back before the start, fails its checksum; its {} "
                                + "clean line(s) kept by the start are dropped (nothing is lost: the backing store holds "
                                + "their data)", cacheId, id, slot, dropped);
                    }
                } finally {
                    lock.unlock();
                }
                if (!slotCleanOnly[slot]) {
                    segmentCorrupt(id, slot);
                }
            }
        } finally {
            buffers.offer(buf);
        }
        lock.lock();
        try {
            markVerified(slot);
        } finally {
            lock.unlock();
        }
    }

    /** Lock held: {@code slot} needs no more checking. */
    private void markVerified(int slot) {
        lock.assertHeld();
        if (slotUnverified[slot]) {
            slotUnverified[slot] = false;
            unverifiedSlots--;
            if (!slotCleanOnly[slot] && --unverifiedReplayed == 0) {
                log.info("cache {}: every segment replayed at start verified, {} ms after start; flushes and writeback go ahead",
                        cacheId, (System.nanoTime() - startedNanos) / 1_000_000);
                lock.signalAll();
            }
        }
    }

    /**
     * With the lock held: waits until every segment recovery left unverified is verified. A
     * flush acknowledged before that could be lost after all: if one of them failed, the next
     * start would replay the log only up to it, dropping everything written after.
     */
    void awaitAll() throws IOException {
        lock.assertHeld();
        // Verifies what is left itself, alongside the verifier (two readers finish sooner).
        for (int slot = 0; unverifiedReplayed > 0 && slot < slotUnverified.length; slot++) {
            health.checkUsable();
            if (slotUnverified[slot] && !slotCleanOnly[slot]) {
                lock.unlock();
                try {
                    ensureVerified(slot);
                } finally {
                    lock.lock();
                }
            }
        }
        health.checkFailure();
    }

    long heapBytes() {
        return slotUnverified.length * (2L + Integer.BYTES);
    }

    /**
     * A replayed segment fails its checksum: the device changed it after it was written. This
     * run fails, before any flush was acknowledged over it. The record written now keeps
     * vouching for the segment (lowering last_flushed_segment_id to hide it would make the
     * next start cut the log there without a word) and asks the next start to verify every
     * vouched segment: that start finds this one and refuses until the loss is accepted.
     */
    private void segmentCorrupt(long id, int slot) throws IOException {
        IOException ex = new IOException("segment " + id + " (slot " + slot + ") on " + device.name()
                + " fails its checksum: it changed on the device after it was written, and the data a flush acknowledged "
                + "in it is lost. The cache stops; the next start verifies every segment and refuses, naming what is lost, "
                + "until the loss is accepted (--accept-data-loss)");
        records.verifyAtNextStart();
        try {
            records.write(lock.read(segments::lastMigratedId), false);
        } catch (IOException e) {
            ex.addSuppressed(e);
        }
        health.fail(ex);
        throw ex;
    }
}
