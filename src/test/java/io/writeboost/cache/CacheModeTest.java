package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.CacheMode;
import io.writeboost.knob.Knob;
import io.writeboost.knob.KnobException;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** cache_mode: write-through, pass-through, switching under load, the mode across restarts, refused values. */
class CacheModeTest {
    static final int VOLUME_BYTES = 16 << 20;
    static final int SECTORS = VOLUME_BYTES / Layout.SECTOR_SIZE;

    private final Random rnd = new Random(25);
    private Object power = new Object();
    private PowerLossDevice cache;
    private PowerLossDevice backingMedia;
    private HeldWriteback backing;
    private CacheEngine engine;
    private final ExecutorService pool = Executors.newCachedThreadPool();
    /** What the volume holds: what every write acknowledged so far wrote. */
    private final byte[] model = new byte[VOLUME_BYTES];

    /** The backing store, with writeback's writes held back while {@link #held} is set (bypassed writes pass). */
    static final class HeldWriteback extends DelegatingDevice {
        volatile boolean held;

        HeldWriteback(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void write(ByteBuffer src, long offset) throws IOException {
            while (held && Thread.currentThread().getName().startsWith("wb-writeback")) {
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
            }
            super.write(src, offset);
        }
    }

    private void start(int segments, EngineConfig config) throws IOException {
        cache = new PowerLossDevice("cache", (int) Layout.slotOffset(segments), power);
        backingMedia = new PowerLossDevice("backing1", VOLUME_BYTES, power);
        rnd.nextBytes(model);
        backingMedia.write(ByteBuffer.wrap(model.clone()), 0);
        backingMedia.sync();
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME_BYTES, "vol1", "backing1")));
        open(config);
    }

    private void open(EngineConfig config) throws IOException {
        backing = new HeldWriteback(backingMedia);
        engine = CacheEngine.open(cache, Map.<Integer, BlockDevice>of(1, backing), config);
    }

    private void restart(EngineConfig config) throws IOException {
        engine.close();
        power = new Object();
        cache = cache.reopen(power);
        backingMedia = backingMedia.reopen(power);
        open(config);
    }

    private void crashAndRecover(EngineConfig config) throws IOException {
        Object old = power;
        power = new Object();
        synchronized (old) {
            cache = cache.crash(rnd, power);
            backingMedia = backingMedia.crash(rnd, power);
        }
        engine.abort();
        open(config);
    }

    @AfterEach
    void stop() throws IOException {
        pool.shutdownNow();
        if (engine != null) {
            backing.held = false;
            engine.close();
        }
    }

    /** Writes {@code data} at {@code sector} through the engine and into the model. */
    private void write(long sector, byte[] data) throws IOException {
        engine.write(1, sector, data.length / Layout.SECTOR_SIZE, ByteBuffer.wrap(data));
        synchronized (model) {
            System.arraycopy(data, 0, model, (int) (sector * Layout.SECTOR_SIZE), data.length);
        }
    }

    private byte[] randomData(Random r, int sectors) {
        byte[] d = new byte[sectors * Layout.SECTOR_SIZE];
        r.nextBytes(d);
        return d;
    }

    private byte[] readEngine(long sector, int sectors) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(sectors * Layout.SECTOR_SIZE);
        engine.read(1, sector, sectors, b);
        return b.array();
    }

    private byte[] readBacking(long sector, int sectors) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(sectors * Layout.SECTOR_SIZE);
        backingMedia.read(b, sector * Layout.SECTOR_SIZE);
        return b.array();
    }

    private byte[] modelAt(long sector, int sectors) {
        synchronized (model) {
            return Arrays.copyOfRange(model, (int) (sector * Layout.SECTOR_SIZE), (int) ((sector + sectors) * Layout.SECTOR_SIZE));
        }
    }

    private long readHits() {
        Status st = engine.status();
        return st.stat(false, true, false, true) + st.stat(false, true, true, true);
    }

    /**
     * Random writes of 1 to 64 sectors at any sector (whole lines, partial lines, several
     * lines) from four threads, each in a region of its own: every write is on the backing
     * store when it returns, no line is ever dirty, and after a flush the backing store alone
     * durably holds the volume. Then lines written whole are read from the cache (clean hits).
     */
    @Test
    void writeThroughPutsEveryWriteOnTheBackingStoreBeforeItReturnsAndLeavesNoDirtyLine() throws Exception {
        start(64, new EngineConfig().knob(Knob.CACHE_MODE, CacheMode.WRITE_THROUGH.ordinal()));
        assertEquals(CacheMode.WRITE_THROUGH, engine.mode());
        int region = SECTORS / 4;
        List<Future<?>> writers = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int base = t * region;
            Random r = new Random(100 + t);
            writers.add(pool.submit(() -> {
                for (int i = 0; i < 400; i++) {
                    int n = 1 + r.nextInt(64);
                    long sector = base + r.nextInt(region - n);
                    byte[] data = randomData(r, n);
                    write(sector, data);
                    assertArrayEquals(data, readBacking(sector, n), "on the backing store when the write returned");
                    assertEquals(0, engine.nrDirtyLines(1), "no dirty line in write-through");
                }
                return null;
            }));
        }
        for (Future<?> f : writers) {
            f.get(120, TimeUnit.SECONDS);
        }
        engine.flush();
        assertArrayEquals(model, backingMedia.durableBytes(), "after a flush the backing store durably holds every write");
        assertEquals(0, engine.status().dirtyLines());

        // Written whole lines are kept as clean lines: read back, each is a hit.
        long hitsBefore = readHits();
        long cleanHitsBefore = engine.status().readHitsClean();
        int lines = 200;
        for (int i = 0; i < lines; i++) {
            write((long) i * 16 * Layout.SECTORS_PER_LINE, randomData(rnd, Layout.SECTORS_PER_LINE));
        }
        for (int i = 0; i < lines; i++) {
            long sector = (long) i * 16 * Layout.SECTORS_PER_LINE;
            assertArrayEquals(modelAt(sector, Layout.SECTORS_PER_LINE), readEngine(sector, Layout.SECTORS_PER_LINE));
        }
        assertEquals(lines, readHits() - hitsBefore, "every line written whole is read from the cache");
        assertEquals(lines, engine.status().readHitsClean() - cleanHitsBefore, "as clean lines");
        assertEquals(0, engine.status().dirtyLines());
        assertArrayEquals(model, readEngine(0, SECTORS));
    }

    /**
     * Write-through writes racing over the same few lines, with reads admitting them too: a
     * line kept as a clean line must hold what the backing store holds, whichever write landed
     * there last (a write that kept its data over a later one's would leave the cache serving
     * data the backing store no longer has).
     */
    @Test
    void overlappingWriteThroughWritesKeepNoCleanLineTheBackingStoreDoesNotHold() throws Exception {
        start(64, new EngineConfig().knob(Knob.CACHE_MODE, CacheMode.WRITE_THROUGH.ordinal())
                .knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        int lines = 16;
        long kept = 0;
        for (int round = 0; round < 40; round++) {
            List<Future<?>> workers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                Random r = new Random(round * 10L + t);
                workers.add(pool.submit(() -> {
                    for (int i = 0; i < 50; i++) {
                        long lineNo = r.nextInt(lines);
                        if (r.nextInt(4) == 0) {
                            readEngine(lineNo * Layout.SECTORS_PER_LINE, Layout.SECTORS_PER_LINE);
                        } else {
                            int n = 1 + r.nextInt(2);
                            engine.write(1, lineNo * Layout.SECTORS_PER_LINE, n * Layout.SECTORS_PER_LINE,
                                    ByteBuffer.wrap(randomData(r, n * Layout.SECTORS_PER_LINE)));
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : workers) {
                f.get(60, TimeUnit.SECONDS);
            }
            for (int i = 0; i < lines + 1; i++) {
                long sector = (long) i * Layout.SECTORS_PER_LINE;
                assertArrayEquals(readBacking(sector, Layout.SECTORS_PER_LINE), readEngine(sector, Layout.SECTORS_PER_LINE),
                        "line " + i + " in round " + round);
            }
            kept = Math.max(kept, engine.status().cleanLines());
        }
        assertTrue(kept > 0, "written lines were kept as clean lines");
        assertEquals(0, engine.status().dirtyLines());
    }

    /**
     * Pass-through: a dirty line left from write-back is read from the cache while writeback
     * has not carried it yet (held back here), writes land on the backing store and drop the
     * clean copies they cover, reads of clean lines go to the backing store and admit nothing,
     * and writeback empties the cache of dirty lines by itself (allow_migrate is 0).
     */
    @Test
    void passThroughWritesAroundDropsCopiesAndWritesBackWhatWasDirty() throws Exception {
        start(64, new EngineConfig());
        int l = Layout.SECTORS_PER_LINE;
        for (int i = 0; i < 100; i++) {
            write((long) i * l, randomData(rnd, l)); // dirty: lines 0..99
        }
        engine.flush();
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 200; i < 300; i++) {
                readEngine((long) i * 3 * l, l); // clean after the second miss: lines 600, 603, ..., 897
            }
        }
        long clean = engine.status().cleanLines();
        assertEquals(100, clean, "the lines read twice are clean lines");
        assertEquals(100, engine.nrDirtyLines(1));

        backing.held = true;
        engine.setKnob(Knob.CACHE_MODE, CacheMode.PASS_THROUGH.ordinal());
        assertEquals(CacheMode.PASS_THROUGH, engine.mode());
        for (int i = 0; i < 100; i++) {
            assertArrayEquals(modelAt((long) i * l, l), readEngine((long) i * l, l), "a dirty line reads from the cache");
        }
        assertFalse(Arrays.equals(modelAt(0, 100 * l), readBacking(0, 100 * l)), "writeback has not carried them yet");
        byte[] intoDirty = randomData(rnd, 2);
        write(5L * l + 3, intoDirty); // part of a dirty line: joins it in the cache
        assertArrayEquals(modelAt(5L * l, l), readEngine(5L * l, l));
        assertFalse(Arrays.equals(intoDirty, readBacking(5L * l + 3, 2)));
        // Writes that drop cached lines wait for writeback's running batch (docs/ENGINE.md, "Bypass").
        backing.held = false;

        for (int i = 200; i < 250; i++) {
            long sector = (long) i * 3 * l;
            byte[] data = randomData(rnd, l);
            write(sector, data);
            assertArrayEquals(data, readBacking(sector, l), "on the backing store when the write returned");
        }
        byte[] part = randomData(rnd, 3);
        write(250L * 3 * l + 2, part); // a clean line written in part: dropped, the sectors go around
        assertArrayEquals(part, readBacking(250L * 3 * l + 2, 3));
        assertEquals(clean - 51, engine.status().cleanLines(), "the cached copies written over were dropped");

        long hits = readHits();
        long admissions = engine.status().readCacheAdmissions();
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 251; i < 300; i++) {
                assertArrayEquals(modelAt((long) i * 3 * l, l), readEngine((long) i * 3 * l, l));
            }
            for (int i = 400; i < 450; i++) {
                readEngine((long) i * 3 * l, l);
            }
        }
        assertEquals(hits, readHits(), "reads of clean lines go to the backing store");
        assertEquals(admissions, engine.status().readCacheAdmissions(), "nothing new is cached");

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (engine.nrDirtyLines(1) > 0) {
            assertTrue(System.nanoTime() < deadline, "dirty lines left: " + engine.nrDirtyLines(1));
            Thread.sleep(20);
        }
        engine.flush();
        assertArrayEquals(model, backingMedia.durableBytes(), "the backing store holds everything, the dirty lines written back");
        assertArrayEquals(model, readEngine(0, SECTORS));
    }

    /**
     * Writers keep writing (whole and partial lines) while the mode goes from write-back to
     * {@code modes} in turn; once they stop, writeback leaves no dirty line, and the backing
     * store alone holds every write.
     */
    private void switchUnderLoad(CacheMode... modes) throws Exception {
        start(48, new EngineConfig());
        AtomicBoolean stop = new AtomicBoolean();
        int region = SECTORS / 4;
        List<Future<?>> writers = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int base = t * region;
            Random r = new Random(200 + t);
            writers.add(pool.submit(() -> {
                while (!stop.get()) {
                    int n = r.nextInt(4) == 0 ? 1 + r.nextInt(64) : Layout.SECTORS_PER_LINE;
                    long sector = base + (n == Layout.SECTORS_PER_LINE ? r.nextInt(region / 8) * 8L : r.nextInt(region - n));
                    write(sector, randomData(r, n));
                    if (r.nextInt(50) == 0) {
                        engine.flush();
                    }
                    if (r.nextInt(20) == 0) {
                        int m = 1 + r.nextInt(32);
                        long s = base + r.nextInt(region - m);
                        assertArrayEquals(modelAt(s, m), readEngine(s, m), "a read returns what was written");
                    }
                }
                return null;
            }));
        }
        Thread.sleep(300);
        assertTrue(engine.status().dirtyLines() > 0, "write-back left dirty lines");
        for (CacheMode m : modes) {
            engine.setKnob(Knob.CACHE_MODE, m.ordinal());
            Thread.sleep(300);
        }
        stop.set(true);
        for (Future<?> f : writers) {
            f.get(60, TimeUnit.SECONDS);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (engine.status().dirtyLines() > 0) {
            assertTrue(System.nanoTime() < deadline, "dirty lines left: " + engine.status().dirtyLines());
            Thread.sleep(20);
        }
        assertArrayEquals(model, readEngine(0, SECTORS));
        engine.flush();
        assertArrayEquals(model, backingMedia.durableBytes(), "the backing store alone holds the volume");
    }

    @Test
    void switchingUnderLoadFromWriteBackToWriteThroughThenPassThroughEndsWithNoDirtyLine() throws Exception {
        switchUnderLoad(CacheMode.WRITE_THROUGH, CacheMode.PASS_THROUGH);
    }

    @Test
    void switchingUnderLoadFromWriteBackToPassThroughEndsWithNoDirtyLine() throws Exception {
        switchUnderLoad(CacheMode.PASS_THROUGH);
    }

    /** The mode is in the superblock record: a clean stop and a crash keep it; one given at start wins and is kept in turn. */
    @Test
    void theModeSurvivesARestartAndACrash() throws Exception {
        start(16, new EngineConfig());
        assertEquals(CacheMode.WRITE_BACK, engine.mode());
        engine.setKnob(Knob.CACHE_MODE, CacheMode.WRITE_THROUGH.ordinal());
        restart(new EngineConfig());
        assertEquals(CacheMode.WRITE_THROUGH, engine.mode(), "after a clean stop");
        engine.setKnob(Knob.CACHE_MODE, CacheMode.PASS_THROUGH.ordinal());
        crashAndRecover(new EngineConfig());
        assertEquals(CacheMode.PASS_THROUGH, engine.mode(), "after a crash right after the switch");
        restart(new EngineConfig().knob(Knob.CACHE_MODE, CacheMode.WRITE_BACK.ordinal()));
        assertEquals(CacheMode.WRITE_BACK, engine.mode(), "given at start");
        restart(new EngineConfig());
        assertEquals(CacheMode.WRITE_BACK, engine.mode(), "what was given at start is kept");
        restart(new EngineConfig().knob(Knob.WRITE_AROUND_MODE, 1));
        assertEquals(CacheMode.WRITE_AROUND, engine.mode(), "write_around_mode=1 at start");
        restart(new EngineConfig());
        assertEquals(CacheMode.WRITE_AROUND, engine.mode());
        assertEquals(1, engine.knob(Knob.WRITE_AROUND_MODE));
    }

    /** write_around_mode is an alias: 1 sets write-around, 0 leaves it for write-back, and leaves any other mode alone. */
    @Test
    void writeAroundModeIsAnAliasOfCacheMode() throws Exception {
        start(16, new EngineConfig());
        engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
        assertEquals(CacheMode.WRITE_AROUND, engine.mode());
        assertEquals(CacheMode.WRITE_AROUND.ordinal(), engine.knob(Knob.CACHE_MODE));
        engine.setKnob(Knob.WRITE_AROUND_MODE, 0);
        assertEquals(CacheMode.WRITE_BACK, engine.mode());
        engine.setKnob(Knob.CACHE_MODE, CacheMode.WRITE_THROUGH.ordinal());
        assertEquals(0, engine.knob(Knob.WRITE_AROUND_MODE));
        engine.setKnob(Knob.WRITE_AROUND_MODE, 0);
        assertEquals(CacheMode.WRITE_THROUGH, engine.mode(), "0 changes nothing outside write-around");
    }

    @Test
    void aBadModeIsRefusedAndChangesNothing() throws Exception {
        for (String bad : new String[] {"", "writeback", "Write-Back", "1", "0", "write-back ", " write-back", "write-back\n\n",
                "pass_through", "none"}) {
            assertThrows(KnobException.class, () -> Knob.CACHE_MODE.parse(bad), bad);
        }
        assertEquals(CacheMode.PASS_THROUGH.ordinal(), Knob.CACHE_MODE.parse("pass-through\n"));
        start(16, new EngineConfig().knob(Knob.CACHE_MODE, CacheMode.WRITE_THROUGH.ordinal()));
        assertThrows(KnobException.class, () -> engine.setKnob(Knob.CACHE_MODE, 4));
        assertThrows(KnobException.class, () -> engine.setKnob(Knob.CACHE_MODE, -1));
        assertEquals(CacheMode.WRITE_THROUGH, engine.mode());
        restart(new EngineConfig());
        assertEquals(CacheMode.WRITE_THROUGH, engine.mode());
        assertThrows(IllegalArgumentException.class, () -> {
            engine.close();
            engine = null;
            open(new EngineConfig().knob(Knob.CACHE_MODE, 7));
        });
    }
}
