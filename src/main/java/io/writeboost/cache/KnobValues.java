package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Current values of the cache knobs, and migrate_threshold per volume. Validation against a
 * knob's range happens before a value gets here ({@link CacheEngine#setKnob}).
 *
 * <p>Thread-safe without the engine lock: values are read on every path and written rarely.
 * The knob values are atomic; migrate_threshold per volume is guarded by the monitor of its
 * array, taken by no one else and never held while taking another lock.
 */
final class KnobValues {
    private final AtomicLongArray values = new AtomicLongArray(Knob.values().length);
    private final long[] migrateThreshold = new long[Layout.MAX_DEVICE_ID + 1];
    /** migrate_threshold as the start set it: what a volume attached later begins with. */
    private final long startThreshold;

    /**
     * {@code initial}: the values given at start (-o, the config file); {@code recordedMode}: the
     * cache mode the superblock record kept, which holds unless cache_mode (or its alias
     * write_around_mode) is given.
     */
    KnobValues(Map<Knob, Long> initial, CacheMode recordedMode) {
        for (Knob k : Knob.values()) {
            values.set(k.ordinal(), k.defaultValue);
        }
        long threshold = initial.getOrDefault(Knob.MIGRATE_THRESHOLD, Knob.MIGRATE_THRESHOLD.defaultValue);
        Arrays.fill(migrateThreshold, threshold);
        values.set(Knob.CACHE_MODE.ordinal(), recordedMode.ordinal());
        Long around = initial.get(Knob.WRITE_AROUND_MODE);
        if (around != null && !initial.containsKey(Knob.CACHE_MODE)) {
            values.set(Knob.CACHE_MODE.ordinal(), withWriteAround(recordedMode, around).ordinal());
        }
        startThreshold = threshold;
        for (Map.Entry<Knob, Long> e : initial.entrySet()) {
            if (e.getKey() != Knob.MIGRATE_THRESHOLD && e.getKey() != Knob.WRITE_AROUND_MODE) {
                values.set(e.getKey().ordinal(), e.getValue());
            }
        }
    }

    /** write_around_mode is an alias: it reads 1 exactly while cache_mode is write-around. */
    long get(Knob k) {
        if (k == Knob.WRITE_AROUND_MODE) {
            return mode() == CacheMode.WRITE_AROUND ? 1 : 0;
        }
        return values.get(k.ordinal());
    }

    CacheMode mode() {
        return CacheMode.of(values.get(Knob.CACHE_MODE.ordinal()));
    }

    /** The mode write_around_mode = {@code value} asks for, from {@code mode}: 1 write-around; 0 write-back if it was write-around. */
    static CacheMode withWriteAround(CacheMode mode, long value) {
        if (value == 1) {
            return CacheMode.WRITE_AROUND;
        }
        return mode == CacheMode.WRITE_AROUND ? CacheMode.WRITE_BACK : mode;
    }

    void set(Knob k, long value) {
        values.set(k.ordinal(), value);
    }

    /** Sets the cache mode and returns the one it replaces: two changes at once each see the other's result as theirs to replace. */
    CacheMode swapMode(CacheMode mode) {
        return CacheMode.of(values.getAndSet(Knob.CACHE_MODE.ordinal(), mode.ordinal()));
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
