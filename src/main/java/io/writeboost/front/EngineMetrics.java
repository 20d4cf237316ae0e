package io.writeboost.front;

import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.InfoSnapshot;
import io.prometheus.metrics.model.snapshots.InfoSnapshot.InfoDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.prometheus.metrics.model.snapshots.Unit;
import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.Stats;
import io.writeboost.cache.Status;
import io.writeboost.format.Layout;
import io.writeboost.knob.Knob;
import io.writeboost.volume.Volume;
import io.writeboost.volume.Volumes;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * The engine's figures as Prometheus metrics: every figure of {@code status} and {@code stat},
 * each scrape from one {@link Status} snapshot. It is the one renderer of them: the
 * {@code metrics} control file writes its snapshots in the text format ({@link #text()}), and
 * the HTTP listener registers it as a collector, so that both give the same names, types and
 * figures. Names follow Prometheus' conventions: one {@code writeboost_} prefix, counters end
 * in {@code _total}, bytes in bytes, seconds in seconds, percentages as ratios (0..1); every
 * series has the label {@code cache} (the cache id), a volume's also {@code volume} (its name).
 * docs/METRICS.md lists them; keep it in step.
 */
public final class EngineMetrics implements MultiCollector {
    /** The cache's states as in {@code status}; one 0/1 series each. */
    static final List<String> STATES = List.of("ok", "draining", "degraded", "failed");
    /** Writeback's states as in {@code status}; one 0/1 series each. */
    static final List<String> WRITEBACK_STATES = List.of("idle", "pending", "running", "paused");

    private final CacheEngine engine;
    private final Volumes volumes;
    private final String version;

    public EngineMetrics(CacheEngine engine, List<Volume> volumes, String version) {
        this(engine, new Volumes(volumes), version);
    }

    /** Metrics of the volumes the mount serves at each scrape: attached ones appear, detached ones go. */
    public EngineMetrics(CacheEngine engine, Volumes volumes, String version) {
        this.engine = engine;
        this.volumes = volumes;
        this.version = version;
    }

    /** The cache's state word, as {@code status} shows it. */
    static String state(Status st) {
        return st.failure() != null ? "failed" : st.degraded() != null ? "degraded" : st.draining() ? "draining"
                : st.writebackFailing() != null ? "degraded" : "ok";
    }

    /** Writeback's state word, as {@code status} shows it. */
    static String writebackState(Status st) {
        return st.writebackPausedByLoad() ? "paused" : st.pacing().writebackByLevel() ? "running"
                : st.segmentsAwaitingWriteback() > 0 ? "pending" : "idle";
    }

    /** The metrics in the Prometheus text exposition format (version 0.0.4), as the {@code metrics} file shows them. */
    public String text() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrometheusTextFormatWriter.create().write(out, collect());
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public MetricSnapshots collect() {
        return collect(engine.status());
    }

    MetricSnapshots collect(Status st) {
        Families f = new Families(Integer.toString(st.cacheId()));
        Status.Pacing p = st.pacing();

        f.info("writeboost_build", "the build of writeboost serving this cache", "version", version);
        f.info("writeboost_cache", "the cache device", "cache_device", engine.superblockDevice());
        for (String s : STATES) {
            f.gaugePoint("writeboost_state", null, "1 for the cache's state (as status shows it: ok, draining, degraded: "
                    + "writeback failing and retrying, or failed over from the cache device to the backing stores, failed: "
                    + "the engine stopped on an error), 0 for the others",
                    Labels.of("state", s), state(st).equals(s) ? 1 : 0);
        }
        f.gaugeDone();
        for (String s : WRITEBACK_STATES) {
            f.gaugePoint("writeboost_writeback_state", null, "1 for writeback's state (idle: nothing to write back, pending: "
                    + "segments wait for it, running: the ring's use passed high_watermark, paused: a backing store is busier "
                    + "than its migrate_threshold), 0 for the others", Labels.of("state", s), writebackState(st).equals(s) ? 1 : 0);
        }
        f.gaugeDone();
        for (io.writeboost.knob.CacheMode m : io.writeboost.knob.CacheMode.values()) {
            f.gaugePoint("writeboost_cache_mode", null, "1 for the cache_mode knob's value (write-back, write-through, "
                    + "write-around, pass-through), 0 for the others", Labels.of("mode", m.text), st.cacheMode() == m ? 1 : 0);
        }
        f.gaugeDone();

        f.gauge("writeboost_segments", null, "ring slots (1 MiB segments) on the cache device", st.nrSegments());
        f.gauge("writeboost_segment_size_bytes", Unit.BYTES, "the size of one segment", Layout.SEGMENT_SIZE);
        f.gauge("writeboost_segment_capacity_lines", null, "4 KiB lines one segment holds", Layout.LINES_PER_SEGMENT);
        f.gauge("writeboost_current_segment_id", null, "id of the open segment", st.currentSegmentId());
        f.gauge("writeboost_current_segment_lines", null, "lines in the open segment", st.currentSegmentLines());
        f.gauge("writeboost_last_flushed_segment_id", null, "newest segment written to the cache device", st.lastFlushedId());
        f.gauge("writeboost_last_durable_segment_id", null, "newest segment synced on the cache device", st.lastDurableId());
        f.gauge("writeboost_last_migrated_segment_id", null, "newest segment whose dirty data is written back", st.lastMigratedId());
        f.gauge("writeboost_segments_awaiting_writeback", null, "segments on the cache device not yet written back",
                st.segmentsAwaitingWriteback());
        f.gauge("writeboost_segments_with_dirty_lines", null, "of the segments awaiting writeback, those that still hold a "
                + "dirty line (the others are freed without backing I/O)", st.segmentsWithDirtyLines());
        f.gauge("writeboost_segments_queued_for_flush", null, "sealed segments waiting to be written to the cache device",
                st.segmentsQueuedForFlush());
        f.gauge("writeboost_ring_slots_in_use", null, "ring slots holding a segment not yet written back, the open one included",
                p.ringSlotsInUse());
        f.gauge("writeboost_ring_use_ratio", Unit.RATIO, "ring slots in use of the ring (ring_use_percent / 100; the "
                + "watermarks compare it)", p.ringUsePercent() / 100.0);
        f.gauge("writeboost_high_watermark_ratio", Unit.RATIO, "the high_watermark knob / 100: writeback by level starts above it",
                engine.knob(Knob.HIGH_WATERMARK) / 100.0);
        f.gauge("writeboost_low_watermark_ratio", Unit.RATIO, "the low_watermark knob / 100: writeback by level stops below it",
                engine.knob(Knob.LOW_WATERMARK) / 100.0);
        f.counter("writeboost_sealed_segments", null, "segments sealed since start (ring slots consumed)", st.sealedSegments());
        f.counter("writeboost_sealed_lines", null, "lines the segments sealed since start held", st.sealedLines());

        f.gauge("writeboost_dirty_lines", null, "4 KiB lines not yet written back, all volumes", st.dirtyLines());
        f.gauge("writeboost_dirty_bytes", Unit.BYTES, "dirty lines in bytes, all volumes (4 KiB each, a partly dirty line counted whole)",
                st.dirtyLines() * (double) Layout.LINE_SIZE);
        f.volumeGauge("writeboost_volume_dirty_lines", null, "4 KiB lines of this volume not yet written back",
                v -> st.dirtyLinesByDevice()[v.deviceId()]);
        f.volumeGauge("writeboost_volume_dirty_bytes", Unit.BYTES, "dirty lines of this volume in bytes (4 KiB each, a partly dirty line counted whole)",
                v -> st.dirtyLinesByDevice()[v.deviceId()] * (double) Layout.LINE_SIZE);
        f.volumeGauge("writeboost_volume_size_bytes", Unit.BYTES, "the volume's size", v -> v.size());
        f.volumeGauge("writeboost_volume_backing_load_ratio", Unit.RATIO, "what writeback by load goes by: the higher of the "
                + "kernel's %util and the share of time the engine had a request other than writeback's in flight",
                v -> st.backingLoadPercent()[v.deviceId()] / 100.0);
        f.volumeGauge("writeboost_volume_engine_busy_ratio", Unit.RATIO, "the share of time the engine had any request in "
                + "flight on the backing store, writeback's included", v -> st.engineBusyPercent()[v.deviceId()] / 100.0);
        f.volumeGauge("writeboost_volume_migrate_threshold_ratio", Unit.RATIO, "the migrate_threshold knob / 100: writeback "
                + "by load runs while the backing load is below it", v -> engine.migrateThreshold(v.deviceId()) / 100.0);

        f.gauge("writeboost_writeback_rate_bytes_per_second", null, "the rate at which writeback has lately been freeing ring room",
                p.writebackLinesPerSec() * (double) Layout.LINE_SIZE);
        f.gauge("writeboost_write_pacing_allowed_bytes_per_second", null, "the rate writers were allowed at the last cached "
                + "write; 0 when they were not paced", p.allowedLinesPerSec() * (double) Layout.LINE_SIZE);
        f.gauge("writeboost_write_pacing_last_pause_seconds", Unit.SECONDS, "the last pause of a paced write",
                Unit.nanosToSeconds(p.lastPauseNanos()));
        f.counter("writeboost_paced_writes", null, "cached writes paced since start", p.pausedWrites());
        f.counter("writeboost_paced_writes_seconds", Unit.SECONDS, "the time paced writes paused, in total",
                Unit.nanosToSeconds(p.pausedNanos()));
        f.counter("writeboost_writeback_capped_seconds", Unit.SECONDS, "time writeback waited for writeback_max_mbps and "
                + "writeback_max_iops", Unit.nanosToSeconds(p.writebackCapWaitedNanos()));

        f.counter("writeboost_copied_forward_lines", null, "hot lines copy-forward appended again instead of writing them "
                + "back or evicting them", st.copiedForwardLines());
        f.gauge("writeboost_write_amplification", null, "lines appended to the cache device's log per line "
                + "appended for writes, discards and read admissions since start (1 without copy-forward)",
                st.writeAmplification());
        f.counter("writeboost_flushed_bytes", Unit.BYTES, "bytes written to the cache device in segments (headers included)",
                st.flushedBytes());
        f.counter("writeboost_written_back_bytes", Unit.BYTES, "dirty bytes written back and synced on the backing stores",
                st.writtenBackBytes());
        f.counter("writeboost_bypassed_writes", null, "writes whose whole lines went straight to the backing store "
                + "(sequential_cutoff, write_around_mode, a nearly full ring)", st.bypassedWrites());
        f.counter("writeboost_bypassed_bytes", Unit.BYTES, "bytes bypassed writes sent straight to the backing stores", st.bypassedBytes());
        f.counter("writeboost_bypass_backing_requests", null, "backing-store requests the bypassed writes took once gathered",
                st.bypassRequests());
        f.counter("writeboost_staged_lines_cached_at_flush", null, "lines of bypassed writes a flush logged in the cache "
                + "instead of waiting for their backing write", st.stagedLinesCachedAtFlush());

        f.gauge("writeboost_indexed_lines", null, "lines in the cache's index, dirty and clean", st.indexedLines());
        f.gauge("writeboost_clean_lines", null, "clean (read-cached) lines in the index", st.cleanLines());
        f.gauge("writeboost_warm_clean_lines", null, "clean lines the start kept from the log", st.warmCleanLines());
        f.counter("writeboost_read_cache_admissions", null, "read misses stored as clean lines", st.readCacheAdmissions());
        f.counter("writeboost_read_hits_clean", null, "line reads served by clean lines (counted as read hits too)",
                st.readHitsClean());
        f.gauge("writeboost_ram_buffers_in_use_bytes", Unit.BYTES, "RAM held by segment buffers", st.ramBytesInUse());
        f.gauge("writeboost_ram_buffers_max", null, "segment buffers the RAM pool may hold", st.maxRamBuffers());

        long writes = 0, writeHits = 0, reads = 0, readHits = 0;
        for (int i = 0; i < 16; i++) {
            long c = st.stats()[i];
            boolean write = (i & Stats.WRITE) != 0, hit = (i & Stats.HIT) != 0;
            if (write) {
                writes += c;
                writeHits += hit ? c : 0;
            } else {
                reads += c;
                readHits += hit ? c : 0;
            }
        }
        f.counter("writeboost_read_lines", null, "4 KiB lines reads touched (read_hit_ratio's whole)", reads);
        f.counter("writeboost_read_hit_lines", null, "4 KiB lines reads touched that the cache held (read_hit_ratio's part)", readHits);
        f.counter("writeboost_write_lines", null, "4 KiB lines writes touched (write_hit_ratio's whole)", writes);
        f.counter("writeboost_write_hit_lines", null, "4 KiB lines writes touched that the cache held (write_hit_ratio's part)", writeHits);
        for (int i = 0; i < 16; i++) {
            f.counterPoint("writeboost_stat_lines", "the stat file's matrix as in dm-writeboost: one count per 4 KiB line a "
                    + "request touches, by write, hit, on_buffer and fullsize", Labels.of("write", bit(i, Stats.WRITE), "hit",
                    bit(i, Stats.HIT), "on_buffer", bit(i, Stats.ON_BUFFER), "fullsize", bit(i, Stats.FULLSIZE)), st.stats()[i]);
        }
        f.counterDone();

        f.counter("writeboost_cache_device_errors", null, "errors the cache device returned (reads, writes, syncs); past "
                + "io_error_limit, or at a failed sync or a write that failed for good, the cache fails over", st.cacheDeviceErrors());
        f.counter("writeboost_writeback_errors", null, "writeback batches and commits that failed (each retried after a back-off)",
                st.writebackErrors());
        f.gauge("writeboost_writeback_failing", null, "1 while writeback is failing and retrying", st.writebackFailing() != null ? 1 : 0);
        f.gauge("writeboost_lost_lines", null, "dirty lines given up with --accept-data-loss since the format (0 normally)",
                st.lostLines());
        f.gauge("writeboost_lost_ranges", null, "the volume ranges the lost lines formed (listed in status)", st.lostRangesTotal());
        return new MetricSnapshots(f.list);
    }

    private static String bit(int i, int mask) {
        return (i & mask) != 0 ? "1" : "0";
    }

    /** Collects the families of one scrape; every data point gets the cache label. */
    private final class Families {
        final List<MetricSnapshot> list = new ArrayList<>();
        private final String cache;
        /** One list for the whole scrape, so that every family names the same volumes. */
        private final List<Volume> volumes = EngineMetrics.this.volumes.list();
        private GaugeSnapshot.Builder gauge;
        private CounterSnapshot.Builder counter;

        Families(String cache) {
            this.cache = cache;
        }

        private Labels labels(Labels extra) {
            return Labels.of("cache", cache).merge(extra);
        }

        void info(String name, String help, String label, String value) {
            list.add(InfoSnapshot.builder().name(name).help(help)
                    .dataPoint(InfoDataPointSnapshot.builder().labels(labels(Labels.of(label, value))).build()).build());
        }

        void gauge(String name, Unit unit, String help, double value) {
            gaugePoint(name, unit, help, Labels.EMPTY, value);
            gaugeDone();
        }

        void volumeGauge(String name, Unit unit, String help, ToDoubleFunction<Volume> value) {
            for (Volume v : volumes) {
                gaugePoint(name, unit, help, Labels.of("volume", v.name()), value.applyAsDouble(v));
            }
            gaugeDone();
        }

        void gaugePoint(String name, Unit unit, String help, Labels extra, double value) {
            if (gauge == null) {
                gauge = GaugeSnapshot.builder().name(name).help(help);
                if (unit != null) {
                    gauge.unit(unit);
                }
            }
            gauge.dataPoint(GaugeDataPointSnapshot.builder().labels(labels(extra)).value(value).build());
        }

        void gaugeDone() {
            list.add(gauge.build());
            gauge = null;
        }

        void counter(String name, Unit unit, String help, double value) {
            counter = CounterSnapshot.builder().name(name).help(help);
            if (unit != null) {
                counter.unit(unit);
            }
            counter.dataPoint(CounterDataPointSnapshot.builder().labels(labels(Labels.EMPTY)).value(value).build());
            counterDone();
        }

        void counterPoint(String name, String help, Labels extra, double value) {
            if (counter == null) {
                counter = CounterSnapshot.builder().name(name).help(help);
            }
            counter.dataPoint(CounterDataPointSnapshot.builder().labels(labels(extra)).value(value).build());
        }

        void counterDone() {
            list.add(counter.build());
            counter = null;
        }
    }
}
