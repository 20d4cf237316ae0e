package io.writeboost.cache;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link LostSectors}: coalesced ranges, cleared by what covers them, bounded. */
class LostSectorsTest {
    final LostSectors lost = new LostSectors();

    @Test
    void rangesThatMeetOrOverlapAreOne() {
        lost.add(1, 10, 19);
        lost.add(1, 20, 29);
        lost.add(1, 5, 12);
        lost.add(2, 30, 39);
        assertEquals(2, lost.ranges());
        assertTrue(lost.touches(1, 5, 6));
        assertTrue(lost.touches(1, 29, 40));
        assertFalse(lost.touches(1, 30, 40));
        assertFalse(lost.touches(1, 0, 5));
        assertFalse(lost.touches(3, 0, 100));
        assertTrue(lost.touches(2, 0, 31));
    }

    @Test
    void aCoverClearsOnlyWhatItCovers() {
        lost.add(1, 0, 99);
        lost.add(1, 200, 299);
        lost.covered(1, 40, 60);
        assertTrue(lost.touches(1, 39, 40));
        assertFalse(lost.touches(1, 40, 60));
        assertTrue(lost.touches(1, 60, 61));
        assertEquals(3, lost.ranges());
        lost.covered(1, 50, 250); // the tail of one range, the head of the next
        assertFalse(lost.touches(1, 60, 250));
        assertTrue(lost.touches(1, 250, 251));
        assertTrue(lost.touches(1, 0, 40));
        lost.covered(1, 0, 1000);
        assertEquals(0, lost.ranges());
        assertFalse(lost.touches(1, 0, 1000));
    }

    @Test
    void pastTheBoundANewRangeJoinsItsNeighbourRatherThanGrowTheCount() {
        for (int i = 0; i < LostSectors.MAX_RANGES; i++) {
            lost.add(1, i * 10L, i * 10L + 4);
        }
        assertEquals(LostSectors.MAX_RANGES, lost.ranges());
        lost.add(1, 10L * LostSectors.MAX_RANGES + 2, 10L * LostSectors.MAX_RANGES + 3);
        assertEquals(LostSectors.MAX_RANGES, lost.ranges());
        assertTrue(lost.touches(1, 10L * LostSectors.MAX_RANGES + 2, 10L * LostSectors.MAX_RANGES + 3), "the new range");
        assertTrue(lost.touches(1, 10L * LostSectors.MAX_RANGES - 4, 10L * LostSectors.MAX_RANGES - 3), "the gap joined: lost too");
        assertTrue(lost.touches(1, 0, 1), "the first range kept");
        lost.add(1, 1, 2); // inside an existing range: no new one
        assertEquals(LostSectors.MAX_RANGES, lost.ranges());
    }
}
