package io.writeboost.cli;

import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobDoc;
import io.writeboost.server.Version;
import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.DefaultParser;
import org.apache.commons.cli.HelpFormatter;
import org.apache.commons.cli.Option;
import org.apache.commons.cli.Options;
import org.apache.commons.cli.ParseException;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;

/**
 * Entry point of the fuse-mount launcher. Loggers are created only after the options are
 * read, because --log-file and --log-level decide how log4j2 is configured.
 */
public final class Main {
    private Main() {}

    static final String USAGE = "fuse-mount [--config FILE] --cache CACHE --backing [NAME=]BACKING [--backing ...] "
            + "[--format [--cache-size SIZE [--sparse]] [--force]] [--cache-id N] [-o KNOB=VALUE ...] [--drain-on-stop] "
            + "[--async-dio on|off] [--parallel-direct-writes on|off] [--accept-data-loss] [--accept-moved-backing NAME] [--metrics-listen [ADDR:]PORT] "
            + "[--foreground] [--log-file F] [--log-level L] MOUNTPOINT";

    static Options options() {
        Options o = new Options();
        o.addOption(Option.builder().longOpt("cache").hasArg().argName("CACHE")
                .desc("cache device: a block device or a file (an SSD partition, or a file on one)").get());
        o.addOption(Option.builder().longOpt("backing").hasArg().argName("[NAME=]BACKING")
                .desc("a backing store to cache (block device or file); repeat for several volumes (device ids 1, 2, ... in this "
                        + "order). The volume appears as MOUNTPOINT/NAME; NAME defaults to BACKING's file name").get());
        o.addOption(Option.builder().longOpt("format")
                .desc("write a fresh, empty cache for these backing stores. Refused when CACHE holds dirty data, unless --force").get());
        o.addOption(Option.builder().longOpt("cache-size").hasArg().argName("SIZE")
                .desc("with --format: create CACHE as a file of SIZE (e.g. 512M, 4G) when it does not exist, writing every block "
                        + "once (zeros) so that later syncs need not allocate").get());
        o.addOption(Option.builder().longOpt("sparse")
                .desc("with --cache-size: create CACHE sparse instead (instant, takes disk space as segments are written; "
                        + "fsyncs are slower until each block has been written once)").get());
        o.addOption(Option.builder().longOpt("force")
                .desc("with --format: format even a cache that holds data not yet written back (that data is lost)").get());
        o.addOption(Option.builder().longOpt("cache-id").hasArg().argName("N")
                .desc("cache id, the name of the caches/<N> directory (default 1; stored at --format, checked after)").get());
        o.addOption(Option.builder("o").hasArg().argName("KNOB=VALUE")
                .desc("set a knob at start (comma-separated or repeated); see the knob list below").get());
        o.addOption(Option.builder().longOpt("foreground")
                .desc("stay in the foreground (the process is the server; logs go to stderr unless --log-file). "
                        + "Without it the launcher returns once the mount is ready and logs to a file").get());
        o.addOption(Option.builder().longOpt("config").hasArg().argName("FILE")
                .desc("read settings from FILE: 'key = value' lines (cache, backing, mountpoint, cache-id, log-file, log-level, "
                        + "drain-on-stop, async-dio, parallel-direct-writes, metrics-listen, or a knob name), each key once (backing once per "
                        + "volume); '#' at a line's start or after whitespace starts a comment, a quoted value is taken whole; "
                        + "the command line overrides it").get());
        o.addOption(Option.builder().longOpt("drain-on-stop")
                .desc("at stop, write every dirty line back and sync the backing stores first, leaving the cache clean").get());
        o.addOption(Option.builder().longOpt("async-dio").hasArg().argName("on|off")
                .desc("grant the kernel FUSE_ASYNC_DIO (default on; kernels from 3.10 know it): a loop device's direct "
                        + "I/O on a volume has many requests in flight instead of one. Older kernels ignore the bit").get());
        o.addOption(Option.builder().longOpt("parallel-direct-writes").hasArg().argName("on|off")
                .desc("grant FOPEN_PARALLEL_DIRECT_WRITES when a volume file is opened (default on; kernels from 6.2 know "
                        + "it): writes to one volume reach the cache together instead of one at a time. Older kernels "
                        + "ignore the bit").get());
        o.addOption(Option.builder().longOpt("accept-data-loss")
                .desc("start even when the cache lost data a flush acknowledged (a start without it refuses, exit 2, and names "
                        + "the lost volume ranges): the ranges go to the log and the status file. Command line only: a config "
                        + "file's accept-data-loss counts only when this is given too").get());
        o.addOption(acceptMovedBacking());
        o.addOption(Option.builder().longOpt("metrics-listen").hasArg().argName("[ADDR:]PORT")
                .desc("serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics (the caches/<id>/metrics figures and the "
                        + "JVM's). ADDR defaults to the loopback address; name another (0.0.0.0, [::], a host's address) to "
                        + "let other machines scrape it. Off unless given").get());
        o.addOption(Option.builder().longOpt("log-file").hasArg().argName("F").desc("append the log to F").get());
        o.addOption(Option.builder().longOpt("log-level").hasArg().argName("L")
                .desc("error, warn, info (default), debug or trace").get());
        o.addOption(Option.builder().longOpt("ready-file").hasArg().argName("F")
                .desc("write the server's PID to F once the mount is ready (used by the launcher)").get());
        o.addOption(Option.builder().longOpt("demo")
                .desc("mount a demo: small sparse cache and backing images in --demo-dir (default ./demo), mounted at DIR/mnt").get());
        o.addOption(Option.builder().longOpt("demo-dir").hasArg().argName("DIR").desc("directory for --demo").get());
        o.addOption(Option.builder().longOpt("engine-demo")
                .desc("run the cache engine alone (no FUSE) on sparse images in --demo-dir and print figures").get());
        o.addOption(Option.builder().longOpt("knobs-doc").desc("print the knob reference (Markdown)").get());
        o.addOption(Option.builder("h").longOpt("help").desc("show this help").get());
        o.addOption(Option.builder().longOpt("version").desc("print the version").get());
        return o;
    }

    /** Shared with the offline tools that write back (writeback): the same option, the same words. */
    static Option acceptMovedBacking() {
        return Option.builder().longOpt("accept-moved-backing").hasArg().argName("NAME")
                .desc("start although volume NAME's backing store is not the one recorded at format (a restored copy, a "
                        + "store whose path changed): its identity as found is recorded, and checked from then on. A start "
                        + "without it refuses such a store (exit 2) and names both. Repeat for more volumes; command line "
                        + "only").get();
    }

    public static void main(String[] args) {
        // During a signal-driven shutdown this blocks until the shutdown hooks finish; fine.
        System.exit(run(args));
    }

    /** Asked by the launcher (not in --help): the offline tools' names, one a line, for it to route them here. */
    static final String LIST_TOOLS = "--list-tools";

    static int run(String[] args) {
        if (args.length == 1 && args[0].equals(LIST_TOOLS)) {
            OfflineTools.COMMANDS.forEach(System.out::println);
            VolumeCommands.COMMANDS.forEach(System.out::println);
            return 0;
        }
        if (args.length > 0 && OfflineTools.COMMANDS.contains(args[0])) {
            System.setProperty("writeboost.logLevel", "WARN");
            return OfflineTools.run(args[0], java.util.Arrays.copyOfRange(args, 1, args.length), System.out, System.err);
        }
        if (args.length > 0 && VolumeCommands.COMMANDS.contains(args[0])) {
            System.setProperty("writeboost.logLevel", "WARN");
            return VolumeCommands.run(args[0], java.util.Arrays.copyOfRange(args, 1, args.length), System.out, System.err);
        }
        Options options = options();
        CommandLine cmd;
        try {
            cmd = new DefaultParser().parse(options, args);
        } catch (ParseException e) {
            System.err.println("fuse-mount: " + e.getMessage() + " (see --help)");
            return 2;
        }
        if (cmd.hasOption("help")) {
            System.out.print(help(options));
            return 0;
        }
        if (cmd.hasOption("version")) {
            System.out.println("writeboost " + Version.get());
            return 0;
        }
        if (cmd.hasOption("knobs-doc")) {
            System.out.print(KnobDoc.markdown());
            return 0;
        }
        if (cmd.hasOption("engine-demo")) {
            try {
                new EngineDemo(Path.of(cmd.getOptionValue("demo-dir", "demo")), System.out).run();
                return 0;
            } catch (Exception e) {
                System.err.println("fuse-mount: engine demo failed: " + e.getMessage());
                return 1;
            }
        }
        if (cmd.hasOption("demo")) {
            System.err.println("fuse-mount: --demo is handled by the fuse-mount launcher script; run ./fuse-mount --demo");
            return 2;
        }
        MountOptions opts;
        try {
            opts = parseMount(cmd);
            opts.commandLine = java.util.List.of(args);
            opts.validate();
        } catch (UsageException e) {
            System.err.println("fuse-mount: " + e.getMessage());
            return 2;
        }
        configureLogging(opts);
        return Serve.run(opts);
    }

    static MountOptions parseMount(CommandLine cmd) throws UsageException {
        MountOptions o = new MountOptions();
        if (cmd.hasOption("config")) {
            ConfigFile.apply(Path.of(cmd.getOptionValue("config")), o);
        }
        // The command line overrides the file: single values replace, a --backing list replaces the file's.
        for (String single : new String[] {"cache", "cache-id", "log-file", "log-level", "async-dio", "parallel-direct-writes",
                "metrics-listen", "config"}) {
            String[] values = cmd.getOptionValues(single);
            if (values != null && values.length > 1) {
                throw new UsageException("--" + single + " given more than once");
            }
            if (values != null && !single.equals("config")) {
                ConfigFile.set(o, single, values[0]);
            }
        }
        if (cmd.getOptionValues("backing") != null) {
            o.backings.clear();
            for (String b : cmd.getOptionValues("backing")) {
                ConfigFile.set(o, "backing", b);
            }
        }
        if (cmd.getArgList().size() > 1) {
            throw new UsageException("one MOUNTPOINT expected, got: " + String.join(" ", cmd.getArgList()));
        }
        if (cmd.getArgList().size() == 1) {
            o.mountPoint = Path.of(cmd.getArgList().get(0));
        } else if (o.mountPoint == null) {
            throw new UsageException("MOUNTPOINT is required (usage: " + USAGE + ")");
        }
        o.format = cmd.hasOption("format");
        o.force = cmd.hasOption("force");
        o.sparse = cmd.hasOption("sparse");
        if (cmd.hasOption("cache-size")) {
            o.cacheSize = MountOptions.parseSize(cmd.getOptionValue("cache-size"));
        }
        if (cmd.getOptionValues("o") != null) {
            for (String k : cmd.getOptionValues("o")) {
                o.addKnobs(k);
            }
        }
        if (cmd.hasOption("drain-on-stop")) {
            o.drainOnStop = true;
        }
        o.foreground = cmd.hasOption("foreground");
        o.acceptDataLoss = cmd.hasOption("accept-data-loss");
        addAcceptMoved(cmd, o);
        if (o.acceptDataLossInFile && !o.acceptDataLoss) {
            throw new UsageException("the config file says accept-data-loss, which counts only when --accept-data-loss is on the "
                    + "command line too: a file read at every start must not accept a loss nobody has seen");
        }
        if (cmd.hasOption("ready-file")) {
            o.readyFile = Path.of(cmd.getOptionValue("ready-file"));
        }
        return o;
    }

    static void addAcceptMoved(CommandLine cmd, MountOptions o) {
        if (cmd.getOptionValues("accept-moved-backing") != null) {
            o.acceptMovedBacking.addAll(java.util.List.of(cmd.getOptionValues("accept-moved-backing")));
        }
    }

    private static void configureLogging(MountOptions o) {
        System.setProperty("writeboost.logLevel", o.logLevel.toUpperCase(java.util.Locale.ROOT));
        if (o.logFile != null) {
            System.setProperty("writeboost.logFile", o.logFile.toAbsolutePath().toString());
            System.setProperty("log4j2.configurationFile", "classpath:log4j2-file.xml");
        }
    }

    static String help(Options options) {
        StringWriter out = new StringWriter();
        PrintWriter w = new PrintWriter(out);
        new HelpFormatter().printHelp(w, 100, USAGE,
                "\nwriteboost " + Version.get() + ": a log-structured write-back block cache (dm-writeboost) served "
                        + "as a FUSE filesystem. MOUNTPOINT (an empty directory) gets one image file per volume, to attach "
                        + "with losetup, and control files under caches/ and devices/.\n\nOptions:", options, 2, 4, "");
        w.println();
        w.println("Also: fuse-mount --demo [--demo-dir DIR] | --engine-demo | --knobs-doc | --help | --version");
        w.println();
        w.println("Offline tools (the cache not mounted):");
        w.println("  fuse-mount check --cache CACHE                  verify superblock, records, every segment; exit 1 on problems");
        w.println("                                                  (lost acknowledged data is listed by volume range)");
        w.println("  fuse-mount dump --cache CACHE [--json] [--all]  list segments and their lines (id, device, sector, dirty bits)");
        w.println("  fuse-mount writeback (--config FILE | --cache CACHE --backing [NAME=]PATH ...) [--accept-data-loss]");
        w.println("                       [--accept-moved-backing NAME]");
        w.println("                                                  write every dirty line back without mounting; safe to interrupt");
        w.println("  fuse-mount volumes --config FILE                print the volume files the config's mount holds");
        w.println("  fuse-mount upgrade (--config FILE | --cache CACHE --backing [NAME=]PATH ...)");
        w.println("                                                  a format version 1 cache: write its dirty data back, then");
        w.println("                                                  format it as version 2 (same cache id and volumes)");
        w.println();
        w.println("On a running mount:");
        w.println("  fuse-mount attach MOUNTPOINT [NAME=]PATH        add the backing store PATH as a new volume NAME");
        w.println("  fuse-mount detach MOUNTPOINT NAME               write volume NAME back and remove it (refused while open)");
        w.println("                                                  exit 2 when refused: nothing was changed");
        w.println();
        w.println("Knobs (control files; -o takes the read-write ones):");
        for (Knob k : Knob.values()) {
            String where = k.scope == Knob.Scope.CACHE ? "caches/<id>/" : "devices/<id>/";
            String access = switch (k.access) {
                case READ_WRITE -> k.rangeText("..") + ", default " + k.format(k.defaultValue);
                case READ_ONLY -> "read-only";
                case ACTION -> "action";
            };
            w.printf("  %-45s %s (%s)%n", where + k.fileName, k.description, access);
        }
        for (io.writeboost.knob.Command c : io.writeboost.knob.Command.values()) {
            w.printf("  %-45s %s (command)%n", "caches/<id>/" + c.fileName + " <- " + c.argument, c.description);
        }
        w.println("  caches/<id>/stat                              dm-writeboost's write/hit/on_buffer/fullsize counters (read-only)");
        w.println("  caches/<id>/status                            one readable summary of the cache (read-only)");
        w.println("  caches/<id>/metrics                           the status and stat figures for Prometheus (read-only)");
        w.println();
        w.println("Stop with: fusermount -u MOUNTPOINT (or SIGTERM/SIGINT to the server): the RAM buffer is flushed and");
        w.println("the superblock record written; dirty data stays in the cache for the next start.");
        w.flush();
        return out.toString();
    }
}
