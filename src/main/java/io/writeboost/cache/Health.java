package io.writeboost.cache;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;

/**
 * Whether the engine may still take I/O: the first failure (a backing store that lost a sync,
 * a corrupt segment, a daemon that died), the cache device error the engine fails over on
 * ({@link Failover}), and the stop flag the daemons watch. Either of the first two stops the
 * cache's machinery alike (every wait and daemon ends on {@link #failed}); only a failure
 * stays an error to the callers, while a failover is answered from the backing stores.
 * Thread-safe: all three are volatile, read without the lock on hot paths; {@link #fail},
 * {@link #cacheDeviceFailed} and {@link #startClosing} take the {@link EngineLock} to wake
 * whoever waits.
 */
final class Health {
    private static final Logger log = LogManager.getLogger(Health.class);
    private final int cacheId;
    private final EngineLock lock;
    private volatile boolean closing;
    private volatile Throwable failure;
    private volatile Throwable cacheLost;
    /** Starts the failover; null until the engine has started, when a cache device error fails the start instead. */
    private volatile Runnable onCacheLost;

    Health(int cacheId, EngineLock lock) {
        this.cacheId = cacheId;
        this.lock = lock;
    }

    /** Records the first failure (later ones are only signalled) and wakes every waiter. Any lock state. */
    void fail(Throwable t) {
        lock.lock();
        try {
            if (failure == null) {
                failure = t;
                log.error("cache {} failed; further I/O is refused: {}", cacheId, t.toString());
                log.debug("cause of the failure", t);
            }
            lock.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * From now on a cache device error fails over (see {@link Failover}) rather than failing the
     * engine; null: it fails the engine again (a stop sets it before its last record).
     */
    void failOverWith(Runnable start) {
        lock.lock();
        try {
            onCacheLost = start;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The cache device lost a write or a sync, gave more errors than io_error_limit, or did not
     * return a call within cache_io_timeout_ms: the first such error starts the failover (later
     * ones are only signalled), unless the engine failed already or has not started yet (then it
     * is a failure). Any lock state; the failover runs on its own thread.
     */
    void cacheDeviceFailed(Throwable t) {
        Runnable start;
        boolean first = false;
        lock.lock();
        try {
            start = onCacheLost;
            if (start == null) {
                fail(t); // the lock is reentrant
                return;
            }
            if (failure == null && cacheLost == null) {
                cacheLost = t;
                first = true;
            }
            lock.signalAll();
        } finally {
            lock.unlock();
        }
        if (first) {
            start.run();
        }
    }

    /** The cache device error the engine failed over on, or null. */
    Throwable cacheLost() {
        return cacheLost;
    }

    /** Sets the flag the daemons stop on and wakes them. Any lock state. */
    void startClosing() {
        lock.lock();
        try {
            closing = true;
            lock.signalAll();
        } finally {
            lock.unlock();
        }
    }

    Throwable failure() {
        return failure;
    }

    /** True once the engine failed or fails over: the cache's machinery stops. */
    boolean failed() {
        return failure != null || cacheLost != null;
    }

    boolean closing() {
        return closing;
    }

    /** True once the engine is stopping, has failed or fails over: daemons end their loops. */
    boolean stopped() {
        return closing || failed();
    }

    void checkFailure() throws IOException {
        checkNotFailed();
        Throwable lost = cacheLost;
        if (lost != null) {
            throw new IOException("cache " + cacheId + " fails over from its cache device: " + lost, lost);
        }
    }

    /** Throws if the engine failed (a failover alone does not count: its requests are served from the backing stores). */
    void checkNotFailed() throws IOException {
        Throwable f = failure;
        if (f != null) {
            throw new IOException("cache " + cacheId + " has failed: " + f, f);
        }
    }

    void checkUsable() throws IOException {
        checkFailure();
        if (closing) {
            throw new IOException("cache " + cacheId + " is stopping");
        }
    }
}
