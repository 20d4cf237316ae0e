package io.writeboost.knob;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    /**
     * A number past Long.MAX_VALUE (19 digits or more) is out of range like any other: it must
     * come out as a KnobException (EINVAL), not as Long.parseLong's NumberFormatException, which
     * nothing up the stack expects.
     */
    @ParameterizedTest
    @ValueSource(strings = {"9223372036854775808", "9223372036854775808\n", "9999999999999999999", "18446744073709551616",
            "99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
            "0009223372036854775808", "9223372036854775807", "1073741825"})
    void hugeValuesAreOutOfRangeWhateverTheirLength(String huge) {
        KnobException e = assertThrows(KnobException.class, () -> Knob.SEQUENTIAL_CUTOFF.parse(huge));
        assertTrue(e.getMessage().contains("is out of range 0..1073741824"), e.getMessage());
        assertTrue(e.getMessage().length() < 120, "the message stays one short line: " + e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"-1", "-9223372036854775808", "-9223372036854775809", "-0", "1e3", "0x10", "+5", "1_000",
            "\u0661", "\uff11", "1\u0000", "\u00a0", "1 000", "1\r\n", "\n1", "9223372036854775808 "})
    void negativeAndMalformedValuesAreRefusedAsNotANumber(String bad) {
        KnobException e = assertThrows(KnobException.class, () -> Knob.SEQUENTIAL_CUTOFF.parse(bad));
        assertTrue(e.getMessage().contains("is not a non-negative decimal number"), e.getMessage());
    }

    @Test
    void everyWritableKnobRefusesEveryValuePastItsEnds() {
        for (Knob k : Knob.values()) {
            if (!k.writable()) {
                continue;
            }
            for (String bad : new String[] {Long.toString(k.max + 1), "9223372036854775808", "1" + "0".repeat(40),
                    k.min > 0 ? Long.toString(k.min - 1) : "-1"}) {
                assertThrows(KnobException.class, () -> k.parse(bad), k.fileName + " = " + bad);
            }
        }
    }

    @Test
    void leadingZerosAreAllowedWhateverTheirNumber() throws Exception {
        assertEquals(1, Knob.ALLOW_MIGRATE.parse("0000000000000000000000000001\n"));
        assertEquals(0, Knob.ALLOW_MIGRATE.parse("000"));
        assertEquals(1L << 30, Knob.SEQUENTIAL_CUTOFF.parse("00000000000000000001073741824"));
    }

    @Test
    void namesAreUniqueAndFindable() {
        for (Knob k : Knob.values()) {
            assertEquals(k, Knob.byName(k.fileName));
        }
        assertNull(Knob.byName("no_such_knob"));
    }
}
