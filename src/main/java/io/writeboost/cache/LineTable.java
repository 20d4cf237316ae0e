package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;
import io.writeboost.format.SegmentHeader;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.nio.ByteBuffer;
import java.util.Map;

/**
 * What every cache line holds: its key (device, backing line; tombstone bit for a discard
 * record), its per-sector dirty bits, and the index from key to the line holding its newest
 * copy. Lines are numbered {@code slot * 254 + k}; per ring slot the table also keeps how many
 * lines are in use and the newest segment that superseded one of them (that segment must be
 * durable before the slot counts as written back).
 *
 * <p>A line is in the index while it holds the newest copy of a dirty sector of its key (its
 * dirty bits then say which sectors the cache holds), or while it is a <em>clean</em> line: a
 * read-cached copy of the whole line, equal to what the backing store holds, never written
 * back (docs/ENGINE.md, "Read caching"). A line is clean or has dirty bits, never both, so a
 * clean line's byte of dirty bits is free and holds its warm flag instead. Each line also has a
 * <em>hot</em> bit, the second chance of copy-forward ({@link CopyForward}). Everything lives in
 * primitive arrays: 6 ({@link LineKeys}) + 1 + 2/8 bytes per line plus the index's
 * 4 / {@link #INDEX_LOAD}.
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held and checks it
 * ({@link EngineLock#assertHeld}), except {@link #lineCount} (fixed at construction).
 */
final class LineTable {
    private static final Logger log = LogManager.getLogger(LineTable.class);
    static final int LPS = Layout.LINES_PER_SEGMENT;
    /**
     * The index's load factor with every line indexed. A fuller table saves heap but costs a
     * write more probes, and a removal's backward shift reads the key of every entry it
     * passes, tags or not (two arrays, {@link LineKeys}): 0.75 is the fullest at which writes
     * measured no slower than an index without tags (docs/PERFORMANCE.md, "Heap per line").
     */
    static final double INDEX_LOAD = 0.75;
    /**
     * The most segments one line table serves: its index must fit one {@code int[]} (about
     * 6 TiB of lines). Format makes no more; open refuses a superblock with more.
     */
    static final int MAX_SEGMENTS = (int) ((long) ((Integer.MAX_VALUE - 9) * INDEX_LOAD) / LPS);

    private final EngineLock lock;
    private final LineKeys keys;
    /** A line's dirty sectors; for a clean line, {@link #WARM} or 0 (it has no dirty sector). */
    private final byte[] dirty;
    private final LineIndex index;
    private final int[] slotLines;
    private final long[] slotInvalidatedBy;
    private final long[] dirtyLines = new long[Layout.MAX_DEVICE_ID + 1];
    /** One bit per line: a clean (read-cached) line; only while it is indexed. */
    private final long[] clean;
    /**
     * In a clean line's {@link #dirty} byte: its data was durable on its backing store when it
     * was cached (its entry carries {@link SegmentHeader#FLAG_WARM}).
     */
    private static final byte WARM = 1;
    /**
     * One bit per line: the line's key was rewritten or read since this copy was appended
     * (a second chance: a copy made by copy-forward starts without it).
     */
    private final long[] hot;
    /** Lines with dirty bits per slot: a slot with none can be given up without backing-store I/O. */
    private final int[] slotDirty;
    private long cleanLines;

    LineTable(EngineLock lock, int nrSegments) {
        this.lock = lock;
        if (nrSegments > MAX_SEGMENTS) {
            throw new IllegalArgumentException(nrSegments + " segments, above the " + MAX_SEGMENTS + " one line table serves");
        }
        int lines = nrSegments * LPS;
        keys = new LineKeys(lines);
        dirty = new byte[lines];
        index = new LineIndex(keys, INDEX_LOAD);
        slotLines = new int[nrSegments];
        slotInvalidatedBy = new long[nrSegments];
        clean = new long[(lines + 63) >>> 6];
        hot = new long[(lines + 63) >>> 6];
        slotDirty = new int[nrSegments];
    }

    /** The line holding the newest copy of {@code key}, or -1. */
    int lookup(long key) {
        lock.assertHeld();
        return index.get(key);
    }

    long key(int line) {
        lock.assertHeld();
        return keys.get(line);
    }

    int dirtyBits(int line) {
        lock.assertHeld();
        return isClean(line) ? 0 : dirty[line] & 0xFF;
    }

    /** Whether {@code line} is a clean line: every sector cached, equal to the backing store's. */
    boolean isClean(int line) {
        lock.assertHeld();
        return (clean[line >>> 6] & (1L << line)) != 0;
    }

    /** Sectors of {@code line} a read may take from the cache: its dirty ones, or all of a clean line. */
    int cachedBits(int line) {
        lock.assertHeld();
        return isClean(line) ? Layout.FULL_DIRTY : dirty[line] & 0xFF;
    }

    /** Lines with dirty bits in {@code slot}. */
    int dirtyLinesIn(int slot) {
        lock.assertHeld();
        return slotDirty[slot];
    }

    long cleanLines() {
        lock.assertHeld();
        return cleanLines;
    }

    /**
     * Indexes a line just appended for a read miss as its key's clean copy (the key is in no
     * other line); {@code durable}: its backing store had no change outside writeback still
     * unsynced when the data was read, so a start may keep the line (docs/FORMAT.md, "Clean entries").
     */
    void makeClean(int line, boolean durable) {
        lock.assertHeld();
        setClean(line, true);
        dirty[line] = durable ? WARM : 0;
        index.put(line);
    }

    /** Whether clean {@code line} is flagged warm (see {@link #makeClean}). */
    boolean isWarm(int line) {
        lock.assertHeld();
        return isClean(line) && dirty[line] == WARM;
    }

    /** A read hit {@code line}, or a write replaced an older cached copy of its key with it. */
    void markHot(int line) {
        lock.assertHeld();
        hot[line >>> 6] |= 1L << line;
    }

    boolean isHot(int line) {
        lock.assertHeld();
        return (hot[line >>> 6] & (1L << line)) != 0;
    }

    /** Whether {@code line} still holds the indexed copy of its key. */
    boolean isCurrent(int line) {
        lock.assertHeld();
        return index.get(keys.get(line)) == line;
    }

    int linesUsed(int slot) {
        lock.assertHeld();
        return slotLines[slot];
    }

    /** The newest segment that superseded a line of {@code slot}, 0 if none. */
    long invalidatedBy(int slot) {
        lock.assertHeld();
        return slotInvalidatedBy[slot];
    }

    /** Gives the next line of the open segment ({@code k} of {@code slot}) to {@code key}, not dirty yet. */
    void assign(int slot, int k, long key) {
        lock.assertHeld();
        int line = slot * LPS + k;
        keys.set(line, key);
        dirty[line] = 0;
        hot[line >>> 6] &= ~(1L << line);
        slotLines[slot] = k + 1;
    }

    /** Marks sectors {@code bits} of a line dirty and indexes it as its key's newest copy. */
    void makeCurrent(int line, int bits) {
        lock.assertHeld();
        setClean(line, false);
        setDirty(line, bits);
        index.put(line);
    }

    /**
     * ORs more dirty sectors into a line already current (a write into the open segment). A
     * clean line becomes a dirty one with just those sectors: its others stay equal to the
     * backing store's, which reads then use.
     */
    void addDirty(int line, int bits) {
        lock.assertHeld();
        setClean(line, false);
        setDirty(line, (dirty[line] & 0xFF) | bits);
    }

    /**
     * An older copy of a key lost to a newer line in segment {@code byId}, in ring slot
     * {@code bySlot}: not dirty; its slot remembers who, unless it is the same segment (a line
     * frozen by an append, superseded within the open segment). A clean line's slot remembers
     * nothing: the backing store holds its data, so a crash that loses the newer line loses
     * nothing acknowledged.
     */
    void supersede(int line, long byId, int bySlot) {
        lock.assertHeld();
        if (isClean(line)) {
            setClean(line, false);
            return;
        }
        setDirty(line, 0);
        int slot = line / LPS;
        if (slot != bySlot) {
            slotInvalidatedBy[slot] = Math.max(slotInvalidatedBy[slot], byId);
        }
    }

    /**
     * Copy-forward appended {@code line}'s data as {@code fresh} (just assigned the same key):
     * the fresh line becomes the key's copy with the same dirty sectors, or as a clean line not
     * flagged warm, and the old one holds nothing live. Its slot records no superseding segment:
     * {@link CopyForward} has its caller wait for the copy's durability itself, at a log
     * position rather than the whole open segment.
     */
    void moveForward(int line, int fresh) {
        lock.assertHeld();
        if (isClean(line)) {
            setClean(line, false);
            makeClean(fresh, false);
        } else {
            int bits = dirty[line] & 0xFF;
            setDirty(line, 0);
            makeCurrent(fresh, bits);
        }
    }

    /** Drops {@code key}'s current line from the index (its key stays, for the header). */
    void unindex(long key, int line) {
        lock.assertHeld();
        setClean(line, false);
        index.remove(key, line);
    }

    /** A discard of a whole line still in the open segment: the entry itself becomes the tombstone. */
    void turnIntoTombstone(int line) {
        lock.assertHeld();
        long key = keys.get(line);
        setClean(line, false);
        setDirty(line, 0);
        index.remove(key, line);
        keys.set(line, key | LineKey.TOMBSTONE);
    }

    /**
     * Writeback made sectors {@code bits} of {@code line} durable on the backing store: they
     * are clean now, unless the line was reused for another key meanwhile. A line left with no
     * dirty sector leaves the index; reads then go to the backing store.
     */
    void clearDirty(int line, long expectedKey, int bits) {
        lock.assertHeld();
        if (keys.get(line) != expectedKey || isClean(line)) {
            return;
        }
        int left = (dirty[line] & 0xFF) & ~bits;
        setDirty(line, left);
        if (left == 0) {
            index.remove(expectedKey, line);
        }
    }

    /**
     * A volume being detached: every line indexed for {@code deviceId} leaves the index (by then
     * writeback has made them all clean). A walk over every line's key, RAM only; returns how
     * many left.
     */
    int dropDevice(int deviceId) {
        lock.assertHeld();
        int n = 0;
        for (int line = 0; line < keys.length(); line++) {
            long key = keys.get(line);
            if (key > 0 && LineKey.device(key) == deviceId && index.get(key) == line) {
                if (dirtyBits(line) != 0) {
                    log.error("detaching device id {} while line {} is still dirty; this is a bug", deviceId, line);
                    setDirty(line, 0);
                }
                unindex(key, line);
                n++;
            }
        }
        return n;
    }

    /** Forgets what a ring slot held before it takes a new segment. Every line in it is clean by now. */
    void reclaim(int slot) {
        lock.assertHeld();
        int base = slot * LPS;
        for (int k = 0; k < slotLines[slot]; k++) {
            int line = base + k;
            long key = keys.get(line);
            if (key > 0) {
                if (dirtyBits(line) != 0) {
                    log.error("reusing slot {} while line {} is still dirty; this is a bug", slot, line);
                    setDirty(line, 0);
                }
                // FIFO eviction of the slot's clean lines.
                setClean(line, false);
                index.remove(key, line);
            }
            keys.set(line, 0);
        }
        slotLines[slot] = 0;
        slotInvalidatedBy[slot] = 0;
    }

    /**
     * Loads one segment found by recovery into {@code slot}, in id order: its lines supersede
     * older copies of their keys, tombstones included. Keys of devices this cache does not
     * serve are skipped. A clean entry is kept (indexed as a clean line) only when {@code keep}
     * says so for it (flagged warm, above the floor, of a volume attached before the segment:
     * docs/FORMAT.md, "Clean entries"); it then takes the place of any older copy, as the running
     * engine's index had it. Any other clean entry changes nothing but an older clean line of its
     * key, which it drops: an older dirty copy must keep its sectors.
     *
     * <p>{@code writtenBack}: the segment is at or before last_migrated, read for its clean
     * entries only: its dirty entries and tombstones drop their keys (their data is on the
     * backing store) and index nothing.
     */
    void replay(long id, int slot, int nrLines, long[] segmentKeys, byte[] segmentDirty, boolean[] segmentClean,
                boolean[] keep, boolean[] knownDevice, boolean writtenBack) {
        lock.assertHeld();
        slotLines[slot] = nrLines;
        int base = slot * LPS;
        for (int k = 0; k < nrLines; k++) {
            long key = segmentKeys[k];
            int line = base + k;
            if (key == 0) {
                continue;
            }
            int dev = LineKey.device(key);
            if (!knownDevice[dev]) {
                // A clean line of a volume detached after this segment was written is expected.
                if (!segmentClean[k] && !writtenBack) {
                    log.warn("segment {} line {} names device id {}, which this cache does not have; ignored", id, k, dev);
                }
                continue;
            }
            keys.set(line, key);
            long live = key & ~LineKey.TOMBSTONE;
            int older = index.get(live);
            if (segmentClean[k] && !keep[k]) {
                if (older >= 0 && isClean(older)) {
                    unindex(live, older);
                }
                continue;
            }
            if (older >= 0) {
                unindex(live, older); // first: a clean line's byte holds its warm flag, not dirty bits
                setDirty(older, 0);
            }
            if (segmentClean[k]) {
                makeClean(line, true);
            } else if (!writtenBack && !LineKey.isTombstone(key) && segmentDirty[k] != 0) {
                setDirty(line, segmentDirty[k] & 0xFF);
                index.put(line);
            }
        }
    }

    /**
     * A segment whose clean lines a start kept fails its checksum: its clean lines leave the
     * index (they are copies of what the backing store holds; nothing is lost). Returns how many.
     */
    int dropCleanIn(int slot) {
        lock.assertHeld();
        int n = 0;
        int base = slot * LPS;
        for (int k = 0; k < slotLines[slot]; k++) {
            int line = base + k;
            long key = keys.get(line);
            if (key > 0 && isClean(line) && index.get(key) == line) {
                unindex(key, line);
                n++;
            }
        }
        return n;
    }

    /** Writes header copy {@code seq} of segment {@code s}, describing its first {@code nrLines} lines (CRCs filled in later). */
    void encodeHeader(SegmentBuffer s, long nonce, int seq, int nrLines) {
        lock.assertHeld();
        ByteBuffer view = SegmentHeader.encodeFixed(s.data(), s.id(), nonce, nrLines, seq);
        int base = s.slot() * LPS;
        for (int k = 0; k < nrLines; k++) {
            int line = base + k;
            SegmentHeader.encodeEntry(view, seq, k, keys.get(line), (byte) dirtyBits(line), isClean(line), isWarm(line));
        }
    }

    long dirtyLines(int deviceId) {
        lock.assertHeld();
        return dirtyLines[deviceId];
    }

    long[] dirtyLinesByDevice() {
        lock.assertHeld();
        return dirtyLines.clone();
    }

    long totalDirty() {
        lock.assertHeld();
        long n = 0;
        for (long d : dirtyLines) {
            n += d;
        }
        return n;
    }

    long indexedLines() {
        lock.assertHeld();
        return index.size();
    }

    int lineCount() {
        return keys.length();
    }

    /** Heap bytes of the per-line arrays, the index and the per-slot arrays, by structure. */
    void heapBytes(Map<String, Long> into) {
        lock.assertHeld();
        into.put("line keys", keys.heapBytes());
        into.put("dirty bits", (long) dirty.length);
        into.put("clean and hot bits", (long) (clean.length + hot.length) * Long.BYTES);
        into.put("line index", (long) index.capacity() * Integer.BYTES);
        into.put("per slot: lines used, dirty lines, superseded by", (long) slotLines.length * (2 * Integer.BYTES + Long.BYTES));
    }

    /** Only on a line that is not clean: a clean line's byte holds its warm flag. */
    private void setDirty(int line, int bits) {
        lock.assertHeld();
        assert !isClean(line) : "dirty bits set on clean line " + line;
        int before = dirty[line];
        dirty[line] = (byte) bits;
        if ((before == 0) != (bits == 0)) {
            int delta = bits == 0 ? -1 : 1;
            dirtyLines[keys.device(line)] += delta;
            slotDirty[line / LPS] += delta;
        }
    }

    private void setClean(int line, boolean on) {
        lock.assertHeld();
        long bit = 1L << line;
        boolean was = (clean[line >>> 6] & bit) != 0;
        if (was != on) {
            clean[line >>> 6] ^= bit;
            cleanLines += on ? 1 : -1;
        }
        if (was && !on) {
            dirty[line] = 0; // the warm flag goes with the clean state
        }
    }
}
