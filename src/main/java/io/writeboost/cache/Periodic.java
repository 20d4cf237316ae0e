package io.writeboost.cache;

import io.writeboost.knob.Knob;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * The seed's timed tasks: seal a RAM segment that has sat partly filled for
 * flush_current_buffer_interval seconds, and write the superblock record every
 * commit_super_block_interval seconds.
 */
final class Periodic extends Daemon {
    private static final Logger log = LogManager.getLogger(Periodic.class);
    private static final long TICK_MS = 200;

    Periodic(CacheEngine engine) {
        super(engine, "periodic");
    }

    @Override
    protected void work() throws Exception {
        CacheEngine e = engine;
        long lastCommit = System.nanoTime();
        while (true) {
            boolean commit = false;
            e.lock.lock();
            try {
                e.background.await(TICK_MS, TimeUnit.MILLISECONDS);
                if (e.closing || e.failure != null) {
                    return;
                }
                long now = System.nanoTime();
                long flushInterval = e.knob(Knob.FLUSH_CURRENT_BUFFER_INTERVAL);
                if (flushInterval > 0 && e.open != null && e.open.nrLines > 0
                        && now - e.openSinceNanos >= TimeUnit.SECONDS.toNanos(flushInterval)) {
                    e.seal();
                }
                long commitInterval = e.knob(Knob.COMMIT_SUPER_BLOCK_INTERVAL);
                if (commitInterval > 0 && now - lastCommit >= TimeUnit.SECONDS.toNanos(commitInterval)) {
                    commit = true;
                    lastCommit = now;
                }
            } finally {
                e.lock.unlock();
            }
            if (commit) {
                try {
                    e.commitSuperblock();
                } catch (IOException ex) {
                    log.error("periodic superblock commit failed: {}", ex.toString());
                }
            }
        }
    }
}
