package io.writeboost.cache;

/**
 * The sector ranges of the backing stores that the engine is reading, or writing and punching,
 * right now; a read waits for a write or punch of the same sectors and the other way round.
 *
 * <p>Why: the engine reads a backing store for sectors the cache does not hold while a
 * bypassed write, a discard's punch, or a writeback batch that copied a line just before a
 * discard dropped it may be changing the same sectors. A disk writes a sector whole, but a
 * file (and a block device read through the page cache) gives no such promise: a read that
 * copies a page while a write copies into it, or while a punch zeroes part of it, can return
 * a sector half old and half new. With this table a read of a sector sees it before or after
 * each change, never during one.
 *
 * <p>Writers go first: a waiting write holds off reads that would overlap it, so a stream of
 * reads cannot starve it. No deadlock: a thread holds at most one range and waits only while
 * holding none, and a holder does nothing but its I/O before it lets go.
 *
 * <p>Thread-safe: its own monitor, never held across I/O; takes no other lock. The table is
 * one entry per thread with backing I/O under way (FUSE workers and the daemons), in
 * primitive arrays scanned whole: a few dozen entries at most.
 */
final class BackingRanges {
    private static final byte FREE = 0, READING = 1, WAITING_TO_WRITE = 2, WRITING = 3;

    private int[] devs = new int[16];
    private long[] starts = new long[16];
    private long[] ends = new long[16];
    private byte[] states = new byte[16];
    /** Per entry: its thread was interrupted while it waited; {@link #release} sets the flag again. */
    private boolean[] interrupted = new boolean[16];
    /** Entries [0, used) may be taken; the rest are free. */
    private int used;
    private int waiters;

    /** Waits until no write or punch of sectors [start, end) of {@code dev} is under way or waiting; returns the entry to {@link #release}. */
    synchronized int acquireRead(int dev, long start, long end) {
        boolean interrupted = false;
        while (overlaps(dev, start, end, 1 << WAITING_TO_WRITE | 1 << WRITING, -1)) {
            interrupted |= await();
        }
        int entry = take(dev, start, end, READING);
        this.interrupted[entry] = interrupted;
        return entry;
    }

    /** Waits until no read, write or punch of sectors [start, end) of {@code dev} is under way; returns the entry to {@link #release}. */
    synchronized int acquireWrite(int dev, long start, long end) {
        int entry = take(dev, start, end, WAITING_TO_WRITE);
        boolean interrupted = false;
        // Other waiting writers do not count: one of them has to go first.
        while (overlaps(dev, start, end, 1 << READING | 1 << WRITING, entry)) {
            interrupted |= await();
        }
        this.interrupted[entry] = interrupted;
        states[entry] = WRITING;
        return entry;
    }

    synchronized void release(int entry) {
        states[entry] = FREE;
        if (interrupted[entry]) {
            // Only now: set before the I/O, it would make the FileChannel close itself for every thread.
            interrupted[entry] = false;
            Thread.currentThread().interrupt();
        }
        while (used > 0 && states[used - 1] == FREE) {
            used--;
        }
        if (waiters > 0) {
            notifyAll();
        }
    }

    /** Whether an entry other than {@code self}, in one of the states of {@code stateMask} (bits), overlaps [start, end) of {@code dev}. */
    private boolean overlaps(int dev, long start, long end, int stateMask, int self) {
        for (int i = 0; i < used; i++) {
            if ((stateMask & 1 << states[i]) != 0 && i != self && devs[i] == dev && starts[i] < end && start < ends[i]) {
                return true;
            }
        }
        return false;
    }

    private int take(int dev, long start, long end, byte state) {
        int entry = 0;
        while (entry < used && states[entry] != FREE) {
            entry++;
        }
        if (entry == states.length) {
            int n = states.length * 2;
            devs = java.util.Arrays.copyOf(devs, n);
            starts = java.util.Arrays.copyOf(starts, n);
            ends = java.util.Arrays.copyOf(ends, n);
            states = java.util.Arrays.copyOf(states, n);
            interrupted = java.util.Arrays.copyOf(interrupted, n);
        }
        devs[entry] = dev;
        starts[entry] = start;
        ends[entry] = end;
        states[entry] = state;
        used = Math.max(used, entry + 1);
        return entry;
    }

    /**
     * Waits for a release; returns whether the wait was interrupted. The callers wait on, and
     * {@link #release} sets the interrupt again after the I/O: backing I/O is short, an engine
     * request that gave up half way would be harder to reason about than one that finishes, and
     * an interrupted thread's FileChannel call would close the channel for every thread.
     */
    private boolean await() {
        waiters++;
        try {
            wait();
            return false;
        } catch (InterruptedException e) {
            return true;
        } finally {
            waiters--;
        }
    }
}
