package io.writeboost.front;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.Status;
import io.writeboost.format.Layout;
import io.writeboost.knob.Command;
import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobException;
import io.writeboost.volume.Volume;
import io.writeboost.volume.Volumes;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds the control directories from the knob table: {@code caches/<cache_id>/} with one
 * file per cache knob and per volume {@link Command} plus {@code stat}, {@code status} and
 * {@code metrics} (the same figures for Prometheus, from {@link EngineMetrics}), and
 * {@code devices/<device_id>/} with one file per volume knob.
 */
public final class ControlFiles {
    private ControlFiles() {}

    /** Runs a volume command (attach, detach) and returns its outcome line; a refusal is a {@link io.writeboost.cache.VolumeRefusedException}. */
    interface CommandRunner {
        String run(Command c, String argument) throws IOException;
    }

    /** Directory path (e.g. "/caches/1") to its files, in listing order. */
    static Map<String, Map<String, ControlFile>> build(CacheEngine engine, Volumes volumes, EngineMetrics metrics,
                                                       CommandRunner commands) {
        Map<String, Map<String, ControlFile>> dirs = new LinkedHashMap<>();
        Map<String, ControlFile> cache = new LinkedHashMap<>();
        for (Knob k : Knob.values()) {
            if (k.scope == Knob.Scope.CACHE) {
                cache.put(k.fileName, cacheKnob(engine, k));
            }
        }
        for (Command c : Command.values()) {
            cache.put(c.fileName, command(c, commands));
        }
        cache.put("stat", readOnly(() -> formatStat(engine.status())));
        cache.put("status", readOnly(() -> formatStatus(engine, volumes.list())));
        cache.put("metrics", readOnly(metrics::text));
        dirs.put("/caches/" + engine.superblock().cacheId(), cache);
        for (Volume v : volumes.list()) {
            dirs.put("/devices/" + v.deviceId(), deviceDir(engine, v));
        }
        return dirs;
    }

    /** The files of {@code devices/<device_id>/} for one volume, in listing order. */
    static Map<String, ControlFile> deviceDir(CacheEngine engine, Volume v) {
        Map<String, ControlFile> dev = new LinkedHashMap<>();
        for (Knob k : Knob.values()) {
            if (k.scope == Knob.Scope.DEVICE) {
                dev.put(k.fileName, deviceKnob(engine, v, k));
            }
        }
        return dev;
    }

    /** A volume command's file: a write runs it; a read gives the last one's outcome. */
    private static ControlFile command(Command c, CommandRunner commands) {
        return new ControlFile() {
            private volatile String outcome = "";

            public String read() {
                return outcome;
            }

            public boolean writable() {
                return true;
            }

            public void write(String value) throws IOException {
                try {
                    // The mount hands every write over as ISO-8859-1 (one char a byte); names and paths are UTF-8.
                    String text = new String(value.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
                            java.nio.charset.StandardCharsets.UTF_8);
                    outcome = commands.run(c, text) + "\n";
                } catch (io.writeboost.cache.VolumeRefusedException e) {
                    outcome = "refused: " + e.getMessage() + "\n";
                    throw e;
                } catch (IOException | RuntimeException e) {
                    outcome = "failed: " + e.getMessage() + "\n";
                    throw e;
                }
            }
        };
    }

    interface Reader {
        String read() throws IOException;
    }

    private static ControlFile readOnly(Reader r) {
        return new ControlFile() {
            public String read() throws IOException {
                return r.read();
            }

            public boolean writable() {
                return false;
            }

            public void write(String value) throws KnobException {
                throw new KnobException("this file is read-only");
            }
        };
    }

    private static ControlFile cacheKnob(CacheEngine engine, Knob k) {
        return new ControlFile() {
            public String read() {
                long v = switch (k) {
                    case LAST_FLUSHED_SEGMENT_ID -> engine.status().lastFlushedId();
                    case LAST_MIGRATED_SEGMENT_ID -> engine.status().lastMigratedId();
                    default -> k.access == Knob.Access.ACTION ? 0 : engine.knob(k);
                };
                return k.format(v) + "\n";
            }

            public boolean writable() {
                return k.writable();
            }

            public void write(String value) throws KnobException, IOException {
                engine.setKnob(k, k.parse(value));
            }
        };
    }

    private static ControlFile deviceKnob(CacheEngine engine, Volume v, Knob k) {
        return new ControlFile() {
            public String read() {
                return switch (k) {
                    case CACHE_ID -> engine.superblock().cacheId() + "\n";
                    case DEV -> v.backingPath() + "\n";
                    case DEVICE_NO -> v.deviceId() + "\n";
                    case MIGRATE_THRESHOLD -> engine.migrateThreshold(v.deviceId()) + "\n";
                    case NR_DIRTY_CACHES -> engine.nrDirtyLines(v.deviceId()) + "\n";
                    default -> throw new IllegalStateException(k.fileName + " is not a volume knob");
                };
            }

            public boolean writable() {
                return k.writable();
            }

            public void write(String value) throws KnobException {
                if (k != Knob.MIGRATE_THRESHOLD) {
                    throw new KnobException(k.fileName + " is read-only");
                }
                engine.setMigrateThreshold(v.deviceId(), k.parse(value));
            }
        };
    }

    /** dm-writeboost's statistics matrix: one line per (write?, hit?, on_buffer?, fullsize?) combination. */
    static String formatStat(Status st) {
        StringBuilder b = new StringBuilder("# write hit on_buffer fullsize count (one count per 4 KiB line a request touches)\n");
        for (int i = 0; i < 16; i++) {
            b.append((i >> 3) & 1).append(' ').append((i >> 2) & 1).append(' ').append((i >> 1) & 1).append(' ')
                    .append(i & 1).append(' ').append(st.stats()[i]).append('\n');
        }
        return b.toString();
    }

    static String formatStatus(CacheEngine engine, List<Volume> volumes) {
        Status st = engine.status();
        StringBuilder b = new StringBuilder();
        // First: what an operator looks at before anything else.
        String state = EngineMetrics.state(st);
        line(b, "state", switch (state) {
            case "failed" -> "failed: " + st.failure();
            case "degraded" -> "degraded: " + (st.degraded() != null ? st.degraded() : "writeback failing, retrying");
            default -> state;
        });
        line(b, "cache_id", st.cacheId());
        line(b, "cache_device", engine.superblockDevice());
        line(b, "segments", st.nrSegments());
        line(b, "segment_size", Layout.SEGMENT_SIZE);
        line(b, "current_segment_id", st.currentSegmentId());
        line(b, "current_segment_lines", st.currentSegmentLines() + " of " + Layout.LINES_PER_SEGMENT);
        line(b, "last_flushed_segment_id", st.lastFlushedId());
        line(b, "last_durable_segment_id", st.lastDurableId());
        line(b, "last_migrated_segment_id", st.lastMigratedId());
        line(b, "segments_awaiting_writeback", st.segmentsAwaitingWriteback());
        line(b, "segments_with_dirty_lines", st.segmentsWithDirtyLines() + " (of those awaiting writeback; the others hold "
                + "only clean lines or superseded copies, and their slots are freed without backing I/O)");
        line(b, "segments_queued_for_flush", st.segmentsQueuedForFlush());
        line(b, "ring_lines_per_segment", String.format("%.1f of %d (%d segments sealed since start)", st.linesPerSegment(),
                Layout.LINES_PER_SEGMENT, st.sealedSegments()));
        line(b, "cache_mode", st.cacheMode() + (st.cacheMode().writesAround() && st.dirtyLines() > 0
                ? " (writing back the " + st.dirtyLines() + " dirty line(s) left from write-back)" : ""));
        line(b, "dirty_lines", st.dirtyLines());
        for (Volume v : volumes) {
            line(b, "dirty_lines." + v.name(), st.dirtyLinesByDevice()[v.deviceId()]);
        }
        for (Volume v : volumes) {
            line(b, "backing_load." + v.name(), st.backingLoadPercent()[v.deviceId()] + "% (migrate_threshold "
                    + engine.migrateThreshold(v.deviceId()) + "%; the engine's requests, writeback's included, in flight "
                    + st.engineBusyPercent()[v.deviceId()] + "% of the time)");
        }
        Status.Pacing p = st.pacing();
        String writeback = EngineMetrics.writebackState(st);
        line(b, "writeback", switch (writeback) {
            case "paused" -> "paused: a backing store is busier than its migrate_threshold";
            case "running" -> "running: the ring's use passed high_watermark " + engine.knob(Knob.HIGH_WATERMARK)
                    + "% (until low_watermark " + engine.knob(Knob.LOW_WATERMARK) + "%)";
            default -> writeback;
        });
        line(b, "ring_slots_in_use", p.ringSlotsInUse());
        line(b, "ring_use_percent", p.ringUsePercent());
        line(b, "writeback_rate", String.format("%.1f MB/s of ring room freed lately (%d lines a second)",
                p.writebackLinesPerSec() * (double) Layout.LINE_SIZE / 1e6, p.writebackLinesPerSec()));
        line(b, "write_pacing", p.allowedLinesPerSec() > 0
                ? String.format("on: writers allowed %d lines a second, last pause %.1f ms", p.allowedLinesPerSec(),
                p.lastPauseNanos() / 1e6)
                : "off (the ring has room)");
        line(b, "paced_writes", p.pausedWrites() + String.format(" (%.1f s paused in total)", p.pausedNanos() / 1e9));
        line(b, "writeback_capped", String.format("%.1f s (writeback waited for writeback_max_mbps and writeback_max_iops)",
                p.writebackCapWaitedNanos() / 1e9));
        line(b, "copied_forward_lines", st.copiedForwardLines() + " (hot lines the oldest slots gave to the open segment "
                + "instead of writing them back or evicting them)");
        line(b, "write_amplification", String.format("%.3f (lines appended per line written or admitted; copy-forward "
                + "adds the rest)", st.writeAmplification()));
        line(b, "flushed_bytes", st.flushedBytes());
        line(b, "written_back_bytes", st.writtenBackBytes());
        line(b, "bypassed_writes", st.bypassedWrites());
        line(b, "bypassed_bytes", st.bypassedBytes() + " (in " + st.bypassRequests() + " backing request(s))");
        line(b, "staged_lines_cached_at_flush", st.stagedLinesCachedAtFlush());
        line(b, "indexed_lines", st.indexedLines());
        line(b, "clean_lines", st.cleanLines());
        line(b, "warm_clean_lines", st.warmCleanLines());
        line(b, "read_cache_admissions", st.readCacheAdmissions());
        line(b, "read_hits_clean", st.readHitsClean());
        line(b, "ram_buffers_in_use_bytes", st.ramBytesInUse());
        line(b, "ram_buffers_max", st.maxRamBuffers());
        long writes = 0, writeHits = 0, reads = 0, readHits = 0;
        for (int i = 0; i < 16; i++) {
            long c = st.stats()[i];
            boolean write = (i & 8) != 0, hit = (i & 4) != 0;
            if (write) {
                writes += c;
                writeHits += hit ? c : 0;
            } else {
                reads += c;
                readHits += hit ? c : 0;
            }
        }
        line(b, "read_hit_ratio", ratio(readHits, reads));
        line(b, "write_hit_ratio", ratio(writeHits, writes));
        line(b, "cache_device_errors", st.cacheDeviceErrors() + " (io_error_limit " + st.ioErrorLimit() + ")");
        line(b, "writeback_errors", st.writebackErrors() + (st.writebackFailing() != null ? " (failing now: "
                + st.writebackFailing() + ")" : ""));
        // Shown from the start that accepted a loss until the next format: the record carries it.
        line(b, "lost_lines", st.lostLines());
        if (st.lostRangesTotal() > 0) {
            line(b, "lost_ranges", st.lostRangesTotal() + " (device, first and last sector; accepted with --accept-data-loss, "
                    + "or given up by a failover)");
            for (io.writeboost.format.LostRange r : st.lostRanges()) {
                String name = volumes.stream().filter(v -> v.deviceId() == r.device()).map(Volume::name).findFirst().orElse("?");
                line(b, "lost_range", r.device() + " (" + name + ") " + r.firstSector() + " " + r.lastSector());
            }
            if (st.lostRangesTotal() > st.lostRanges().size()) {
                line(b, "lost_range", "... " + (st.lostRangesTotal() - st.lostRanges().size()) + " more, listed in the log of the "
                        + "start that accepted them");
            }
        }
        return b.toString();
    }

    private static String ratio(long part, long whole) {
        return whole == 0 ? "-" : String.format("%.3f (%d of %d lines)", (double) part / whole, part, whole);
    }

    private static void line(StringBuilder b, String key, Object value) {
        b.append(key).append(": ").append(value).append('\n');
    }
}
