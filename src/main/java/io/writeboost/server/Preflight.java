package io.writeboost.server;

import io.writeboost.cache.CacheEngine;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.UnsupportedVersionException;
import io.writeboost.format.Layout;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.recovery.Recovery;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The checks of a request that need to read its devices, made before anything is created or
 * written, so that a refusal leaves everything as it was. A device that cannot be opened as a
 * file or block device, or that a volume cannot have, is the request's fault, not a failure
 * of the server: it is a {@link RequestException} like the rest.
 */
public final class Preflight {
    private Preflight() {}

    /**
     * Every backing store against what a volume can be; then the cache's state against
     * format/force, or its volume table against the backing stores given; then a dead server's
     * mount at the mount point is cleared (see {@link MountPoint}).
     */
    static void check(ServerSettings s) throws RequestException, IOException {
        long[] sizes = backingSizes(s.backings());
        if (s.format()) {
            checkFormat(s);
        } else {
            checkVolumeTable(s.cache(), s.backings(), sizes, s.cacheId());
        }
        // Last: a request refused for another reason leaves even a dead mount as it was.
        if (s.clearStaleMount()) {
            MountPoint.clearStale(s.mountPoint());
        }
    }

    /** Refuses to format over a cache that would lose data or cannot hold two segments. */
    private static void checkFormat(ServerSettings s) throws RequestException, IOException {
        if (!Files.exists(s.cache())) {
            return;
        }
        try (FileBlockDevice cache = open(s.cache(), "cache")) {
            if (Layout.segmentsFor(cache.size()) < 2) {
                throw new RequestException(s.cache() + ": " + cache.size() + " bytes is too small for a cache (at least 3 MiB)");
            }
            Superblock sb;
            try {
                sb = Recovery.readSuperblock(cache);
            } catch (UnsupportedVersionException other) {
                if (!s.force()) {
                    throw new RequestException(s.cache() + " holds a writeboost cache of format version " + other.version()
                            + ", which this build cannot read, so it cannot tell whether it holds dirty data: write it back "
                            + "with the build that wrote it (`fuse-mount writeback`), or add --force to format it anyway");
                }
                return;
            } catch (FormatException notACache) {
                return;
            }
            long dirty;
            try {
                io.writeboost.recovery.RecoveryResult r = Recovery.inspect(cache, sb);
                // Lines of lost segments count: formatting over them ends any hope of saving them.
                dirty = r.dirtyLines() + (r.loss() == null ? 0 : Math.max(1, r.loss().dirtyLines()));
            } catch (IOException unreadable) {
                if (!s.force()) {
                    throw new RequestException(s.cache() + " holds a writeboost cache whose state cannot be read ("
                            + unreadable.getMessage() + "); add --force to format it anyway");
                }
                return;
            }
            if (dirty > 0 && !s.force()) {
                throw new RequestException(s.cache() + " holds " + dirty + " dirty line(s) not yet written back to "
                        + describe(sb) + "; mount it without --format to keep them, or add --force to discard them");
            }
        }
    }

    /**
     * Refuses, before anything is written, a cache whose volume table does not match the
     * backing stores given: their count, each one's name (in order) and size.
     */
    public static void checkVolumeTable(Path cachePath, List<ServerSettings.Backing> backings, Integer cacheId)
            throws RequestException, IOException {
        checkVolumeTable(cachePath, backings, backingSizes(backings), cacheId);
    }

    /** The same checks against a superblock already read (a version 1 cache's, for the upgrade). */
    public static void checkVolumeTable(Path cachePath, Superblock sb, List<ServerSettings.Backing> backings, Integer cacheId)
            throws RequestException, IOException {
        checkVolumeTable(cachePath, sb, backings, backingSizes(backings), cacheId);
    }

    private static void checkVolumeTable(Path cachePath, List<ServerSettings.Backing> backings, long[] sizes, Integer cacheId)
            throws RequestException, IOException {
        try (FileBlockDevice cache = open(cachePath, "cache")) {
            Superblock sb;
            try {
                sb = Recovery.readSuperblock(cache);
            } catch (FormatException e) {
                throw new RequestException(cachePath + ": " + e.getMessage() + " (use --format to create a cache)");
            }
            checkVolumeTable(cachePath, sb, backings, sizes, cacheId);
        }
    }

    private static void checkVolumeTable(Path cachePath, Superblock sb, List<ServerSettings.Backing> backings, long[] sizes,
                                         Integer cacheId) throws RequestException {
        if (cacheId != null && cacheId != sb.cacheId()) {
            throw new RequestException(cachePath + " is cache " + sb.cacheId() + ", not --cache-id " + cacheId);
        }
        List<VolumeEntry> table = sb.volumes();
        if (table.size() != backings.size()) {
            throw new RequestException(cachePath + " was formatted for " + table.size() + " backing store(s) ("
                    + describe(sb) + "), " + backings.size() + " given");
        }
        for (int i = 0; i < table.size(); i++) {
            VolumeEntry e = table.get(i);
            ServerSettings.Backing b = backings.get(i);
            if (!e.name().equals(b.name())) {
                throw new RequestException("backing #" + (i + 1) + " is named '" + b.name() + "' but " + cachePath
                        + " was formatted with '" + e.name() + "' (" + e.path() + ") there; give --backing " + e.name() + "=PATH");
            }
            if (sizes[i] != e.sizeBytes()) {
                throw new RequestException("backing store " + b.path() + " has " + sizes[i] + " bytes but volume '" + e.name()
                        + "' of " + cachePath + " was formatted on " + e.sizeBytes() + " bytes (" + e.path() + "): wrong backing store?");
            }
        }
    }

    /** Opens each backing store once and checks its size by the rule the format applies to volumes. */
    private static long[] backingSizes(List<ServerSettings.Backing> backings) throws RequestException, IOException {
        long[] sizes = new long[backings.size()];
        for (int i = 0; i < sizes.length; i++) {
            Path path = backings.get(i).path();
            try (FileBlockDevice dev = open(path, "backing store")) {
                sizes[i] = dev.size();
            }
            try {
                CacheEngine.checkVolume(i + 1, sizes[i], "backing store " + path);
            } catch (FormatException e) {
                throw new RequestException(e.getMessage());
            }
        }
        return sizes;
    }

    /** /dev/null, /dev/zero, a FIFO: named by the request, they are refused as the request's fault. */
    private static FileBlockDevice open(Path path, String what) throws RequestException {
        try {
            return FileBlockDevice.open(path);
        } catch (IOException e) {
            throw new RequestException(e.getMessage() + " (" + what + ")");
        }
    }

    private static String describe(Superblock sb) {
        StringBuilder b = new StringBuilder();
        for (VolumeEntry v : sb.volumes()) {
            b.append(b.length() == 0 ? "" : ", ").append(v.name()).append('=').append(v.path());
        }
        return b.toString();
    }
}
