package io.writeboost.server;

import io.writeboost.cache.CacheEngine;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.BackingIdentity;
import io.writeboost.format.FormatException;
import io.writeboost.format.UnsupportedVersionException;
import io.writeboost.format.Layout;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.recovery.Recovery;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * The checks of a request that need to read its devices, made before anything is created or
 * written, so that a refusal leaves everything as it was. A device that cannot be opened as a
 * file or block device, or that a volume cannot have, is the request's fault, not a failure
 * of the server: it is a {@link RequestException} like the rest.
 */
public final class Preflight {
    private static final Logger log = LogManager.getLogger(Preflight.class);
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
            Superblock sb = checkVolumeTable(s.cache(), s.backings(), sizes, s.cacheId());
            checkIdentities(s.cache(), sb, s.backings(), s.acceptMovedBacking());
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
                io.writeboost.format.SuperblockRecord record = Recovery.readRecordOrNull(cache, sb);
                if (record != null && record.abandoned()) {
                    return; // failed over from: its dirty lines were written back, or reported lost, back then
                }
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
     * backing stores given: their count, each one's name (in order), size and identity (see
     * {@link #checkIdentities}).
     */
    public static void checkVolumeTable(Path cachePath, List<ServerSettings.Backing> backings, Integer cacheId,
                                        Set<String> acceptMoved) throws RequestException, IOException {
        Superblock sb = checkVolumeTable(cachePath, backings, backingSizes(backings), cacheId);
        checkIdentities(cachePath, sb, backings, acceptMoved);
    }

    /**
     * Refuses a backing store that is not the one its volume was formatted on, by the identity
     * the volume table records ({@link StoreIdentity}): two stores of one size that traded
     * paths would otherwise take each other's dirty lines. A volume named in
     * {@code acceptMoved} is let through (the operator's decision; {@link MovedBackings}
     * records its new identity). A volume whose store cannot be told apart (a cache formatted
     * before identities were recorded, a block device without a stable id) gets a warning.
     */
    static void checkIdentities(Path cachePath, Superblock sb, List<ServerSettings.Backing> backings, Set<String> acceptMoved)
            throws RequestException, IOException {
        List<VolumeEntry> table = sb.volumes();
        for (int i = 0; i < table.size(); i++) {
            VolumeEntry e = table.get(i);
            Path path = backings.get(i).path().toAbsolutePath();
            StoreIdentity.Found found = StoreIdentity.of(path, false);
            boolean accepted = acceptMoved.contains(e.name());
            if (e.identity().equals(found.identity()) && e.identity().comparable()) {
                continue;
            }
            if (e.identity().kind() == BackingIdentity.Kind.NONE) {
                if (!accepted) {
                    log.warn("volume '{}' of {} has no backing store identity recorded (formatted by an earlier writeboost): {} "
                            + "cannot be told apart from another store of its size; start once with --accept-moved-backing {} "
                            + "to record it", e.name(), cachePath, path, e.name());
                }
                continue;
            }
            if (e.identity().kind() == BackingIdentity.Kind.UNIDENTIFIED && found.identity().equals(e.identity())) {
                log.warn("volume '{}' of {}: {} is a block device without a stable id (no WWID, serial or UUID): it is "
                        + "checked by its size alone", e.name(), cachePath, path);
                continue;
            }
            if (accepted) {
                log.warn("volume '{}' of {}: {} is not the backing store it was formatted on ({}, recorded {}; found {}): "
                        + "accepted by --accept-moved-backing", e.name(), cachePath, path, e.path(), e.identity(), found.text());
                continue;
            }
            String other = "";
            for (VolumeEntry o : table) {
                if (o != e && o.identity().comparable() && o.identity().equals(found.identity())) {
                    other = ", the store volume '" + o.name() + "' was formatted on";
                }
            }
            throw new RequestException("backing store " + path + " given for volume '" + e.name() + "' is not the one " + cachePath
                    + " was formatted on: recorded " + e.identity() + " (" + e.path() + "), found " + found.text() + other
                    + "; nothing was written. If it is the right store after all (a restored copy, a new device path), "
                    + "start once with --accept-moved-backing " + e.name() + " to record it");
        }
    }

    /** The same checks against a superblock already read (a version 1 cache's, for the upgrade). */
    public static void checkVolumeTable(Path cachePath, Superblock sb, List<ServerSettings.Backing> backings, Integer cacheId)
            throws RequestException, IOException {
        checkVolumeTable(cachePath, sb, backings, backingSizes(backings), cacheId);
    }

    private static Superblock checkVolumeTable(Path cachePath, List<ServerSettings.Backing> backings, long[] sizes, Integer cacheId)
            throws RequestException, IOException {
        try (FileBlockDevice cache = open(cachePath, "cache")) {
            Superblock sb;
            try {
                sb = Recovery.readSuperblock(cache);
            } catch (FormatException e) {
                throw new RequestException(cachePath + ": " + e.getMessage() + " (use --format to create a cache)");
            }
            checkVolumeTable(cachePath, sb, backings, sizes, cacheId);
            return sb;
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
