package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.SegmentHeader;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Writes sealed RAM segments to their ring slots, one sequential write each, in id order,
 * and syncs the cache device when a flush waits for durability. Flushes that arrive while a
 * sync runs are served together by the next one (group commit). Also seals the open segment
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
                    if (e.syncRequestedId > e.lastDurableId && e.lastFlushedId >= e.syncRequestedId) {
                        syncTarget = e.lastFlushedId;
                        break;
                    }
                    next = e.flushQueue.poll();
                    if (next != null) {
                        break;
                    }
                    long now = System.nanoTime();
                    long sealAt = e.sealDeadlineNanos;
                    if (e.sealDeadlineNanos != 0 && now - sealAt >= 0) {
                        if (e.open != null && e.open.id == e.sealDeadlineFor && e.open.nrLines > 0) {
                            e.seal();
                        }
                        e.sealDeadlineNanos = 0;
                        continue;
                    }
                    if (e.closing) {
                        return;
                    }
                    if (e.sealDeadlineNanos != 0) {
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
                    try {
                        e.cacheDevice.sync();
                    } catch (IOException ex) {
                        throw new IOException("syncing " + e.cacheDevice.name() + " failed: " + ex.getMessage(), ex);
                    }
                    e.lock.lock();
                    try {
                        e.lastDurableId = Math.max(e.lastDurableId, syncTarget);
                        e.changed.signalAll();
                    } finally {
                        e.lock.unlock();
                    }
                }
            } catch (IOException ex) {
                // The cache device lost a write or a sync: acknowledging anything further
                // would be a lie, so the engine stops taking I/O.
                e.fail(ex);
                return;
            }
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
                engine.cacheDevice.write(out, Layout.slotOffset(s.slot));
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
