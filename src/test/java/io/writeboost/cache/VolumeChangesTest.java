package io.writeboost.cache;

import io.writeboost.format.BackingIdentity;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.format.VolumeTable;
import io.writeboost.recovery.Recovery;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import io.writeboost.testutil.Rig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Volumes attached and detached while the engine runs: the table's A/B copies, device ids
 * never given twice while a line may name them, refusals that change nothing, and a power cut
 * after every device call of an attach and of a detach, after which the next start has the
 * table from before or from after, with every acknowledged sector where that table says.
 */
@ExtendWith(QuietLogs.class)
class VolumeChangesTest {
    static final int VOLUME_BYTES = 1 << 20;
    static final int SECTORS = VOLUME_BYTES / 512;

    private static Rig rig() throws IOException {
        return new Rig(6, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(3));
    }

    /** {@code sectors} sectors from {@code sector} on, each stamped with its device, sector and version. */
    private static ByteBuffer pattern(int dev, long sector, int sectors, int version) {
        ByteBuffer b = ByteBuffer.allocate(sectors * 512);
        for (int s = 0; s < sectors; s++) {
            for (int i = 0; i < 512; i += 16) {
                b.putInt(s * 512 + i, dev).putLong(s * 512 + i + 4, sector + s).putInt(s * 512 + i + 12, version);
            }
        }
        return b;
    }

    private static void writeAll(CacheEngine e, int dev, int version) throws IOException {
        e.write(dev, 0, SECTORS, pattern(dev, 0, SECTORS, version));
        e.flush();
    }

    private static void assertVolume(CacheEngine e, int dev, int version, String what) throws IOException {
        ByteBuffer got = ByteBuffer.allocate(VOLUME_BYTES);
        e.read(dev, 0, SECTORS, got);
        assertArrayEquals(pattern(dev, 0, SECTORS, version).array(), got.array(), what);
    }

    private static List<String> names(Superblock sb) {
        return sb.volumes().stream().map(VolumeEntry::name).toList();
    }

    @Test
    void attachedVolumeServesSurvivesRestartAndDetachLeavesItsStoreComplete() throws Exception {
        Rig rig = rig();
        try {
            writeAll(rig.engine, 1, 1);
            PowerLossDevice store = new PowerLossDevice("backing2", VOLUME_BYTES, rig.power);
            VolumeEntry e = rig.engine.attach("vol2", "backing2", BackingIdentity.NONE, store);
            assertEquals(2, e.deviceId());
            rig.backings.put(2, store);
            assertEquals(List.of("vol1", "vol2"), names(rig.engine.superblock()));
            writeAll(rig.engine, 2, 7);
            assertVolume(rig.engine, 2, 7, "the attached volume serves");

            rig.restart();
            assertEquals(List.of("vol1", "vol2"), names(rig.engine.superblock()), "the table after a restart");
            assertVolume(rig.engine, 2, 7, "after a restart");
            assertTrue(rig.engine.nrDirtyLines(2) > 0, "its lines are still dirty in the cache");

            VolumeEntry gone = rig.engine.detach(2);
            assertEquals("vol2", gone.name());
            assertArrayEquals(pattern(2, 0, SECTORS, 7).array(), rig.backings.get(2).durableBytes(),
                    "the detached store holds every sector, synced");
            assertThrows(IllegalArgumentException.class, () -> rig.engine.read(2, 0, 8, ByteBuffer.allocate(4096)));
            assertEquals(0, rig.engine.nrDirtyLines(2));
            rig.backings.remove(2);
            assertVolume(rig.engine, 1, 1, "the other volume");

            // A new store gets an id that no line in the log can name, even after a restart.
            rig.restart();
            assertEquals(List.of("vol1"), names(rig.engine.superblock()));
            PowerLossDevice third = new PowerLossDevice("backing3", VOLUME_BYTES, rig.power);
            assertEquals(3, rig.engine.attach("vol3", "backing3", BackingIdentity.NONE, third).deviceId());
            rig.backings.put(3, third);
            ByteBuffer zeros = ByteBuffer.allocate(VOLUME_BYTES);
            rig.engine.read(3, 0, SECTORS, zeros);
            assertArrayEquals(new byte[VOLUME_BYTES], zeros.array(), "a new volume reads as its store: nothing of the old one");
        } finally {
            rig.engine.close();
        }
    }

    @Test
    void refusalsChangeNothing() throws Exception {
        Rig rig = rig();
        try {
            PowerLossDevice store = new PowerLossDevice("backing2", VOLUME_BYTES, rig.power);
            rig.engine.attach("vol2", "backing2", BackingIdentity.NONE, store);
            rig.backings.put(2, store);
            long writesBefore = rig.cache.writes();
            VolumeTable before = Recovery.readVolumeTable(rig.cache, Recovery.readHeader(rig.cache));
            record Refusal(VolumeRefusedException.Reason reason, ThrowingCall call) {
            }
            List<Refusal> refusals = List.of(
                    new Refusal(VolumeRefusedException.Reason.EXISTS,
                            () -> rig.engine.attach("vol2", "other", BackingIdentity.NONE, new PowerLossDevice("x", VOLUME_BYTES, rig.power))),
                    new Refusal(VolumeRefusedException.Reason.INVALID,
                            () -> rig.engine.attach("tiny", "tiny", BackingIdentity.NONE, new PowerLossDevice("tiny", 0, rig.power))),
                    new Refusal(VolumeRefusedException.Reason.INVALID,
                            () -> rig.engine.attach("odd", "odd", BackingIdentity.NONE, new PowerLossDevice("odd", 1000, rig.power))),
                    new Refusal(VolumeRefusedException.Reason.INVALID,
                            () -> rig.engine.attach("caches", "x", BackingIdentity.NONE, new PowerLossDevice("x", VOLUME_BYTES, rig.power))),
                    new Refusal(VolumeRefusedException.Reason.INVALID,
                            () -> rig.engine.attach("a/b", "x", BackingIdentity.NONE, new PowerLossDevice("x", VOLUME_BYTES, rig.power))),
                    new Refusal(VolumeRefusedException.Reason.NO_SUCH_VOLUME, () -> rig.engine.detach(9)));
            for (Refusal r : refusals) {
                VolumeRefusedException e = assertThrows(VolumeRefusedException.class, r.call::run);
                assertEquals(r.reason, e.reason(), e.getMessage());
            }
            rig.engine.detach(2);
            rig.backings.remove(2);
            VolumeRefusedException last = assertThrows(VolumeRefusedException.class, () -> rig.engine.detach(1));
            assertEquals(VolumeRefusedException.Reason.INVALID, last.reason(), last.getMessage());
            VolumeTable after = Recovery.readVolumeTable(rig.cache, Recovery.readHeader(rig.cache));
            assertEquals(before.generation() + 1, after.generation(), "only the detach wrote a table");
            assertNotEquals(writesBefore, rig.cache.writes());
        } finally {
            rig.engine.close();
        }
    }

    interface ThrowingCall {
        void run() throws Exception;
    }

    /**
     * A power cut after the 1st, 2nd, ... device call of an attach: the next start has vol1
     * alone or vol1 and vol2, and vol1's data either way. Every call is covered once a run
     * completes the attach before its cut.
     */
    @Test
    void powerCutAtEachCallOfAnAttach() throws Exception {
        int covered = 0;
        boolean[] seen = new boolean[2];
        for (int calls = 1; ; calls++) {
            Rig rig = rig();
            writeAll(rig.engine, 1, 3);
            Random rnd = new Random(calls);
            PowerLossDevice store = new PowerLossDevice("backing2", VOLUME_BYTES, rig.power);
            AtomicBoolean cut = rig.cutPowerAfter(calls, rnd);
            try {
                rig.engine.attach("vol2", "backing2", BackingIdentity.NONE, store);
            } catch (IOException expected) {
                assertTrue(cut.get(), "only the cut fails the attach: " + expected);
            }
            boolean inside = cut.getAndSet(true);
            if (!inside) {
                rig.cutPowerNow(rnd);
            }
            boolean has = reopenAsTableSays(rig, store);
            seen[has ? 1 : 0] = true;
            assertVolume(rig.engine, 1, 3, "vol1 after a cut at call " + calls);
            if (has) {
                writeAll(rig.engine, 2, 4);
                assertVolume(rig.engine, 2, 4, "vol2 serves after the cut");
            }
            rig.engine.close();
            covered++;
            if (!inside) {
                break;
            }
            assertTrue(calls < 50, "an attach takes a few device calls");
        }
        assertTrue(seen[0] && seen[1], "cuts left the table from before and from after");
        System.out.printf("VolumeChangesTest: %d power cuts during an attach%n", covered);
    }

    /**
     * A power cut after the 1st, 2nd, ... device call of a detach of a volume whose lines are
     * dirty in the cache: the next start has vol2 with all
     * its data, or not, and then its store alone holds all its data, durably.
     */
    @Test
    void powerCutAtEachCallOfADetach() throws Exception {
        int covered = 0;
        boolean[] seen = new boolean[2];
        for (int calls = 1; ; calls++) {
            Rig rig = rig();
            PowerLossDevice store = new PowerLossDevice("backing2", VOLUME_BYTES, rig.power);
            rig.engine.attach("vol2", "backing2", BackingIdentity.NONE, store);
            rig.backings.put(2, store);
            writeAll(rig.engine, 1, 5);
            writeAll(rig.engine, 2, 6);
            Random rnd = new Random(calls * 7L);
            AtomicBoolean cut = rig.cutPowerAfter(calls, rnd);
            AtomicReference<Throwable> failed = new AtomicReference<>();
            CacheEngine engine = rig.engine;
            Thread detach = new Thread(() -> {
                try {
                    engine.detach(2);
                } catch (IOException expected) {
                    if (!cut.get()) {
                        failed.set(expected);
                    }
                } catch (Throwable t) {
                    failed.set(t);
                }
            });
            detach.start();
            // A cut leaves writeback retrying against dead stores: the abort of the recovery ends the wait.
            while (detach.isAlive() && !cut.get()) {
                detach.join(10);
            }
            boolean inside = cut.getAndSet(true);
            if (!inside) {
                rig.cutPowerNow(rnd);
            }
            engine.abort();
            detach.join();
            if (failed.get() != null) {
                throw new AssertionError("the detach failed other than by the cut", failed.get());
            }
            PowerLossDevice survived = rig.backings.get(2);
            boolean has = reopenAsTableSays(rig, survived);
            seen[has ? 1 : 0] = true;
            assertVolume(rig.engine, 1, 5, "vol1 after a cut at call " + calls);
            if (has) {
                assertVolume(rig.engine, 2, 6, "vol2, still a volume after a cut at call " + calls);
            } else {
                assertArrayEquals(pattern(2, 0, SECTORS, 6).array(), survived.durableBytes(),
                        "vol2's store, detached by a cut at call " + calls + ", holds all its data");
            }
            rig.engine.close();
            covered++;
            if (!inside) {
                break;
            }
            assertTrue(calls < 400, "a detach takes fewer than 400 device calls");
        }
        assertTrue(seen[0] && seen[1], "cuts left the table from before and from after");
        System.out.printf("VolumeChangesTest: %d power cuts during a detach%n", covered);
    }

    /**
     * After a cut: opens the cache with the backing stores its table names (vol1, and vol2 on
     * {@code store2} when the table has it); returns whether it has vol2. The table must be
     * the one from before or the one from after, nothing else.
     */
    private static boolean reopenAsTableSays(Rig rig, PowerLossDevice store2) throws IOException {
        rig.engine.abort();
        List<String> table = names(Recovery.readSuperblock(rig.cache));
        boolean has = table.equals(List.of("vol1", "vol2"));
        if (!has && !table.equals(List.of("vol1"))) {
            fail("the table after a cut is " + table);
        }
        if (has) {
            rig.backings.put(2, store2.reopen(rig.power));
        } else {
            rig.backings.remove(2);
        }
        rig.open();
        return has;
    }
}
