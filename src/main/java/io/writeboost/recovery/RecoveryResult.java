package io.writeboost.recovery;

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
 */
public record RecoveryResult(long recordSequence, long lastMigratedId, long nextId, List<ReplaySegment> replay,
                             boolean cleanShutdown, boolean torn, List<Long> discarded, long millis) {
    /** Lines holding data not yet written back, after applying the replay set in order. */
    public long dirtyLines() {
        java.util.Map<Long, Boolean> dirtyByKey = new java.util.HashMap<>();
        for (ReplaySegment s : replay) {
            for (int k = 0; k < s.nrLines(); k++) {
                long key = s.keys()[k];
                if (key == 0) {
                    continue;
                }
                if (key < 0) {
                    dirtyByKey.remove(key & Long.MAX_VALUE);
                } else if (s.dirty()[k] != 0) {
                    dirtyByKey.put(key, true);
                }
            }
        }
        return dirtyByKey.size();
    }

    public int replayedLines() {
        int n = 0;
        for (ReplaySegment s : replay) {
            n += s.nrLines();
        }
        return n;
    }
}
