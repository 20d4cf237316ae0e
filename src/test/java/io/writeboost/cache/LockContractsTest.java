package io.writeboost.cache;

import io.writeboost.knob.CacheMode;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The classes whose every method expects the {@link EngineLock} held check it in code: each
 * method called without the lock fails its assertion before it does anything else (the tests
 * run with assertions enabled, surefire's default). A method added to one of them without
 * {@link EngineLock#assertHeld} fails here, whatever it does with the arguments it is given
 * (zeros and nulls: the assertion comes first).
 */
class LockContractsTest {
    final EngineLock lock = new EngineLock();

    @Test
    void assertionsAreEnabled() {
        boolean enabled = false;
        assert enabled = true;
        assertTrue(enabled, "the tests run with -ea, so that the lock contracts are checked");
    }

    @Test
    void everyLineTableMethodChecksTheLock() throws Exception {
        assertEveryMethodChecks(new LineTable(lock, 2), Set.of("lineCount"));
    }

    @Test
    void everySegmentLogMethodChecksTheLock() throws Exception {
        lock.lock();
        LineTable lines;
        try {
            lines = new LineTable(lock, 2);
        } finally {
            lock.unlock();
        }
        assertEveryMethodChecks(new SegmentLog(lock, lines, 1, 2, 2), Set.of("nrSegments"));
    }

    @Test
    void everyReadAdmissionStreamTableAndStatsMethodChecksTheLock() throws Exception {
        assertEveryMethodChecks(new ReadAdmission(lock, new KnobValues(new HashMap<>(), CacheMode.WRITE_BACK), 64), Set.of());
        assertEveryMethodChecks(new StreamTable(lock), Set.of());
        assertEveryMethodChecks(new Stats(lock), Set.of());
    }

    @Test
    void everyStreamStagingMethodChecksTheLockExceptThoseThatTakeIt() throws Exception {
        StreamStaging staging = new StreamStaging(lock, new Health(1, lock), null, null, null, 1);
        assertEveryMethodChecks(staging, Set.of("settleWith", "start", "stop", "writeOutAll", "writeOutForFailover",
                "writeRuns", "writeRun"));
    }

    @Test
    void theBackingOrderChecksItsLockHeldOperations() throws Exception {
        BackingOrder order = new BackingOrder(lock, new Health(1, lock), null, null, null);
        assertEveryMethodChecks(order, Set.of("batchesDone", "punchBetweenBatches", "settle"));
    }

    /**
     * Calls each instance method {@code target}'s class declares, except {@code exempt}
     * (documented as not needing the lock), without the lock and with zero arguments, and
     * expects an {@link AssertionError} from {@link EngineLock#assertHeld}.
     */
    private void assertEveryMethodChecks(Object target, Set<String> exempt) throws Exception {
        List<String> unchecked = new ArrayList<>();
        int checked = 0;
        for (Method m : target.getClass().getDeclaredMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.isSynthetic() || exempt.contains(m.getName())) {
                continue;
            }
            m.setAccessible(true);
            Object[] args = new Object[m.getParameterCount()];
            Class<?>[] types = m.getParameterTypes();
            for (int i = 0; i < args.length; i++) {
                args[i] = zero(types[i]);
            }
            Throwable thrown = null;
            try {
                m.invoke(target, args);
            } catch (InvocationTargetException e) {
                thrown = e.getCause();
            }
            boolean fromAssertHeld = thrown instanceof AssertionError
                    && thrown.getStackTrace().length > 0
                    && thrown.getStackTrace()[0].getClassName().equals(EngineLock.class.getName());
            if (fromAssertHeld) {
                checked++;
            } else {
                unchecked.add(m.getName() + " (" + (thrown == null ? "returned" : thrown) + ")");
            }
        }
        assertEquals(List.of(), unchecked, target.getClass().getSimpleName() + " methods that do not check the lock first");
        assertTrue(checked > 0);
    }

    private static Object zero(Class<?> type) {
        if (!type.isPrimitive()) {
            return null;
        }
        if (type == boolean.class) {
            return false;
        }
        if (type == long.class) {
            return 0L;
        }
        if (type == int.class) {
            return 0;
        }
        if (type == double.class) {
            return 0.0;
        }
        if (type == short.class) {
            return (short) 0;
        }
        if (type == byte.class) {
            return (byte) 0;
        }
        if (type == float.class) {
            return 0f;
        }
        return (char) 0;
    }
}
