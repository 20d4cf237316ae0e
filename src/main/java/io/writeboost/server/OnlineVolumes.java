package io.writeboost.server;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.VolumeRefusedException;
import io.writeboost.cache.VolumeRefusedException.Reason;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.VolumeEntry;
import io.writeboost.front.VolumeControl;
import io.writeboost.volume.Volume;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The server's part of attach and detach: the checks of a backing store that need the file
 * system (not the cache device, not a volume already, not in use by another process, openable),
 * its lock and open descriptor for as long as it is a volume. The engine writes the table.
 *
 * <p>Thread-safe: serialised on this object (a FUSE thread runs each command).
 */
final class OnlineVolumes implements VolumeControl {
    private static final Logger log = LogManager.getLogger(OnlineVolumes.class);

    private final CacheEngine engine;
    private final Path cachePath;
    private final ExclusiveUse exclusive;
    /** Every store a volume has now, by device id: the ones given at start and the ones attached since. */
    private final Map<Integer, FileBlockDevice> stores;
    /** Stores attached while running, open until {@link #closeAttached}: the server closes the ones given at start. */
    private final List<FileBlockDevice> attached = new ArrayList<>();

    OnlineVolumes(CacheEngine engine, Path cachePath, ExclusiveUse exclusive, Map<Integer, FileBlockDevice> startStores) {
        this.engine = engine;
        this.cachePath = cachePath.toAbsolutePath();
        this.exclusive = exclusive;
        this.stores = new HashMap<>(startStores);
    }

    @Override
    public synchronized Volume attach(String name, Path store) throws IOException {
        Path path = store.toAbsolutePath().normalize();
        if (!Files.exists(path)) {
            throw new VolumeRefusedException(Reason.INVALID, path + " does not exist");
        }
        if (Files.isSameFile(path, cachePath)) {
            throw new VolumeRefusedException(Reason.EXISTS, path + " is this cache's cache device");
        }
        for (Map.Entry<Integer, FileBlockDevice> e : stores.entrySet()) {
            if (Files.isSameFile(path, Path.of(e.getValue().name()))) {
                throw new VolumeRefusedException(Reason.EXISTS, path + " is a volume already (device id " + e.getKey() + ", "
                        + e.getValue().name() + ")");
            }
        }
        try {
            exclusive.add(path, "backing store");
        } catch (RequestException e) {
            throw new VolumeRefusedException(Reason.BUSY, e.getMessage());
        }
        FileBlockDevice dev = null;
        try {
            try {
                dev = FileBlockDevice.open(path);
            } catch (IOException e) {
                throw new VolumeRefusedException(Reason.INVALID, "cannot open " + path + ": " + e.getMessage());
            }
            VolumeEntry entry = engine.attach(name, path.toString(), StoreIdentity.of(path, true).identity(), dev);
            stores.put(entry.deviceId(), dev);
            attached.add(dev);
            return new Volume(engine, entry.deviceId(), entry.name(), dev.name(), entry.sizeBytes());
        } catch (IOException | RuntimeException e) {
            if (dev != null) {
                closeQuietly(dev);
            }
            exclusive.release(path);
            throw e;
        }
    }

    @Override
    public synchronized void detach(Volume volume) throws IOException {
        engine.detach(volume.deviceId());
        FileBlockDevice dev = stores.remove(volume.deviceId());
        if (dev != null) {
            // A store given at start is closed here too: the server's own list closes it again, harmlessly.
            attached.remove(dev);
            closeQuietly(dev);
            exclusive.release(Path.of(dev.name()));
        }
    }

    /** At the end of serving, after the engine has stopped: closes the stores attached meanwhile. */
    synchronized void closeAttached() {
        for (FileBlockDevice d : attached) {
            closeQuietly(d);
        }
        attached.clear();
    }

    private static void closeQuietly(FileBlockDevice d) {
        try {
            d.close();
        } catch (IOException e) {
            log.warn("closing {}: {}", d.name(), e.toString());
        }
    }
}
