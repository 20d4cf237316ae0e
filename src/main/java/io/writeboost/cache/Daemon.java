package io.writeboost.cache;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A background worker of the engine. Workers stop by seeing the engine's closing flag, never
 * by Thread.interrupt(): an interrupt inside FileChannel I/O would close the channel for
 * every thread.
 */
abstract class Daemon implements Runnable {
    private static final Logger log = LogManager.getLogger(Daemon.class);
    protected final CacheEngine engine;
    private final Thread thread;

    Daemon(CacheEngine engine, String name) {
        this.engine = engine;
        this.thread = new Thread(this, "wb-" + name + "-" + engine.superblock.cacheId());
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
            engine.fail(t);
        }
    }

    protected abstract void work() throws Exception;
}
