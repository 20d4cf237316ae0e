package io.writeboost.cache;

import io.writeboost.format.LineKey;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The open-addressing index against a HashMap under heavy churn (backward-shift deletes), and the packed keys it reads. */
class LineIndexTest {
    /**
     * Key number {@code i}: eight keys share each low 32 bits and differ in the device id and
     * line-number bits 32..33, which {@link LineKeys} keeps apart from the low bits.
     */
    private static long key(int i) {
        return LineKey.of(1 + (i & 1), ((long) (i >> 1 & 3) << 32) | (i >> 3));
    }

    @Test
    void keysComeBackAsStoredAndLinesBeyondTheLimitAreRefused() throws Exception {
        long[] samples = {LineKey.of(1, 0), LineKey.of(127, LineKeys.MAX_VOLUME_BYTES / 4096 - 1),
                LineKey.of(5, 0xFFFF_FFFFL) | LineKey.TOMBSTONE, LineKey.of(64, 1L << 39), LineKey.of(2, 77) | LineKey.TOMBSTONE};
        LineKeys keys = new LineKeys(samples.length);
        for (int i = samples.length - 1; i >= 0; i--) {
            keys.set(i, samples[i]);
        }
        for (int i = 0; i < samples.length; i++) {
            assertEquals(samples[i], keys.get(i));
            assertEquals(LineKey.device(samples[i]), keys.device(i));
        }
        keys.set(1, 0);
        assertEquals(samples[0], keys.get(0), "setting line 1 leaves line 0 alone");
        keys.set(1, samples[1]);
        assertEquals(samples[0], keys.get(0));
        assertThrows(IllegalArgumentException.class, () -> keys.set(0, LineKey.of(1, 1L << 40)));
        assertThrows(IllegalArgumentException.class, () -> keys.set(0, LineKey.of(1, 1L << 55)));
        assertEquals(LineKey.of(1, 0), keys.get(0), "a refused key leaves the line as it was");
        CacheEngine.checkVolume(1, LineKeys.MAX_VOLUME_BYTES, "4 PiB");
        assertThrows(io.writeboost.format.FormatException.class,
                () -> CacheEngine.checkVolume(1, LineKeys.MAX_VOLUME_BYTES + 512, "larger"), "format refuses a larger volume");
    }

    @Test
    void matchesHashMapUnderChurn() {
        churn(new LineKeys(5000), -1);
    }

    /** As the largest caches run: no bits left for a tag, so every probe reads its entry's key. */
    @Test
    void matchesHashMapUnderChurnWithoutTags() {
        churn(new LineKeys(5000), 0);
    }

    private static void churn(LineKeys stored, int tagBits) {
        int lines = stored.length();
        long[] keys = new long[lines];
        LineIndex index = tagBits < 0 ? new LineIndex(stored, 0.75) : new LineIndex(stored, 0.75, tagBits);
        Map<Long, Integer> model = new HashMap<>();
        Random rnd = new Random(42);
        for (int op = 0; op < 400_000; op++) {
            int line = rnd.nextInt(lines);
            long key = key(rnd.nextInt(8000));
            if (rnd.nextBoolean()) {
                // Move key onto line: the line's previous key leaves the index first, as the engine does.
                if (keys[line] != 0) {
                    if (index.remove(keys[line], line)) {
                        model.remove(keys[line]);
                    }
                }
                Integer old = model.get(key);
                if (old != null) {
                    index.remove(key, old);
                    model.remove(key);
                    keys[old] = 0;
                    stored.set(old, 0);
                }
                keys[line] = key;
                stored.set(line, key);
                index.put(line);
                model.put(key, line);
            } else if (keys[line] != 0) {
                boolean removed = index.remove(keys[line], line);
                assertEquals(model.remove(keys[line]) != null, removed);
                keys[line] = 0;
                stored.set(line, 0);
            }
            if (op % 1000 == 0) {
                for (int probe = 0; probe < 8000; probe++) {
                    long k = key(probe);
                    assertEquals(model.getOrDefault(k, -1), index.get(k), "key " + probe + " at op " + op);
                }
                assertEquals(model.size(), index.size());
            }
        }
    }
}
