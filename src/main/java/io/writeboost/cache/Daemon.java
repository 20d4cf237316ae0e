package io.writeboost.cache;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A background worker of the engine. Workers stop by seeing {@link Health#stopped()}, never
 * by Thread.interrupt(): an interrupt inside FileChannel I/O would close the channel for
 * every thread. A worker that dies of an unexpected exception fails the engine.
 */
abstract class Daemon implements Runnable {
    private static final Logger log = LogManager.getLogger(Daemon.class);
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
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
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
