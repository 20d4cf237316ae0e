package io.writeboost.cache;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The open-addressing index against a HashMap under heavy churn (backward-shift deletes). */
class LineIndexTest {
    @Test
    void matchesHashMapUnderChurn() {
        int lines = 5000;
        long[] keys = new long[lines];
        LineIndex index = new LineIndex(keys, 0.75);
        Map<Long, Integer> model = new HashMap<>();
        Random rnd = new Random(42);
        for (int op = 0; op < 400_000; op++) {
            int line = rnd.nextInt(lines);
            long key = (1L << 56) | rnd.nextInt(8000);
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
                }
                keys[line] = key;
                index.put(line);
                model.put(key, line);
            } else if (keys[line] != 0) {
                boolean removed = index.remove(keys[line], line);
                assertEquals(model.remove(keys[line]) != null, removed);
                keys[line] = 0;
            }
            if (op % 1000 == 0) {
                for (int probe = 0; probe < 8000; probe++) {
                    long k = (1L << 56) | probe;
                    assertEquals(model.getOrDefault(k, -1), index.get(k), "key " + probe + " at op " + op);
                }
                assertEquals(model.size(), index.size());
            }
        }
    }
}
