package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.knob.Knob;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Current values of the cache knobs, and migrate_threshold per volume. Validation against a
 * knob's range happens before a value gets here ({@link CacheEngine#setKnob}).
 *
 * <p>Thread-safe without the engine lock: values are read on every path and written rarely.
 */
final class KnobValues {
    private final AtomicLongArray values = new AtomicLongArray(Knob.values().length);
    private final long[] migrateThreshold = new long[Layout.MAX_DEVICE_ID + 1];
    /** migrate_threshold as the start set it: what a volume attached later begins with. */
    private final long startThreshold;

    KnobValues(Map<Knob, Long> initial) {
        for (Knob k : Knob.values()) {
            values.set(k.ordinal(), k.defaultValue);
        }
        long threshold = initial.getOrDefault(Knob.MIGRATE_THRESHOLD, Knob.MIGRATE_THRESHOLD.defaultValue);
        Arrays.fill(migrateThreshold, threshold);
        startThreshold = threshold;
        for (Map.Entry<Knob, Long> e : initial.entrySet()) {
            if (e.getKey() != Knob.MIGRATE_THRESHOLD) {
                values.set(e.getKey().ordinal(), e.getValue());
            }
        }
    }

    long get(Knob k) {
        return values.get(k.ordinal());
    }

    void set(Knob k, long value) {
        values.set(k.ordinal(), value);
    }

    long migrateThreshold(int deviceId) {
        synchronized (migrateThreshold) {
            return migrateThreshold[deviceId];
        }
    }

    /** A device id taken by a newly attached volume starts from the start's value, not a detached one's. */
    void resetMigrateThreshold(int deviceId) {
        setMigrateThreshold(deviceId, startThreshold);
    }

    void setMigrateThreshold(int deviceId, long value) {
        synchronized (migrateThreshold) {
            migrateThreshold[deviceId] = value;
        }
    }
}
