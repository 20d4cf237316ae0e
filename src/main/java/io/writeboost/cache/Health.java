package io.writeboost.cache;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;

/**
 * Whether the engine may still take I/O: the first failure (a cache device that lost a write
 * or a sync, a corrupt segment, a daemon that died) and the stop flag the daemons watch.
 * Thread-safe: both are volatile, read without the lock on hot paths; {@link #fail} and
 * {@link #startClosing} take the {@link EngineLock} to wake whoever waits.
 */
final class Health {
    private static final Logger log = LogManager.getLogger(Health.class);
    private final int cacheId;
    private final EngineLock lock;
    private volatile boolean closing;
    private volatile Throwable failure;

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

    boolean failed() {
        return failure != null;
    }

    boolean closing() {
        return closing;
    }

    /** True once the engine is stopping or has failed: daemons end their loops. */
    boolean stopped() {
        return closing || failure != null;
    }

    void checkFailure() throws IOException {
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
