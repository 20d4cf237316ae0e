package io.writeboost.testutil;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A cache and its volumes on in-memory power-loss devices, for engine tests. */
public final class Rig {
    public PowerLossDevice cache;
    /** Shared by all devices of the rig: a crash takes them down at one instant. */
    public Object power = new Object();
    public final Map<Integer, PowerLossDevice> backings = new LinkedHashMap<>();
    public final EngineConfig config;
    public CacheEngine engine;

    public Rig(int segments, int volumes, int volumeBytes, EngineConfig config) throws IOException {
        this.config = config;
        cache = new PowerLossDevice("cache", (int) Layout.slotOffset(segments), power);
        List<VolumeEntry> entries = new ArrayList<>();
        for (int dev = 1; dev <= volumes; dev++) {
            backings.put(dev, new PowerLossDevice("backing" + dev, volumeBytes, power));
            entries.add(new VolumeEntry(dev, volumeBytes, "vol" + dev, "backing" + dev));
        }
        CacheEngine.format(cache, 1, entries);
        cache.sync();
        open();
    }

    public void open() throws IOException {
        engine = CacheEngine.open(cache, new LinkedHashMap<Integer, BlockDevice>(backings), config);
    }

    /** Clean stop and start again on the same media. */
    public void restart() throws IOException {
        engine.close();
        power = new Object();
        cache = cache.reopen(power);
        backings.replaceAll((k, v) -> v.reopen(power));
        open();
    }

    /** Power cut at this instant: the engine is abandoned, every device keeps only what survives. */
    public void crashAndRecover(java.util.Random rnd) throws IOException {
        Object old = power;
        power = new Object();
        synchronized (old) {
            cache = cache.crash(rnd, power);
            backings.replaceAll((k, v) -> v.crash(rnd, power));
        }
        engine.abort();
        open();
    }

    /**
     * Arms a power cut right after the {@code calls}-th write or sync any device of the rig
     * completes from now on (whichever thread makes it): the engine carries on against dead
     * devices and fails at its next device call. {@link #cutPowerNow} if it has not happened,
     * then {@link #recoverAfterCut}. Returns the flag that tells whether the cut happened.
     */
    public java.util.concurrent.atomic.AtomicBoolean cutPowerAfter(int calls, java.util.Random rnd) {
        java.util.concurrent.atomic.AtomicInteger left = new java.util.concurrent.atomic.AtomicInteger(calls);
        java.util.concurrent.atomic.AtomicBoolean cut = new java.util.concurrent.atomic.AtomicBoolean();
        Runnable hook = () -> {
            if (left.decrementAndGet() == 0 && !cut.getAndSet(true)) {
                cutPowerNow(rnd);
            }
        };
        cache.afterCall = hook;
        backings.values().forEach(b -> b.afterCall = hook);
        return cut;
    }

    /** Power cut at this instant, without touching the engine (it may be in the middle of a call). */
    public synchronized void cutPowerNow(java.util.Random rnd) {
        Object old = power;
        power = new Object();
        synchronized (old) {
            cache = cache.crash(rnd, power);
            backings.replaceAll((k, v) -> v.crash(rnd, power));
        }
    }

    /** After {@link #cutPowerNow}: the engine is abandoned and a new one recovers from what survived. */
    public void recoverAfterCut() throws IOException {
        engine.abort();
        synchronized (this) {
            open();
        }
    }

    /**
     * Power cut now, then another one at a random instant of the recovery that follows, then a
     * recovery that completes: recovery must survive losing power itself.
     */
    public void crashDuringRecovery(java.util.Random rnd) throws Exception {
        crashAndRecover(rnd);
        engine.abort();
        engine = null;
        power = new Object();
        cache = cache.reopen(power);
        backings.replaceAll((k, v) -> v.reopen(power));
        Object recovering = power;
        Throwable[] failed = new Throwable[1];
        Thread t = new Thread(() -> {
            try {
                open();
            } catch (IOException expected) {
                // power lost mid-recovery
            } catch (Throwable other) {
                failed[0] = other;
            }
        });
        t.start();
        Thread.sleep(rnd.nextInt(4));
        power = new Object();
        synchronized (recovering) {
            cache = cache.crash(rnd, power);
            backings.replaceAll((k, v) -> v.crash(rnd, power));
        }
        t.join();
        if (failed[0] != null) {
            throw new AssertionError("recovery failed other than by losing power", failed[0]);
        }
        if (engine != null) {
            engine.abort();
        }
        open();
    }
}
