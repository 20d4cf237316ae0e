package io.writeboost.cache;

import io.writeboost.format.Layout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pacer's writeback rate is ring room freed per second of wall time, whatever the commits look like. */
class WritePacerTest {
    private static final int NR = 256;
    private static final long SECOND = 1_000_000_000L;

    /** Lines a second allowed at the set point (an eighth of the ring free), where it equals the writeback rate. */
    private static double allowedAtSetPoint(WritePacer p, long now) {
        long pause = p.charge(1, WritePacer.paceStart(NR) / 2, NR, now);
        return 1e9 / pause;
    }

    /** A pacer that saw {@code slots} freed every {@code everySeconds} for a minute, each commit instant; returns the time of the last. */
    private static long feed(WritePacer p, int slots, int everySeconds) {
        long now = 0;
        for (int i = 0; i < 60 / everySeconds; i++) {
            now += everySeconds * SECOND;
            p.slotsFreed(slots, now);
        }
        return now;
    }

    @Test
    void burstsOfFreedSlotsCountOverTheTimeBetweenThem() {
        WritePacer p = new WritePacer();
        long last = feed(p, 2, 2);
        double rate = allowedAtSetPoint(p, last + SECOND);
        double oneSlotASecond = Layout.LINES_PER_SEGMENT;
        assertTrue(rate > 0.6 * oneSlotASecond && rate < 1.6 * oneSlotASecond, "about one slot's lines a second: " + rate);
    }

    @Test
    void theFirstSecondsAfterTheFirstCommitAreNotPacedBelowWriteback() {
        WritePacer p = new WritePacer();
        long now = 0;
        for (int i = 0; i < 3; i++) {
            now += SECOND;
            p.slotsFreed(2, now);
        }
        double rate = allowedAtSetPoint(p, now);
        double twoSlotsASecond = 2 * Layout.LINES_PER_SEGMENT;
        assertTrue(rate > 0.6 * twoSlotsASecond, "three seconds in, about two slots' lines a second: " + rate);
    }

    @Test
    void aStallTightensPacingWithoutACommit() {
        WritePacer running = new WritePacer();
        double before = allowedAtSetPoint(running, feed(running, 1, 1));
        WritePacer stalled = new WritePacer();
        double after = allowedAtSetPoint(stalled, feed(stalled, 1, 1) + 10 * SECOND);
        assertTrue(after < before / 5, "ten seconds without a commit: " + before + " -> " + after + " lines a second");
    }

    @Test
    void nothingIsPacedBeforeTheFirstCommitOrWithRoomToSpare() {
        WritePacer p = new WritePacer();
        assertEquals(0, p.charge(100, 0, NR, SECOND));
        p.slotsFreed(1, SECOND);
        assertEquals(0, p.charge(100, WritePacer.paceStart(NR), NR, 2 * SECOND));
        assertTrue(p.charge(100, 1, NR, 2 * SECOND) > 0);
    }
}
