package io.writeboost.cli;

import org.apache.commons.cli.CommandLine;
import org.apache.commons.cli.DefaultParser;
import org.apache.commons.cli.HelpFormatter;
import org.apache.commons.cli.Option;
import org.apache.commons.cli.Options;
import org.apache.commons.cli.ParseException;

import io.writeboost.knob.KnobDoc;

import java.io.PrintWriter;
import java.nio.file.Path;

/** Entry point of the fuse-mount launcher. */
public final class Main {
    private Main() {}

    static Options options() {
        Options o = new Options();
        o.addOption(Option.builder().longOpt("demo").desc("run the engine demo on sparse images it creates in --demo-dir").get());
        o.addOption(Option.builder().longOpt("demo-dir").hasArg().argName("DIR")
                .desc("directory for the demo's images (default: ./demo)").get());
        o.addOption(Option.builder().longOpt("knobs-doc").desc("print the knob reference (Markdown)").get());
        o.addOption(Option.builder("h").longOpt("help").desc("show this help").get());
        o.addOption(Option.builder().longOpt("version").desc("print the version").get());
        return o;
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
        Options options = options();
        CommandLine cmd;
        try {
            cmd = new DefaultParser().parse(options, args);
        } catch (ParseException e) {
            System.err.println("fuse-mount: " + e.getMessage() + " (see --help)");
            return 2;
        }
        if (cmd.hasOption("help")) {
            help(options);
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
        if (cmd.hasOption("demo")) {
            try {
                new EngineDemo(Path.of(cmd.getOptionValue("demo-dir", "demo")), System.out).run();
                return 0;
            } catch (Exception e) {
                System.err.println("fuse-mount: demo failed: " + e.getMessage());
                return 1;
            }
        }
        System.err.println("fuse-mount: nothing to do; the FUSE mount is not built yet. Try --demo or --help.");
        return 2;
    }

    private static void help(Options options) {
        PrintWriter w = new PrintWriter(System.out);
        new HelpFormatter().printHelp(w, 100, "fuse-mount --demo [--demo-dir DIR] | --help | --version",
                "\nwriteboost: a log-structured write-back block cache (dm-writeboost in user space).\n"
                        + "This build has the cache engine; the FUSE mount comes next.\n\n", options, 2, 4, "");
        w.flush();
    }
}
