package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;

import java.nio.ByteBuffer;

/**
 * Copy-forward: when writeback empties the oldest ring slots, their live lines that are
 * <em>hot</em> (rewritten or read since they were appended, {@link LineTable#markHot}) are
 * appended to the open segment instead of being written back (dirty) or evicted (clean), and
 * lose their hot bit: a second chance, as in a CLOCK cache. A line that is still not rewritten
 * nor read a lap later is written back or evicted then. So a working set that fits the cache
 * stays in it, instead of costing a random backing write for every line that outlives a lap
 * of the FIFO ring (docs/ENGINE.md, "Copy-forward").
 *
 * <p>Bounded three ways: copies take at most a quarter of the lines appended over a window
 * ({@link #CREDIT_PER_LINE}, {@link #MAX_CREDIT}), a slot more than half live is written back
 * whole (copying it would take more room than it frees), and a copy never waits for room
 * ({@link SegmentLog#roomForCopy}): with the ring at its reserve, or a writer waiting for a
 * slot, lines are written back as before. Not during a drain, nor outside write-back, nor
 * while the engine closes: those want every dirty line on the backing store.
 *
 * <p>A dirty copy stays dirty and supersedes the old line like any newer write (replay takes
 * the newest copy). The old slot may be given up only once the copy is durable in the log:
 * the caller waits for {@link #durableTarget()} before it records the slot written back. A
 * clean line is copied as a clean entry; a warm one is not copied at all. Its old entry, warm,
 * stays in the log until the old slot is given up, and a copy would not be warm: a bypass or
 * discard over the copy would then write the backing store without first making its
 * tombstone durable (that wait is for warm lines only), and a crash before the copy's segment
 * is durable would bring back the old warm entry over the newer backing data.
 *
 * <p>Not thread-safe: every method expects the {@link EngineLock} held. The counters are
 * read for status under the lock too.
 */
final class CopyForward {
    private static final int LPS = Layout.LINES_PER_SEGMENT;
    /** A copy may be made for every three other lines appended: copies are at most a quarter of all appended. */
    static final double CREDIT_PER_LINE = 1.0 / 3;
    /** The window: credit saved up while nothing is copied, at most four segments' worth. */
    static final double MAX_CREDIT = 4.0 * LPS;

    private final EngineLock lock;
    private final LineTable lines;
    private final SegmentLog segments;
    private final KnobValues knobs;
    private final Health health;
    private double credit;
    /** Lines appended other than copies, when {@link #credit} was last topped up. */
    private long othersSeen;
    private long copied;
    /** The end of the log after the last copy: it must be durable before a slot copied from is given up. */
    private long durableTarget;

    CopyForward(EngineLock lock, LineTable lines, SegmentLog segments, KnobValues knobs, Health health) {
        this.lock = lock;
        this.lines = lines;
        this.segments = segments;
        this.knobs = knobs;
        this.health = health;
    }

    /** Whether a batch taking its snapshot now should pick lines to copy at all. */
    boolean active() {
        lock.assertHeld();
        if (knobs.get(Knob.COPY_FORWARD) == 0 || knobs.mode() != CacheMode.WRITE_BACK || segments.draining()
                || segments.writersWaitingForSlot() || health.closing()) {
            return false;
        }
        topUp();
        return credit >= 1;
    }

    /**
     * Whether {@code slot}'s live lines are few enough that copying its hot ones pays: at most
     * half the slot. Above that, writing back costs less ring room than copying.
     */
    boolean slotQualifies(int slot) {
        lock.assertHeld();
        int live = 0;
        for (int line = slot * LPS, end = line + lines.linesUsed(slot); line < end; line++) {
            if (lines.dirtyBits(line) != 0 || (lines.isClean(line) && lines.isCurrent(line))) {
                live++;
            }
        }
        return live <= LPS / 2;
    }

    /** Whether {@code line} (of a qualifying slot) is a candidate: live, hot, and not a warm clean line. */
    boolean candidate(int line) {
        lock.assertHeld();
        return lines.isHot(line) && (lines.dirtyBits(line) != 0 || (lines.isClean(line) && !lines.isWarm(line)))
                && lines.isCurrent(line);
    }

    /**
     * Appends candidate {@code line} (key {@code key}, dirty sectors {@code bits}, 0 for a clean
     * line) to the open segment, its 4 KiB taken from {@code src} at {@code pos}, if it is still
     * its key's current copy unchanged and the credit and the ring allow it. Returns whether it
     * was copied; if not, the caller writes it back (dirty) or lets it go (clean).
     */
    boolean copy(int line, long key, int bits, ByteBuffer src, int pos) {
        lock.assertHeld();
        if (!active() || lines.key(line) != key || !lines.isCurrent(line) || lines.dirtyBits(line) != bits
                || (bits == 0 && (!lines.isClean(line) || lines.isWarm(line))) || !segments.roomForCopy()) {
            return false;
        }
        lines.moveForward(line, segments.appendWhole(key, src, pos));
        credit -= 1;
        copied++;
        durableTarget = segments.endOfLog();
        return true;
    }

    /** Log position that must be durable before a slot a copy was made from may be given up; 0 if none. */
    long durableTarget() {
        lock.assertHeld();
        return durableTarget;
    }

    long copiedLines() {
        lock.assertHeld();
        return copied;
    }

    /** Appended lines per line appended for users (writes, tombstones, read admissions); 1 with no copy. */
    double writeAmplification() {
        lock.assertHeld();
        long appended = segments.appendedLines();
        long others = appended - copied;
        return others == 0 ? 1 : (double) appended / others;
    }

    private void topUp() {
        long others = segments.appendedLines() - copied;
        credit = Math.min(MAX_CREDIT, credit + (others - othersSeen) * CREDIT_PER_LINE);
        othersSeen = others;
    }
}
