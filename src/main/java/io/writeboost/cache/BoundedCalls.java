package io.writeboost.cache;

import java.io.IOException;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The failover's own cache device calls, each waited for at most cache_io_timeout_ms: a call
 * runs on a helper thread ({@code wb-failover-io-N}, let through the device's fence), and one
 * that does not return in time is left running there while the failover goes on without its
 * result. Such a call keeps what it was given (its buffer is its own from then on). A thread hop
 * per call is no cost here: the failover runs once.
 *
 * <p>Owns its helper threads. Used by the failover thread alone; {@link #close} lets idle helpers
 * end (a stuck one ends when its call returns, if ever). Helpers are never interrupted: an
 * interrupt inside FileChannel I/O would close the channel for every thread.
 */
final class BoundedCalls implements AutoCloseable {
    /** What a call gives back when it did not return in time. */
    static final Object TIMED_OUT = new Object();

    private final ExecutorService helpers;

    BoundedCalls(int cacheId, CacheDeviceErrors device) {
        AtomicInteger n = new AtomicInteger();
        helpers = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(() -> {
                device.admitCurrentThread();
                r.run();
            }, "wb-failover-io-" + cacheId + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Runs {@code call} and returns its result, or {@link #TIMED_OUT} when it has not returned
     * within {@code timeoutMs}; 0: waits as long as it takes. Throws what the call threw.
     */
    Object call(Callable<?> call, long timeoutMs) throws IOException, InterruptedException {
        return await(start(call), timeoutMs);
    }

    /** Starts {@code call} on a helper: for a call the failover comes back to ({@link #await}) rather than repeats. */
    <T> Future<T> start(Callable<T> call) {
        return helpers.submit(call);
    }

    /** {@link #call}'s wait, for a call {@link #start}ed earlier. */
    Object await(Future<?> f, long timeoutMs) throws IOException, InterruptedException {
        try {
            return timeoutMs == 0 ? f.get() : f.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            return TIMED_OUT;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException(e.getCause());
        }
    }

    @Override
    public void close() {
        helpers.shutdown();
    }
}
