package io.writeboost.server;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.cache.Status;
import io.writeboost.cli.MountOptions;
import io.writeboost.cli.UsageException;
import io.writeboost.cli.Version;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.front.WriteboostFs;
import io.writeboost.fuse.JnrFuseMount;
import io.writeboost.recovery.Recovery;
import io.writeboost.volume.Volume;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One server process: checks the devices against the request, formats or recovers the cache,
 * mounts, serves until unmounted or signalled, then stops cleanly.
 */
public final class MountServer {
    private static final Logger log = LogManager.getLogger(MountServer.class);
    /**
     * FUSE options: one copy of the data (direct_io), 128 KiB requests, kernel-side permission
     * checks, and room for 64 asynchronous requests in flight (the kernel's default of 12
     * capped a loop device's asynchronous direct I/O: 4 KiB random writes at queue depth 32
     * went from 43-47k to 56-64k IOPS).
     */
    static final List<String> FUSE_OPTIONS = List.of("direct_io", "big_writes", "max_write=131072", "max_read=131072",
            "default_permissions", "fsname=writeboost", "subtype=writeboost", "max_background=64", "congestion_threshold=48");

    private final MountOptions opts;
    private final SystemdNotify notify = SystemdNotify.fromEnvironment();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean signalled;
    private volatile boolean cleanStop;
    private volatile boolean stopping;

    public MountServer(MountOptions opts) {
        this.opts = opts;
    }

    /**
     * Checks that need to read the devices, before anything is written: the cache's state
     * against --format/--force, and its volume table against the backing stores given.
     */
    public void preflight() throws UsageException, IOException {
        if (opts.format) {
            if (!Files.exists(opts.cache)) {
                return;
            }
            try (FileBlockDevice cache = FileBlockDevice.open(opts.cache)) {
                if (Layout.segmentsFor(cache.size()) < 2) {
                    throw new UsageException(opts.cache + ": " + cache.size() + " bytes is too small for a cache (at least 3 MiB)");
                }
                Superblock sb;
                try {
                    sb = Recovery.readSuperblock(cache);
                } catch (FormatException notACache) {
                    return;
                }
                long dirty;
                try {
                    dirty = Recovery.inspect(cache, sb).dirtyLines();
                } catch (IOException unreadable) {
                    if (!opts.force) {
                        throw new UsageException(opts.cache + " holds a writeboost cache whose state cannot be read ("
                                + unreadable.getMessage() + "); add --force to format it anyway");
                    }
                    return;
                }
                if (dirty > 0 && !opts.force) {
                    throw new UsageException(opts.cache + " holds " + dirty + " dirty line(s) not yet written back to "
                            + describe(sb) + "; mount it without --format to keep them, or add --force to discard them");
                }
            }
            return;
        }
        checkVolumeTable(opts.cache, opts.backings, opts.cacheId);
    }

    /**
     * Refuses, before anything is written, a cache whose volume table does not match the
     * backing stores given: their count, each one's name (in order) and size.
     */
    public static void checkVolumeTable(Path cachePath, List<MountOptions.Backing> backings, Integer cacheId)
            throws UsageException, IOException {
        try (FileBlockDevice cache = FileBlockDevice.open(cachePath)) {
            Superblock sb;
            try {
                sb = Recovery.readSuperblock(cache);
            } catch (FormatException e) {
                throw new UsageException(cachePath + ": " + e.getMessage() + " (use --format to create a cache)");
            }
            if (cacheId != null && cacheId != sb.cacheId()) {
                throw new UsageException(cachePath + " is cache " + sb.cacheId() + ", not --cache-id " + cacheId);
            }
            List<VolumeEntry> table = sb.volumes();
            if (table.size() != backings.size()) {
                throw new UsageException(cachePath + " was formatted for " + table.size() + " backing store(s) ("
                        + describe(sb) + "), " + backings.size() + " given");
            }
            for (int i = 0; i < table.size(); i++) {
                VolumeEntry e = table.get(i);
                MountOptions.Backing b = backings.get(i);
                if (!e.name().equals(b.name())) {
                    throw new UsageException("backing #" + (i + 1) + " is named '" + b.name() + "' but " + cachePath
                            + " was formatted with '" + e.name() + "' (" + e.path() + ") there; give --backing " + e.name() + "=PATH");
                }
                long size;
                try (FileBlockDevice dev = FileBlockDevice.open(b.path())) {
                    size = dev.size();
                }
                if (size != e.sizeBytes()) {
                    throw new UsageException("backing store " + b.path() + " has " + size + " bytes but volume '" + e.name()
                            + "' of " + cachePath + " was formatted on " + e.sizeBytes() + " bytes (" + e.path() + "): wrong backing store?");
                }
            }
        }
    }

    private static FileBlockDevice createWritten(Path path, long size) throws IOException {
        long t0 = System.nanoTime();
        log.info("creating cache file {}: writing {} MiB so that segment writes land on allocated blocks (--sparse skips this)",
                path, size >> 20);
        FileBlockDevice dev = FileBlockDevice.createWritten(path, size);
        log.info("created {} in {} ms", path, (System.nanoTime() - t0) / 1_000_000);
        return dev;
    }

    private static String describe(Superblock sb) {
        StringBuilder b = new StringBuilder();
        for (VolumeEntry v : sb.volumes()) {
            b.append(b.length() == 0 ? "" : ", ").append(v.name()).append('=').append(v.path());
        }
        return b.toString();
    }

    /** Formats or recovers, mounts and serves; returns the process exit status. */
    public int run() throws IOException {
        List<FileBlockDevice> open = new ArrayList<>();
        CacheEngine engine = null;
        try {
            Path cachePath = opts.cache.toAbsolutePath();
            FileBlockDevice cache = Files.exists(cachePath) ? FileBlockDevice.open(cachePath)
                    : opts.sparse ? FileBlockDevice.createSparse(cachePath, opts.cacheSize)
                    : createWritten(cachePath, opts.cacheSize);
            open.add(cache);
            Map<Integer, BlockDevice> backings = new LinkedHashMap<>();
            List<VolumeEntry> entries = new ArrayList<>();
            for (int i = 0; i < opts.backings.size(); i++) {
                MountOptions.Backing b = opts.backings.get(i);
                FileBlockDevice dev = FileBlockDevice.open(b.path().toAbsolutePath());
                open.add(dev);
                backings.put(i + 1, dev);
                entries.add(new VolumeEntry(i + 1, dev.size(), b.name(), b.path().toAbsolutePath().toString()));
            }
            if (opts.format) {
                CacheEngine.format(cache, opts.effectiveCacheId(), entries);
            }
            EngineConfig config = new EngineConfig();
            opts.knobs.forEach(config::knob);
            engine = CacheEngine.open(cache, backings, config);
            List<Volume> volumes = new ArrayList<>();
            for (VolumeEntry e : engine.superblock().volumes()) {
                volumes.add(new Volume(engine, e.deviceId(), e.name(), backings.get(e.deviceId()).name(), e.sizeBytes()));
            }
            return serve(engine, volumes);
        } finally {
            if (engine != null) {
                closeEngine(engine);
            }
            for (FileBlockDevice d : open) {
                try {
                    d.close();
                } catch (IOException e) {
                    log.warn("closing {}: {}", d.name(), e.toString());
                }
            }
            stopped.countDown();
        }
    }

    private int serve(CacheEngine engine, List<Volume> volumes) throws IOException {
        WriteboostFs fs = new WriteboostFs(engine, volumes);
        JnrFuseMount fuse = new JnrFuseMount(fs, () -> ready(engine, volumes));
        // SIGTERM/SIGINT start the JVM's shutdown: unmount, let the main thread stop the
        // engine cleanly, then exit 0. (The hook also runs at a normal exit, when all is done.)
        Thread hook = new Thread(() -> {
            if (stopped.getCount() == 0) {
                return;
            }
            signalled = true;
            log.info("stop requested by signal: unmounting {}", opts.mountPoint);
            fuse.requestUnmount();
            boolean clean = false;
            try {
                // No limit of our own: a drain at stop may take long; systemd's TimeoutStopSec
                // (or a second, harder signal) decides when waiting has gone on too long.
                stopped.await();
                clean = cleanStop;
                if (!clean) {
                    log.error("the stop was not clean; see above");
                }
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            LogManager.shutdown();
            Runtime.getRuntime().halt(clean ? 0 : 1);
        }, "wb-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            fuse.serve(opts.mountPoint, FUSE_OPTIONS, opts.asyncDio, opts.parallelDirectWrites);
        } catch (RuntimeException e) {
            throw new IOException("mounting " + opts.mountPoint + " failed: " + e.getMessage()
                    + (e.getCause() != null ? ": " + e.getCause().getMessage() : ""), e);
        }
        log.info("{} unmounted{}", opts.mountPoint, signalled ? " (signal)" : "");
        return 0;
    }

    private void ready(CacheEngine engine, List<Volume> volumes) {
        StringBuilder names = new StringBuilder();
        for (Volume v : volumes) {
            names.append(names.length() == 0 ? "" : ", ").append(v.name()).append(" (").append(v.size() >> 20).append(" MiB on ")
                    .append(v.backingPath()).append(')');
        }
        log.info("writeboost {} serving {}: cache {} on {} ({} segments); volumes: {}", Version.get(), opts.mountPoint,
                engine.superblock().cacheId(), opts.cache, engine.superblock().nrSegments(), names);
        notify.send("READY=1\nSTATUS=" + engine.status().summary());
        if (notify.enabled()) {
            startStatusUpdates(engine);
        }
        if (opts.readyFile != null) {
            try {
                Path tmp = opts.readyFile.resolveSibling(opts.readyFile.getFileName() + ".tmp");
                Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
                Files.move(tmp, opts.readyFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                log.error("cannot write the ready file {}: {}", opts.readyFile, e.toString());
            }
        }
    }

    /** Refreshes systemd's STATUS= line every few seconds while serving. */
    private void startStatusUpdates(CacheEngine engine) {
        Thread t = new Thread(() -> {
            try {
                while (!stopped.await(5, TimeUnit.SECONDS) && !stopping) {
                    notify.send("STATUS=" + engine.status().summary());
                }
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "wb-sd-status");
        t.setDaemon(true);
        t.start();
    }

    private void closeEngine(CacheEngine engine) {
        stopping = true;
        notify.send("STOPPING=1\nSTATUS=stopping: " + engine.status().summary());
        if (opts.drainOnStop && engine.status().failure() == null) {
            try {
                log.info("--drain-on-stop: writing every dirty line back before stopping");
                engine.drain();
            } catch (IOException e) {
                log.error("drain at stop failed; dirty data stays in the cache: {}", e.toString());
            }
        }
        try {
            engine.close();
            cleanStop = true;
        } catch (IOException e) {
            log.error("stop was not clean: {}", e.toString());
        }
        Status st = engine.status();
        log.info("stopped: last flushed segment {}, last written back {}, {} dirty line(s) stay in the cache",
                st.lastFlushedId(), st.lastMigratedId(), st.dirtyLines());
    }
}
