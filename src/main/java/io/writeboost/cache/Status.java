package io.writeboost.cache;

/**
 * A consistent snapshot of the engine for status files and logs.
 *
 * @param flushedBytes bytes written to the cache device in segments since start (headers included)
 * @param writtenBackBytes dirty bytes written to the backing stores since start
 * @param stats the seed's matrix, indexed by {@link Stats#WRITE} | {@link Stats#HIT} | {@link Stats#ON_BUFFER} | {@link Stats#FULLSIZE}
 */
public record Status(int cacheId, int nrSegments, long currentSegmentId, int currentSegmentLines, long lastFlushedId,
                     long lastDurableId, long lastMigratedId, long[] dirtyLinesByDevice, long dirtyLines, long indexedLines,
                     long ramBytesInUse, int maxRamBuffers, int segmentsQueuedForFlush, long[] stats, boolean draining,
                     long writebackErrors, String writebackFailing, int[] backingLoadPercent, boolean writebackPausedByLoad,
                     String failure, long flushedBytes, long writtenBackBytes) {

    public long stat(boolean write, boolean hit, boolean onBuffer, boolean fullsize) {
        return stats[(write ? Stats.WRITE : 0) | (hit ? Stats.HIT : 0) | (onBuffer ? Stats.ON_BUFFER : 0) | (fullsize ? Stats.FULLSIZE : 0)];
    }

    /** One line for logs and systemd's STATUS=. */
    public String summary() {
        return dirtyLines + " dirty line(s), last flushed segment " + lastFlushedId + ", last written back " + lastMigratedId
                + (draining ? ", draining" : "") + (writebackFailing != null ? ", writeback failing: " + writebackFailing : "")
                + (failure != null ? ", FAILED: " + failure : "");
    }

    /** Segments flushed to the cache device whose dirty data is not yet on the backing store. */
    public long segmentsAwaitingWriteback() {
        return lastFlushedId - lastMigratedId;
    }
}
