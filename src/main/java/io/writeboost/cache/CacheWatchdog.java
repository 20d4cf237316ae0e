package io.writeboost.cache;

import io.writeboost.knob.Knob;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Fails over when a cache device call stays outstanding longer than cache_io_timeout_ms
 * (docs/ENGINE.md, "Failure"): a dying device often hangs rather than fails, and a hung sync or
 * segment write holds the device, so every fsync of every volume would wait for it. Wakes four
 * times per deadline (so a call is found between one and 1.25 deadlines after it began), and at
 * once when a knob changes; with the knob at 0 it only waits for a change.
 *
 * <p>Owns nothing: the calls are {@link CacheDeviceErrors}'; ends with the other daemons.
 */
final class CacheWatchdog extends Daemon {
    private static final long IDLE_MS = 1000;
    private final EngineLock lock;
    private final CacheDeviceErrors device;
    private final KnobValues knobs;

    CacheWatchdog(int cacheId, Health health, EngineLock lock, CacheDeviceErrors device, KnobValues knobs) {
        super("watchdog", cacheId, health);
        this.lock = lock;
        this.device = device;
        this.knobs = knobs;
    }

    @Override
    protected void work() throws Exception {
        while (true) {
            long timeoutMs;
            lock.lock();
            try {
                if (health.stopped()) {
                    return;
                }
                timeoutMs = knobs.get(Knob.CACHE_IO_TIMEOUT_MS);
                lock.awaitTick(timeoutMs == 0 ? IDLE_MS : Math.max(1, timeoutMs / 4), TimeUnit.MILLISECONDS);
                if (health.stopped()) {
                    return;
                }
                timeoutMs = knobs.get(Knob.CACHE_IO_TIMEOUT_MS);
            } finally {
                lock.unlock();
            }
            if (timeoutMs == 0) {
                continue;
            }
            String call = device.overdue(TimeUnit.MILLISECONDS.toNanos(timeoutMs));
            if (call != null) {
                health.cacheDeviceFailed(new IOException("a cache device call (" + call + " of " + device.name()
                        + ") did not return within " + timeoutMs + " ms (cache_io_timeout_ms)"));
            }
        }
    }
}
