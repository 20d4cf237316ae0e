package io.writeboost.cache;

/**
 * Sorts indices of lines by their {@link io.writeboost.format.LineKey} (device, then line: the
 * backing store's order), ties by index (older copies first), in place and without allocating:
 * writeback's batches and the failover's segments go to the backing stores in this order.
 * Stateless.
 */
final class KeyOrder {
    private KeyOrder() {
    }

    /** Sorts {@code a[0..n)}, indices into {@code keys}. */
    static void sort(int[] a, int n, long[] keys) {
        sort(a, 0, n - 1, keys);
    }

    private static void sort(int[] a, int lo, int hi, long[] keys) {
        while (lo < hi) {
            if (hi - lo < 16) {
                for (int i = lo + 1; i <= hi; i++) {
                    int v = a[i];
                    int j = i - 1;
                    while (j >= lo && less(v, a[j], keys)) {
                        a[j + 1] = a[j];
                        j--;
                    }
                    a[j + 1] = v;
                }
                return;
            }
            int pivot = a[(lo + hi) >>> 1];
            int i = lo, j = hi;
            while (i <= j) {
                while (less(a[i], pivot, keys)) {
                    i++;
                }
                while (less(pivot, a[j], keys)) {
                    j--;
                }
                if (i <= j) {
                    int t = a[i];
                    a[i] = a[j];
                    a[j] = t;
                    i++;
                    j--;
                }
            }
            if (j - lo < hi - i) {
                sort(a, lo, j, keys);
                lo = i;
            } else {
                sort(a, i, hi, keys);
                hi = j;
            }
        }
    }

    private static boolean less(int x, int y, long[] keys) {
        long kx = keys[x], ky = keys[y];
        return kx != ky ? kx < ky : x < y;
    }
}
