package io.writeboost.server;

import io.writeboost.knob.Knob;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What one server process is asked to serve, as the server reads it. Whoever fills it in (the
 * CLI) has already checked what needs no device read; {@link MountServer#preflight()} checks the
 * rest. Logging is not here: it is configured before the server's first logger exists.
 *
 * @param cache       the cache device or file
 * @param backings    the backing stores, device ids 1, 2, ... in this order
 * @param mountPoint  an empty directory (or one with a dead server's mount on it: see clearStaleMount)
 * @param format      write a fresh cache
 * @param force       with format: even over data not yet written back
 * @param cacheSize   with format: the size of a cache file to create, or null when it exists
 * @param sparse      with cacheSize: create the file sparse rather than written out
 * @param cacheId     the id to format with, or to check against at start; null: 1, unchecked
 * @param knobs       initial knob values
 * @param drainOnStop write every dirty line back before a clean stop
 * @param readyFile   where to write the PID once the mount is ready, or null
 * @param asyncDio    grant the kernel asynchronous direct I/O (FUSE_ASYNC_DIO) at INIT
 * @param parallelDirectWrites grant parallel direct writes (FOPEN_PARALLEL_DIRECT_WRITES) when a volume file is opened
 * @param acceptDataLoss start even when recovery finds acknowledged data lost (the operator's decision, --accept-data-loss)
 * @param clearStaleMount the mount point holds the FUSE mount of a dead server, to be cleared before mounting
 *                        ({@link MountPoint#staleFuseMount}); the directory underneath is checked then
 * @param metricsListen where to serve metrics over HTTP ({@link MetricsListener}), or null for no listener
 * @param acceptMovedBacking the volumes whose backing store may differ from the one recorded (--accept-moved-backing):
 *                           the store as found is recorded ({@link MovedBackings})
 */
public record ServerSettings(Path cache, List<Backing> backings, Path mountPoint, boolean format, boolean force, Long cacheSize,
                             boolean sparse, Integer cacheId, Map<Knob, Long> knobs, boolean drainOnStop, Path readyFile,
                             boolean asyncDio, boolean parallelDirectWrites, boolean acceptDataLoss,
                             boolean clearStaleMount, InetSocketAddress metricsListen,
                             Set<String> acceptMovedBacking) {
    /** One backing store: the volume's file name in the mount and the store's path. */
    public record Backing(String name, Path path) {
    }

    public ServerSettings {
        Objects.requireNonNull(cache, "cache");
        Objects.requireNonNull(mountPoint, "mountPoint");
        backings = List.copyOf(backings);
        acceptMovedBacking = Set.copyOf(acceptMovedBacking);
        Map<Knob, Long> copy = new EnumMap<>(Knob.class);
        copy.putAll(knobs);
        knobs = Collections.unmodifiableMap(copy);
    }

    public int effectiveCacheId() {
        return cacheId == null ? 1 : cacheId;
    }
}
