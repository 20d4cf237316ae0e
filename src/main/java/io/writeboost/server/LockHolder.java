package io.writeboost.server;

import io.writeboost.device.DeviceLock;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Names the process that holds a device's lock, for one-line messages: its PID and command line. */
final class LockHolder {
    private LockHolder() {}

    private static final int COMMAND_MAX = 400;

    /** The holder of {@code path}'s lock, as {@link #describe} says; null when none. */
    static String of(Path path) {
        long pid = DeviceLock.holderPid(path);
        return pid == DeviceLock.NONE ? null : describe(pid);
    }

    /**
     * "process PID (COMMAND)", the command as {@link #command} shortens it, or without it
     * when /proc/PID/cmdline cannot be read; "this process"; "another process" for a PID
     * that is not visible here.
     */
    static String describe(long pid) {
        if (pid == ProcessHandle.current().pid()) {
            return "this process";
        }
        if (pid <= 0) {
            return "another process";
        }
        try {
            byte[] raw = Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"));
            List<String> argv = new ArrayList<>();
            int start = 0;
            for (int i = 0; i <= raw.length; i++) {
                if (i == raw.length ? i > start : raw[i] == 0) {
                    argv.add(new String(raw, start, i - start, StandardCharsets.UTF_8));
                    start = i + 1;
                }
            }
            return argv.isEmpty() ? "process " + pid : "process " + pid + " (" + command(argv) + ")";
        } catch (IOException e) {
            return "process " + pid;
        }
    }

    /**
     * A command line for a one-line message: writeboost's Java process (the launcher's
     * {@code java -jar writeboost.jar ARGS}, or its main class, a {@code Main} under
     * {@code io.writeboost}, on a class path) as {@code fuse-mount ARGS}; any other with its
     * class path left out; at most {@value #COMMAND_MAX} characters.
     */
    static String command(List<String> argv) {
        List<String> shown = new ArrayList<>();
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            boolean writeboostJar = a.equals("-jar") && i + 1 < argv.size()
                    && Path.of(argv.get(i + 1)).getFileName().toString().startsWith("writeboost");
            boolean writeboostMain = a.startsWith("io.writeboost.") && a.endsWith(".Main");
            if (writeboostMain || writeboostJar) {
                shown.clear();
                shown.add("fuse-mount");
                shown.addAll(argv.subList(i + (writeboostJar ? 2 : 1), argv.size()));
                break;
            }
            shown.add(a);
            if ((a.equals("-cp") || a.equals("-classpath") || a.equals("--class-path")) && i + 1 < argv.size()) {
                shown.add("...");
                i++;
            }
        }
        String s = String.join(" ", shown).replaceAll("\\p{Cntrl}", "?");
        return s.length() <= COMMAND_MAX ? s : s.substring(0, COMMAND_MAX - 3) + "...";
    }
}
