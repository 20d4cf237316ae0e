package io.writeboost.cache;

import io.writeboost.knob.Knob;

import java.util.EnumMap;
import java.util.Map;

/** Start-up settings of an engine: RAM buffer count and initial knob values. */
public final class EngineConfig {
    /** dm-writeboost's NR_RAMBUF_POOL: 64 RAM segments of 1 MiB. */
    public static final int DEFAULT_RAM_BUFFERS = 64;

    private int ramBuffers = DEFAULT_RAM_BUFFERS;
    private int writebackGroupSegments = Writeback.GROUP_SEGMENTS;
    private long vouchSegments = Periodic.VOUCH_SEGMENTS;
    private boolean backgroundVerification = true;
    private boolean acceptDataLoss;
    private long stagingQuietNanos = StreamStaging.QUIET_NANOS;
    private final Map<Knob, Long> knobs = new EnumMap<>(Knob.class);

    public int ramBuffers() {
        return ramBuffers;
    }

    public EngineConfig ramBuffers(int n) {
        if (n < 2) {
            throw new IllegalArgumentException("at least 2 RAM buffers are needed, got " + n);
        }
        ramBuffers = n;
        return this;
    }

    int writebackGroupSegments() {
        return writebackGroupSegments;
    }

    /** Segments written back between two syncs of the backing stores; tests shrink it to reach the group logic in small rings. */
    EngineConfig writebackGroupSegments(int n) {
        writebackGroupSegments = Math.max(1, n);
        return this;
    }

    long vouchSegments() {
        return vouchSegments;
    }

    /** Growth of the durable log that makes the periodic daemon write the record; tests shrink it. */
    EngineConfig vouchSegments(long n) {
        vouchSegments = Math.max(1, n);
        return this;
    }

    boolean backgroundVerification() {
        return backgroundVerification;
    }

    /** Without the verifier thread only reads and flushes verify segments: tests use it to control who gets there first. */
    EngineConfig backgroundVerification(boolean on) {
        backgroundVerification = on;
        return this;
    }

    long stagingQuietNanos() {
        return stagingQuietNanos;
    }

    /** How long a staging window may sit quiet before it is written out; tests lengthen it so that only full windows and flushes write. */
    EngineConfig stagingQuietNanos(long nanos) {
        stagingQuietNanos = Math.max(0, nanos);
        return this;
    }

    public boolean acceptDataLoss() {
        return acceptDataLoss;
    }

    /**
     * Start even when recovery finds acknowledged data lost (--accept-data-loss): the loss is
     * logged range by range and kept in the status until the next format. Without it such a
     * start is refused with a {@link io.writeboost.recovery.LostDataException}.
     */
    public EngineConfig acceptDataLoss(boolean accept) {
        acceptDataLoss = accept;
        return this;
    }

    /** Sets a cache knob's initial value (validated by the engine against the knob's range). */
    public EngineConfig knob(Knob knob, long value) {
        knobs.put(knob, value);
        return this;
    }

    public Map<Knob, Long> knobs() {
        return knobs;
    }
}
