package io.writeboost.volume;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.StallingDevice;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A write of part of a sector and a whole-sector write of the same sector, run at once, end as
 * if one ran after the other: the partial write's read of the old sector is held in the backing
 * store until the whole-sector write either finished (then the partial write would put the old
 * bytes back over it) or is seen waiting for it. (A discard takes the same stripes, but the
 * engine already holds its punch until reads of the range are done, so no device call can hold
 * the partial write inside the window that is left.)
 */
class PartialSectorAtomicityTest {
    private static final int VOLUME = 8 << 20;
    private static final long SECTOR = 8;
    private static final int PART_AT = 100;
    private static final int PART_LEN = 10;

    private static byte[] sectorAfterRace(byte[] whole) throws Exception {
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(8), new Object());
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME, "v", "b")));
        PowerLossDevice store = new PowerLossDevice("b", VOLUME, new Object());
        byte[] old = new byte[Layout.SECTOR_SIZE];
        Arrays.fill(old, (byte) 'o');
        store.write(ByteBuffer.wrap(old), SECTOR << Layout.SECTOR_SHIFT);
        StallingDevice backing = new StallingDevice(store);
        CacheEngine engine = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), new EngineConfig());
        try {
            Volume v = new Volume(engine, 1, "v", "b", VOLUME);
            backing.stallNextRead();
            Thread partial = new Thread(() -> {
                byte[] p = new byte[PART_LEN];
                Arrays.fill(p, (byte) 'p');
                try {
                    v.write((SECTOR << Layout.SECTOR_SHIFT) + PART_AT, ByteBuffer.wrap(p));
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }, "partial-writer");
            partial.start();
            backing.awaitStalled();
            Thread other = new Thread(() -> {
                try {
                    v.write(SECTOR << Layout.SECTOR_SHIFT, ByteBuffer.wrap(whole));
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }, "whole-sector-writer");
            other.start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (other.isAlive() && !isStripeLock(LockSupport.getBlocker(other))) {
                if (System.nanoTime() > deadline) {
                    fail("the whole-sector write neither finished nor waited for the partial write, but "
                            + other.getState() + " on " + LockSupport.getBlocker(other) + " at "
                            + Arrays.toString(other.getStackTrace()));
                }
                Thread.sleep(1);
            }
            backing.release();
            partial.join(10_000);
            other.join(10_000);
            assertTrue(!partial.isAlive() && !other.isAlive(), "both changes finished");
            ByteBuffer back = ByteBuffer.allocate(Layout.SECTOR_SIZE);
            v.read(SECTOR << Layout.SECTOR_SHIFT, back);
            return back.array();
        } finally {
            engine.close();
        }
    }

    private static boolean isStripeLock(Object blocker) {
        return blocker != null && blocker.getClass().getName().startsWith(ReentrantReadWriteLock.class.getName());
    }

    /** Whether {@code got} is {@code whole} alone, or {@code whole} with the partial write's bytes over it. */
    private static void assertOneAfterTheOther(byte[] whole, byte[] got) {
        byte[] partialLast = whole.clone();
        Arrays.fill(partialLast, PART_AT, PART_AT + PART_LEN, (byte) 'p');
        assertTrue(Arrays.equals(whole, got) || Arrays.equals(partialLast, got),
                "the sector is neither change after the other: " + new String(got, 0, 120) + "...");
    }

    @Test
    void aWholeSectorWriteIsNotUndoneByAPartialWriteOfTheSameSector() throws Exception {
        byte[] a = new byte[Layout.SECTOR_SIZE];
        Arrays.fill(a, (byte) 'a');
        assertOneAfterTheOther(a, sectorAfterRace(a));
    }
}
