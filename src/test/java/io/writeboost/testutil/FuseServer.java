package io.writeboost.testutil;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real writeboost server process (the same main class the launcher runs, with --foreground),
 * mounted on a real FUSE mount point. close() always leaves nothing mounted: it unmounts and
 * waits for the process, and kills and lazily unmounts when that fails.
 */
public final class FuseServer implements AutoCloseable {
    public final Path mountPoint;
    public final Path log;
    private final Process process;

    private FuseServer(Path mountPoint, Path log, Process process) {
        this.mountPoint = mountPoint;
        this.log = log;
        this.process = process;
    }

    /** What a CLI run printed and returned. */
    public record Result(int status, String stdout, String stderr) {
    }

    public static List<String> javaCommand(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx512m");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.writeboost.cli.Main");
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Runs the CLI to completion (for commands that must fail or print and exit). */
    public static Result run(String... args) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(javaCommand(args)).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("fuse-mount " + String.join(" ", args) + " did not exit");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    /**
     * Runs a server that should be refused (with --foreground, {@code mountPoint} last) and
     * returns what it printed and its status. One that mounts instead is unmounted and waited
     * for, and an IOException says so: nothing stays mounted either way.
     */
    public static Result startExpectingRefusal(Path mountPoint, String... args) throws IOException, InterruptedException {
        Path state = Files.createTempDirectory("wb-refused");
        Path ready = state.resolve("ready"), out = state.resolve("stdout"), err = state.resolve("stderr");
        List<String> all = new ArrayList<>(List.of("--foreground", "--ready-file", ready.toString()));
        all.addAll(List.of(args));
        all.add(mountPoint.toString());
        // SIGINT back to its default: a command started in the background by a non-interactive
        // shell (nohup mvn ... &) inherits SIGINT ignored, the JVM then installs no handler for
        // it, and StopTest's SIGINT would test how the build was started, not the server.
        List<String> command = new ArrayList<>(List.of("env", "--default-signal=INT"));
        command.addAll(javaCommand(all.toArray(new String[0])));
        Process p = new ProcessBuilder(command)
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        p.getOutputStream().close();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (p.isAlive()) {
                if (Files.exists(ready)) {
                    unmount(mountPoint);
                    p.waitFor(120, TimeUnit.SECONDS);
                    throw new IOException("the server mounted " + mountPoint + " instead of being refused");
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("the server neither mounted nor exited within 120 s");
                }
                Thread.sleep(50);
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            if (p.isAlive()) {
                p.destroyForcibly();
                p.waitFor(30, TimeUnit.SECONDS);
            }
            unmountLazily(mountPoint);
            for (Path f : new Path[] {ready, out, err, state}) {
                Files.deleteIfExists(f);
            }
        }
    }

    /** Starts a server with {@code args} (MOUNTPOINT last) and waits until its mount is ready. */
    public static FuseServer start(Path mountPoint, Path log, String... args) throws IOException, InterruptedException {
        Path ready = Files.createTempFile("wb-ready", "");
        Files.delete(ready);
        List<String> all = new ArrayList<>(List.of("--foreground", "--ready-file", ready.toString(), "--log-file", log.toString()));
        all.addAll(List.of(args));
        all.add(mountPoint.toString());
        // SIGINT back to its default: a command started in the background by a non-interactive
        // shell (nohup mvn ... &) inherits SIGINT ignored, the JVM then installs no handler for
        // it, and StopTest's SIGINT would test how the build was started, not the server.
        List<String> command = new ArrayList<>(List.of("env", "--default-signal=INT"));
        command.addAll(javaCommand(all.toArray(new String[0])));
        Process p = new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.appendTo(log.resolveSibling(log.getFileName() + ".stderr").toFile()))
                .start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(ready)) {
            if (!p.isAlive()) {
                throw new IOException("server exited with " + p.exitValue() + " before mounting: "
                        + Files.readString(log.resolveSibling(log.getFileName() + ".stderr")));
            }
            if (System.nanoTime() > deadline) {
                p.destroyForcibly();
                unmountLazily(mountPoint);
                throw new IOException("server did not mount within 60 s");
            }
            Thread.sleep(50);
        }
        Files.deleteIfExists(ready);
        return new FuseServer(mountPoint, log, p);
    }

    public Path file(String relative) {
        return mountPoint.resolve(relative);
    }

    public String read(String relative) throws IOException {
        return Files.readString(file(relative));
    }

    public long pid() {
        return process.pid();
    }

    /** Clean stop by fusermount -u; returns the server's exit status. */
    public int stop() throws IOException, InterruptedException {
        if (process.isAlive() && !unmount(mountPoint)) {
            throw new IOException(mountPoint + " was still busy after 10 s of fusermount -u (a file or directory left open?); "
                    + "unmounted lazily, the server then never sees the unmount");
        }
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            throw new IOException("server did not exit within 120 s of the unmount" + stuck());
        }
        return process.exitValue();
    }

    /** Sends a signal to the server and waits for it to exit; returns its exit status. */
    public int signal(String signal) throws IOException, InterruptedException {
        Loop.run("kill", "-" + signal, Long.toString(process.pid()));
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            throw new IOException("server did not exit within 120 s of SIG" + signal + stuck());
        }
        if (signal.equals("KILL")) {
            unmountLazily(mountPoint);
        }
        return process.exitValue();
    }

    /** For a server that did not stop: its threads and the end of its log, so that the failure says where it hangs. */
    private String stuck() {
        StringBuilder b = new StringBuilder();
        try {
            Process dump = new ProcessBuilder("jcmd", Long.toString(process.pid()), "Thread.print").redirectErrorStream(true).start();
            b.append("\n-- threads:\n").append(new String(dump.getInputStream().readAllBytes()));
            dump.waitFor(30, TimeUnit.SECONDS);
            List<String> lines = Files.readAllLines(log);
            b.append("\n-- log, last lines:\n").append(String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size())));
        } catch (IOException | InterruptedException e) {
            b.append("\n(no thread dump: ").append(e).append(')');
        }
        return b.toString();
    }

    public boolean alive() {
        return process.isAlive();
    }

    /**
     * Stops the server if it runs, and fails if it does not stop cleanly (a file the test left
     * open keeps the mount busy, and the server then never sees the unmount), after killing it
     * and clearing its mount, so that nothing outlives the test either way.
     */
    @Override
    public void close() throws IOException, InterruptedException {
        if (process.isAlive()) {
            try {
                stop();
            } catch (IOException e) {
                process.destroyForcibly();
                process.waitFor(30, TimeUnit.SECONDS);
                unmountLazily(mountPoint);
                throw e;
            }
        }
        unmountLazily(mountPoint);
    }

    /**
     * Unmounts a FUSE mount so that nothing is left behind: fusermount -u, retried for up to
     * 10 s while the kernel says busy (a loop device just detached lets go of its file a
     * moment later), then lazily. Returns whether it came off without the lazy unmount.
     */
    public static boolean unmount(Path mountPoint) throws IOException, InterruptedException {
        for (int i = 0; i < 100 && mounted(mountPoint); i++) {
            Process p = new ProcessBuilder("fusermount", "-u", mountPoint.toString()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (p.waitFor() == 0) {
                return true;
            }
            Thread.sleep(100);
        }
        boolean clean = !mounted(mountPoint);
        unmountLazily(mountPoint);
        return clean;
    }

    static void unmountLazily(Path mountPoint) throws IOException, InterruptedException {
        if (mounted(mountPoint)) {
            new ProcessBuilder("fusermount", "-u", "-z", mountPoint.toString()).inheritIO().start().waitFor();
        }
    }

    /** Whether anything is mounted at {@code mountPoint} (per /proc/mounts). */
    public static boolean mounted(Path mountPoint) throws IOException {
        return Files.readString(Path.of("/proc/mounts")).contains(" " + mountPoint.toAbsolutePath() + " ");
    }
}
