package io.writeboost.recovery;

import io.writeboost.format.LineKey;
import io.writeboost.format.LostRange;
import io.writeboost.format.VolumeEntry;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Acknowledged data recovery cannot give back: what was damaged ({@code cause}), the segments
 * whose lines are lost (the damaged one and every later one, which the prefix replay cannot
 * reach), how many dirty lines they held and which volume ranges those cover.
 *
 * @param segments    ids of the lost segments, ascending
 * @param dirtyLines  lines (dirty or discarded) the lost segments describe, counted once per line of a volume
 * @param headersLost some lost segment's header could not be read: its lines are unknown, so every volume is
 *                    reported whole and {@code dirtyLines} counts only the lines that are known
 * @param ranges      the affected sectors, by device and ascending sector
 */
public record DataLoss(String cacheName, int cacheId, String cause, List<Long> segments, long dirtyLines, boolean headersLost,
                       List<LostRange> ranges, List<VolumeEntry> volumes) {
    /** Ranges listed in a message; the log lists every one. */
    static final int RANGES_IN_MESSAGE = 32;

    /** Collects the lines of lost segments and turns them into ranges. */
    static final class Builder {
        private final Map<Long, Integer> sectorsByKey = new TreeMap<>();
        private boolean headersLost;

        /** A lost segment's entries: a dirty line loses its dirty sectors, a discard its whole line. */
        void add(long[] keys, byte[] dirty, int nrLines) {
            for (int k = 0; k < nrLines; k++) {
                long key = keys[k];
                if (key == 0) {
                    continue;
                }
                int bits = LineKey.isTombstone(key) ? 0xFF : dirty[k] & 0xFF;
                if (bits != 0) {
                    sectorsByKey.merge(key & ~LineKey.TOMBSTONE, bits, (a, b) -> a | b);
                }
            }
        }

        /** A lost segment whose header cannot be read: its lines could be anywhere. */
        void unknown() {
            headersLost = true;
        }

        DataLoss build(String cacheName, int cacheId, String cause, List<Long> segments, List<VolumeEntry> volumes) {
            List<LostRange> ranges = new ArrayList<>();
            if (headersLost) {
                for (VolumeEntry v : volumes) {
                    ranges.add(new LostRange(v.deviceId(), 0, v.sizeBytes() / 512 - 1));
                }
            } else {
                // Keys sort by device, then line: runs of set bits join across adjacent lines.
                int dev = -1;
                long first = -1, last = -2;
                for (Map.Entry<Long, Integer> e : sectorsByKey.entrySet()) {
                    int d = LineKey.device(e.getKey());
                    long base = LineKey.line(e.getKey()) * 8;
                    for (int i = 0; i < 8; i++) {
                        if ((e.getValue() >> i & 1) == 0) {
                            continue;
                        }
                        long s = base + i;
                        if (d == dev && s == last + 1) {
                            last = s;
                        } else {
                            if (dev >= 0) {
                                ranges.add(new LostRange(dev, first, last));
                            }
                            dev = d;
                            first = last = s;
                        }
                    }
                }
                if (dev >= 0) {
                    ranges.add(new LostRange(dev, first, last));
                }
            }
            return new DataLoss(cacheName, cacheId, cause, List.copyOf(segments), sectorsByKey.size(), headersLost,
                    List.copyOf(ranges), volumes);
        }
    }

    /** "device 1 (name) sectors 0-7", the form every report uses. */
    public String describe(LostRange r) {
        String name = volumes.stream().filter(v -> v.deviceId() == r.device()).map(VolumeEntry::name).findFirst().orElse("?");
        return "device " + r.device() + " (" + name + ") sectors " + r.firstSector() + "-" + r.lastSector();
    }

    /** Lines naming the lost segments, the count of lines and the ranges (at most {@link #RANGES_IN_MESSAGE} of them). */
    public String report() {
        StringBuilder b = new StringBuilder();
        b.append("cache ").append(cacheId).append(" on ").append(cacheName).append(": acknowledged data is lost: ").append(cause)
                .append('\n');
        b.append("  lost segment(s): ").append(segments.isEmpty() ? "none found (a segment damaged along with the record "
                + "cannot be told from one written back long ago)" : segments).append('\n');
        b.append("  dirty lines affected: ").append(dirtyLines)
                .append(headersLost ? " known; a lost header hides how many more, so every volume is reported whole" : "").append('\n');
        b.append("  volume ranges affected (device, first and last sector):").append(ranges.isEmpty() ? " none" : "").append('\n');
        for (int i = 0; i < Math.min(ranges.size(), RANGES_IN_MESSAGE); i++) {
            b.append("    ").append(describe(ranges.get(i))).append('\n');
        }
        if (ranges.size() > RANGES_IN_MESSAGE) {
            b.append("    ... and ").append(ranges.size() - RANGES_IN_MESSAGE).append(" more (`fuse-mount check` lists them all)\n");
        }
        return b.toString();
    }
}
