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
                        next = e.flushQueue.poll();
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
                    write(next);
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
            SegmentBuffer s = null;
            long syncTo = -1;
            if (e.lastFlushedId >= target) {
                syncTo = e.lastFlushedId;
            } else {
                s = e.flushQueue.poll();
                if (s == null) {
                    return;
                }
            }
            e.lock.unlock();
            try {
                if (s != null) {
                    write(s);
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
     * Writes a sealed segment, retrying a failed write twice (rewriting the same bytes at the
     * same place is harmless). A failed sync is never retried: after one, the kernel may have
     * dropped the pages it could not write, and a second sync could succeed without them.
     */
    private void write(SegmentBuffer s) throws IOException {
        SegmentHeader.seal(s.data);
        for (int attempt = 1; ; attempt++) {
            ByteBuffer out = s.data.duplicate();
            out.position(0).limit(SegmentHeader.usedBytes(s.nrLines));
            try {
                engine.cacheDevice.writeThrough(out, Layout.slotOffset(s.slot));
                engine.flushedBytes += SegmentHeader.usedBytes(s.nrLines); // one writer at a time: the device holder
                break;
            } catch (IOException e) {
                if (attempt == WRITE_ATTEMPTS) {
                    throw new IOException("writing segment " + s.id + " to " + engine.cacheDevice.name() + " failed "
                            + attempt + " times: " + e.getMessage(), e);
                }
                log.warn("writing segment {} to {} failed (attempt {} of {}), retrying: {}", s.id, engine.cacheDevice.name(),
                        attempt, WRITE_ATTEMPTS, e.toString());
                if (!pause(attempt * 200L)) {
                    throw new IOException("writing segment " + s.id + " abandoned: the cache is stopping", e);
                }
            }
        }
        engine.lock.lock();
        try {
            engine.flushed(s);
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
