package io.writeboost.cli;

import io.writeboost.knob.Knob;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A mount's settings in a file, for --config: one {@code key = value} per line. Keys are the
 * long option names (cache, backing, mountpoint, cache-id, log-file, log-level, drain-on-stop,
 * async-dio, parallel-direct-writes, metrics-listen) and knob names (allow_migrate = 1); each is given once,
 * but {@code backing}, once per volume. A {@code #} at the start of a line or after whitespace
 * starts a comment; any other {@code #} is part of the value ({@code /srv/disk#2.img}), and a
 * value in double or single quotes is taken whole ({@code "/srv/my disk #2.img"}), so that a
 * path never loses its end to a comment. Options given on the command line override the file.
 * Errors name the file and line. {@code accept-data-loss = yes} is refused unless
 * --accept-data-loss is on the command line too: a file read at every start would otherwise
 * accept every later loss unseen.
 */
final class ConfigFile {
    private ConfigFile() {}

    static final Set<String> KEYS = Set.of("cache", "backing", "mountpoint", "cache-id", "log-file", "log-level", "drain-on-stop",
            "async-dio", "parallel-direct-writes", "accept-data-loss", "metrics-listen");
    /** Keys that may be given more than once, each time for one more item. */
    private static final Set<String> REPEATABLE = Set.of("backing");
    /** One-time or per-invocation options that a file read at every boot must not carry. */
    private static final Set<String> COMMAND_LINE_ONLY = Set.of("format", "force", "cache-size", "sparse", "foreground", "ready-file", "config");

    static void apply(Path file, MountOptions o) throws UsageException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UsageException("--config " + file + ": cannot read: " + e.getMessage());
        }
        // A key's first line: a second value for it would otherwise replace the first unseen.
        Map<String, Integer> given = new HashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String where = file + ":" + (i + 1) + ": ";
            try {
                String[] kv = keyValue(lines.get(i));
                if (kv == null) {
                    continue;
                }
                String key = kv[0], value = kv[1];
                if (value.isEmpty()) {
                    throw new UsageException(key + " has no value");
                }
                Integer first = given.putIfAbsent(key, i + 1);
                if (first != null && !REPEATABLE.contains(key)) {
                    throw new UsageException(key + " is given a second time (first on line " + first + "); give each key once");
                }
                if (COMMAND_LINE_ONLY.contains(key)) {
                    throw new UsageException(key + " belongs on the command line, not in a file read at every start");
                } else if (KEYS.contains(key)) {
                    set(o, key, value);
                } else if (Knob.byName(key) != null) {
                    o.addKnobs(key + "=" + value);
                } else {
                    throw new UsageException("unknown key '" + key + "' (keys: " + String.join(", ", KEYS.stream().sorted().toList())
                            + ", or a knob name)");
                }
            } catch (UsageException e) {
                throw new UsageException(where + e.getMessage());
            }
        }
    }

    /**
     * The key and value of one line, or null when it holds only a comment or nothing. A comment
     * starts at a {@code #} at the start of the line or after whitespace; a value that starts
     * with a quote ends at the same quote, and only a comment may follow it.
     */
    static String[] keyValue(String line) throws UsageException {
        int eq = -1, end = line.length();
        for (int i = 0; i < line.length(); i++) {
            if (comment(line, i)) {
                end = i;
                break;
            }
            if (line.charAt(i) == '=') {
                eq = i;
                break;
            }
        }
        if (eq < 0 && line.substring(0, end).isBlank()) {
            return null;
        }
        String key = eq < 0 ? "" : line.substring(0, eq).strip();
        if (key.isEmpty()) {
            throw new UsageException("expected 'key = value', got '" + line.substring(0, end).strip() + "'");
        }
        int v = eq + 1;
        while (v < line.length() && Character.isWhitespace(line.charAt(v))) {
            v++;
        }
        if (v < line.length() && (line.charAt(v) == '"' || line.charAt(v) == '\'')) {
            char quote = line.charAt(v);
            int close = line.indexOf(quote, v + 1);
            if (close < 0) {
                throw new UsageException(key + ": the value's opening " + quote + " has no closing " + quote);
            }
            int after = close + 1;
            while (after < line.length() && Character.isWhitespace(line.charAt(after))) {
                after++;
            }
            if (after < line.length() && !comment(line, after)) {
                throw new UsageException(key + ": only a comment may follow the quoted value, got '"
                        + line.substring(after).strip() + "'");
            }
            return new String[] {key, line.substring(v + 1, close)};
        }
        for (int i = v; i < line.length(); i++) {
            if (comment(line, i)) {
                return new String[] {key, line.substring(v, i).strip()};
            }
        }
        return new String[] {key, line.substring(v).strip()};
    }

    /** Whether a comment starts at {@code i}: a '#' at the start of the line or after whitespace. */
    private static boolean comment(String line, int i) {
        return line.charAt(i) == '#' && (i == 0 || Character.isWhitespace(line.charAt(i - 1)));
    }

    static void set(MountOptions o, String key, String value) throws UsageException {
        try {
            setValue(o, key, value);
        } catch (InvalidPathException e) {
            throw new UsageException(key + " = " + value + ": not a usable path (" + e.getReason() + ")");
        }
    }

    private static void setValue(MountOptions o, String key, String value) throws UsageException {
        switch (key) {
            case "cache" -> o.cache = Path.of(value);
            case "backing" -> o.backings.add(MountOptions.parseBacking(value));
            case "mountpoint" -> o.mountPoint = Path.of(value);
            case "cache-id" -> o.cacheId = MountOptions.parseCacheId(value);
            case "log-file" -> o.logFile = Path.of(value);
            case "log-level" -> o.logLevel = value;
            case "drain-on-stop" -> o.drainOnStop = parseBoolean(key, value);
            case "async-dio" -> o.asyncDio = parseBoolean(key, value);
            case "parallel-direct-writes" -> o.parallelDirectWrites = parseBoolean(key, value);
            case "accept-data-loss" -> o.acceptDataLossInFile = parseBoolean(key, value);
            case "metrics-listen" -> o.metricsListen = MountOptions.parseListen(value);
            default -> throw new IllegalArgumentException(key);
        }
    }

    static boolean parseBoolean(String key, String value) throws UsageException {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "1", "yes", "true", "on" -> true;
            case "0", "no", "false", "off" -> false;
            default -> throw new UsageException(key + " = " + value + ": expected yes or no");
        };
    }
}
