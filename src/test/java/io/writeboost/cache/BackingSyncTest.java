package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link BackingStores#syncChanged}, the fsync of bypassed writes and punches (and the whole
 * fsync after a failover): a flush returns only once a sync that began after its changes has
 * completed, its own or a concurrent flush's (group commit), never while one still runs.
 */
class BackingSyncTest {
    final CountDownLatch inSync = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);
    final AtomicInteger syncsDone = new AtomicInteger();
    /** The first sync waits for {@link #release}. */
    final BlockDevice store = new DelegatingDevice(new PowerLossDevice("backing", 1 << 20, new Object())) {
        @Override
        public void sync() throws IOException {
            inSync.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
            inner.sync();
            syncsDone.incrementAndGet();
        }
    };
    final BackingStores backings = new BackingStores(Map.of(1, store), new Health(1, new EngineLock()));

    Thread flushing(AtomicInteger syncsSeenOnReturn) {
        Thread t = new Thread(() -> {
            try {
                backings.syncChanged();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            syncsSeenOnReturn.set(syncsDone.get());
        });
        t.start();
        return t;
    }

    /** Waits until {@code t} has returned or waits for another thread (its state says which, no timing). */
    static void awaitReturnedOrBlocked(Thread t) throws InterruptedException {
        while (t.isAlive() && t.getState() != Thread.State.BLOCKED && t.getState() != Thread.State.WAITING) {
            Thread.sleep(1);
        }
    }

    @Test
    void aFlushWhoseChangeAnotherFlushIsSyncingWaitsForThatSync() throws Exception {
        backings.changed(1); // both flushes' callers wrote before either flush began
        AtomicInteger first = new AtomicInteger(-1), second = new AtomicInteger(-1);
        Thread a = flushing(first);
        inSync.await();
        Thread b = flushing(second);
        awaitReturnedOrBlocked(b);
        release.countDown();
        a.join();
        b.join();
        assertEquals(1, second.get(), "the second flush returned only after the sync covering its change completed");
        assertEquals(1, syncsDone.get(), "one sync served both");
    }

    @Test
    void aChangeAfterARunningSyncBeganGetsASyncOfItsOwn() throws Exception {
        backings.changed(1);
        AtomicInteger first = new AtomicInteger(-1), second = new AtomicInteger(-1);
        Thread a = flushing(first);
        inSync.await();
        backings.changed(1); // completed after the running sync began: it may not cover it
        Thread b = flushing(second);
        awaitReturnedOrBlocked(b);
        release.countDown();
        a.join();
        b.join();
        assertEquals(2, second.get(), "the second flush returned after a sync that began after its change");
    }
}
