package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Writes sealed RAM segments to their ring slots, one sequential write each, in id order,
 * and syncs the cache device when a flush waits for durability. Flushes that arrive while a
 * sync runs are served together by the next one (group commit). One thread at a time does
 * this device work (it holds {@link CacheEngine#deviceBusy}): the flusher, or a flush that
 * found the device idle and does it itself ({@link #runFor}). Also seals the open segment
 * for a waiting flush when its barrier deadline passes: at once with the default deadline 0,
 * since the flusher only looks at it when it has nothing else to write or sync.
 */
final class Flusher extends Daemon {
    private static final org.apache.logging.log4j.Logger log = org.apache.logging.log4j.LogManager.getLogger(Flusher.class);
    static final int WRITE_ATTEMPTS = 3;
    /**
     * Most segments written with one call: full segments in consecutive slots are one
     * sequential run on the device. This disk writes 1.82 GB/s in 1 MiB O_DIRECT writes one at
     * a time and 2.23 GB/s in 4 MiB ones (fio, one run).
     */
    static final int MAX_BATCH = 4;
    private final SegmentBuffer[] batch = new SegmentBuffer[MAX_BATCH];
    private final ByteBuffer[] batchData = new ByteBuffer[MAX_BATCH];

    Flusher(CacheEngine engine) {
        super(engine, "flusher");
    }

    @Override
    protected void work() throws Exception {
        CacheEngine e = engine;
        while (true) {
            SegmentBuffer next = null;
            long syncTarget = -1;
            e.lock.lock();
            try {
                while (true) {
                    if (e.failure != null) {
                        return;
                    }
                    long now = System.nanoTime();
                    long sealAt = e.sealDeadlineNanos;
                    if (!e.deviceBusy) {
                        if (e.syncRequestedId > e.lastDurableId && e.lastFlushedId >= e.syncRequestedId) {
                            syncTarget = e.lastFlushedId;
                            e.deviceBusy = true;
                            break;
                        }
                        next = e.flushQueue.peek();
                        if (next != null) {
                            e.deviceBusy = true;
                            break;
                        }
                        // A waiting flush's deadline has passed and the device is free.
                        if (sealAt != 0 && now - sealAt >= 0) {
                            e.sealWaitedFor();
                            continue;
                        }
                    }
                    if (e.closing) {
                        return;
                    }
                    if (!e.deviceBusy && sealAt != 0) {
                        e.changed.awaitNanos(sealAt - now);
                    } else {
                        e.changed.await();
                    }
                }
            } finally {
                e.lock.unlock();
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
                e.fail(ex);
                return;
            } finally {
                e.lock.lock();
                try {
                    e.deviceBusy = false;
                    e.changed.signalAll();
                } finally {
                    e.lock.unlock();
                }
            }
        }
    }

    /**
     * Called by a thread waiting for segment {@code target} to be durable while the device is
     * idle, with the lock held and {@link CacheEngine#deviceBusy} taken by the caller: writes
     * the queued segments up to {@code target} and syncs, on the caller's own thread. Handing
     * the work to the flusher thread and back costs two wake-ups, about as much as the sync
     * itself on a virtual machine. Returns (lock held) when done, or when {@code target} is not
     * sealed yet. A failure fails the engine, as in the flusher.
     */
    void runFor(long target) throws IOException {
        CacheEngine e = engine;
        while (e.lastDurableId < target && e.failure == null) {
            long syncTo = -1;
            if (e.lastFlushedId >= target) {
                syncTo = e.lastFlushedId;
            } else if (e.flushQueue.isEmpty()) {
                return;
            }
            e.lock.unlock();
            try {
                if (syncTo < 0) {
                    writeQueued(target);
                } else {
                    sync(syncTo);
                }
            } catch (IOException ex) {
                e.fail(ex);
                throw ex;
            } finally {
                e.lock.lock();
            }
        }
    }

    /** Syncs the cache device; everything written before is then durable up to {@code target}. */
    private void sync(long target) throws IOException {
        CacheEngine e = engine;
        try {
            e.cacheDevice.sync();
        } catch (IOException ex) {
            throw new IOException("syncing " + e.cacheDevice.name() + " failed: " + ex.getMessage(), ex);
        }
        e.lock.lock();
        try {
            e.lastDurableId = Math.max(e.lastDurableId, target);
            e.changed.signalAll();
        } finally {
            e.lock.unlock();
        }
    }

    /**
     * Called by the device holder without the lock: takes the head of the flush queue and,
     * while each is full and the next sits in the following slot, up to {@link #MAX_BATCH}
     * segments in all (none past {@code upTo}), and writes them with one call.
     */
    private void writeQueued(long upTo) throws IOException {
        CacheEngine e = engine;
        int n = 0;
        e.lock.lock();
        try {
            SegmentBuffer s = e.flushQueue.poll();
            while (s != null) {
                batch[n++] = s;
                SegmentBuffer following = e.flushQueue.peek();
                if (n == MAX_BATCH || !s.full() || following == null || following.slot != s.slot + 1 || following.id > upTo) {
                    break;
                }
                s = e.flushQueue.poll();
            }
        } finally {
            e.lock.unlock();
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
            SegmentHeader.seal(batch[i].data);
            bytes += SegmentHeader.usedBytes(batch[i].nrLines);
        }
        SegmentBuffer first = batch[0];
        String what = n == 1 ? "segment " + first.id : "segments " + first.id + ".." + batch[n - 1].id;
        for (int attempt = 1; ; attempt++) {
            for (int i = 0; i < n; i++) {
                batchData[i] = batch[i].data.duplicate().position(0).limit(SegmentHeader.usedBytes(batch[i].nrLines));
            }
            try {
                engine.cacheDevice.writeThrough(batchData, n, Layout.slotOffset(first.slot));
                engine.flushedBytes += bytes; // one writer at a time: the device holder
                break;
            } catch (IOException e) {
                if (attempt == WRITE_ATTEMPTS) {
                    throw new IOException("writing " + what + " to " + engine.cacheDevice.name() + " failed "
                            + attempt + " times: " + e.getMessage(), e);
                }
                log.warn("writing {} to {} failed (attempt {} of {}), retrying: {}", what, engine.cacheDevice.name(),
                        attempt, WRITE_ATTEMPTS, e.toString());
                if (!pause(attempt * 200L)) {
                    throw new IOException("writing " + what + " abandoned: the cache is stopping", e);
                }
            }
        }
        engine.lock.lock();
        try {
            for (int i = 0; i < n; i++) {
                engine.flushed(batch[i]);
                batch[i] = null;
                batchData[i] = null;
            }
        } finally {
            engine.lock.unlock();
        }
    }

    /** Waits before a retry; false when the engine stops or fails meanwhile (then there is no point). */
    private boolean pause(long ms) {
        CacheEngine e = engine;
        long deadline = System.nanoTime() + ms * 1_000_000L;
        e.lock.lock();
        try {
            while (!e.closing && e.failure == null) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return true;
                }
                e.changed.awaitNanos(left);
            }
            return false;
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            e.lock.unlock();
        }
    }
}
