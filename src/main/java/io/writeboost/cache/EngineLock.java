package io.writeboost.cache;

import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The engine's one lock and its three conditions. Every engine class that keeps mutable state
 * guards it with this lock (each says which of its methods expect it held); it is held for
 * index work and RAM copies, never across device I/O.
 *
 * <p>Several conditions, so that the I/O path's frequent signals do not wake the daemons:
 * {@code changed} carries every state change a request or the flusher waits for (space,
 * flushes, durability, device hand-over); {@code daemons} wakes writeback only for what it
 * acts on (a writer needs a ring slot, a drain, a flushed segment
 * while writeback is allowed, a knob, a stop or a failure). Waking them on every flush as
 * well cost two needless wake-ups per fsync. The periodic daemon's work is timed, so it waits
 * on a third, {@code ticks}, woken only by {@link #signalAll}: on {@code daemons} it woke each
 * time a writer waiting for a ring slot looked again, and took a fifth of a core while a full
 * ring drained.
 */
final class EngineLock {
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final Condition daemons = lock.newCondition();
    private final Condition ticks = lock.newCondition();

    void lock() {
        lock.lock();
    }

    void unlock() {
        lock.unlock();
    }

    /** Checks a "lock held" contract (with assertions enabled, as in the tests): fails when the calling thread does not hold the lock. */
    void assertHeld() {
        assert lock.isHeldByCurrentThread() : "the engine lock must be held";
    }

    /** Called without the lock: one value read under it (for cold paths; the lambda may cost an allocation). */
    long read(LongSupplier value) {
        lock.lock();
        try {
            return value.getAsLong();
        } finally {
            lock.unlock();
        }
    }

    /** Lock held: wakes every thread waiting for the I/O path's state to change. */
    void signalChanged() {
        assertHeld();
        changed.signalAll();
    }

    /** Lock held: wakes the writeback daemon. */
    void wakeDaemons() {
        assertHeld();
        daemons.signalAll();
    }

    /** Lock held: {@link #signalChanged}, {@link #wakeDaemons} and the periodic daemon (knobs, failures, stops). */
    void signalAll() {
        assertHeld();
        changed.signalAll();
        daemons.signalAll();
        ticks.signalAll();
    }

    /** A condition of its own for a waiter that none of the three fits (the stager: woken only for its windows). */
    Condition newCondition() {
        return lock.newCondition();
    }

    /** Lock held: waits for {@link #signalChanged}. */
    void awaitChanged() throws InterruptedException {
        assertHeld();
        changed.await();
    }

    /** Lock held: waits for {@link #signalChanged} at most {@code nanos}; returns the time left. */
    long awaitChangedNanos(long nanos) throws InterruptedException {
        assertHeld();
        return changed.awaitNanos(nanos);
    }

    /** Lock held: waits for {@link #signalAll} at most the given time. */
    void awaitTick(long time, TimeUnit unit) throws InterruptedException {
        assertHeld();
        ticks.await(time, unit);
    }

    /** Lock held: waits for {@link #wakeDaemons} at most the given time. */
    void awaitDaemonWork(long time, TimeUnit unit) throws InterruptedException {
        assertHeld();
        daemons.await(time, unit);
    }
}
