package io.writeboost.knob;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class KnobTest {
    @ParameterizedTest
    @ValueSource(strings = {"", "\n", "2", "-1", "1x", " 1", "1 ", "0x1", "1\n\n", "99999999999999999999", "1.0", "+1"})
    void allowMigrateRefusesAnythingButZeroOrOne(String bad) {
        assertThrows(KnobException.class, () -> Knob.ALLOW_MIGRATE.parse(bad));
    }

    @Test
    void acceptsValuesWithOrWithoutOneNewline() throws Exception {
        assertEquals(1, Knob.ALLOW_MIGRATE.parse("1"));
        assertEquals(0, Knob.ALLOW_MIGRATE.parse("0\n"));
        assertEquals(100, Knob.MIGRATE_THRESHOLD.parse("100\n"));
    }

    @Test
    void migrateThresholdIsReallyBounded() {
        // The seed's validate_cond(0 <= x || x <= 100) let anything through.
        assertThrows(KnobException.class, () -> Knob.MIGRATE_THRESHOLD.parse("101"));
    }

    @Test
    void readOnlyAndActionKnobs() throws Exception {
        assertThrows(KnobException.class, () -> Knob.LAST_FLUSHED_SEGMENT_ID.parse("1"));
        assertThrows(KnobException.class, () -> Knob.NR_DIRTY_CACHES.parse("0"));
        assertEquals(1, Knob.FLUSH_CURRENT_BUFFER.parse("1"));
        assertThrows(KnobException.class, () -> Knob.FLUSH_CURRENT_BUFFER.parse("0"));
        assertThrows(KnobException.class, () -> Knob.BARRIER_DEADLINE_MS.parse("-1"));
        assertThrows(KnobException.class, () -> Knob.BARRIER_DEADLINE_MS.parse("60001"));
        assertThrows(KnobException.class, () -> Knob.NR_MAX_BATCHED_MIGRATION.parse("0"));
    }

    @Test
    void namesAreUniqueAndFindable() {
        for (Knob k : Knob.values()) {
            assertEquals(k, Knob.byName(k.fileName));
        }
        assertNull(Knob.byName("no_such_knob"));
    }
}
