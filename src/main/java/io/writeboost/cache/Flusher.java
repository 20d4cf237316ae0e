package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;
import io.writeboost.knob.Knob;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Writes sealed RAM segments to their ring slots, one sequential write each, in id order,
 * and syncs the cache device when a flush waits for durability. Flushes that arrive while a
 * sync runs are served together by the next one (group commit). One thread at a time does
 * this device work (it holds the device, {@link SegmentLog#takeDevice}): the flusher, or a
 * flush that found the device idle and does it itself ({@link #runFor}). Also seals the open
 * segment for a waiting flush when its barrier deadline passes: at once with the default
 * deadline 0, since the flusher only looks at it when it has nothing else to write or sync.
 *
 * <p>Thread-safety: the batch arrays and {@link #flushedBytes} belong to whichever thread
 * holds the device. {@link #runFor} expects the {@link EngineLock} held; the flusher thread
 * takes it itself.
 */
final class Flusher extends Daemon {
    private static final Logger log = LogManager.getLogger(Flusher.class);
    static final int WRITE_ATTEMPTS = 3;
    /**
     * Most segments written with one call: full segments in consecutive slots are one
     * sequential run on the device. This disk writes 1.82 GB/s in 1 MiB O_DIRECT writes one at
     * a time and 2.23 GB/s in 4 MiB ones (fio, one run).
     */
    static final int MAX_BATCH = 4;

    private final EngineLock lock;
    private final SegmentLog segments;
    private final BlockDevice device;
    private final KnobValues knobs;
    private final SegmentBuffer[] batch = new SegmentBuffer[MAX_BATCH];
    private final ByteBuffer[] batchData = new ByteBuffer[MAX_BATCH];
    private final int[] positions = new int[MAX_BATCH];
    /** 4 KiB of zeros, aligned for O_DIRECT: the header copy a segment's first append does not write. Never written to. */
    private static final ByteBuffer ZERO_COPY = ByteBuffer.allocateDirect(2 * Layout.HEADER_COPY_SIZE)
            .alignedSlice(Layout.HEADER_COPY_SIZE).limit(Layout.HEADER_COPY_SIZE).slice().asReadOnlyBuffer();
    /** Bytes written to the cache device in segments since start (headers included). */
    private volatile long flushedBytes;

    Flusher(int cacheId, Health health, EngineLock lock, SegmentLog segments, BlockDevice device, KnobValues knobs) {
        super("flusher", cacheId, health);
        this.lock = lock;
        this.segments = segments;
        this.device = device;
        this.knobs = knobs;
    }

    long flushedBytes() {
        return flushedBytes;
    }

    @Override
    protected void work() throws Exception {
        while (true) {
            SegmentBuffer next = null;
            SegmentBuffer append = null;
            int appendSeq = 0, appendLines = 0;
            long syncTarget = -1;
            lock.lock();
            try {
                while (true) {
                    if (health.failed()) {
                        return;
                    }
                    long now = System.nanoTime();
                    if (!segments.deviceBusy()) {
                        if (segments.syncDue()) {
                            syncTarget = segments.flushedPos();
                            segments.takeDevice();
                            break;
                        }
                        next = segments.peekQueued();
                        if (next != null) {
                            segments.takeDevice();
                            break;
                        }
                        // A waiting flush's deadline has passed and the device is free.
                        if (segments.flushDeadlinePassed(now)) {
                            append = segments.takeAppend();
                            if (append != null) {
                                appendSeq = segments.lastAppendSeq();
                                appendLines = segments.lastAppendLines();
                                segments.takeDevice();
                                break;
                            }
                            continue; // it may have sealed a full segment instead
                        }
                    }
                    if (health.closing()) {
                        return;
                    }
                    long deadline = segments.flushDeadlineNanos();
                    if (!segments.deviceBusy() && deadline != 0) {
                        lock.awaitChangedNanos(deadline - now);
                    } else {
                        lock.awaitChanged();
                    }
                }
            } finally {
                lock.unlock();
            }
            try {
                if (append != null) {
                    writeAppend(append, appendSeq, appendLines);
                } else if (next != null) {
                    writeQueued(Long.MAX_VALUE);
                } else {
                    sync(syncTarget);
                }
            } catch (IOException ex) {
                // The cache device lost a write or a sync: acknowledging anything further from
                // it would be a lie, so the engine fails over to the backing stores.
                health.cacheDeviceFailed(ex);
                return;
            } finally {
                lock.lock();
                try {
                    segments.releaseDevice();
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /**
     * Called by a thread waiting for log position {@code target} to be durable while the
     * device is idle, with the lock held and the device taken by the caller: writes the queued
     * segments and the open segment's lines up to {@code target} and syncs, on the caller's
     * own thread. Handing the work to the flusher thread and back costs two wake-ups, about as
     * much as the sync itself on a virtual machine. Returns (lock held) when done, or when
     * nothing more can be written towards {@code target} yet. A failure fails over, as in the
     * flusher.
     */
    void runFor(long target) throws IOException {
        lock.assertHeld();
        long targetId = SegmentLog.idOf(target);
        while (segments.durablePos() < target && !health.failed()) {
            long syncTo = -1;
            SegmentBuffer append = null;
            int appendSeq = 0, appendLines = 0;
            if (segments.flushedPos() >= target) {
                syncTo = segments.flushedPos();
            } else if (segments.queueEmpty()) {
                if (!segments.flushDeadlinePassed(System.nanoTime()) || segments.currentId() != targetId) {
                    return;
                }
                append = segments.takeAppend();
                if (append == null) {
                    continue; // sealed instead, or nothing new
                }
                appendSeq = segments.lastAppendSeq();
                appendLines = segments.lastAppendLines();
            }
            lock.unlock();
            try {
                if (append != null) {
                    writeAppend(append, appendSeq, appendLines);
                } else if (syncTo < 0) {
                    writeQueued(targetId);
                } else {
                    sync(syncTo);
                }
            } catch (IOException ex) {
                health.cacheDeviceFailed(ex);
                throw ex;
            } finally {
                lock.lock();
            }
        }
    }

    /** Syncs the cache device; everything written before is then durable up to log position {@code target}. */
    private void sync(long target) throws IOException {
        try {
            device.sync();
        } catch (IOException ex) {
            throw new IOException("syncing " + device.name() + " failed: " + ex.getMessage(), ex);
        }
        lock.lock();
        try {
            segments.markDurable(target);
        } finally {
            lock.unlock();
        }
    }

    /** Syncs first when segment {@code s} had a header copy written since the last sync (see {@link SegmentBuffer#copyUnsyncedAt}). */
    private void syncIfCopyUnsynced(SegmentBuffer s) throws IOException {
        long target;
        lock.lock();
        try {
            if (!s.copyUnsyncedAt(segments.syncs())) {
                return;
            }
            target = segments.flushedPos();
        } finally {
            lock.unlock();
        }
        sync(target);
    }

    /**
     * Called by the device holder without the lock: takes the head of the flush queue and,
     * while each is full, never appended to, and the next sits in the following slot, up to
     * {@link #MAX_BATCH} segments in all (none past segment {@code upTo}), and writes them.
     */
    private void writeQueued(long upTo) throws IOException {
        int n = 0;
        lock.lock();
        try {
            SegmentBuffer s = segments.pollQueued();
            while (s != null) {
                batch[n++] = s;
                SegmentBuffer following = segments.peekQueued();
                if (n == MAX_BATCH || !s.full() || !s.writtenWhole() || following == null || !following.writtenWhole()
                        || following.slot() != s.slot() + 1 || following.id() > upTo) {
                    break;
                }
                s = segments.pollQueued();
            }
        } finally {
            lock.unlock();
        }
        if (n == 1 && !batch[0].writtenWhole()) {
            writeFinal(batch[0]);
        } else if (n > 0) {
            writeWhole(n);
        }
    }

    /**
     * Writes the first {@code n} sealed segments of {@link #batch}, consecutive in the ring and
     * never appended to, with one call: each is its header copy 0, an empty copy 1 and its
     * lines, so the run is one sequential write.
     */
    private void writeWhole(int n) throws IOException {
        long bytes = 0;
        for (int i = 0; i < n; i++) {
            SegmentBuffer s = batch[i];
            SegmentHeader.seal(s.data(), 0, s.dataCrcUpTo(s.nrLines()));
            bytes += SegmentHeader.usedBytes(s.nrLines());
        }
        SegmentBuffer first = batch[0];
        for (int i = 0; i < n; i++) {
            batchData[i] = batch[i].data().duplicate().position(0).limit(SegmentHeader.usedBytes(batch[i].nrLines()));
        }
        writeRetrying(batchData, n, Layout.slotOffset(first.slot()), first, batch[n - 1].id(), -1, -1);
        flushedBytes += bytes; // one writer at a time: the device holder
        lock.lock();
        try {
            for (int i = 0; i < n; i++) {
                segments.flushed(batch[i], batch[i].nrLines());
                batch[i] = null;
                batchData[i] = null;
            }
            wakeWritebackIfAllowed();
        } finally {
            lock.unlock();
        }
    }

    /** The last write of a sealed segment that flushes appended to before: its remaining lines and final header copy. */
    private void writeFinal(SegmentBuffer s) throws IOException {
        batch[0] = null;
        int from = s.writtenLines();
        if (from < s.nrLines()) {
            syncIfCopyUnsynced(s);
            writeLinesAndCopy(s, from, s.nrLines(), s.sealSeq());
        }
        lock.lock();
        try {
            segments.flushed(s, s.nrLines());
            wakeWritebackIfAllowed();
        } finally {
            lock.unlock();
        }
    }

    /** Appends the open segment's first {@code to} lines with header copy {@code seq} (see {@link SegmentLog#takeAppend}). */
    private void writeAppend(SegmentBuffer s, int seq, int to) throws IOException {
        int from = s.writtenLines();
        syncIfCopyUnsynced(s);
        writeLinesAndCopy(s, from, to, seq);
        lock.lock();
        try {
            segments.appended(s, to);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes lines [from, to) of {@code s} and its header copy {@code seq}, which describes
     * lines [0, to): one run from the slot's start for a segment's first write, else the new
     * lines and then the copy. Not synced.
     */
    private void writeLinesAndCopy(SegmentBuffer s, int from, int to, int seq) throws IOException {
        SegmentHeader.seal(s.data(), seq, s.dataCrcUpTo(to));
        long slotAt = Layout.slotOffset(s.slot());
        if (from == 0) {
            // The other copy's 4 KiB go out as zeros from a buffer of their own, not from the
            // RAM segment: the lock is not held here, and a seal meanwhile (writeback waiting
            // for this segment, the periodic age seal, flush_current_buffer) encodes the final
            // copy there. Sent along, that half-made copy stayed in the slot whenever the final
            // write had no new line to carry it over, and the next start refused the segment
            // as having a damaged header copy once a record vouched for it.
            int copyAt = SegmentHeader.copyOffset(seq);
            ByteBuffer copy = s.data().duplicate().position(copyAt).limit(copyAt + Layout.HEADER_COPY_SIZE);
            ByteBuffer zeros = ZERO_COPY.duplicate();
            batchData[0] = copyAt == 0 ? copy : zeros;
            batchData[1] = copyAt == 0 ? zeros : copy;
            batchData[2] = s.data().duplicate().position(Layout.SEGMENT_HEADER_SIZE).limit(SegmentHeader.usedBytes(to));
            try {
                writeRetrying(batchData, 3, slotAt, s, s.id(), to, seq);
            } finally {
                batchData[1] = batchData[2] = null;
            }
            flushedBytes += SegmentHeader.usedBytes(to);
        } else {
            if (to > from) {
                batchData[0] = s.data().duplicate().position(SegmentHeader.lineOffset(from)).limit(SegmentHeader.lineOffset(to));
                writeRetrying(batchData, 1, slotAt + SegmentHeader.lineOffset(from), s, s.id(), to, seq);
            }
            int copyAt = SegmentHeader.copyOffset(seq);
            batchData[0] = s.data().duplicate().position(copyAt).limit(copyAt + Layout.HEADER_COPY_SIZE);
            writeRetrying(batchData, 1, slotAt + copyAt, s, s.id(), to, seq);
            flushedBytes += (long) (to - from) * Layout.LINE_SIZE + Layout.HEADER_COPY_SIZE;
        }
        batchData[0] = null;
    }

    private void wakeWritebackIfAllowed() {
        // Writeback acts on flushed segments only when a knob lets it run by itself.
        if (knobs.get(Knob.ALLOW_MIGRATE) == 1 || knobs.get(Knob.FORCE_MIGRATE) == 1) {
            lock.wakeDaemons();
        }
    }

    /**
     * Writes {@code n} buffers as one run at {@code at}, retrying a failed write twice
     * (rewriting the same bytes at the same place is harmless). A failed sync is never
     * retried: after one, the kernel may have dropped the pages it could not write, and a
     * second sync could succeed without them.
     */
    private void writeRetrying(ByteBuffer[] data, int n, long at, SegmentBuffer first, long lastId, int lines, int seq)
            throws IOException {
        for (int i = 0; i < n; i++) {
            positions[i] = data[i].position();
        }
        for (int attempt = 1; ; attempt++) {
            try {
                device.writeThrough(data, n, at);
                return;
            } catch (IOException e) {
                String what = first.id() == lastId && seq >= 0 ? "segment " + lastId + " up to line " + lines + " (header copy " + seq + ")"
                        : first.id() == lastId ? "segment " + lastId : "segments " + first.id() + ".." + lastId;
                if (attempt == WRITE_ATTEMPTS) {
                    throw new IOException("writing " + what + " to " + device.name() + " failed "
                            + attempt + " times: " + e.getMessage(), e);
                }
                log.warn("writing {} to {} failed (attempt {} of {}), retrying: {}", what, device.name(),
                        attempt, WRITE_ATTEMPTS, e.toString());
                if (!pause(attempt * 200L)) {
                    throw new IOException("writing " + what + " abandoned: the cache is stopping", e);
                }
                for (int i = 0; i < n; i++) {
                    data[i].position(positions[i]);
                }
            }
        }
    }

    /** Waits before a retry; false when the engine stops or fails meanwhile (then there is no point). */
    private boolean pause(long ms) {
        long deadline = System.nanoTime() + ms * 1_000_000L;
        lock.lock();
        try {
            while (!health.stopped()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return true;
                }
                lock.awaitChangedNanos(left);
            }
            return false;
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            lock.unlock();
        }
    }
}
