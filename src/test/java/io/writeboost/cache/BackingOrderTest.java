package io.writeboost.cache;

import io.writeboost.format.LineKey;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link BackingOrder}'s protocol against a fake batch source whose batches the test starts and
 * ends by hand: when a change outside writeback waits for its turn between batches, what it
 * repeats there, and which read admissions its change marks stop. The engine-level races
 * (EngineBehaviourTest, ReadCacheTest, CacheModeTest, StreamStagingTest) provoke the same rules
 * through real bypasses and discards.
 */
class BackingOrderTest {
    static final int DEV = 1;

    /** Batches run by hand: {@link #startBatch} holds the turn until its latch is released. */
    static final class FakeBatches implements BatchBoundaries {
        final ReentrantLock turn = new ReentrantLock(true);
        final AtomicLong done = new AtomicLong();
        final AtomicLong started = new AtomicLong();
        volatile boolean committing;

        @Override
        public long batchesDone() {
            return done.get();
        }

        @Override
        public long batchesStarted() {
            return started.get();
        }

        @Override
        public boolean committing() {
            return committing;
        }

        @Override
        public long beginTurn() {
            turn.lock();
            return done.get();
        }

        @Override
        public void endTurn() {
            turn.unlock();
        }

        /** A batch that has taken its snapshot once {@code inFlight} counts down, and writes once {@code release} does. */
        Thread startBatch(CountDownLatch inFlight, CountDownLatch release, Runnable onTurn) {
            Thread t = new Thread(() -> {
                turn.lock();
                try {
                    onTurn.run();
                    started.incrementAndGet();
                    inFlight.countDown();
                    release.await();
                    done.incrementAndGet();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    turn.unlock();
                }
            });
            t.start();
            return t;
        }
    }

    final AtomicInteger writes = new AtomicInteger();
    final AtomicInteger punches = new AtomicInteger();
    final EngineLock lock = new EngineLock();
    final Health health = new Health(1, lock);
    final BackingStores backings = new BackingStores(Map.of(DEV, new DelegatingDevice(
            new PowerLossDevice("backing", 1 << 20, new Object())) {
        @Override
        public void write(ByteBuffer src, long offset) throws IOException {
            writes.incrementAndGet();
            super.write(src, offset);
        }

        @Override
        public void discard(long offset, long length) throws IOException {
            punches.incrementAndGet();
            super.discard(offset, length);
        }
    }), health);
    final ReadAdmission admission = new ReadAdmission(lock, new KnobValues(new HashMap<>(), io.writeboost.knob.CacheMode.WRITE_BACK), 1024);
    final FakeBatches batches = new FakeBatches();
    final BackingOrder order = new BackingOrder(lock, health, backings, admission, batches);
    final ByteBuffer data = ByteBuffer.allocate(8 << 9);
    final CountDownLatch release = new CountDownLatch(1);
    Thread batch;

    @AfterEach
    void endBatches() throws InterruptedException {
        release.countDown();
        if (batch != null) {
            batch.join();
        }
    }

    /** Under the engine lock, as a change calls it after its drops. */
    boolean dropsDone(boolean dropped, boolean mayBeInBatch, long batchesBefore) {
        lock.lock();
        try {
            return order.dropsDone(dropped, mayBeInBatch, batchesBefore);
        } finally {
            lock.unlock();
        }
    }

    boolean dropsUnsettled() {
        lock.lock();
        try {
            return order.dropsUnsettled();
        } finally {
            lock.unlock();
        }
    }

    Thread settling(boolean turn, boolean dropped, long batchesBefore) {
        Thread t = new Thread(() -> {
            try {
                order.settle(turn, dropped, batchesBefore, DEV, 0, 8, data, 0);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        t.start();
        return t;
    }

    /** Waits until {@code t} is queued for the fake's turn (no timing). */
    void awaitQueued(Thread t) throws InterruptedException {
        while (!batches.turn.hasQueuedThread(t)) {
            assertTrue(t.isAlive(), "still waiting for its turn");
            Thread.sleep(1);
        }
    }

    void runningBatch() throws InterruptedException {
        CountDownLatch inFlight = new CountDownLatch(1);
        batch = batches.startBatch(inFlight, release, () -> { });
        inFlight.await();
    }

    @Test
    void aChangeThatDroppedLinesWaitsForTheRunningBatchThenWritesAgain() throws Exception {
        long before = order.batchesDone();
        runningBatch(); // it may hold an older copy of a line the change drops
        assertTrue(dropsDone(true, false, before), "a change that dropped lines waits its turn");
        assertTrue(dropsUnsettled());
        Thread change = settling(true, true, before);
        awaitQueued(change);
        assertEquals(0, writes.get(), "nothing written again while the batch runs");
        release.countDown();
        change.join();
        assertEquals(1, writes.get(), "written again after the batch, over what it may have written");
        assertFalse(dropsUnsettled(), "settled once its turn is done");
    }

    @Test
    void aChangeOverUncachedLinesDoesNotWaitForABatchThatStartedAfterIt() throws Exception {
        long before = order.batchesDone();
        runningBatch();
        assertFalse(dropsDone(false, false, before), "no line was cached and no drop is unsettled: no batch holds an older copy");
        assertTrue(dropsDone(false, true, before), "a line was cached when it was decided: the batch may hold it");
    }

    @Test
    void anUnsettledDropMakesOtherChangesWaitForABatchThatRan() throws Exception {
        long before = order.batchesDone();
        runningBatch();
        assertTrue(dropsDone(true, false, before)); // another change's drop, not settled yet
        assertTrue(dropsDone(false, false, before), "the batch may hold the other change's dropped line, over this range");
        release.countDown();
        batch.join();
        order.settle(true, true, before, DEV, 0, 8, data, 0);
        assertFalse(dropsDone(false, false, before), "settled: a batch that ran is no reason to wait");
    }

    @Test
    void aChangeWaitsForACommitClearingLinesWhoseRecordIsNotDurable() {
        batches.committing = true;
        assertTrue(dropsDone(false, false, order.batchesDone()));
        batches.committing = false;
        assertFalse(dropsDone(false, false, order.batchesDone()));
    }

    @Test
    void aTurnComesBeforeTheNextBatchNotAfterIt() throws Exception {
        long before = order.batchesDone();
        runningBatch();
        Thread change = settling(true, false, before);
        awaitQueued(change);
        AtomicInteger writesSeenByNextBatch = new AtomicInteger(-1);
        CountDownLatch nextInFlight = new CountDownLatch(1);
        Thread next = batches.startBatch(nextInFlight, new CountDownLatch(0), () -> writesSeenByNextBatch.set(writes.get()));
        awaitQueued(next);
        release.countDown();
        change.join();
        next.join();
        assertEquals(1, writesSeenByNextBatch.get(), "the change had its turn (and wrote again) before the next batch began");
    }

    @Test
    void aPunchIsRepeatedAtItsTurnAWriteOnlyWhenABatchCompletedSince() throws Exception {
        long before = order.batchesDone();
        order.settle(true, false, before, DEV, 0, 8, data, 0);
        assertEquals(0, writes.get(), "no batch completed since the write: nothing to write again");
        order.settle(true, false, before, DEV, 0, 8, null, 0);
        assertEquals(1, punches.get());
        assertEquals(before, order.punchBetweenBatches(DEV, 0, 8));
        assertEquals(2, punches.get());
    }

    @Test
    void aReadPlannedBeforeOrDuringAChangeIsNotAdmittedOneAfterItIs() {
        long key = LineKey.of(DEV, 3);
        lock.lock();
        try {
            long before = admission.ticket();
            order.beginChange(DEV, 3, 1);
            long during = admission.ticket();
            assertFalse(admission.allowed(key, before), "planned before, admitted while the change runs");
            assertFalse(admission.allowed(key, during), "planned during the change");
            order.endChange(DEV, 3, 1);
            assertFalse(admission.allowed(key, before), "planned before the change, admitted after it");
            assertFalse(admission.allowed(key, during), "planned during the change, admitted after it");
            assertTrue(admission.allowed(key, admission.ticket()), "planned after the change: it read the changed data");
        } finally {
            lock.unlock();
        }
    }

    @Test
    void theLockContractsAreChecked() {
        assertThrows(AssertionError.class, () -> order.dropsDone(false, false, 0));
        assertThrows(AssertionError.class, () -> order.dropsUnsettled());
        assertThrows(AssertionError.class, () -> order.beginChange(DEV, 0, 1));
        assertThrows(AssertionError.class, () -> order.syncBeforeDrops(DEV));
    }
}
