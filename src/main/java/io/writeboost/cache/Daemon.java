package io.writeboost.cache;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.function.Predicate;

/**
 * A background worker of the engine. Workers stop by seeing {@link Health#stopped()}, never
 * by Thread.interrupt(): an interrupt inside FileChannel I/O would close the channel for
 * every thread. A worker that dies of an unexpected exception fails the engine.
 */
abstract class Daemon implements Runnable {
    private static final Logger log = LogManager.getLogger(Daemon.class);
    private static final long JOIN_POLL_MS = 10;
    protected final Health health;
    private final Thread thread;

    Daemon(String name, int cacheId, Health health) {
        this.health = health;
        this.thread = new Thread(this, "wb-" + name + "-" + cacheId);
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    void join() {
        join(t -> false);
    }

    /**
     * Waits until the thread has ended, or until {@code leftBehind} says it may be left running
     * (it is stuck in a call whose result it can no longer act on; see
     * {@link CacheDeviceErrors#fence}). Looks every few milliseconds: a stuck call does not
     * signal.
     */
    void join(Predicate<Thread> leftBehind) {
        boolean interrupted = false;
        while (thread.isAlive() && !leftBehind.test(thread)) {
            try {
                thread.join(JOIN_POLL_MS);
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public final void run() {
        try {
            work();
        } catch (Throwable t) {
            log.error("{} died", thread.getName(), t);
            health.fail(t);
        }
    }

    protected abstract void work() throws Exception;
}
