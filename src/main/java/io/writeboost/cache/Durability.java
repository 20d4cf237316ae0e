package io.writeboost.cache;

import io.writeboost.knob.Knob;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Flushes (fsync) and group commit: waits until segments are written and synced, sealing the
 * open segment when a flush needs it, and doing the device work on the waiting thread itself
 * when the cache device is idle. Also the two ways the superblock record is written on
 * request: a plain commit, and a vouch for everything flushed so far.
 *
 * <p>Thread-safe: {@link #awaitDurableSegment} and {@link #awaitLogged} expect the
 * {@link EngineLock} held (they release it while waiting or writing); every other method takes
 * it itself and is called without it.
 */
final class Durability {
    private final EngineLock lock;
    private final Health health;
    private final SegmentLog segments;
    private final SegmentVerification verification;
    private final RecordWriter records;
    private final BackingStores backings;
    private final KnobValues knobs;
    private final Flusher flusher;
    private final StreamTable streams;

    Durability(EngineLock lock, Health health, SegmentLog segments, SegmentVerification verification, RecordWriter records,
               BackingStores backings, KnobValues knobs, Flusher flusher, StreamTable streams) {
        this.lock = lock;
        this.health = health;
        this.segments = segments;
        this.verification = verification;
        this.records = records;
        this.backings = backings;
        this.knobs = knobs;
        this.flusher = flusher;
        this.streams = streams;
    }

    /**
     * See {@link CacheEngine#flush}. The log first, then the backing stores bypassed writes
     * changed: a bypass that dropped cached lines synced its data before its tombstones could
     * reach the log, so this order never exposes a dropped line's older backing data.
     */
    void flush() throws IOException {
        sealAndAwait(false);
        backings.syncChanged();
    }

    /** See {@link CacheEngine#flushNow}. */
    void flushNow() throws IOException {
        sealAndAwait(true);
        backings.syncChanged();
    }

    private void sealAndAwait(boolean now) throws IOException {
        lock.lock();
        try {
            health.checkUsable();
            streams.forgetShort(knobs.get(Knob.SEQUENTIAL_CUTOFF) >> io.writeboost.format.Layout.SECTOR_SHIFT);
            long target;
            if (now && segments.openHasLines()) {
                target = SegmentLog.complete(segments.openId());
                segments.seal();
            } else {
                target = segments.endOfLog();
                segments.flushOpenBy(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(knobs.get(Knob.BARRIER_DEADLINE_MS)));
            }
            awaitDurable(target);
            verification.awaitAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Lock held: waits until everything logged so far is durable on the cache device, the open
     * segment's new lines appended at once (no barrier deadline: the caller holds a request).
     */
    void awaitLogged() throws IOException {
        lock.assertHeld();
        long target = segments.endOfLog();
        segments.flushOpenBy(System.nanoTime());
        awaitDurable(target);
    }

    /**
     * Lock held: waits until log position {@code target} ({@link SegmentLog#pos}) is durable,
     * appending the open segment's new lines at once if it lies in them, without sealing it.
     */
    void awaitDurablePosition(long target) throws IOException {
        lock.assertHeld();
        if (target <= segments.durablePos()) {
            return;
        }
        segments.flushOpenBy(System.nanoTime());
        awaitDurable(target);
    }

    /** Lock held: waits until segment {@code id} and all before it are durable (sealing it if it is open). */
    void awaitDurableSegment(long id) throws IOException {
        lock.assertHeld();
        awaitDurable(SegmentLog.complete(id));
    }

    /**
     * Lock held: waits until log position {@code target} ({@link SegmentLog#pos}) and all
     * before it are durable. When the device is idle, the waiting thread writes and syncs
     * itself ({@link Flusher#runFor}).
     */
    private void awaitDurable(long target) throws IOException {
        lock.assertHeld();
        if (target <= segments.durablePos()) {
            return;
        }
        segments.requestSync(target);
        lock.signalChanged();
        while (segments.durablePos() < target) {
            health.checkFailure();
            segments.prepareFor(target);
            if (segments.takeDeviceFor(target)) {
                try {
                    flusher.runFor(target);
                } finally {
                    segments.releaseDevice();
                }
                continue;
            }
            try {
                lock.awaitChanged();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for a flush", e);
            }
        }
    }

    /** Writes the superblock record with the current last_migrated id and syncs. */
    void commitRecord() throws IOException {
        records.write(lastMigratedId(), false);
    }

    /**
     * Makes every flushed segment durable (one sync) and writes a record vouching for them,
     * so that a start after a crash need not read them in full.
     */
    void vouchForFlushed() throws IOException {
        long migrated;
        lock.lock();
        try {
            awaitDurableSegment(segments.lastFlushedId());
            migrated = segments.lastMigratedId();
        } finally {
            lock.unlock();
        }
        records.write(migrated, false);
    }

    private long lastMigratedId() {
        return lock.read(segments::lastMigratedId);
    }
}
