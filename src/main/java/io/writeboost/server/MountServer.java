package io.writeboost.server;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.cache.Status;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.VolumeEntry;
import io.writeboost.front.EngineMetrics;
import io.writeboost.front.WriteboostFs;
import io.writeboost.fuse.JnrFuseMount;
import io.writeboost.volume.Volume;
import io.writeboost.volume.Volumes;
import io.writeboost.recovery.Recovery;
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

    private final ServerSettings settings;
    private final SystemdNotify notify = SystemdNotify.fromEnvironment();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean signalled;
    private volatile boolean cleanStop;
    private volatile boolean stopping;
    /** The locks on the cache and backing stores, from {@link #preflight} until {@link #run} has closed the devices. */
    private ExclusiveUse exclusive;
    /** The HTTP metrics listener (--metrics-listen), bound from {@link #preflight} until {@link #run} ends; null without one. */
    private MetricsListener metricsListener;

    public MountServer(ServerSettings settings) {
        this.settings = settings;
    }

    /**
     * Takes the devices for this process ({@link ExclusiveUse}: another server or a tool that
     * writes holding one is refused), then the checks that need to read them, before anything
     * is created or written; see {@link Preflight}. A refusal releases the devices again.
     */
    public void preflight() throws RequestException, IOException {
        exclusive = ExclusiveUse.acquire(settings.cache(), settings.backings());
        try {
            Preflight.check(settings);
            bindMetrics();
        } catch (RequestException | IOException | RuntimeException e) {
            exclusive.close();
            exclusive = null;
            throw e;
        }
    }

    /** Binds the metrics listener when asked for one: an address that cannot be had refuses the start like bad input. */
    private void bindMetrics() throws RequestException {
        if (settings.metricsListen() != null && metricsListener == null) {
            metricsListener = MetricsListener.bind(settings.metricsListen());
            log.info("metrics listener on http://{}:{}/metrics", settings.metricsListen().getHostString(), metricsListener.port());
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

    /** Formats or recovers, mounts and serves; returns the process exit status. */
    public int run() throws RequestException, IOException {
        List<FileBlockDevice> open = new ArrayList<>();
        CacheEngine engine = null;
        OnlineVolumes online = null;
        try {
            if (exclusive == null) {
                exclusive = ExclusiveUse.acquire(settings.cache(), settings.backings());
            }
            bindMetrics();
            List<FileBlockDevice> given = new ArrayList<>();
            List<VolumeEntry> entries = new ArrayList<>();
            for (int i = 0; i < settings.backings().size(); i++) {
                ServerSettings.Backing b = settings.backings().get(i);
                FileBlockDevice dev = FileBlockDevice.open(b.path().toAbsolutePath());
                open.add(dev);
                given.add(dev);
                entries.add(new VolumeEntry(i + 1, dev.size(), b.name(), b.path().toAbsolutePath().toString()));
            }
            // The cache file last: a backing store that fails to open after all leaves no new file behind.
            Path cachePath = settings.cache().toAbsolutePath();
            boolean created = !Files.exists(cachePath);
            FileBlockDevice cache = !created ? FileBlockDevice.open(cachePath)
                    : settings.sparse() ? FileBlockDevice.createSparse(cachePath, settings.cacheSize())
                    : createWritten(cachePath, settings.cacheSize());
            open.add(cache);
            if (created) {
                exclusive.add(cachePath, "cache");
            }
            if (settings.format()) {
                CacheEngine.format(cache, settings.effectiveCacheId(), MovedBackings.identified(entries, settings.backings()));
            } else {
                MovedBackings.record(cache, settings.backings(), settings.acceptMovedBacking());
            }
            // The table's order is the backings' (Preflight checked the names); its ids need not be
            // 1..n once volumes were attached and detached.
            List<VolumeEntry> table = Recovery.readSuperblock(cache).volumes();
            Map<Integer, FileBlockDevice> backings = new LinkedHashMap<>();
            for (int i = 0; i < given.size() && i < table.size(); i++) {
                backings.put(table.get(i).deviceId(), given.get(i));
            }
            EngineConfig config = new EngineConfig();
            settings.knobs().forEach(config::knob);
            config.acceptDataLoss(settings.acceptDataLoss());
            engine = CacheEngine.open(cache, new LinkedHashMap<Integer, BlockDevice>(backings), config);
            List<Volume> volumes = new ArrayList<>();
            for (VolumeEntry e : engine.superblock().volumes()) {
                volumes.add(new Volume(engine, e.deviceId(), e.name(), backings.get(e.deviceId()).name(), e.sizeBytes()));
            }
            online = new OnlineVolumes(engine, cachePath, exclusive, backings);
            return serve(engine, new Volumes(volumes), online);
        } finally {
            if (engine != null) {
                closeEngine(engine);
            }
            if (online != null) {
                online.closeAttached();
            }
            for (FileBlockDevice d : open) {
                try {
                    d.close();
                } catch (IOException e) {
                    log.warn("closing {}: {}", d.name(), e.toString());
                }
            }
            if (exclusive != null) {
                exclusive.close();
                exclusive = null;
            }
            // Last: a scrape during a drain at stop still sees the dirty lines go.
            if (metricsListener != null) {
                metricsListener.close();
                metricsListener = null;
            }
            stopped.countDown();
        }
    }

    private int serve(CacheEngine engine, Volumes volumes, OnlineVolumes online) throws IOException {
        EngineMetrics metrics = new EngineMetrics(engine, volumes, Version.get());
        WriteboostFs fs = new WriteboostFs(engine, volumes, metrics, online);
        if (metricsListener != null) {
            metricsListener.serve(metrics);
        }
        JnrFuseMount fuse = new JnrFuseMount(fs, () -> ready(engine, volumes.list()));
        // SIGTERM/SIGINT start the JVM's shutdown: unmount, let the main thread stop the
        // engine cleanly, then exit 0. (The hook also runs at a normal exit, when all is done.)
        Thread hook = new Thread(() -> {
            if (stopped.getCount() == 0) {
                return;
            }
            signalled = true;
            log.info("stop requested by signal: unmounting {}", settings.mountPoint());
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
            fuse.serve(settings.mountPoint(), FUSE_OPTIONS, settings.asyncDio(), settings.parallelDirectWrites());
        } catch (RuntimeException e) {
            throw new IOException("mounting " + settings.mountPoint() + " failed: " + e.getMessage()
                    + (e.getCause() != null ? ": " + e.getCause().getMessage() : ""), e);
        }
        log.info("{} unmounted{}", settings.mountPoint(), signalled ? " (signal)" : "");
        return 0;
    }

    private void ready(CacheEngine engine, List<Volume> volumes) {
        StringBuilder names = new StringBuilder();
        for (Volume v : volumes) {
            names.append(names.length() == 0 ? "" : ", ").append(v.name()).append(" (").append(v.size() >> 20).append(" MiB on ")
                    .append(v.backingPath()).append(')');
        }
        log.info("writeboost {} serving {}: cache {} on {} ({} segments); volumes: {}", Version.get(), settings.mountPoint(),
                engine.superblock().cacheId(), settings.cache(), engine.superblock().nrSegments(), names);
        notify.send("READY=1\nSTATUS=" + engine.status().summary());
        if (notify.enabled()) {
            startStatusUpdates(engine);
        }
        if (settings.readyFile() != null) {
            // Before the ready file: once it exists the launcher deletes the file stderr pointed at.
            StderrToLog.redirectIfAsked();
            try {
                Path tmp = settings.readyFile().resolveSibling(settings.readyFile().getFileName() + ".tmp");
                Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
                Files.move(tmp, settings.readyFile(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                log.error("cannot write the ready file {}: {}", settings.readyFile(), e.toString());
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
        if (settings.drainOnStop() && engine.status().failure() == null) {
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
