package io.writeboost.recovery;

import io.writeboost.format.Layout;
import io.writeboost.format.LineKey;

import java.util.List;

/**
 * What recovery found on the cache device.
 *
 * @param lastMigratedId from the newest valid superblock record
 * @param nextId         id the next segment written must take
 * @param replay         segments to load into the index, in id order
 * @param cleanShutdown  the record says the last stop was clean
 * @param torn           the segment where replay stopped failed its checksum (a torn write), if true
 * @param discarded      ids of valid-looking segments after the stop point, not replayed and erased
 * @param record         the superblock record recovery went by; null when both copies were damaged
 * @param loss           acknowledged data that could not be recovered (the caller accepted it), or null
 * @param warm           segments at or before last_migrated whose clean entries a start may keep (their other
 *                       entries only remove their keys), in id order; empty for the offline tools
 * @param warmFloor      clean entries of segments at or below this id are never kept: the ring's oldest slots,
 *                       which a crash may have left holding segments the engine had already evicted
 */
public record RecoveryResult(long recordSequence, long lastMigratedId, long nextId, List<ReplaySegment> replay,
                             boolean cleanShutdown, boolean torn, List<Long> discarded, long millis,
                             io.writeboost.format.SuperblockRecord record, DataLoss loss, List<ReplaySegment> warm,
                             long warmFloor) {
    /**
     * The same result with each replayed segment's entries left out: what a running engine
     * keeps once it has loaded them into its line table. The entries take about 10 bytes per
     * line, more than the line table itself, for as long as the result is referenced.
     * {@link #dirtyLines()} and {@link #dirtyLinesByDevice()} need the entries.
     */
    public RecoveryResult withoutEntries() {
        List<ReplaySegment> segments = replay.stream().map(ReplaySegment::withoutEntries).toList();
        return new RecoveryResult(recordSequence, lastMigratedId, nextId, segments, cleanShutdown, torn, discarded, millis,
                record, loss, List.of(), warmFloor);
    }

    /** Lines holding data not yet written back, after applying the replay set in order. */
    public long dirtyLines() {
        long n = 0;
        for (long d : dirtyLinesByDevice()) {
            n += d;
        }
        return n;
    }

    /** {@link #dirtyLines()} by device id (index 0 unused). */
    public long[] dirtyLinesByDevice() {
        java.util.Set<Long> dirtyKeys = new java.util.HashSet<>();
        if (!replay.isEmpty() && replay.get(0).keys() == null) {
            throw new IllegalStateException("this recovery result no longer holds the segments' entries");
        }
        for (ReplaySegment s : replay) {
            for (int k = 0; k < s.nrLines(); k++) {
                long key = s.keys()[k];
                if (LineKey.isTombstone(key)) {
                    dirtyKeys.remove(key & ~LineKey.TOMBSTONE);
                } else if (key != 0 && s.dirty()[k] != 0) {
                    dirtyKeys.add(key);
                }
            }
        }
        long[] byDevice = new long[Layout.MAX_DEVICE_ID + 1];
        for (long key : dirtyKeys) {
            byDevice[LineKey.device(key)]++;
        }
        return byDevice;
    }

    public int replayedLines() {
        int n = 0;
        for (ReplaySegment s : replay) {
            n += s.nrLines();
        }
        return n;
    }
}
