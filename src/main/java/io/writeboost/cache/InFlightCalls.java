package io.writeboost.cache;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The cache device calls outstanding now: per call, the calling thread, what the call is and
 * when it began, in a fixed table of {@link #SLOTS} slots, so that {@link CacheWatchdog} finds
 * a call that does not return and {@link Failover} knows which threads are stuck in one. A call
 * costs a compare-and-set, a clock read and three stores here, on its own thread: no thread
 * hop, no lock, no allocation.
 *
 * <p>Owns the table. Thread-safe: a slot is claimed by a compare-and-set of its thread; the
 * clock is written after the claim and cleared before the release, so a reader sees either no
 * clock or the clock of a call that was outstanding when it looked.
 */
final class InFlightCalls {
    /** More than the threads that call the device at once (the request loop's workers, the daemons). */
    static final int SLOTS = 256;
    static final int READ = 1, WRITE = 2, SYNC = 3, DISCARD = 4;
    private static final String[] KINDS = {"", "read", "write", "sync", "discard"};
    private static final int KIND_BITS = 3;

    private final long base = System.nanoTime();
    private final AtomicReferenceArray<Thread> threads = new AtomicReferenceArray<>(SLOTS);
    /** Per slot: (nanoseconds since base) << KIND_BITS | kind; 0 while the slot is free or being claimed. */
    private final AtomicLongArray clocks = new AtomicLongArray(SLOTS);

    /**
     * Claims a slot for a call of {@code kind} by the current thread and returns it. With every
     * slot taken (more calls outstanding than threads are expected to make) it waits for one,
     * so that no call escapes the watchdog and the failover.
     */
    int begin(int kind) {
        Thread me = Thread.currentThread();
        int i = (int) (me.getId() * 0x9E3779B9L >>> 16) & (SLOTS - 1);
        while (!threads.compareAndSet(i, null, me)) {
            i = (i + 1) & (SLOTS - 1);
            if (i == 0) {
                Thread.onSpinWait();
            }
        }
        clocks.lazySet(i, (System.nanoTime() - base) << KIND_BITS | kind);
        return i;
    }

    /** The call in slot {@code slot} returned. A volatile write: see {@link CacheDeviceErrors}' fence. */
    void end(int slot) {
        clocks.lazySet(slot, 0);
        threads.set(slot, null);
    }

    /** Whether {@code t} is in a call now. */
    boolean holds(Thread t) {
        if (t == null) {
            return false;
        }
        for (int i = 0; i < SLOTS; i++) {
            if (threads.get(i) == t) {
                return true;
            }
        }
        return false;
    }

    /** The oldest call outstanding for longer than {@code nanos}, described for a log line and status; null if none. */
    String overdue(long nanos) {
        long now = System.nanoTime() - base;
        long oldest = 0;
        long oldestClock = 0;
        for (int i = 0; i < SLOTS; i++) {
            long c = clocks.get(i);
            if (c == 0) {
                continue;
            }
            long age = now - (c >>> KIND_BITS);
            if (age > nanos && age > oldest) {
                oldest = age;
                oldestClock = c;
            }
        }
        return oldestClock == 0 ? null : KINDS[(int) (oldestClock & ((1 << KIND_BITS) - 1))];
    }
}
