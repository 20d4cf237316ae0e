package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;

import java.util.Map;

/**
 * Which read misses become clean lines (docs/ENGINE.md, "Read caching"), and the guard that
 * keeps an admission from storing stale data.
 *
 * <p><b>Policy.</b> A read that continues a sequential read run of more than read_cache_threshold
 * lines admits nothing (dm-writeboost's rule; runs are tracked per volume by position, like
 * writes for sequential_cutoff, in a {@link StreamTable} of its own). With
 * read_cache_second_access, a missed line is admitted only when it is found in the <em>ghost
 * table</em>: 16-bit fingerprints of recently missed line keys in 8-way buckets, oldest pushed
 * out first, about as many as the cache has lines. A line read once in a scan leaves a
 * fingerprint that ages out; a line read again before that is admitted.
 *
 * <p><b>Guard.</b> A miss reads the backing store without the lock, and the line is admitted
 * under the lock afterwards. Anything that may change the backing store's copy of a line in
 * between must stop the admission: a cached write of the line (it may be written back and leave
 * the index before the admission), and a discard or bypassed write of it (they write the
 * backing store themselves). A reader takes a {@link #ticket()} when it plans; a cached write
 * {@link #invalidate}s its key; a discard or bypass {@link #beginChange}s its range before its
 * first backing-store I/O and {@link #endChange}s it after the last. An admission is allowed
 * when no change of its bucket is under way and none ended or happened since the ticket. Keys
 * share 4096 buckets, so a collision only drops an admission, never lets one through.
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held (and checks it).
 */
final class ReadAdmission {
    private static final int BUCKETS = 4096;
    /** A change of more lines than this marks every bucket at once. */
    private static final int WIDE = BUCKETS / 4;
    private static final int WAYS = 8;
    /** At most 16 Mi fingerprints (32 MiB): past a 64 GiB cache the window is smaller than the cache. */
    private static final int MAX_GHOSTS = 1 << 24;

    private final EngineLock lock;
    private final KnobValues knobs;
    private final StreamTable runs;
    private final short[] ghosts;
    private final int ghostBuckets;

    private long sequence;
    private final long[] changedAt = new long[BUCKETS];
    private final int[] changing = new int[BUCKETS];
    private long allChangedAt;
    private int allChanging;

    private long admitted;
    private long cleanHits;

    ReadAdmission(EngineLock lock, KnobValues knobs, int cacheLines) {
        this.lock = lock;
        this.knobs = knobs;
        this.runs = new StreamTable(lock);
        // One fingerprint per line, in whole buckets of any number: rounding up to a power of
        // two would cost up to 4 bytes per line instead of 2.
        ghostBuckets = (Math.max(WAYS, Math.min(MAX_GHOSTS, cacheLines)) + WAYS - 1) / WAYS;
        ghosts = new short[ghostBuckets * WAYS];
    }

    /**
     * Called once per read request: whether its missed lines may be admitted at all (read
     * caching on, and the request not part of a sequential run longer than the threshold).
     */
    boolean mayAdmit(int dev, long sector, int nSectors) {
        lock.assertHeld();
        long threshold = knobs.get(Knob.READ_CACHE_THRESHOLD);
        if (threshold == 0 || !servesReads()) {
            return false;
        }
        return runs.observe(dev, sector, nSectors) <= threshold * Layout.SECTORS_PER_LINE;
    }

    /**
     * Whether reads use the cache's clean lines and admit new ones: not in pass-through, where
     * only dirty data left from write-back is read from the cache.
     */
    boolean servesReads() {
        lock.assertHeld();
        return knobs.mode() != CacheMode.PASS_THROUGH;
    }

    /** A whole line missed by a read that {@link #mayAdmit}: whether it is admitted this time (its second miss). */
    boolean secondMiss(long key) {
        lock.assertHeld();
        if (knobs.get(Knob.READ_CACHE_SECOND_ACCESS) == 0) {
            return true;
        }
        long h = mix(key);
        short fp = (short) ((h >>> 48) | 1); // never 0, the empty mark
        int base = (int) (((h & 0xFFFFFFFFL) * ghostBuckets) >>> 32) * WAYS;
        for (int i = base; i < base + WAYS; i++) {
            if (ghosts[i] == fp) {
                // Stays remembered: if the line is evicted while still read, its next miss re-admits it.
                return true;
            }
        }
        System.arraycopy(ghosts, base, ghosts, base + 1, WAYS - 1);
        ghosts[base] = fp;
        return false;
    }

    /** The sequence number a reader plans under; {@link #allowed} compares changes against it. */
    long ticket() {
        lock.assertHeld();
        return sequence;
    }

    /** A cached write (or a dropped line) of {@code key}: backing-store reads of it planned before now are stale. */
    void invalidate(long key) {
        lock.assertHeld();
        changedAt[bucket(key)] = ++sequence;
    }

    /** A discard or bypass of lines [first, first + n) of {@code dev} is about to change the backing store. */
    void beginChange(int dev, long first, long n) {
        lock.assertHeld();
        if (n > WIDE) {
            allChanging++;
            return;
        }
        for (long line = first; line < first + n; line++) {
            changing[bucket(LineKey.of(dev, line))]++;
        }
    }

    /** The change {@link #beginChange} announced is complete on the backing store (written, not necessarily synced). */
    void endChange(int dev, long first, long n) {
        lock.assertHeld();
        releaseChange(dev, first, n);
        markChanged(dev, first, n);
    }

    /**
     * The first half of {@link #endChange}: the change no longer counts as under way, but reads
     * planned before it are not yet marked stale. Between the two halves, in the same lock
     * hold, a write-through write asks {@link #allowed} whether anything else changed its lines
     * since its own ticket, to keep what it wrote as clean lines.
     */
    void releaseChange(int dev, long first, long n) {
        lock.assertHeld();
        if (n > WIDE) {
            allChanging--;
            return;
        }
        for (long line = first; line < first + n; line++) {
            changing[bucket(LineKey.of(dev, line))]--;
        }
    }

    /** The second half of {@link #endChange}: backing-store reads of the lines planned before now are stale. */
    void markChanged(int dev, long first, long n) {
        lock.assertHeld();
        long seq = ++sequence;
        if (n > WIDE) {
            allChangedAt = seq;
            return;
        }
        for (long line = first; line < first + n; line++) {
            changedAt[bucket(LineKey.of(dev, line))] = seq;
        }
    }

    /** Whether a line read from the backing store under {@code ticket} may still be admitted. */
    boolean allowed(long key, long ticket) {
        lock.assertHeld();
        int b = bucket(key);
        return allChanging == 0 && changing[b] == 0 && changedAt[b] <= ticket && allChangedAt <= ticket;
    }

    void countAdmitted() {
        lock.assertHeld();
        admitted++;
    }

    void countCleanHit() {
        lock.assertHeld();
        cleanHits++;
    }

    long admitted() {
        lock.assertHeld();
        return admitted;
    }

    long cleanHits() {
        lock.assertHeld();
        return cleanHits;
    }

    /** Heap bytes of the ghost table and the change buckets, by structure. */
    void heapBytes(Map<String, Long> into) {
        lock.assertHeld();
        into.put("read admission: ghost table", (long) ghosts.length * Short.BYTES);
        into.put("read admission: change buckets", (long) BUCKETS * (Long.BYTES + Integer.BYTES));
    }

    private static int bucket(long key) {
        return (int) mix(key) & (BUCKETS - 1);
    }

    private static long mix(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return h ^ (h >>> 29);
    }
}
