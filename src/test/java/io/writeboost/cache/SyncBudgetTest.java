package io.writeboost.cache;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The budget follows a simulated disk whose sync of {@code b} bytes takes {@code c + b / r}:
 * it settles where a sync takes the target time, from below, whatever the disk.
 */
class SyncBudgetTest {
    private static long syncNanos(long bytes, double flushSeconds, double bytesPerSecond) {
        return (long) ((flushSeconds + bytes / bytesPerSecond) * 1e9);
    }

    private static SyncBudget settled(double flushSeconds, double bytesPerSecond, int syncs) {
        SyncBudget b = new SyncBudget();
        for (int i = 0; i < syncs; i++) {
            long bytes = b.bytes();
            b.synced(bytes, syncNanos(bytes, flushSeconds, bytesPerSecond));
        }
        return b;
    }

    @Test
    void aFastDiskGetsGroupsThatSyncInAboutTheTargetTime() {
        double c = 0.005, r = 100e6;
        SyncBudget b = settled(c, r, 30);
        double seconds = syncNanos(b.bytes(), c, r) / 1e9;
        assertTrue(seconds > 0.9 * SyncBudget.TARGET_NANOS / 1e9 && seconds < 1.1 * SyncBudget.TARGET_NANOS / 1e9,
                "a group's sync takes about the target: " + seconds + " s for " + b.bytes() + " bytes");
        assertTrue(settled(c, r, 12).bytes() > 10 * SyncBudget.MIN_BYTES, "it gets there in a dozen syncs");
    }

    @Test
    void oneSyncThatLookedFastDoesNotOpenTheBudget() {
        double c = 0.02, r = 2e6;
        SyncBudget b = settled(c, r, 30);
        long steady = b.bytes();
        b.synced(steady, syncNanos(steady, c, r) / 20);
        assertTrue(b.bytes() < 6 * steady, "a quarter of the way up only: " + steady + " -> " + b.bytes());
        b.synced(b.bytes(), syncNanos(b.bytes(), c, r));
        assertTrue(b.bytes() <= steady, "and down at once when the next sync shows the disk's real rate: " + b.bytes());
    }

    @Test
    void aSlowDiskKeepsOneSegmentsWorth() {
        SyncBudget b = settled(0.02, 800e3, 30);
        assertEquals(SyncBudget.MIN_BYTES, b.bytes(), "never below one segment: a batch must fit");
    }

    @Test
    void aSyncTooSmallToSayAnythingLeavesTheBudgetAlone() {
        SyncBudget b = new SyncBudget();
        long before = b.bytesPerSecond();
        b.synced(4096, 50_000_000L);
        assertEquals(before, b.bytesPerSecond());
    }
}
