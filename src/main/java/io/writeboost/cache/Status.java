package io.writeboost.cache;

/**
 * A consistent snapshot of the engine for status files and logs.
 *
 * @param flushedBytes bytes written to the cache device in segments since start (headers included)
 * @param writtenBackBytes dirty bytes written back and synced on the backing stores since start (counted per committed group)
 * @param sealedSegments segments sealed since start: ring slots consumed
 * @param sealedLines lines those segments held
 * @param lostLines dirty lines given up with --accept-data-loss since the format (0 normally)
 * @param lostRangesTotal how many ranges they formed; {@code lostRanges} holds the first ones
 * @param bypassedWrites writes since start whose whole lines went straight to the backing store (sequential_cutoff, write_around_mode)
 * @param bypassedBytes bytes those writes sent to the backing stores
 * @param bypassRequests backing-store requests they took once gathered
 * @param backingLoadPercent per device, what writeback by load goes by: the higher of the kernel's %util and the share of time the engine had a request other than writeback's in flight
 * @param engineBusyPercent per device, the share of time the engine had any request in flight, writeback's included
 * @param cleanLines clean (read-cached) lines in the index now
 * @param readCacheAdmissions lines read misses stored as clean lines since start
 * @param readHitsClean line reads served by clean lines since start (they count as read hits in {@code stats} too)
 * @param segmentsWithDirtyLines of the segments awaiting writeback, those that still hold a dirty line (the others
 *        hold only clean lines or copies superseded since; writeback frees their slots without backing I/O)
 * @param pacing the ring's use, writeback by dirty level and the pacing of writers
 * @param cacheMode the cache_mode knob now
 * @param cacheDeviceErrors errors the cache device returned since start
 * @param ioErrorLimit the io_error_limit knob now
 * @param degraded why the engine serves every volume from its backing store after a failover (or is failing over
 *        to it), null while it uses its cache device
 * @param warmCleanLines clean lines the start kept from the log (docs/FORMAT.md, "Clean entries")
 * @param stagedLinesCachedAtFlush staged lines of bypassed writes a flush logged in the cache instead of waiting for
 *        their backing write (counted in neither {@code bypassedBytes} nor {@code bypassRequests})
 * @param copiedForwardLines hot lines copy-forward appended again since start instead of writing them back or evicting them
 * @param writeAmplification lines appended to the log since start per line appended for users (writes, tombstones,
 *        read admissions): 1 without copy-forward
 * @param stats dm-writeboost's matrix, indexed by {@link Stats#WRITE} | {@link Stats#HIT} | {@link Stats#ON_BUFFER} | {@link Stats#FULLSIZE}
 */
public record Status(int cacheId, int nrSegments, long currentSegmentId, int currentSegmentLines, long lastFlushedId,
                     long lastDurableId, long lastMigratedId, long[] dirtyLinesByDevice, long dirtyLines, long indexedLines,
                     long ramBytesInUse, int maxRamBuffers, int segmentsQueuedForFlush, long[] stats, boolean draining,
                     long writebackErrors, String writebackFailing, int[] backingLoadPercent, boolean writebackPausedByLoad,
                     String failure, long flushedBytes, long writtenBackBytes, long sealedSegments, long sealedLines,
                     long lostLines, long lostRangesTotal, java.util.List<io.writeboost.format.LostRange> lostRanges,
                     long bypassedWrites, long bypassedBytes, long bypassRequests, int[] engineBusyPercent, long cleanLines,
                     long readCacheAdmissions, long readHitsClean, long segmentsWithDirtyLines, Pacing pacing,
                     io.writeboost.knob.CacheMode cacheMode, long cacheDeviceErrors, long ioErrorLimit, String degraded,
                     long warmCleanLines, long stagedLinesCachedAtFlush, long copiedForwardLines, double writeAmplification) {

    /**
     * @param ringSlotsInUse ring slots holding a segment not yet written back, the open one included
     * @param ringUsePercent those slots in percent of the ring (what the watermarks compare)
     * @param writebackByLevel whether writeback runs because the ring's use passed high_watermark (until low_watermark)
     * @param writebackLinesPerSec the rate at which writeback has lately been freeing ring room, in 4 KiB lines a second
     * @param allowedLinesPerSec the rate writers were allowed at the last cached write; 0 when they were not paced
     * @param pausedWrites cached writes paced since start
     * @param pausedNanos the time they paused in total
     * @param lastPauseNanos the last pause
     * @param writebackCapWaitedNanos time writeback waited for writeback_max_mbps and writeback_max_iops since start
     */
    public record Pacing(long ringSlotsInUse, long ringUsePercent, boolean writebackByLevel, long writebackLinesPerSec, long allowedLinesPerSec,
                         long pausedWrites, long pausedNanos, long lastPauseNanos, long writebackCapWaitedNanos) {
    }

    public long stat(boolean write, boolean hit, boolean onBuffer, boolean fullsize) {
        return stats[(write ? Stats.WRITE : 0) | (hit ? Stats.HIT : 0) | (onBuffer ? Stats.ON_BUFFER : 0) | (fullsize ? Stats.FULLSIZE : 0)];
    }

    /** One line for logs and systemd's STATUS=. */
    public String summary() {
        return cacheMode + ", " + dirtyLines + " dirty line(s), last flushed segment " + lastFlushedId + ", last written back " + lastMigratedId
                + (draining ? ", draining" : "") + (writebackFailing != null ? ", writeback failing: " + writebackFailing : "")
                + (lostRangesTotal > 0 ? ", DATA LOST: " + lostLines + " line(s) in " + lostRangesTotal + " range(s)" : "")
                + (degraded != null ? ", DEGRADED: " + degraded : "")
                + (failure != null ? ", FAILED: " + failure : "");
    }

    /** Lines stored per ring slot consumed since start (of {@code LINES_PER_SEGMENT}); 0 before the first seal. */
    public double linesPerSegment() {
        return sealedSegments == 0 ? 0 : (double) sealedLines / sealedSegments;
    }

    /** Segments flushed to the cache device whose dirty data is not yet on the backing store. */
    public long segmentsAwaitingWriteback() {
        return lastFlushedId - lastMigratedId;
    }
}
