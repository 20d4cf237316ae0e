package io.writeboost.cache;

import io.writeboost.format.Layout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * The log of segments in the ring: which segment each ring slot holds, the open RAM segment
 * new lines go to, sealed segments queued for the flusher, the RAM buffer pool, and the four
 * ids that say how far the log has come:
 *
 * <pre>
 *   lastMigratedId  <=  lastDurableId  <=  lastFlushedId  <  (queued ...)  <  open id  <  nextId
 *   written back,        synced on the       written to the     sealed, in     taking
 *   slot reusable        cache device        cache device       RAM            writes
 * </pre>
 *
 * It also keeps who holds the cache device for segment writes and syncs (one thread at a
 * time: the flusher, or a flush that found it idle), the seal deadline a waiting flush set,
 * and the demand for writeback that does not depend on knobs (writers waiting for a slot,
 * drains).
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held, except
 * {@link #makeRoom}, which may release it while it waits and returns with it held.
 */
final class SegmentLog {
    private static final int LPS = Layout.LINES_PER_SEGMENT;

    private final EngineLock lock;
    private final LineTable lines;
    private final long nonce;
    private final int nrSegments;
    private final long[] slotSegmentId;
    /** The RAM buffer of each slot's segment until it is on the cache device, else null. */
    private final SegmentBuffer[] slotBuffer;

    private SegmentBuffer open;
    private long openSinceNanos;
    private long nextId;
    private long lastFlushedId;
    private long lastDurableId;
    private long lastMigratedId;
    private long syncRequestedId;
    /** When nonzero, the open segment with id {@link #sealDeadlineFor} is sealed at this System.nanoTime(). */
    private long sealDeadlineNanos;
    private long sealDeadlineFor;
    private final ArrayDeque<SegmentBuffer> flushQueue = new ArrayDeque<>();
    private boolean deviceBusy;

    private final ArrayDeque<SegmentBuffer> freeBuffers = new ArrayDeque<>();
    private int buffersAllocated;
    private final int maxBuffers;

    private int writersWaitingForSlot;
    private int drainsInProgress;

    SegmentLog(EngineLock lock, LineTable lines, long nonce, int nrSegments, int maxBuffers) {
        this.lock = lock;
        this.lines = lines;
        this.nonce = nonce;
        this.nrSegments = nrSegments;
        this.slotSegmentId = new long[nrSegments];
        this.slotBuffer = new SegmentBuffer[nrSegments];
        this.maxBuffers = maxBuffers;
    }

    // ---------------------------------------------------------------- start

    /** Recovery found segment {@code id} in {@code slot}. */
    void placeReplayed(long id, int slot) {
        slotSegmentId[slot] = id;
    }

    /** Recovery's outcome: everything before {@code nextId} is on the device, durable, and written back up to {@code migrated}. */
    void startAt(long migrated, long nextId) {
        this.lastMigratedId = migrated;
        this.nextId = nextId;
        this.lastFlushedId = nextId - 1;
        this.lastDurableId = nextId - 1;
        this.syncRequestedId = nextId - 1;
    }

    // ---------------------------------------------------------------- the open segment

    boolean hasOpenRoom() {
        return open != null && !open.full();
    }

    boolean openHasLines() {
        return open != null && open.nrLines() > 0;
    }

    /** Id of the open segment; only while there is one. */
    long openId() {
        return open.id();
    }

    ByteBuffer openData() {
        return open.data();
    }

    /** Whether {@code line} belongs to the open segment (its RAM copy may still change). */
    boolean inOpen(int line) {
        return open != null && slotBuffer[line / LPS] == open;
    }

    /** Appends a line for {@code key} to the open segment (which must have room); returns its line number. */
    int appendLine(long key) {
        int k = open.addLine();
        if (k == 0) {
            openSinceNanos = System.nanoTime();
        }
        lines.assign(open.slot(), k, key);
        return open.slot() * LPS + k;
    }

    /**
     * Seals a full open segment and opens the next one, waiting (lock released) while no RAM
     * buffer is free or the next ring slot still holds data not written back. Nothing is
     * dropped: writers wait for the flusher, and for writeback, which runs whenever a writer
     * waits for a slot. Returns with the lock held and an open segment with room.
     */
    void makeRoom(Health health) throws IOException {
        if (open != null && open.full()) {
            seal();
        }
        while (open == null) {
            health.checkUsable();
            boolean slotFree = nextId - nrSegments <= lastMigratedId;
            if (slotFree && openNext()) {
                return;
            }
            if (!slotFree) {
                writersWaitingForSlot++;
                lock.wakeDaemons();
            }
            try {
                lock.signalChanged();
                lock.awaitChanged();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for cache space", e);
            } finally {
                if (!slotFree) {
                    writersWaitingForSlot--;
                }
            }
        }
    }

    /** Opens segment nextId in its (free) slot; false when no RAM buffer is free. */
    private boolean openNext() {
        SegmentBuffer buf = freeBuffers.poll();
        if (buf == null && buffersAllocated < maxBuffers) {
            buf = new SegmentBuffer();
            buffersAllocated++;
        }
        if (buf == null) {
            return false;
        }
        int slot = Layout.slotOf(nextId, nrSegments);
        lines.reclaim(slot);
        buf.open(nextId, slot);
        slotSegmentId[slot] = nextId;
        slotBuffer[slot] = buf;
        open = buf;
        nextId++;
        return true;
    }

    /** Closes the open segment: encodes its header and queues it for the flusher. */
    void seal() {
        SegmentBuffer s = open;
        if (s == null) {
            return;
        }
        open = null;
        if (sealDeadlineFor == s.id()) {
            sealDeadlineNanos = 0;
        }
        lines.encodeHeader(s, nonce);
        flushQueue.add(s);
        lock.signalChanged();
    }

    /** Seals the open segment if it holds lines and its first line is at least {@code ageNanos} old. */
    void sealIfOlderThan(long ageNanos) {
        if (openHasLines() && System.nanoTime() - openSinceNanos >= ageNanos) {
            seal();
        }
    }

    /**
     * A flush waits for the open segment: seal it at {@code deadlineNanos} (System.nanoTime())
     * unless an earlier deadline is already set for it.
     */
    void sealOpenBy(long deadlineNanos) {
        long deadline = deadlineNanos == 0 ? 1 : deadlineNanos; // 0 means "no deadline set"
        if (sealDeadlineFor != open.id() || sealDeadlineNanos == 0 || deadline - sealDeadlineNanos < 0) {
            sealDeadlineFor = open.id();
            sealDeadlineNanos = deadline;
        }
    }

    /** The pending seal deadline (System.nanoTime()), or 0 when no flush waits for the open segment. */
    long sealDeadlineNanos() {
        return sealDeadlineNanos;
    }

    /** Seals the open segment a flush waits for once its deadline has passed and the device is free. */
    void sealWaitedFor() {
        if (open != null && open.id() == sealDeadlineFor && open.nrLines() > 0) {
            seal();
        }
        sealDeadlineNanos = 0;
    }

    /**
     * A thread waits for segment {@code target} to be durable: seal the open segment if it is
     * part of that, at once when nobody set a deadline for it (the request came from inside
     * the engine), else when the deadline has passed and the device is free.
     */
    void sealFor(long target) {
        if (open != null && open.id() <= target) {
            if (sealDeadlineNanos == 0) {
                seal();
            } else if (!deviceBusy && System.nanoTime() - sealDeadlineNanos >= 0) {
                sealWaitedFor();
            }
        }
    }

    // ---------------------------------------------------------------- flush queue and device

    SegmentBuffer peekQueued() {
        return flushQueue.peek();
    }

    SegmentBuffer pollQueued() {
        return flushQueue.poll();
    }

    boolean queueEmpty() {
        return flushQueue.isEmpty();
    }

    boolean deviceBusy() {
        return deviceBusy;
    }

    /** Takes the cache device for segment writes and syncs; the caller must {@link #releaseDevice} it. */
    void takeDevice() {
        deviceBusy = true;
    }

    void releaseDevice() {
        deviceBusy = false;
        lock.signalChanged();
    }

    /** Takes the device for a thread waiting for {@code target} when it is idle and {@code target} is sealed. */
    boolean takeDeviceFor(long target) {
        if (!deviceBusy && (open == null || open.id() > target)) {
            deviceBusy = true;
            return true;
        }
        return false;
    }

    /** Asks for a sync once segment {@code target} is written. */
    void requestSync(long target) {
        if (syncRequestedId < target) {
            syncRequestedId = target;
        }
    }

    /** A sync was asked for and everything it covers is written. */
    boolean syncDue() {
        return syncRequestedId > lastDurableId && lastFlushedId >= syncRequestedId;
    }

    /** Segment {@code s} is on the cache device: its RAM buffer is free again. */
    void flushed(SegmentBuffer s) {
        lastFlushedId = s.id();
        if (slotBuffer[s.slot()] == s) {
            slotBuffer[s.slot()] = null;
        }
        freeBuffers.push(s);
        lock.signalChanged();
    }

    /** A sync completed: every segment up to {@code target} is durable. */
    void markDurable(long target) {
        lastDurableId = Math.max(lastDurableId, target);
        lock.signalChanged();
    }

    /** Segments up to {@code to} are written back and recorded: their slots may be reused. */
    void markWrittenBack(long to) {
        lastMigratedId = to;
        lock.signalChanged();
    }

    // ---------------------------------------------------------------- slots and ids

    long segmentIn(int slot) {
        return slotSegmentId[slot];
    }

    /** The RAM copy of the segment in {@code slot} while it is not yet on the cache device, else null. */
    SegmentBuffer ramCopy(int slot) {
        return slotBuffer[slot];
    }

    int nrSegments() {
        return nrSegments;
    }

    long lastFlushedId() {
        return lastFlushedId;
    }

    long lastDurableId() {
        return lastDurableId;
    }

    long lastMigratedId() {
        return lastMigratedId;
    }

    /** The segment taking writes now, or the next one to open. */
    long currentId() {
        return open != null ? open.id() : nextId;
    }

    int currentLines() {
        return open != null ? open.nrLines() : 0;
    }

    /** Everything sealed or flushed has reached the device and been written back, and nothing is open with lines. */
    boolean drained() {
        return lastMigratedId >= lastFlushedId && !openHasLines() && flushQueue.isEmpty();
    }

    int queuedCount() {
        return flushQueue.size();
    }

    long ramBytesInUse() {
        return (long) buffersAllocated * Layout.SEGMENT_SIZE;
    }

    int maxBuffers() {
        return maxBuffers;
    }

    long heapBytes() {
        return (long) nrSegments * (Long.BYTES + 8);
    }

    // ---------------------------------------------------------------- writeback demand

    /** Writers wait for a ring slot or a drain runs: writeback must run whatever the knobs say. */
    boolean writebackDemanded() {
        return writersWaitingForSlot > 0 || drainsInProgress > 0;
    }

    boolean writersWaitingForSlot() {
        return writersWaitingForSlot > 0;
    }

    void beginDrain() {
        drainsInProgress++;
        lock.signalAll();
    }

    void endDrain() {
        drainsInProgress--;
    }

    boolean draining() {
        return drainsInProgress > 0;
    }
}
