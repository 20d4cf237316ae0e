package io.writeboost.cli;

import io.writeboost.knob.Knob;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A mount's settings in a file, for --config: one {@code key = value} per line, {@code #}
 * starts a comment. Keys are the long option names (cache, backing, mountpoint, cache-id,
 * log-file, log-level, drain-on-stop, async-dio, parallel-direct-writes) and knob names
 * (allow_migrate = 1). Options given on the command line override the file. Errors name the file and line.
 * {@code accept-data-loss = yes} is refused unless --accept-data-loss is on the command line
 * too: a file read at every start would otherwise accept every later loss unseen.
 */
final class ConfigFile {
    private ConfigFile() {}

    static final Set<String> KEYS = Set.of("cache", "backing", "mountpoint", "cache-id", "log-file", "log-level", "drain-on-stop",
            "async-dio", "parallel-direct-writes", "accept-data-loss");
    /** One-time or per-invocation options that a file read at every boot must not carry. */
    private static final Set<String> COMMAND_LINE_ONLY = Set.of("format", "force", "cache-size", "sparse", "foreground", "ready-file", "config");

    static void apply(Path file, MountOptions o) throws UsageException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UsageException("--config " + file + ": cannot read: " + e.getMessage());
        }
        for (int i = 0; i < lines.size(); i++) {
            String where = file + ":" + (i + 1) + ": ";
            String line = lines.get(i);
            int hash = line.indexOf('#');
            if (hash >= 0) {
                line = line.substring(0, hash);
            }
            line = line.strip();
            if (line.isEmpty()) {
                continue;
            }
            int eq = line.indexOf('=');
            if (eq <= 0) {
                throw new UsageException(where + "expected 'key = value', got '" + line + "'");
            }
            String key = line.substring(0, eq).strip();
            String value = line.substring(eq + 1).strip();
            if (value.isEmpty()) {
                throw new UsageException(where + key + " has no value");
            }
            try {
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

    static void set(MountOptions o, String key, String value) throws UsageException {
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
