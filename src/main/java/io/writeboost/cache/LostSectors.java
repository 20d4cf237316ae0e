package io.writeboost.cache;

import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Sectors whose newest acknowledged data a failover lost (docs/ENGINE.md, "Failure"): a read
 * touching one fails with EIO, as a bad sector's would, until a write or a discard covers it,
 * so that the older data the backing store holds there is never returned as the newest.
 *
 * <p>Per volume the ranges are kept coalesced (ranges that meet or overlap are one). The count
 * is bounded by {@link #MAX_RANGES}: past it a new range is joined to the one before it on the
 * same volume (or after it), so the readable sectors between them read as lost too rather
 * than the memory growing with the damage; a write that lands inside a range splits it.
 *
 * <p>Owns the ranges. Thread-safe: synchronized; {@link #touches} reads a volatile count first,
 * so that reads of a volume without loss take no lock.
 */
final class LostSectors {
    static final int MAX_RANGES = 4096;

    /** Per device id: first sector to last sector (both included), disjoint and not adjacent. */
    private final Map<Integer, TreeMap<Long, Long>> byDevice = new HashMap<>();
    private volatile int count;

    /** Sectors {@code first} to {@code last} (included) of device {@code dev} are lost. */
    synchronized void add(int dev, long first, long last) {
        TreeMap<Long, Long> m = byDevice.computeIfAbsent(dev, d -> new TreeMap<>());
        long f = first, l = last;
        if (count >= MAX_RANGES && !m.isEmpty()) {
            Map.Entry<Long, Long> before = m.floorEntry(f);
            if (before != null) {
                f = before.getKey();
            } else {
                l = Math.max(l, m.ceilingEntry(f).getValue());
            }
        }
        Map.Entry<Long, Long> e = m.floorEntry(f);
        if (e != null && e.getValue() + 1 >= f) {
            f = e.getKey();
            l = Math.max(l, e.getValue());
            m.remove(e.getKey());
            count--;
        }
        while ((e = m.ceilingEntry(f)) != null && e.getKey() <= l + 1) {
            l = Math.max(l, e.getValue());
            m.remove(e.getKey());
            count--;
        }
        m.put(f, l);
        count++;
    }

    /** Whether any of sectors [{@code from}, {@code to}) of device {@code dev} is lost. */
    boolean touches(int dev, long from, long to) {
        if (count == 0 || to <= from) {
            return false;
        }
        synchronized (this) {
            TreeMap<Long, Long> m = byDevice.get(dev);
            if (m == null) {
                return false;
            }
            Map.Entry<Long, Long> e = m.floorEntry(to - 1);
            return e != null && e.getValue() >= from;
        }
    }

    /** Sectors [{@code from}, {@code to}) of device {@code dev} were written or discarded: they hold data again. */
    void covered(int dev, long from, long to) {
        if (count == 0 || to <= from) {
            return;
        }
        synchronized (this) {
            TreeMap<Long, Long> m = byDevice.get(dev);
            if (m == null) {
                return;
            }
            Map.Entry<Long, Long> e = m.floorEntry(from);
            if (e == null || e.getValue() < from) {
                e = m.ceilingEntry(from);
            }
            while (e != null && e.getKey() < to) {
                long f = e.getKey(), l = e.getValue();
                m.remove(f);
                count--;
                if (f < from) {
                    m.put(f, from - 1);
                    count++;
                }
                if (l >= to) {
                    m.put(to, l);
                    count++;
                }
                e = m.higherEntry(f);
            }
        }
    }

    /** How many ranges are held (for tests). */
    int ranges() {
        return count;
    }
}
