package io.writeboost.cache;

/**
 * Open-addressing hash index from a line key to the cache line that holds it. The table
 * stores only line numbers (+1, so 0 means empty); the key is read back from the line
 * table's {@link LineKeys}, which keeps the index at 4 bytes a slot. Linear probing with
 * backward-shift deletion: no tombstones, so probe lengths do not grow with churn.
 * Not thread-safe: the engine lock guards it.
 */
final class LineIndex {
    private final int[] table;
    private final LineKeys keys;
    private int size;

    /** @param keys the line table's keys; {@code keys.get(line)} must hold the key while the line is indexed */
    LineIndex(LineKeys keys, double loadFactor) {
        this.keys = keys;
        long capacity = (long) Math.ceil(keys.length() / loadFactor) + 1;
        if (capacity > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("cache too large for one index: " + keys.length() + " lines");
        }
        this.table = new int[(int) capacity];
    }

    int capacity() {
        return table.length;
    }

    int size() {
        return size;
    }

    private int home(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        h ^= h >>> 29;
        h *= 0xBF58476D1CE4E5B9L;
        h ^= h >>> 32;
        // Lemire's multiply-shift maps the hash onto any capacity, not just powers of two.
        return (int) (((h & 0xFFFFFFFFL) * table.length) >>> 32);
    }

    /** The line holding {@code key}, or -1. */
    int get(long key) {
        int lo = LineKeys.low(key);
        short hi = LineKeys.high(key);
        int i = home(key);
        while (true) {
            int v = table[i];
            if (v == 0) {
                return -1;
            }
            if (keys.holds(v - 1, lo, hi)) {
                return v - 1;
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
        int i = home(key);
        while (true) {
            int v = table[i];
            if (v == 0) {
                table[i] = line + 1;
                size++;
                return;
            }
            if (keys.holds(v - 1, lo, hi)) {
                table[i] = line + 1;
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
        int i = home(key);
        while (true) {
            int v = table[i];
            if (v == 0) {
                return false;
            }
            if (keys.holds(v - 1, lo, hi)) {
                if (v - 1 != line) {
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
            int h = home(keys.get(v - 1));
            boolean homeInRange = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
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
