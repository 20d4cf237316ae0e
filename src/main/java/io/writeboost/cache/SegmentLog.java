package io.writeboost.cache;

import io.writeboost.format.Layout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The log of segments in the ring: which segment each ring slot holds, the open RAM segment
 * new lines go to, sealed segments queued for the flusher, the RAM buffer pool, and how far
 * the log has come:
 *
 * <pre>
 *   lastMigratedId  <=  durable  <=  flushed  <  (queued ...)  <  open id  <  nextId
 *   written back,       synced on    written to   sealed, in      taking
 *   slot reusable       the device   the device   RAM             writes
 * </pre>
 *
 * "Flushed" and "durable" are log positions ({@link #pos}): a segment id and a line count,
 * because a flush appends the open segment's new lines to its slot without sealing it
 * (format v2's packed flushes); {@link #lastFlushedId} and {@link #lastDurableId} are the
 * complete segments below them.
 *
 * It also keeps who holds the cache device for segment writes and syncs (one thread at a
 * time: the flusher, or a flush that found it idle), the seal deadline a waiting flush set,
 * and the demand for writeback that does not depend on knobs (writers waiting for a slot,
 * drains).
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held and checks it
 * ({@link EngineLock#assertHeld}); {@link #makeRoom} may release it while it waits and returns
 * with it held. {@link #nrSegments} is fixed at construction and needs no lock.
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

    /** Line count of a complete (sealed and written) segment in a log position. */
    static final int COMPLETE = 255;

    private SegmentBuffer open;
    private long openSinceNanos;
    private long nextId;
    private long flushedPos;
    private long durablePos;
    private long lastMigratedId;
    private long syncRequestedPos;
    /** Syncs of the cache device completed since start. */
    private long syncs;
    /** When nonzero, a flush waits for the open segment with id {@link #flushDeadlineFor}: its lines are written at this System.nanoTime(). */
    private long flushDeadlineNanos;
    private long flushDeadlineFor;
    /** Segments sealed since start and the lines they held: the ring's efficiency. */
    private long sealedSegments, sealedLines;
    /** Lines appended since start, copies made by copy-forward included. */
    private long appendedLines;
    /** What the last {@link #takeAppend} froze: its header copy's sequence number and line count. */
    private int lastAppendSeq, lastAppendLines;
    private final ArrayDeque<SegmentBuffer> flushQueue = new ArrayDeque<>();
    private boolean deviceBusy;
    private Thread deviceHolder;

    private final ArrayDeque<SegmentBuffer> freeBuffers = new ArrayDeque<>();
    private int buffersAllocated;
    private final int maxBuffers;

    private int writersWaitingForSlot;
    private int drainsInProgress;
    /** A read admission found the ring too full: writeback may give up clean-only segments for it. */
    private boolean cleanRoomWanted;

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
        lock.assertHeld();
        slotSegmentId[slot] = id;
    }

    /** Recovery's outcome: everything before {@code nextId} is on the device, durable, and written back up to {@code migrated}. */
    void startAt(long migrated, long nextId) {
        lock.assertHeld();
        this.lastMigratedId = migrated;
        this.nextId = nextId;
        this.flushedPos = complete(nextId - 1);
        this.durablePos = flushedPos;
        this.syncRequestedPos = flushedPos;
    }

    // ---------------------------------------------------------------- log positions

    /** The position after line {@code lines} of segment {@code id}; {@link #COMPLETE} for the whole segment. */
    static long pos(long id, int lines) {
        return (id << 8) | lines;
    }

    static long complete(long id) {
        return pos(id, COMPLETE);
    }

    static long idOf(long pos) {
        return pos >>> 8;
    }

    private static boolean isComplete(long pos) {
        return (pos & 0xFF) == COMPLETE;
    }

    /** The last complete segment at or below {@code pos}. */
    private static long completeIdOf(long pos) {
        return isComplete(pos) ? idOf(pos) : idOf(pos) - 1;
    }

    /** What a flush must wait for: every line written so far, whether sealed, queued or in the open segment. */
    long endOfLog() {
        lock.assertHeld();
        return open != null && open.nrLines() > 0 ? pos(open.id(), open.nrLines()) : complete(currentId() - 1);
    }

    long flushedPos() {
        lock.assertHeld();
        return flushedPos;
    }

    long durablePos() {
        lock.assertHeld();
        return durablePos;
    }

    long syncs() {
        lock.assertHeld();
        return syncs;
    }

    // ---------------------------------------------------------------- the open segment

    boolean hasOpenRoom() {
        lock.assertHeld();
        return open != null && !open.full();
    }

    boolean openHasLines() {
        lock.assertHeld();
        return open != null && open.nrLines() > 0;
    }

    /** Whether the open segment holds a line with dirty sectors. */
    boolean openHoldsDirty() {
        lock.assertHeld();
        return openHasLines() && lines.dirtyLinesIn(open.slot()) > 0;
    }

    /** Id of the open segment; only while there is one. */
    long openId() {
        lock.assertHeld();
        return open.id();
    }

    ByteBuffer openData() {
        lock.assertHeld();
        return open.data();
    }

    /** Whether {@code line} belongs to the open segment. */
    boolean inOpen(int line) {
        lock.assertHeld();
        return open != null && slotBuffer[line / LPS] == open;
    }

    /** Whether {@code line} may still be changed in place: in the open segment and not yet frozen for a device write. */
    boolean mutable(int line) {
        lock.assertHeld();
        return inOpen(line) && line % LPS >= open.frozenLines();
    }

    /**
     * Appends {@code key} as a clean line (a copy of what the backing store holds, never
     * written back) with the 4 KiB at {@code srcPos} of {@code src}; only after
     * {@link #roomForClean} said yes. The caller has checked that nothing changed the backing
     * copy since it was read or written ({@link ReadAdmission#allowed}) and that the key is
     * not cached. {@code durable}: see {@link LineTable#makeClean}.
     */
    void appendClean(long key, ByteBuffer src, int srcPos, boolean durable) {
        lock.assertHeld();
        lines.makeClean(appendWhole(key, src, srcPos), durable);
    }

    /** Appends a line for {@code key} holding the 4 KiB at {@code srcPos} of {@code src} (the open segment must have room); returns its line number. */
    int appendWhole(long key, ByteBuffer src, int srcPos) {
        lock.assertHeld();
        int fresh = appendLine(key);
        open.data().put(SegmentBuffer.lineOffset(fresh % LPS), src, srcPos, Layout.LINE_SIZE);
        return fresh;
    }

    /** Appends a line for {@code key} to the open segment (which must have room); returns its line number. */
    int appendLine(long key) {
        lock.assertHeld();
        appendedLines++;
        int k = open.addLine();
        if (k == 0) {
            openSinceNanos = System.nanoTime();
        }
        lines.assign(open.slot(), k, key);
        return open.slot() * LPS + k;
    }

    /**
     * Whether a read miss may append a clean line now, without waiting for anything: the open
     * segment has room, or a full one can be sealed and the next opened at once, with at least
     * {@link #cleanReserve()} ring slots left free for writers after it, a free RAM buffer, no
     * more than half the buffers queued for the flusher, and no drain under way. Reads fill
     * the cache only with room writers do not need: read admission never makes a writer wait,
     * nor a reader. When the ring is the obstacle, asks writeback to give up the oldest
     * segments that hold no dirty line ({@link #cleanRoomWanted()}).
     */
    boolean roomForClean() {
        lock.assertHeld();
        if (drainsInProgress > 0) {
            return false;
        }
        if (open != null && !open.full()) {
            return true;
        }
        if (!ringHasRoom(cleanReserve())) {
            if (!cleanRoomWanted && flushQueue.size() < maxQueuedForNoWait()) {
                cleanRoomWanted = true;
                lock.wakeDaemons();
            }
            return false;
        }
        return openWithoutWaiting();
    }

    /**
     * Whether copy-forward may append a line now, without waiting for anything: as
     * {@link #roomForClean}, with {@link #pressureReserve()} slots left free after it and no
     * writer waiting for a slot. Copy-forward runs on the writeback thread, which is what frees
     * slots: it must never wait for room, and it gives way wherever room is short.
     */
    boolean roomForCopy() {
        lock.assertHeld();
        return writersWaitingForSlot == 0 && roomForStagedLine();
    }

    /**
     * Whether a flush may log a staged line in the cache now instead of waiting for the
     * stager's backing write ({@link StreamStaging#writeOutAll}), without waiting for anything:
     * the open segment has room, or the next one opens at once with {@link #pressureReserve()}
     * slots left free after it, so that only a ring with room pays for the flush's speed.
     */
    boolean roomForStagedLine() {
        lock.assertHeld();
        if (drainsInProgress > 0) {
            return false;
        }
        if (open != null && !open.full()) {
            return true;
        }
        return ringHasRoom(pressureReserve()) && openWithoutWaiting();
    }

    /** Whether opening the next segment leaves at least {@code reserve} ring slots free and the flush queue short. */
    private boolean ringHasRoom(int reserve) {
        lock.assertHeld();
        return flushQueue.size() < maxQueuedForNoWait() && nextId - lastMigratedId <= nrSegments - reserve;
    }

    /** Sealed segments queued for the flusher beyond which appends that must not wait stop: half the buffers. */
    private int maxQueuedForNoWait() {
        lock.assertHeld();
        return Math.max(1, maxBuffers / 2);
    }

    /** Seals a full open segment and opens the next if the syncs and a free buffer allow it now. */
    private boolean openWithoutWaiting() {
        lock.assertHeld();
        if (open != null) {
            seal(); // full: the flusher writes it, and the sync below may then cover it
        }
        return reclaimSynced() && openNext();
    }

    /** Ring slots read admission leaves to writers: an eighth of the ring, at least one. */
    int cleanReserve() {
        lock.assertHeld();
        return Math.max(1, nrSegments / 8);
    }

    /** See {@link #roomForClean()}. */
    boolean cleanRoomWanted() {
        lock.assertHeld();
        return cleanRoomWanted;
    }

    /** Writeback gave up clean-only segments: admissions may go on. */
    void cleanRoomGiven() {
        lock.assertHeld();
        cleanRoomWanted = false;
    }

    /**
     * Seals a full open segment and opens the next one, waiting (lock released) while no RAM
     * buffer is free or the next ring slot still holds data not written back. Nothing is
     * dropped: writers wait for the flusher, and for writeback, which runs whenever a writer
     * waits for a slot. Returns with the lock held and an open segment with room.
     *
     * <p>{@code timeoutMillis} above 0 bounds the wait ({@code io_timeout_ms}, read again at
     * every wake-up so that setting it reaches writers already waiting): past it the caller
     * gets an IOException instead, so that a backing store that never completes a write, or a
     * writeback that keeps failing, fails writes rather than holding them forever.
     */
    void makeRoom(Health health, LongSupplier timeoutMillis) throws IOException {
        lock.assertHeld();
        if (open != null && open.full()) {
            seal();
        }
        long waitingSince = System.nanoTime();
        while (open == null) {
            health.checkUsable();
            boolean slotFree = nextId - nrSegments <= lastMigratedId;
            if (slotFree && reclaimSynced() && openNext()) {
                return;
            }
            if (!slotFree) {
                writersWaitingForSlot++;
                lock.wakeDaemons();
            }
            try {
                lock.signalChanged();
                long timeout = timeoutMillis.getAsLong();
                if (timeout == 0) {
                    lock.awaitChanged();
                } else {
                    long left = waitingSince + TimeUnit.MILLISECONDS.toNanos(timeout) - System.nanoTime();
                    if (left <= 0) {
                        throw new IOException("no free cache slot within io_timeout_ms=" + timeout
                                + ": writeback has not emptied the oldest slot (see the status file)");
                    }
                    lock.awaitChangedNanos(left);
                }
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

    /**
     * Whether segment nextId may take its slot as far as the device's syncs go: at most
     * {@link Layout#unsyncedReclaims} slots are reclaimed ahead of the last synced segment. A
     * reclaimed slot's clean lines leave the index at once, while its old segment stays on the
     * device until the new one is; after a crash a start must know which old segments may be
     * such leftovers, whose lines a bypass or discard changed without a tombstone, and it
     * takes this bound for it (docs/FORMAT.md, "Clean entries"). Asks for a sync halfway to it,
     * so that writers seldom wait. Only with no open segment: every id below nextId is sealed,
     * so the sync asked for comes once the flusher has written them.
     */
    private boolean reclaimSynced() {
        lock.assertHeld();
        int ahead = Layout.unsyncedReclaims(nrSegments);
        long synced = lastDurableId();
        if (nextId - synced > ahead / 2 && nextId - 1 > synced) {
            requestSync(complete(Math.max(synced + 1, nextId - 1 - ahead / 2)));
            lock.signalChanged();
        }
        return nextId - ahead <= synced;
    }

    /** Opens segment nextId in its (free) slot; false when no RAM buffer is free. */
    private boolean openNext() {
        lock.assertHeld();
        SegmentBuffer buf = freeBuffers.poll();
        if (buf == null && buffersAllocated < maxBuffers) {
            buf = new SegmentBuffer(lock);
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

    /**
     * Closes the open segment: encodes its final header copy and queues it for the flusher.
     * The header is encoded now, not at write time: a line of it that a later segment
     * supersedes meanwhile must still be described as dirty, in case that later segment does
     * not survive a crash.
     */
    void seal() {
        lock.assertHeld();
        SegmentBuffer s = open;
        if (s == null) {
            return;
        }
        open = null;
        if (flushDeadlineFor == s.id()) {
            flushDeadlineNanos = 0;
        }
        int seq = s.seal();
        lines.encodeHeader(s, nonce, seq, s.nrLines());
        sealedSegments++;
        sealedLines += s.nrLines();
        flushQueue.add(s);
        lock.signalChanged();
    }

    /** Seals the open segment if it holds lines and its first line is at least {@code ageNanos} old. */
    void sealIfOlderThan(long ageNanos) {
        lock.assertHeld();
        if (openHasLines() && System.nanoTime() - openSinceNanos >= ageNanos) {
            seal();
        }
    }

    /**
     * A flush waits for the open segment's lines: write them at {@code deadlineNanos}
     * (System.nanoTime()) unless an earlier deadline is already set for it. Nothing to do when
     * every line is frozen already (a write of them is done or under way).
     */
    void flushOpenBy(long deadlineNanos) {
        lock.assertHeld();
        if (open == null || !open.hasUnfrozenLines()) {
            return;
        }
        long deadline = deadlineNanos == 0 ? 1 : deadlineNanos; // 0 means "no deadline set"
        if (flushDeadlineFor != open.id() || flushDeadlineNanos == 0 || deadline - flushDeadlineNanos < 0) {
            flushDeadlineFor = open.id();
            flushDeadlineNanos = deadline;
        }
    }

    /** The pending flush deadline (System.nanoTime()), or 0 when no flush waits for the open segment. */
    long flushDeadlineNanos() {
        lock.assertHeld();
        return flushDeadlineNanos;
    }

    /** A flush deadline is set and has passed. */
    boolean flushDeadlinePassed(long now) {
        lock.assertHeld();
        return flushDeadlineNanos != 0 && now - flushDeadlineNanos >= 0;
    }

    /**
     * The device holder serves a passed flush deadline: freezes the open segment's new lines
     * and encodes the header copy that describes them, and returns the segment to append
     * ({@link #lastAppendLines()} lines, header copy {@link #lastAppendSeq()}); or seals the
     * open segment when it is full, or does nothing when no line is new, and returns null then.
     */
    SegmentBuffer takeAppend() {
        lock.assertHeld();
        flushDeadlineNanos = 0;
        if (open == null || !open.hasUnfrozenLines()) {
            return null;
        }
        if (open.full()) {
            seal();
            return null;
        }
        lastAppendSeq = open.freezeForWrite();
        lastAppendLines = open.frozenLines();
        lines.encodeHeader(open, nonce, lastAppendSeq, lastAppendLines);
        return open;
    }


    /** Header copy sequence number of the append {@link #takeAppend} returned last. */
    int lastAppendSeq() {
        lock.assertHeld();
        return lastAppendSeq;
    }

    /** Lines [0, n) the append {@link #takeAppend} returned last covers. */
    int lastAppendLines() {
        lock.assertHeld();
        return lastAppendLines;
    }

    /**
     * A thread waits for log position {@code target} to be durable. When that needs the open
     * segment whole (a request from inside the engine: writeback, vouching), seal it at once,
     * or, if a flush set a deadline for it, once that has passed and the device is free.
     * A position inside the open segment needs no seal: the device holder appends.
     */
    void prepareFor(long target) {
        lock.assertHeld();
        if (open == null) {
            return;
        }
        long tid = idOf(target);
        if (open.id() < tid || (open.id() == tid && isComplete(target))) {
            if (flushDeadlineNanos == 0 || flushDeadlineFor != open.id()
                    || (!deviceBusy && System.nanoTime() - flushDeadlineNanos >= 0)) {
                seal();
            }
        }
    }

    // ---------------------------------------------------------------- flush queue and device

    SegmentBuffer peekQueued() {
        lock.assertHeld();
        return flushQueue.peek();
    }

    SegmentBuffer pollQueued() {
        lock.assertHeld();
        return flushQueue.poll();
    }

    boolean queueEmpty() {
        lock.assertHeld();
        return flushQueue.isEmpty();
    }

    boolean deviceBusy() {
        lock.assertHeld();
        return deviceBusy;
    }

    /** Takes the cache device for segment writes and syncs; the caller must {@link #releaseDevice} it. */
    void takeDevice() {
        lock.assertHeld();
        deviceBusy = true;
        deviceHolder = Thread.currentThread();
    }

    /**
     * Releases the device if the current thread holds it: a thread the failover left behind in
     * a hung call (it took the device over) does not release it when the call returns at last.
     */
    void releaseDevice() {
        lock.assertHeld();
        if (deviceHolder == Thread.currentThread()) {
            deviceBusy = false;
            deviceHolder = null;
        }
        lock.signalChanged();
    }

    /** The thread that holds the device, or null. */
    Thread deviceHolder() {
        lock.assertHeld();
        return deviceHolder;
    }

    /**
     * Takes the device for a thread waiting for {@code target} when it is idle and there is
     * device work towards {@code target}: it is sealed (queued or written), or written and
     * waiting for a sync, or inside the open segment whose flush deadline has passed.
     */
    boolean takeDeviceFor(long target) {
        lock.assertHeld();
        if (deviceBusy) {
            return false;
        }
        boolean sealed = open == null || open.id() > idOf(target);
        if (sealed || flushedPos >= target || (open.id() == idOf(target) && flushDeadlinePassed(System.nanoTime()))) {
            takeDevice();
            return true;
        }
        return false;
    }

    /** Asks for a sync once log position {@code target} is written. */
    void requestSync(long target) {
        lock.assertHeld();
        if (syncRequestedPos < target) {
            syncRequestedPos = target;
        }
    }

    /** A sync was asked for and everything it covers is written. */
    boolean syncDue() {
        lock.assertHeld();
        return syncRequestedPos > durablePos && flushedPos >= syncRequestedPos;
    }

    /** The final write of sealed segment {@code s} is on the cache device: its RAM buffer is free again. */
    void flushed(SegmentBuffer s, int lines) {
        lock.assertHeld();
        s.written(lines, syncs);
        flushedPos = Math.max(flushedPos, complete(s.id()));
        if (slotBuffer[s.slot()] == s) {
            slotBuffer[s.slot()] = null;
        }
        freeBuffers.push(s);
        lock.signalChanged();
    }

    /** An append of the open segment {@code s}'s first {@code lines} lines is on the cache device. */
    void appended(SegmentBuffer s, int lines) {
        lock.assertHeld();
        s.written(lines, syncs);
        flushedPos = Math.max(flushedPos, pos(s.id(), lines));
        lock.signalChanged();
    }

    /** A sync completed: everything written up to log position {@code target} is durable. */
    void markDurable(long target) {
        lock.assertHeld();
        durablePos = Math.max(durablePos, target);
        syncs++;
        lock.signalChanged();
    }

    /** Segments up to {@code to} are written back and recorded: their slots may be reused. */
    void markWrittenBack(long to) {
        lock.assertHeld();
        lastMigratedId = to;
        lock.signalChanged();
    }

    // ---------------------------------------------------------------- slots and ids

    long segmentIn(int slot) {
        lock.assertHeld();
        return slotSegmentId[slot];
    }

    /** The RAM copy of the segment in {@code slot} while it is not yet on the cache device, else null. */
    SegmentBuffer ramCopy(int slot) {
        lock.assertHeld();
        return slotBuffer[slot];
    }

    int nrSegments() {
        return nrSegments;
    }

    /** The last complete segment written to the device. */
    long lastFlushedId() {
        lock.assertHeld();
        return completeIdOf(flushedPos);
    }

    /** The last complete segment written and synced. */
    long lastDurableId() {
        lock.assertHeld();
        return completeIdOf(durablePos);
    }

    long sealedSegments() {
        lock.assertHeld();
        return sealedSegments;
    }

    long sealedLines() {
        lock.assertHeld();
        return sealedLines;
    }

    /** Lines appended since start, copies made by copy-forward included. */
    long appendedLines() {
        lock.assertHeld();
        return appendedLines;
    }

    long lastMigratedId() {
        lock.assertHeld();
        return lastMigratedId;
    }

    /** The segment taking writes now, or the next one to open. */
    long currentId() {
        lock.assertHeld();
        return open != null ? open.id() : nextId;
    }

    int currentLines() {
        lock.assertHeld();
        return open != null ? open.nrLines() : 0;
    }

    /** Everything sealed or flushed has reached the device and been written back, and nothing is open with lines. */
    boolean drained() {
        lock.assertHeld();
        return lastMigratedId >= lastFlushedId() && !openHasLines() && flushQueue.isEmpty();
    }

    int queuedCount() {
        lock.assertHeld();
        return flushQueue.size();
    }

    long ramBytesInUse() {
        lock.assertHeld();
        return (long) buffersAllocated * Layout.SEGMENT_SIZE;
    }

    int maxBuffers() {
        lock.assertHeld();
        return maxBuffers;
    }

    long heapBytes() {
        lock.assertHeld();
        return (long) nrSegments * (Long.BYTES + 8);
    }

    // ---------------------------------------------------------------- writeback demand

    /** Writers wait for a ring slot or a drain runs: writeback must run whatever the knobs say. */
    boolean writebackDemanded() {
        lock.assertHeld();
        return writersWaitingForSlot > 0 || drainsInProgress > 0;
    }

    /**
     * Whether fewer than {@link #pressureReserve()} ring slots are free after the open
     * segment: large writes then go around the cache (see {@code WritePath}), so that the
     * slots left serve the small writes (a file system's journal and metadata) that have no
     * cheaper way to the disk, instead of the first pieces of a copy taking them.
     */
    boolean nearlyFull() {
        lock.assertHeld();
        return freeSlots() < pressureReserve();
    }

    /** A sixteenth of the ring, at least one slot. */
    int pressureReserve() {
        lock.assertHeld();
        return Math.max(1, nrSegments / 16);
    }

    /** Ring slots holding a segment not yet written back, the open one included. */
    long slotsInUse() {
        lock.assertHeld();
        return nextId - 1 - lastMigratedId;
    }

    /** Ring slots free for the segments after the open one. */
    long freeSlots() {
        lock.assertHeld();
        return nrSegments - slotsInUse();
    }

    boolean writersWaitingForSlot() {
        lock.assertHeld();
        return writersWaitingForSlot > 0;
    }

    void beginDrain() {
        lock.assertHeld();
        drainsInProgress++;
        lock.signalAll();
    }

    void endDrain() {
        lock.assertHeld();
        drainsInProgress--;
    }

    boolean draining() {
        lock.assertHeld();
        return drainsInProgress > 0;
    }
}
