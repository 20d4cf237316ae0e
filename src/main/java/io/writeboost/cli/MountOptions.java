package io.writeboost.cli;

import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobException;
import io.writeboost.server.MountPoint;
import io.writeboost.server.ServerSettings;
import io.writeboost.server.ServerSettings.Backing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A mount request as given on the command line, checked before anything is changed: every
 * problem is reported as a {@link UsageException} with a one-line message.
 */
public final class MountOptions {
    public Path cache;
    public final List<Backing> backings = new ArrayList<>();
    public boolean format;
    public boolean force;
    /** With --cache-size: create the cache file sparse rather than written out. */
    public boolean sparse;
    public Long cacheSize;
    public Integer cacheId;
    public final Map<Knob, Long> knobs = new EnumMap<>(Knob.class);
    public boolean foreground;
    public Path logFile;
    public String logLevel = "info";
    public Path readyFile;
    public boolean drainOnStop;
    /** Grant the kernel FUSE_ASYNC_DIO at INIT (--async-dio). */
    public boolean asyncDio = true;
    /** Grant FOPEN_PARALLEL_DIRECT_WRITES when a volume file is opened (--parallel-direct-writes). */
    public boolean parallelDirectWrites = true;
    public Path mountPoint;
    /** --accept-data-loss: start even when acknowledged data is lost. Never taken from a config file alone. */
    public boolean acceptDataLoss;
    /** The config file says accept-data-loss; honoured only when the command line says it too. */
    boolean acceptDataLossInFile;
    /** Set by validate(): the mount point holds a dead server's FUSE mount, for the server to clear. */
    boolean clearStaleMount;
    /** --metrics-listen: where to serve metrics over HTTP; null for no listener. */
    public InetSocketAddress metricsListen;
    /** --accept-moved-backing: volumes whose backing store may differ from the one recorded. Command line only. */
    public final Set<String> acceptMovedBacking = new java.util.LinkedHashSet<>();
    /** The arguments as given, to print the command that accepts a loss. */
    public List<String> commandLine = List.of();

    private static final Set<String> LEVELS = Set.of("error", "warn", "info", "debug", "trace");
    /** Parses "[NAME=]PATH". */
    static Backing parseBacking(String spec) throws UsageException {
        int eq = spec.indexOf('=');
        String name;
        String path;
        if (eq >= 0) {
            name = spec.substring(0, eq);
            path = spec.substring(eq + 1);
        } else {
            path = spec;
            Path file = Path.of(spec).getFileName();
            name = file == null ? "" : file.toString();
        }
        if (path.isEmpty()) {
            throw new UsageException("--backing " + spec + ": no path given");
        }
        checkName(name, spec);
        return new Backing(name, Path.of(path));
    }

    static void checkName(String name, String spec) throws UsageException {
        String problem = VolumeEntry.nameProblem(name);
        if (problem != null) {
            throw new UsageException("--backing " + spec + ": " + problem);
        }
    }

    /** Parses "KNOB=VALUE" (several may be joined with commas) into {@link #knobs}. */
    void addKnobs(String spec) throws UsageException {
        for (String one : spec.split(",", -1)) {
            int eq = one.indexOf('=');
            if (eq <= 0) {
                throw new UsageException("-o " + one + ": expected KNOB=VALUE");
            }
            String name = one.substring(0, eq);
            Knob k = Knob.byName(name);
            if (k == null) {
                throw new UsageException("-o " + one + ": unknown knob '" + name + "' (see --help for the list)");
            }
            if (k.access != Knob.Access.READ_WRITE) {
                throw new UsageException("-o " + one + ": " + name + " is " + (k.access == Knob.Access.ACTION ? "an action" : "read-only")
                        + " and cannot be set at start");
            }
            try {
                knobs.put(k, k.parse(one.substring(eq + 1)));
            } catch (KnobException e) {
                throw new UsageException("-o " + one + ": " + e.getMessage());
            }
        }
    }

    /**
     * Parses "[ADDR:]PORT" for --metrics-listen: ADDR a name or an IPv4 address, or an IPv6
     * address in brackets. Without ADDR (or with an empty one) the listener takes the loopback
     * address: metrics leave the machine only when the operator names an address that lets them.
     */
    static InetSocketAddress parseListen(String spec) throws UsageException {
        String what = "--metrics-listen " + spec + ": ";
        int colon = spec.lastIndexOf(':');
        String host = colon < 0 ? "" : spec.substring(0, colon);
        String portText = spec.substring(colon + 1);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.contains(":")) {
            throw new UsageException(what + "put an IPv6 address in brackets: [ADDR]:PORT");
        }
        int port;
        try {
            port = Integer.parseInt(portText);
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 1 || port > 65535) {
            throw new UsageException(what + "expected [ADDR:]PORT with a port 1..65535");
        }
        try {
            InetAddress address = host.isEmpty() ? InetAddress.getLoopbackAddress() : InetAddress.getByName(host);
            return new InetSocketAddress(address, port);
        } catch (UnknownHostException e) {
            throw new UsageException(what + "unknown address '" + host + "'");
        }
    }

    static int parseCacheId(String s) throws UsageException {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw new UsageException("--cache-id " + s + ": not a number");
        }
    }

    static long parseSize(String s) throws UsageException {
        Matcher m = Pattern.compile("(\\d+)([kKmMgGtT]?)(i?[bB])?").matcher(s.trim());
        if (!m.matches()) {
            throw new UsageException("--cache-size " + s + ": expected a size such as 512M, 4G or 1073741824");
        }
        long n;
        try {
            n = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new UsageException("--cache-size " + s + ": too large");
        }
        int shift = switch (m.group(2).toLowerCase(Locale.ROOT)) {
            case "k" -> 10;
            case "m" -> 20;
            case "g" -> 30;
            case "t" -> 40;
            default -> 0;
        };
        if (n > (Long.MAX_VALUE >> shift)) {
            throw new UsageException("--cache-size " + s + ": too large");
        }
        return n << shift;
    }

    /** Checks everything that can be checked without changing anything. */
    void validate() throws UsageException {
        if (cache == null) {
            throw new UsageException("--cache is required");
        }
        if (backings.isEmpty()) {
            throw new UsageException("at least one --backing is required");
        }
        if (backings.size() > Layout.MAX_DEVICE_ID) {
            throw new UsageException("at most " + Layout.MAX_DEVICE_ID + " --backing stores per cache");
        }
        if (mountPoint == null) {
            throw new UsageException("MOUNTPOINT is required");
        }
        if (!format && (force || cacheSize != null)) {
            throw new UsageException((force ? "--force" : "--cache-size") + " only applies with --format");
        }
        if (sparse && cacheSize == null) {
            throw new UsageException("--sparse only applies with --format --cache-size");
        }
        if (cacheId != null && (cacheId < 1 || cacheId > 65535)) {
            throw new UsageException("--cache-id " + cacheId + ": expected 1..65535");
        }
        if (!LEVELS.contains(logLevel)) {
            throw new UsageException("--log-level " + logLevel + ": expected one of error, warn, info, debug, trace");
        }
        Set<String> names = new java.util.LinkedHashSet<>();
        Set<Path> paths = new HashSet<>();
        for (Backing b : backings) {
            if (!names.add(b.name())) {
                throw new UsageException("two volumes are named '" + b.name() + "'; give each --backing its own NAME=");
            }
            checkDevice(b.path(), "backing store");
            if (!paths.add(real(b.path()))) {
                throw new UsageException(b.path() + " is given twice as a backing store");
            }
            if (format && b.path().toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length > VolumeEntry.MAX_PATH_BYTES) {
                throw new UsageException(b.path() + ": path longer than " + VolumeEntry.MAX_PATH_BYTES + " bytes");
            }
        }
        checkAcceptMoved(format, acceptMovedBacking, names);
        if (Files.exists(cache)) {
            checkDevice(cache, "cache");
            if (paths.contains(real(cache))) {
                throw new UsageException(cache + " is given both as the cache and as a backing store");
            }
            if (cacheSize != null) {
                throw new UsageException("--cache-size: " + cache + " exists already; the size only applies when creating it");
            }
        } else if (!format) {
            throw new UsageException(cache + ": no such file or device (add --format --cache-size SIZE to create a cache)");
        } else if (cacheSize == null) {
            throw new UsageException(cache + " does not exist: give --cache-size to create it");
        } else {
            Path parent = cache.toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new UsageException(cache + ": directory " + parent + " does not exist");
            }
            long min = Layout.SUPERBLOCK_REGION_SIZE + 2L * Layout.SEGMENT_SIZE;
            if (cacheSize < min) {
                throw new UsageException("--cache-size " + cacheSize + ": a cache needs at least " + min + " bytes (3 MiB: superblock and 2 segments)");
            }
        }
        // A dead server's mount is cleared by the server once logging runs (Preflight), and the
        // directory underneath checked then; here it would only look like no directory at all.
        clearStaleMount = MountPoint.staleFuseMount(mountPoint) != null;
        if (!clearStaleMount) {
            if (!Files.isDirectory(mountPoint)) {
                throw new UsageException(mountPoint + ": mount point is not a directory");
            }
            if (isMountPoint(mountPoint)) {
                throw new UsageException(mountPoint + ": something is already mounted there");
            }
            try (var entries = Files.list(mountPoint)) {
                if (entries.findAny().isPresent()) {
                    throw new UsageException(mountPoint + ": mount point is not empty");
                }
            } catch (IOException e) {
                throw new UsageException(mountPoint + ": cannot list the mount point: " + e.getMessage());
            }
        }
        if (logFile != null) {
            Path parent = logFile.toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new UsageException("--log-file " + logFile + ": directory " + parent + " does not exist");
            }
        }
    }

    /** --accept-moved-backing names volumes of the cache, and only a formatted one has a store recorded. */
    static void checkAcceptMoved(boolean format, Set<String> accepted, Set<String> names) throws UsageException {
        for (String n : accepted) {
            if (format) {
                throw new UsageException("--accept-moved-backing " + n + ": --format records every backing store anew");
            }
            if (!names.contains(n)) {
                throw new UsageException("--accept-moved-backing " + n + ": no volume of that name (volumes: " + String.join(", ", names) + ")");
            }
        }
    }

    private static void checkDevice(Path p, String what) throws UsageException {
        if (!Files.exists(p)) {
            throw new UsageException(p + ": no such file or device (" + what + ")");
        }
        if (Files.isDirectory(p)) {
            throw new UsageException(p + ": is a directory, not a file or block device (" + what + ")");
        }
        if (!Files.isReadable(p) || !Files.isWritable(p)) {
            throw new UsageException(p + ": not readable and writable by this user (" + what + ")");
        }
    }

    private static Path real(Path p) throws UsageException {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    static boolean isMountPoint(Path dir) {
        try {
            String target = dir.toRealPath().toString();
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                if (f.length > 4 && unescape(f[4]).equals(target)) {
                    return true;
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    private static String unescape(String s) {
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }

    /** What the server reads of this request; logging and --foreground stay with the CLI. */
    ServerSettings settings() {
        return new ServerSettings(cache, backings, mountPoint, format, force, cacheSize, sparse, cacheId, knobs, drainOnStop, readyFile,
                asyncDio, parallelDirectWrites, acceptDataLoss, clearStaleMount, metricsListen, acceptMovedBacking);
    }
}
