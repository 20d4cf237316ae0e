package io.writeboost.cache;

/**
 * Open-addressing hash index from a line key to the cache line that holds it. The table
 * stores line numbers (+1, so 0 means empty); the key is read back from the line table's
 * {@link LineKeys}, which keeps the index at 4 bytes a slot. Linear probing with
 * backward-shift deletion: no tombstones, so probe lengths do not grow with churn.
 *
 * <p>An entry's bits above those a line number needs hold a tag: the same bits of its key's
 * hash. A probe whose tag differs passes the entry without reading its key, which lies in
 * another array, far from the table (a cache miss). A cache of 2^21 lines (8 GiB) leaves 11
 * bits of tag: one probe in 2048 reads a key that is not the one sought. A line count is a
 * positive {@code int}, so at least one bit is always left: a cache of 2^30 lines (4 TiB) or
 * more, up to {@link LineTable#MAX_SEGMENTS}, reads the key of half the entries it passes.
 *
 * <p>Not thread-safe: the engine lock guards it.
 */
final class LineIndex {
    private final int[] table;
    private final LineKeys keys;
    /** The bits of an entry that hold its line number + 1; the others hold its tag. */
    private final int lineMask;
    private int size;

    /** @param keys the line table's keys; {@code keys.get(line)} must hold the key while the line is indexed */
    LineIndex(LineKeys keys, double loadFactor) {
        this(keys, loadFactor, Integer.numberOfLeadingZeros(Math.max(1, keys.length())));
    }

    /** With {@code tagBits} bits of tag (at most what the line numbers leave free): tests try 0. */
    LineIndex(LineKeys keys, double loadFactor, int tagBits) {
        if (tagBits < 0 || tagBits > Integer.numberOfLeadingZeros(Math.max(1, keys.length()))) {
            throw new IllegalArgumentException(tagBits + " bits of tag");
        }
        this.keys = keys;
        this.table = new int[capacityFor(keys.length(), loadFactor)];
        this.lineMask = tagBits == 0 ? -1 : -1 >>> tagBits;
    }

    /** The table's length for {@code lines} lines at {@code loadFactor}; refused when one array cannot hold it. */
    static int capacityFor(long lines, double loadFactor) {
        long capacity = (long) Math.ceil(lines / loadFactor) + 1;
        if (capacity > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("cache too large for one index: " + lines + " lines");
        }
        return (int) capacity;
    }

    int capacity() {
        return table.length;
    }

    int size() {
        return size;
    }

    private static long hash(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        h ^= h >>> 29;
        h *= 0xBF58476D1CE4E5B9L;
        return h ^ (h >>> 32);
    }

    private int home(long hash) {
        // Lemire's multiply-shift maps the hash onto any capacity, not just powers of two.
        return (int) (((hash & 0xFFFFFFFFL) * table.length) >>> 32);
    }

    /** The tag bits of an entry for a key of hash {@code hash}: from the hash's upper half, which {@link #home} does not use alone. */
    private int tag(long hash) {
        return (int) (hash >>> 32) & ~lineMask;
    }

    /** The line holding {@code key}, or -1. */
    int get(long key) {
        int lo = LineKeys.low(key);
        short hi = LineKeys.high(key);
        long h = hash(key);
        int tag = tag(h);
        int i = home(h);
        while (true) {
            int v = table[i];
            if (v == 0) {
                return -1;
            }
            if ((v & ~lineMask) == tag && keys.holds((v & lineMask) - 1, lo, hi)) {
                return (v & lineMask) - 1;
            }
            if (++i == table.length) {
                i = 0;
            }
        }
    }

    /** Maps {@code keys.get(line)} to {@code line}, replacing any earlier mapping of that key. */
    void put(int line) {
        long key = keys.get(line);
        int lo = LineKeys.low(key);
        short hi = LineKeys.high(key);
        long h = hash(key);
        int tag = tag(h);
        int entry = tag | (line + 1);
        int i = home(h);
        while (true) {
            int v = table[i];
            if (v == 0) {
                table[i] = entry;
                size++;
                return;
            }
            if ((v & ~lineMask) == tag && keys.holds((v & lineMask) - 1, lo, hi)) {
                table[i] = entry;
                return;
            }
            if (++i == table.length) {
                i = 0;
            }
        }
    }

    /** Removes the mapping of {@code key} if it points at {@code line}; returns whether it did. */
    boolean remove(long key, int line) {
        int lo = LineKeys.low(key);
        short hi = LineKeys.high(key);
        long h = hash(key);
        int tag = tag(h);
        int i = home(h);
        while (true) {
            int v = table[i];
            if (v == 0) {
                return false;
            }
            if ((v & ~lineMask) == tag && keys.holds((v & lineMask) - 1, lo, hi)) {
                if ((v & lineMask) - 1 != line) {
                    return false;
                }
                break;
            }
            if (++i == table.length) {
                i = 0;
            }
        }
        // Backward-shift: pull later members of the probe run into the hole when their
        // home position does not lie cyclically in (hole, j].
        int hole = i;
        int j = i;
        while (true) {
            if (++j == table.length) {
                j = 0;
            }
            int v = table[j];
            if (v == 0) {
                break;
            }
            int home = home(hash(keys.get((v & lineMask) - 1)));
            boolean homeInRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!homeInRange) {
                table[hole] = v;
                hole = j;
            }
        }
        table[hole] = 0;
        size--;
        return true;
    }
}
