package io.writeboost.cli;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.LineKey;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.Superblock;
import io.writeboost.format.SuperblockRecord;
import io.writeboost.format.VolumeEntry;
import io.writeboost.recovery.Recovery;
import io.writeboost.recovery.ReplaySegment;
import io.writeboost.recovery.UpgradeFromV1;
import io.writeboost.server.ExclusiveUse;
import io.writeboost.server.MovedBackings;
import io.writeboost.server.Preflight;
import io.writeboost.server.RequestException;
import io.writeboost.server.ServerSettings;
import io.writeboost.tools.CacheInspection;
import io.writeboost.tools.Progress;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.DefaultParser;
import org.apache.commons.cli.Option;
import org.apache.commons.cli.Options;
import org.apache.commons.cli.ParseException;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Tools for a cache device that is not mounted:
 * <pre>
 *   fuse-mount check --cache CACHE                     report; exit 1 when something is wrong
 *   fuse-mount dump --cache CACHE [--json] [--all]     segments and their lines
 *   fuse-mount writeback (--config FILE | --cache CACHE --backing [NAME=]PATH ...) [--accept-data-loss] [--accept-moved-backing NAME]
 *   fuse-mount volumes --config FILE                   the volume files a config's mount will hold
 *   fuse-mount upgrade (--config FILE | --cache CACHE --backing [NAME=]PATH ...)   a format version 1 cache to version 2
 * </pre>
 */
final class OfflineTools {
    static final List<String> COMMANDS = List.of("check", "dump", "writeback", "volumes", "upgrade");

    private OfflineTools() {}

    static int run(String command, String[] args, PrintStream out, PrintStream err) {
        Options o = new Options();
        o.addOption(Option.builder().longOpt("cache").hasArg().argName("CACHE").desc("the cache device").get());
        o.addOption(Option.builder().longOpt("backing").hasArg().argName("[NAME=]PATH").desc("backing store (writeback, upgrade)").get());
        o.addOption(Option.builder().longOpt("config").hasArg().argName("FILE").desc("take cache and backings from FILE").get());
        o.addOption(Option.builder().longOpt("json").desc("dump: one JSON object per segment and line").get());
        o.addOption(Option.builder().longOpt("all").desc("dump: also segments already written back").get());
        o.addOption(Option.builder().longOpt("accept-data-loss")
                .desc("writeback: go on when acknowledged data is lost (what is left is written back)").get());
        o.addOption(Main.acceptMovedBacking());
        try {
            CommandLine cmd = new DefaultParser().parse(o, args);
            if (!cmd.getArgList().isEmpty()) {
                throw new UsageException(command + ": unexpected argument " + cmd.getArgList().get(0));
            }
            MountOptions m = new MountOptions();
            if (cmd.hasOption("config")) {
                ConfigFile.apply(Path.of(cmd.getOptionValue("config")), m);
            }
            if (cmd.hasOption("cache")) {
                m.cache = Path.of(cmd.getOptionValue("cache"));
            }
            if (cmd.getOptionValues("backing") != null) {
                m.backings.clear();
                for (String b : cmd.getOptionValues("backing")) {
                    m.backings.add(MountOptions.parseBacking(b));
                }
            }
            Main.addAcceptMoved(cmd, m);
            if (!m.acceptMovedBacking.isEmpty() && !command.equals("writeback")) {
                throw new UsageException(command + ": --accept-moved-backing applies to writeback (and to a start)");
            }
            if (command.equals("volumes")) {
                return volumes(m, out);
            }
            if (m.cache == null) {
                throw new UsageException(command + ": --cache (or --config) is required");
            }
            if (!Files.exists(m.cache)) {
                throw new UsageException(m.cache + ": no such file or device");
            }
            return switch (command) {
                case "check" -> check(m.cache, out);
                case "dump" -> dump(m.cache, cmd.hasOption("json"), cmd.hasOption("all"), out, err);
                case "upgrade" -> upgrade(m, out);
                default -> writeback(m, cmd.hasOption("accept-data-loss"), out);
            };
        } catch (ParseException e) {
            err.println("fuse-mount " + command + ": " + e.getMessage());
            return 2;
        } catch (UsageException | RequestException e) {
            err.println("fuse-mount " + command + ": " + e.getMessage());
            return 2;
        } catch (FormatException e) {
            err.println("fuse-mount " + command + ": " + e.getMessage());
            return 1;
        } catch (IOException e) {
            err.println("fuse-mount " + command + ": " + e.getMessage());
            return 1;
        }
    }

    private static int volumes(MountOptions m, PrintStream out) throws UsageException {
        if (m.mountPoint == null || m.backings.isEmpty()) {
            throw new UsageException("volumes: the config needs a mountpoint and at least one backing");
        }
        for (ServerSettings.Backing b : m.backings) {
            out.println(m.mountPoint.resolve(b.name()));
        }
        return 0;
    }

    private static CacheInspection inspect(Path cachePath) throws IOException {
        try (FileBlockDevice cache = FileBlockDevice.open(cachePath)) {
            long n = io.writeboost.recovery.Recovery.readSuperblock(cache).nrSegments();
            try (Progress p = new Progress("reading segment headers", n)) {
                return CacheInspection.of(cache, p);
            }
        }
    }

    /** A cache read without its lock, and who held the lock meanwhile (null: nobody, as far as /proc/locks tells). */
    private record Inspected(CacheInspection c, String holder) {
    }

    /**
     * check and dump read without the lock, so that they work while a server runs (and cannot
     * keep one from starting); they look for a holder before and after reading and say so,
     * since what they read may have changed under them.
     */
    private static Inspected inspectUnlocked(Path cachePath) throws IOException {
        String before = ExclusiveUse.holder(cachePath);
        CacheInspection c = inspect(cachePath);
        return new Inspected(c, before != null ? before : ExclusiveUse.holder(cachePath));
    }

    private static String inUse(Path cachePath, String holder) {
        return cachePath + " is in use by " + holder + ": what is shown was read while it may have been written, and may be stale";
    }

    static int check(Path cachePath, PrintStream out) throws IOException {
        Inspected read = inspectUnlocked(cachePath);
        CacheInspection c = read.c();
        List<String> problems = new ArrayList<>();
        out.printf("cache %s: id %d, format version %d, %d segments, formatted %s%n", cachePath, c.superblock.cacheId(), io.writeboost.format.Superblock.VERSION,
                c.superblock.nrSegments(), java.time.Instant.ofEpochMilli(c.superblock.formatTimeMillis()));
        if (read.holder() != null) {
            out.println("IN USE: " + inUse(cachePath, read.holder()));
        }
        out.printf("volume table: %s%n", c.volumeTableGeneration == 0 ? "as formatted"
                : "generation " + c.volumeTableGeneration + " (changed by attach and detach)");
        for (VolumeEntry v : c.superblock.volumes()) {
            out.printf("  volume %d '%s': %d bytes, backing store %s (%s)%n", v.deviceId(), v.name(), v.sizeBytes(), v.path(),
                    v.identity());
        }
        out.printf("record copy A: %s%nrecord copy B: %s%n", describe(c.recordA), describe(c.recordB));
        if (c.recordA == null || c.recordB == null) {
            out.println("  (one invalid copy is normal right after format, or after a torn record write)");
        }
        long lastMigrated = c.replay.lastMigratedId();
        int empty = 0, valid = 0, stale = 0;
        for (CacheInspection.Slot s : c.slots) {
            switch (s.state()) {
                case EMPTY -> empty++;
                case VALID -> valid++;
                case BAD_CHECKSUM -> {
                    if (s.id() <= lastMigrated) {
                        stale++;
                    } else if (!c.lost(s.id())) {
                        problems.add("segment " + s.id() + " in slot " + s.slot() + " fails its checksum (torn or corrupt)");
                    }
                }
                case WRONG_SLOT -> problems.add(c.lost(s.id()) ? "slot " + s.slot() + " holds the header of lost segment "
                        + s.id() + ", which belongs elsewhere" : "slot " + s.slot() + " holds a header for segment " + s.id() + ", which belongs elsewhere");
            }
        }
        out.printf("segments: %d valid, %d empty, %d old ones with a bad checksum (already written back, harmless)%n", valid, empty, stale);
        out.printf("last migrated segment %d; the next start replays %d segment(s) (%d..%d) and continues at %d%n", lastMigrated,
                c.replay.replay().size(), lastMigrated + 1, c.replay.nextId() - 1, c.replay.nextId());
        io.writeboost.recovery.DataLoss loss = c.replay.loss();
        if (c.record != null && c.record.abandoned()) {
            // First: nothing else about this cache matters to the operator any more.
            problems.add(0, "ABANDONED: the engine failed over from this cache device after device errors; the backing stores "
                    + "hold the volumes (newer than this log), " + (c.record.lostLines() > 0 ? c.record.lostLines()
                    + " dirty line(s) were reported lost (ranges below); " : "")
                    + "a start refuses it: format a new cache (the start's command with --format added)");
        }
        if (loss != null) {
            // First and whole: this is what the operator must act on.
            StringBuilder b = new StringBuilder("LOST ACKNOWLEDGED DATA: ").append(loss.cause()).append("; lost segment(s) ")
                    .append(loss.segments()).append(", ").append(loss.dirtyLines()).append(" dirty line(s)")
                    .append(loss.headersLost() ? " known (a lost header hides the rest: every volume is listed whole)" : "")
                    .append("; affected ranges (device, first and last sector):");
            for (io.writeboost.format.LostRange r : loss.ranges()) {
                b.append("\n    ").append(loss.describe(r));
            }
            b.append("\n  a start refuses until the loss is accepted with --accept-data-loss; then check the file system on "
                    + "each affected volume and restore these ranges from a backup");
            problems.add(0, b.toString());
        } else if (!c.replay.discarded().isEmpty()) {
            problems.add("segment(s) " + c.replay.discarded() + " lie past a gap in the log and would be erased at the next start");
        }
        long[] dirty = c.dirtyLinesByDevice();
        for (VolumeEntry v : c.superblock.volumes()) {
            out.printf("dirty lines of volume %d '%s': %d%n", v.deviceId(), v.name(), dirty[v.deviceId()]);
        }
        out.println("clean shutdown: " + (c.record == null ? "unknown (no valid record)"
                : c.record.cleanShutdown() ? "yes" : read.holder() != null ? "no (in use)" : "no (crashed, or still mounted)"));
        if (c.record != null && c.record.lostRangesTotal() > 0) {
            out.printf("data loss %s since the format: %d line(s) in %d range(s)%n", c.record.abandoned()
                    ? "accepted or reported by the failover" : "accepted", c.record.lostLines(), c.record.lostRangesTotal());
            for (io.writeboost.format.LostRange r : c.record.lostRanges()) {
                out.println("  " + (c.record.abandoned() ? "" : "accepted ") + "lost range: " + r);
            }
        }
        if (problems.isEmpty()) {
            out.println("OK: no problems found");
            return 0;
        }
        for (String p : problems) {
            out.println("PROBLEM: " + p);
        }
        return 1;
    }

    private static String describe(SuperblockRecord r) {
        return r == null ? "invalid" : "sequence " + r.sequence() + ", last_migrated_segment_id " + r.lastMigratedId()
                + ", last_flushed_segment_id " + r.lastFlushedId() + (r.cleanShutdown() ? ", clean" : "")
                + (r.verifyAtStart() ? ", a vouched segment failed its checksum in the last run" : "")
                + (r.abandoned() ? ", ABANDONED by a failover" : "");
    }

    static int dump(Path cachePath, boolean json, boolean all, PrintStream out, PrintStream err) throws IOException {
        Inspected read = inspectUnlocked(cachePath);
        CacheInspection c = read.c();
        if (read.holder() != null) {
            // On stderr: the dump itself stays one JSON object a line.
            err.println("fuse-mount dump: " + inUse(cachePath, read.holder()));
        }
        long lastMigrated = c.replay.lastMigratedId();
        List<CacheInspection.Slot> slots = new ArrayList<>(c.slots);
        slots.removeIf(s -> s.header() == null || (!all && s.id() <= lastMigrated));
        slots.sort(Comparator.comparingLong(CacheInspection.Slot::id));
        Map<Long, ReplaySegment> replayed = new LinkedHashMap<>();
        for (ReplaySegment r : c.replay.replay()) {
            replayed.put(r.id(), r);
        }
        if (!json) {
            out.printf("# cache %s: last_migrated_segment_id %d; segment id slot lines state%n", cachePath, lastMigrated);
            out.println("#   line device sector dirty-bits (sector 0 first) [tombstone | clean]");
        }
        for (CacheInspection.Slot s : slots) {
            SegmentHeader h = s.header();
            String state = c.lost(s.id()) ? "lost" : s.state() == CacheInspection.SlotState.VALID ? (s.id() <= lastMigrated
                    ? "written-back" : replayed.containsKey(s.id()) ? "dirty" : "unreplayable") : s.state().name().toLowerCase();
            if (json) {
                out.printf("{\"segment\":%d,\"slot\":%d,\"lines\":%d,\"state\":\"%s\",\"lost\":%b}%n", s.id(), s.slot(),
                        h.nrLines, state, c.lost(s.id()));
            } else {
                out.printf("segment %d slot %d lines %d %s%n", s.id(), s.slot(), h.nrLines, state);
            }
            for (int k = 0; k < h.nrLines; k++) {
                long key = h.keys[k];
                if (key == 0) {
                    continue;
                }
                boolean tomb = LineKey.isTombstone(key);
                boolean clean = h.clean[k];
                long sector = LineKey.line(key) * 8;
                int bits = h.dirty[k] & 0xFF;
                if (json) {
                    out.printf("{\"segment\":%d,\"line\":%d,\"device\":%d,\"sector\":%d,\"dirty\":%d,\"tombstone\":%b,"
                            + "\"clean\":%b}%n", s.id(), k, LineKey.device(key), sector, bits, tomb, clean);
                } else {
                    StringBuilder b = new StringBuilder();
                    for (int i = 0; i < 8; i++) {
                        b.append((bits >> i & 1) == 1 ? '1' : '0');
                    }
                    out.printf("  %3d %3d %12d %s%s%n", k, LineKey.device(key), sector, b, tomb ? " tombstone" : clean ? " clean" : "");
                }
            }
        }
        // Lost segments with no readable header in their slot still get a line: the loss is
        // what a reader of the dump must not miss.
        if (c.replay.loss() != null) {
            java.util.Set<Long> shown = new java.util.HashSet<>();
            slots.forEach(s -> shown.add(s.id()));
            for (long id : c.replay.loss().segments()) {
                if (!shown.contains(id)) {
                    int slot = io.writeboost.format.Layout.slotOf(id, c.superblock.nrSegments());
                    if (json) {
                        out.printf("{\"segment\":%d,\"slot\":%d,\"lines\":null,\"state\":\"lost\",\"lost\":true}%n", id, slot);
                    } else {
                        out.printf("segment %d slot %d lines ? lost (no readable header)%n", id, slot);
                    }
                }
            }
        }
        return 0;
    }

    static int writeback(MountOptions m, boolean acceptDataLoss, PrintStream out) throws UsageException, RequestException, IOException {
        requireBackings("writeback", m);
        java.util.Set<String> names = new java.util.LinkedHashSet<>();
        m.backings.forEach(b -> names.add(b.name()));
        MountOptions.checkAcceptMoved(false, m.acceptMovedBacking, names);
        ExclusiveUse exclusive = ExclusiveUse.acquire(m.cache, m.backings);
        List<FileBlockDevice> open = new ArrayList<>();
        try {
            Preflight.checkVolumeTable(m.cache, m.backings, m.cacheId, m.acceptMovedBacking);
            FileBlockDevice cache = FileBlockDevice.open(m.cache.toAbsolutePath());
            open.add(cache);
            MovedBackings.record(cache, m.backings, m.acceptMovedBacking);
            // In the table's order (Preflight checked it); the ids need not be 1..n after attaches and detaches.
            List<io.writeboost.format.VolumeEntry> table = Recovery.readSuperblock(cache).volumes();
            Map<Integer, BlockDevice> backings = openBackings(m, i -> table.get(i).deviceId(), open);
            CacheEngine engine = CacheEngine.open(cache, backings, new EngineConfig().acceptDataLoss(acceptDataLoss));
            try {
                long dirty = engine.status().dirtyLines();
                out.printf("writing back %d dirty line(s) from %s%n", dirty, m.cache);
                Thread watcher = progressWatcher(engine, dirty);
                try {
                    engine.drain();
                } finally {
                    watcher.interrupt();
                    watcher.join();
                }
                out.printf("done: %s holds no dirty data; the backing stores hold the volumes%n", m.cache);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                engine.close();
            }
            return 0;
        } finally {
            close(open, exclusive);
        }
    }

    /** Closes the devices, then lets go of them: the locks last as long as a descriptor that can write. */
    private static void close(List<FileBlockDevice> open, ExclusiveUse exclusive) throws IOException {
        try {
            for (FileBlockDevice d : open) {
                d.close();
            }
        } finally {
            exclusive.close();
        }
    }

    /** The offline tools that touch the backing stores need them all named, and existing. */
    private static void requireBackings(String command, MountOptions m) throws UsageException {
        if (m.backings.isEmpty()) {
            throw new UsageException(command + ": the backing stores are required (--backing or --config)");
        }
        for (ServerSettings.Backing b : m.backings) {
            if (!Files.exists(b.path())) {
                throw new UsageException(b.path() + ": no such file or device (backing store)");
            }
        }
    }

    /** Opens the backing stores in command-line order, by device id ({@code idOf} the position); each also joins {@code open}. */
    private static Map<Integer, BlockDevice> openBackings(MountOptions m, java.util.function.IntUnaryOperator idOf,
                                                          List<FileBlockDevice> open) throws IOException {
        Map<Integer, BlockDevice> backings = new LinkedHashMap<>();
        for (int i = 0; i < m.backings.size(); i++) {
            FileBlockDevice d = FileBlockDevice.open(m.backings.get(i).path().toAbsolutePath());
            open.add(d);
            backings.put(idOf.applyAsInt(i), d);
        }
        return backings;
    }

    /**
     * Upgrades a format version 1 cache in place: writes its dirty data back to the backing
     * stores and syncs them ({@link UpgradeFromV1}, which only reads the cache), then formats
     * it as version 2 with the same cache id and volume table. Interrupted before the format,
     * it runs again from the start; the format itself comes only after the data is safe.
     */
    static int upgrade(MountOptions m, PrintStream out) throws UsageException, RequestException, IOException {
        requireBackings("upgrade", m);
        ExclusiveUse exclusive = ExclusiveUse.acquire(m.cache, m.backings);
        List<FileBlockDevice> open = new ArrayList<>();
        try {
            FileBlockDevice cache = FileBlockDevice.open(m.cache.toAbsolutePath());
            open.add(cache);
            Superblock sb;
            try {
                sb = UpgradeFromV1.superblock(cache);
            } catch (FormatException e) {
                try {
                    Superblock current = Recovery.readSuperblock(cache);
                    out.printf("%s is already format version %d (cache %d): nothing to upgrade%n", m.cache, Superblock.VERSION,
                            current.cacheId());
                    if (Recovery.readRecordOrNull(cache, current) == null) {
                        // The upgrade formats superblock first, record second: cut in between, the
                        // cache has a new superblock and no record, and a start refuses it.
                        out.printf("but neither copy of its superblock record is valid: if an upgrade was cut short after it "
                                + "said the backing stores are synced, the data is on them, and formatting the cache again "
                                + "(--format --force, same backing stores) finishes it%n");
                        return 1;
                    }
                    return 0;
                } catch (FormatException notCurrent) {
                    throw e;
                }
            }
            Preflight.checkVolumeTable(m.cache, sb, m.backings, m.cacheId);
            Map<Integer, BlockDevice> backings = openBackings(m, i -> sb.volumes().get(i).deviceId(), open);
            out.printf("%s: format version 1, cache %d, %d volume(s); writing its dirty data back%n", m.cache, sb.cacheId(),
                    sb.volumes().size());
            UpgradeFromV1.Result r = UpgradeFromV1.writeBack(cache, sb, backings);
            out.printf("wrote back %d line(s) (%d sectors) and punched %d discarded line(s) from segments %s; the backing stores "
                    + "are synced%n", r.lines(), r.sectors(), r.punched(),
                    r.firstSegment() == 0 ? "(none: everything was written back already)" : r.firstSegment() + ".." + r.lastSegment());
            CacheEngine.format(cache, sb.cacheId(), MovedBackings.identified(sb.volumes(), m.backings));
            cache.sync();
            out.printf("formatted %s as format version %d (cache %d, the same volumes); mount it as before%n", m.cache,
                    Superblock.VERSION, sb.cacheId());
            return 0;
        } finally {
            close(open, exclusive);
        }
    }

    /** Draws the drain's progress while it runs (this thread does no I/O, so interrupting it is safe). */
    private static Thread progressWatcher(CacheEngine engine, long total) {
        Thread t = new Thread(() -> {
            try (Progress p = new Progress("writing back", total)) {
                while (!Thread.currentThread().isInterrupted()) {
                    p.update(total - engine.status().dirtyLines());
                    Thread.sleep(100);
                }
            } catch (InterruptedException ignored) {
                // done
            }
        }, "wb-progress");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
