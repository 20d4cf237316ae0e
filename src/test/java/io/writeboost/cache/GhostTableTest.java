package io.writeboost.cache;

import io.writeboost.format.LineKey;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Read admission's ghost table at a size that is no power of two: one fingerprint per line in
 * whole 8-way buckets, and every bucket in use, so that a set of missed lines half as large
 * as the cache is still remembered on its second pass.
 */
class GhostTableTest {
    @Test
    void aHalfFullGhostTableRemembersItsLinesAtAnySize() {
        int lines = 3 * 254 * 64 + 5; // 48,773 lines: neither a power of two nor a whole number of buckets
        EngineLock lock = new EngineLock();
        lock.lock(); // the contract of every ReadAdmission method
        ReadAdmission admission = new ReadAdmission(lock, new KnobValues(new HashMap<>(), io.writeboost.knob.CacheMode.WRITE_BACK), lines);
        Map<String, Long> bytes = new HashMap<>();
        admission.heapBytes(bytes);
        assertEquals((lines + 7) / 8 * 8 * 2L, bytes.get("read admission: ghost table"), "2 bytes per line, in whole buckets");

        int missed = lines / 2;
        SplittableRandom rnd = new SplittableRandom(11);
        long[] keys = new long[missed];
        int admittedFirst = 0;
        for (int i = 0; i < missed; i++) {
            keys[i] = LineKey.of(1 + rnd.nextInt(3), rnd.nextLong(1L << 36));
            if (admission.secondMiss(keys[i])) {
                admittedFirst++;
            }
        }
        int admittedSecond = 0;
        for (long key : keys) {
            if (admission.secondMiss(key)) {
                admittedSecond++;
            }
        }
        // Half a fingerprint per way, spread over every bucket: a bucket that got more than 8 is
        // lost on the second pass (each miss pushes out a line not yet read again), which leaves
        // about 95% admitted. Over only the 4096 buckets a power of two below the 6097 would
        // reach, about 76%.
        assertTrue(admittedFirst < missed / 100, "a first miss is not admitted: " + admittedFirst + " of " + missed);
        assertTrue(admittedSecond > missed * 9 / 10, "second misses admitted: " + admittedSecond + " of " + missed);
    }
}
