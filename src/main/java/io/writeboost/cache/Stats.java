package io.writeboost.cache;

/**
 * dm-writeboost's statistics matrix: one counter for each combination of
 * (write?, hit?, on_buffer?, fullsize?), counted once per cache line a request touches.
 * Updated under the engine lock; read as a snapshot. Every method expects the lock (and checks it).
 */
public final class Stats {
    public static final int WRITE = 8, HIT = 4, ON_BUFFER = 2, FULLSIZE = 1;

    private final long[] counts = new long[16];
    private final EngineLock lock;

    Stats(EngineLock lock) {
        this.lock = lock;
    }

    void count(boolean write, boolean hit, boolean onBuffer, boolean fullsize) {
        lock.assertHeld();
        counts[(write ? WRITE : 0) | (hit ? HIT : 0) | (onBuffer ? ON_BUFFER : 0) | (fullsize ? FULLSIZE : 0)]++;
    }

    long[] snapshot() {
        lock.assertHeld();
        return counts.clone();
    }

    void clear() {
        lock.assertHeld();
        java.util.Arrays.fill(counts, 0);
    }
}
