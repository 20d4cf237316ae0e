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
            long syncTarget = -1;
            lock.lock();
            try {
                while (true) {
                    if (health.failed()) {
                        return;
                    }
                    long now = System.nanoTime();
                    long sealAt = segments.sealDeadlineNanos();
                    if (!segments.deviceBusy()) {
                        if (segments.syncDue()) {
                            syncTarget = segments.lastFlushedId();
                            segments.takeDevice();
                            break;
                        }
                        next = segments.peekQueued();
                        if (next != null) {
                            segments.takeDevice();
                            break;
                        }
                        // A waiting flush's deadline has passed and the device is free.
                        if (sealAt != 0 && now - sealAt >= 0) {
                            segments.sealWaitedFor();
                            continue;
                        }
                    }
                    if (health.closing()) {
                        return;
                    }
                    if (!segments.deviceBusy() && sealAt != 0) {
                        lock.awaitChangedNanos(sealAt - now);
                    } else {
                        lock.awaitChanged();
                    }
                }
            } finally {
                lock.unlock();
            }
            try {
                if (next != null) {
                    writeQueued(Long.MAX_VALUE);
                } else {
                    sync(syncTarget);
                }
            } catch (IOException ex) {
                // The cache device lost a write or a sync: acknowledging anything further
                // would be a lie, so the engine stops taking I/O.
                health.fail(ex);
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
     * Called by a thread waiting for segment {@code target} to be durable while the device is
     * idle, with the lock held and the device taken by the caller: writes the queued segments
     * up to {@code target} and syncs, on the caller's own thread. Handing the work to the
     * flusher thread and back costs two wake-ups, about as much as the sync itself on a
     * virtual machine. Returns (lock held) when done, or when {@code target} is not sealed
     * yet. A failure fails the engine, as in the flusher.
     */
    void runFor(long target) throws IOException {
        while (segments.lastDurableId() < target && !health.failed()) {
            long syncTo = -1;
            if (segments.lastFlushedId() >= target) {
                syncTo = segments.lastFlushedId();
            } else if (segments.queueEmpty()) {
                return;
            }
            lock.unlock();
            try {
                if (syncTo < 0) {
                    writeQueued(target);
                } else {
                    sync(syncTo);
                }
            } catch (IOException ex) {
                health.fail(ex);
                throw ex;
            } finally {
                lock.lock();
            }
        }
    }

    /** Syncs the cache device; everything written before is then durable up to {@code target}. */
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

    /**
     * Called by the device holder without the lock: takes the head of the flush queue and,
     * while each is full and the next sits in the following slot, up to {@link #MAX_BATCH}
     * segments in all (none past {@code upTo}), and writes them with one call.
     */
    private void writeQueued(long upTo) throws IOException {
        int n = 0;
        lock.lock();
        try {
            SegmentBuffer s = segments.pollQueued();
            while (s != null) {
                batch[n++] = s;
                SegmentBuffer following = segments.peekQueued();
                if (n == MAX_BATCH || !s.full() || following == null || following.slot() != s.slot() + 1 || following.id() > upTo) {
                    break;
                }
                s = segments.pollQueued();
            }
        } finally {
            lock.unlock();
        }
        if (n > 0) {
            write(n);
        }
    }

    /**
     * Writes the first {@code n} sealed segments of {@link #batch}, consecutive in the ring,
     * retrying a failed write twice (rewriting the same bytes at the same place is harmless).
     * A failed sync is never retried: after one, the kernel may have dropped the pages it
     * could not write, and a second sync could succeed without them.
     */
    private void write(int n) throws IOException {
        long bytes = 0;
        for (int i = 0; i < n; i++) {
            SegmentHeader.seal(batch[i].data());
            bytes += SegmentHeader.usedBytes(batch[i].nrLines());
        }
        SegmentBuffer first = batch[0];
        String what = n == 1 ? "segment " + first.id() : "segments " + first.id() + ".." + batch[n - 1].id();
        for (int attempt = 1; ; attempt++) {
            for (int i = 0; i < n; i++) {
                batchData[i] = batch[i].data().duplicate().position(0).limit(SegmentHeader.usedBytes(batch[i].nrLines()));
            }
            try {
                device.writeThrough(batchData, n, Layout.slotOffset(first.slot()));
                flushedBytes += bytes; // one writer at a time: the device holder
                break;
            } catch (IOException e) {
                if (attempt == WRITE_ATTEMPTS) {
                    throw new IOException("writing " + what + " to " + device.name() + " failed "
                            + attempt + " times: " + e.getMessage(), e);
                }
                log.warn("writing {} to {} failed (attempt {} of {}), retrying: {}", what, device.name(),
                        attempt, WRITE_ATTEMPTS, e.toString());
                if (!pause(attempt * 200L)) {
                    throw new IOException("writing " + what + " abandoned: the cache is stopping", e);
                }
            }
        }
        lock.lock();
        try {
            for (int i = 0; i < n; i++) {
                segments.flushed(batch[i]);
                batch[i] = null;
                batchData[i] = null;
            }
            // Writeback acts on flushed segments only when a knob lets it run by itself.
            if (knobs.get(Knob.ALLOW_MIGRATE) == 1 || knobs.get(Knob.FORCE_MIGRATE) == 1) {
                lock.wakeDaemons();
            }
        } finally {
            lock.unlock();
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
