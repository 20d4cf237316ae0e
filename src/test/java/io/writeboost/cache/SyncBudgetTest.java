package io.writeboost.cache;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The budget follows a simulated disk whose sync of {@code n} writes takes {@code c + n / r}:
 * it settles where a sync takes the target time, from below, whatever the disk.
 */
class SyncBudgetTest {
    private static long syncNanos(long requests, double flushSeconds, double requestsPerSecond) {
        return (long) ((flushSeconds + requests / requestsPerSecond) * 1e9);
    }

    private static SyncBudget settled(double flushSeconds, double requestsPerSecond, int syncs) {
        SyncBudget b = new SyncBudget();
        for (int i = 0; i < syncs; i++) {
            long n = b.requests();
            b.synced(n, syncNanos(n, flushSeconds, requestsPerSecond));
        }
        return b;
    }

    private static double targetSeconds() {
        return SyncBudget.TARGET_NANOS / 1e9;
    }

    private static void assertSettlesAtTheTarget(double flushSeconds, double requestsPerSecond) {
        SyncBudget b = settled(flushSeconds, requestsPerSecond, 30);
        double seconds = syncNanos(b.requests(), flushSeconds, requestsPerSecond) / 1e9;
        assertTrue(seconds > 0.9 * targetSeconds() && seconds < 1.1 * targetSeconds(),
                "a sync at " + requestsPerSecond + " writes a second takes about the target: " + seconds + " s for "
                        + b.requests() + " writes");
    }

    @Test
    void aFastDiskGetsSyncsOfAboutTheTargetTime() {
        assertSettlesAtTheTarget(0.005, 50_000);
        assertTrue(settled(0.005, 50_000, 12).requests() > 100 * SyncBudget.MIN_REQUESTS, "it gets there in a dozen syncs");
    }

    @Test
    void aSlowDiskGetsSyncsOfAboutTheTargetTimeToo() {
        assertSettlesAtTheTarget(0.01, 200);
    }

    @Test
    void oneSyncThatLookedFastDoesNotOpenTheBudget() {
        double c = 0.02, r = 500;
        SyncBudget b = settled(c, r, 30);
        long steady = b.requests();
        b.synced(steady, syncNanos(steady, c, r) / 20);
        assertTrue(b.requests() < 6 * steady, "a quarter of the way up only: " + steady + " -> " + b.requests());
        b.synced(b.requests(), syncNanos(b.requests(), c, r));
        assertTrue(b.requests() <= steady * 1.1, "and back down at once when the next sync shows the disk's real rate: " + steady + " -> " + b.requests());
    }

    @Test
    void aVerySlowDiskKeepsTheMinimum() {
        SyncBudget b = settled(0.2, 20, 30);
        assertEquals(SyncBudget.MIN_REQUESTS, b.requests(), "never below the minimum: a sync's fixed cost would dominate");
    }

    @Test
    void aSyncTooSmallToSayAnythingLeavesTheBudgetAlone() {
        SyncBudget b = new SyncBudget();
        long before = b.requestsPerSecond();
        b.synced(2, 50_000_000L);
        assertEquals(before, b.requestsPerSecond());
    }
}
