package io.writeboost.cache;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.Rig;
import io.writeboost.testutil.SectorModel;
import io.writeboost.testutil.QuietLogs;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Power cuts at random instants of random workloads, on devices that drop, keep or tear every
 * unsynced write. After each recovery every sector must hold a value written to it at some
 * time (never garbage), and nothing older than what the last completed flush acknowledged.
 *
 * <p>Reads among the writes are checked against the newest write of each sector, and admit
 * missed lines into the cache as clean lines (read caching, with and without the second-access
 * filter), so that a clean line holding anything but the backing store's newest data shows.
 *
 * <p>Each sector written carries a stamp (write id, device, sector) repeated 32 times, so a
 * read tells exactly which write it came from, or that it is garbage. Seeds and crashes per
 * seed can be raised with -Dcrash.seeds and -Dcrash.points for long runs.
 */
@ExtendWith(QuietLogs.class)
class CrashTest {
    static final int SEEDS = Integer.getInteger("crash.seeds", 24);
    static final int CRASHES_PER_SEED = Integer.getInteger("crash.points", 12);
    static final int VOLUME_BYTES = 2 << 20;
    static final int SECTORS = VOLUME_BYTES / 512;
    static final AtomicLong crashPoints = new AtomicLong();
    static final AtomicLong sectorsChecked = new AtomicLong();
    static final AtomicLong sectorsBad = new AtomicLong();
    /** Starts refused for lost acknowledged data: a crash never loses what a record vouched for, so this stays 0. */
    static final AtomicLong lostDataRefusals = new AtomicLong();
    /** Lines reads admitted as clean lines, and reads served by them, in the random workloads. */
    static final io.writeboost.testutil.ReadCacheCounts readCache = new io.writeboost.testutil.ReadCacheCounts();
    /** Clean lines the starts after the random workloads' crashes kept (warm). */
    static final AtomicLong warmKept = new AtomicLong();
    /** Lines copy-forward copied in the random workloads, and whether the copy-forward seeds ran. */
    static final AtomicLong copiedForward = new AtomicLong();
    static volatile boolean copyForwardSeedsRan;

    static LongStream seeds() {
        return LongStream.range(1, SEEDS + 1);
    }

    @AfterAll
    static void report() {
        System.out.printf("CrashTest: %d seeds, %d crash points, %d sector checks, %d lost or garbage, %d false lost-data "
                + "refusals; %d lines admitted by reads, %d clean hits, %d clean lines kept by starts, %d lines copied "
                + "forward%n", SEEDS, crashPoints.get(), sectorsChecked.get(), sectorsBad.get(), lostDataRefusals.get(),
                readCache.admissions(), readCache.cleanHits(), warmKept.get(), copiedForward.get());
        if (copyForwardSeedsRan && copiedForward.get() == 0) {
            throw new AssertionError("the copy-forward workloads ran, yet no line was copied forward");
        }
        if (sectorsChecked.get() > 0 && readCache.admissions() + readCache.cleanHits() > 0) {
            return;
        }
        if (sectorsChecked.get() > 0) {
            throw new AssertionError("the random workloads read, yet no line was admitted: read caching was not exercised");
        }
    }

    /** Before a power cut takes the engine's counters with it. */
    private static void countEngine(Rig rig) {
        Status st = rig.engine.status();
        readCache.add(st);
        copiedForward.addAndGet(st.copiedForwardLines());
    }

    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("seeds")
    void acknowledgedWritesSurvivePowerLoss(long seed) throws Exception {
        run(seed, 0);
    }

    /**
     * A flush after nearly every write: power cuts land between an append and its sync, tear
     * appends and the header copies they write, and hit slots reused after appends.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("fsyncSeeds")
    void acknowledgedAppendsSurvivePowerLoss(long seed) throws Exception {
        run(seed, 90);
    }

    static LongStream fsyncSeeds() {
        return LongStream.range(1001, 1001 + SEEDS / 2);
    }

    /**
     * Sequential runs that bypass the cache (a 16 KiB cutoff) over cached dirty lines, and
     * the cache mode switched among all four, among the usual writes, flushes, discards and
     * writeback: a bypassed write must never let an older cached copy come back over it once a
     * flush covered it, and never leave a sector older than the last flush. Runs over lines
     * the cache does not hold are staged, and written out by a flush, by a request over them,
     * or in the background once quiet, wherever the power cut finds them.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("bypassSeeds")
    void bypassedWritesSurvivePowerLoss(long seed) throws Exception {
        run(seed, 10, true);
    }

    /**
     * Copy-forward heavy: writes and reads mostly over a hot region far smaller than the ring,
     * and writeback forced on most of the time, so that batches keep copying rewritten and
     * read lines into the open segment while flushes, discards and power cuts land around the
     * copies and the commits that give their old slots up. A copy must never bring back an
     * older version over a newer write or discard, nor lose a line its old slot held.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("copyForwardSeeds")
    void copiedForwardLinesSurvivePowerLoss(long seed) throws Exception {
        copyForwardSeedsRan = true;
        try {
            runWorkload(seed, 20, false, true);
        } catch (io.writeboost.recovery.LostDataException e) {
            lostDataRefusals.incrementAndGet();
            throw e;
        }
    }

    static LongStream copyForwardSeeds() {
        return LongStream.range(3001, 3001 + Math.max(1, SEEDS / 2));
    }

    static LongStream bypassSeeds() {
        return LongStream.range(2001, 2001 + SEEDS / 2);
    }

    /**
     * The windows of one bypassed write over cached lines, one power cut each: lines written
     * and flushed (the version the cut must not go behind), some of them written again and not
     * flushed, then a bypassed write over all of them and a flush, with the power cut after the
     * 1st, 2nd, ... device call from there on: after the bypass's backing write (the cached
     * copies not yet dropped), after its sync, after the log write that carries the tombstones,
     * before and after the flush's sync of the backing store, and finally after everything
     * (the bypassed write done, no flush yet, when {@code flush} is false). Each cut is taken
     * with several fates for the unsynced writes.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @org.junit.jupiter.params.provider.CsvSource({"true, true, false", "true, false, false", "false, true, false",
            "false, false, false", "true, true, true", "false, false, true"})
    void powerCutAtEachStepOfABypassedWrite(boolean stream, boolean flush, boolean clean) throws Exception {
        int cuts = 0;
        for (int calls = 1; ; calls++) {
            boolean cutInside = false;
            for (int fate = 0; fate < 6; fate++) {
                cutInside |= bypassWithCutAfter(calls, stream, flush, clean, new Random(calls * 31L + fate));
                cuts++;
            }
            if (!cutInside) {
                break; // the cut came after the last call of the write and its flush: every step was covered
            }
            assertTrue(calls < 200, "a bypassed write and a flush take fewer than 200 device calls");
        }
        crashPoints.addAndGet(cuts);
    }

    /**
     * One run of {@link #powerCutAtEachStepOfABypassedWrite}; returns whether the cut landed
     * inside the bypass and its flush. With {@code clean}, version 1 is written back and every
     * other line of the range read into the cache as a clean line before version 2 goes to the
     * others: the bypass then drops clean and dirty copies, and a read right after it (before
     * any cut) must see the new data, not a clean line's old copy.
     */
    private static boolean bypassWithCutAfter(int calls, boolean stream, boolean flush, boolean clean, Random rnd) throws Exception {
        int lines = 24;
        int from = 64; // sectors
        Rig rig = new Rig(5, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 0)
                .knob(Knob.SEQUENTIAL_CUTOFF, stream ? 32 << 10 : 0));
        SectorModel model = new SectorModel(1, SECTORS);
        long[] id = {1};
        try {
            // Version 1 of the range, flushed: nothing may go behind it. Then version 2 of
            // every other line, not flushed, some in the open segment.
            writeStamped(rig, model, id, from, lines * 8);
            rig.engine.flushNow();
            model.flushed();
            if (clean) {
                rig.engine.drain();
                rig.engine.setKnob(Knob.READ_CACHE_SECOND_ACCESS, 0);
                for (int l = 1; l < lines; l += 2) {
                    rig.engine.read(1, from + l * 8L, 8, ByteBuffer.allocate(4096));
                }
                assertEquals(lines / 2, rig.engine.status().cleanLines(), "every other line of the range is a clean line");
            }
            for (int l = 0; l < lines; l += 2) {
                writeStamped(rig, model, id, from + l * 8, 8);
            }
            if (stream) {
                // The 32 KiB just before the range start a stream that reaches the cutoff.
                writeStamped(rig, model, id, from - 64, 64);
            } else {
                rig.engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
            }
            long bypassedBefore = rig.engine.status().bypassedBytes();
            boolean inside = cutDuring(rig, model, calls, rnd, flush, cut -> {
                writeStamped(rig, model, id, from, lines * 8);
                if (!cut.getAsBoolean()) {
                    // A stream over cached lines goes through the cache; write_around_mode sends it around.
                    assertEquals(bypassedBefore + (stream ? 0 : lines * 4096L), rig.engine.status().bypassedBytes(),
                            stream ? "the stream went through the cache, which held its lines" : "the write bypassed the cache");
                    ByteBuffer now = ByteBuffer.allocate(lines * 4096);
                    rig.engine.read(1, from, lines * 8, now);
                    for (int k = 0; k < lines * 8; k++) {
                        assertEquals(id[0] - 1, SectorModel.decode(now, k * 512, 1, from + k),
                                "sector " + (from + k) + " right after the bypass");
                    }
                }
                if (flush) {
                    rig.engine.flush();
                }
            });
            assertNothingOlderThanAcknowledged(rig, model, "cut after " + calls + " call(s) (stream " + stream + ", flush " + flush + ")");
            return inside;
        } finally {
            rig.engine.close();
        }
    }

    /**
     * A discard over dirty lines, one power cut after each device call of it and of the flush
     * after it: version 0 written back, version 1 cached dirty and flushed, then the discard
     * (of whole lines, or of part of lines whose dirty sectors it covers: both drop the cached
     * line with a tombstone) and a flush. The tombstone may become durable with the log while
     * the punch is not yet synced; then a crash would show version 0, older than what the flush
     * acknowledged, unless the punch is synced before any line is dropped.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
    void powerCutAtEachStepOfADiscardOverDirtyLines(boolean partial) throws Exception {
        cutAtEachCall(41, (c, r) -> discardWithCutAfter(c, partial, r));
    }

    interface CutRun {
        boolean run(int calls, Random rnd) throws Exception;
    }

    /** Cuts after the 1st, 2nd, ... device call, six fates each, until a cut comes after the last call of the run. */
    private static void cutAtEachCall(long salt, CutRun run) throws Exception {
        int calls = 1;
        while (cutsInside(calls, salt, run)) {
            assertTrue(calls < 200, "the requests and a flush take fewer than 200 device calls");
            calls++;
        }
        crashPoints.addAndGet(6L * calls);
    }

    /** Runs a cut after {@code calls} device calls with six fates of the unsynced writes; whether any cut landed inside. */
    private static boolean cutsInside(int calls, long salt, CutRun run) throws Exception {
        boolean inside = false;
        for (int fate = 0; fate < 6; fate++) {
            inside |= run.run(calls, new Random(calls * salt + fate));
        }
        return inside;
    }

    interface Step {
        /** {@code cut}: whether the power has been cut so far. */
        void run(java.util.function.BooleanSupplier cut) throws Exception;
    }

    /**
     * Runs {@code step} (requests, ending with a flush when {@code flushes}) with a power cut
     * armed after {@code calls} device calls, or made once it is done, then recovers; the model
     * counts the flush as acknowledged only if it returned before the cut. Whether the cut
     * landed inside.
     */
    private static boolean cutDuring(Rig rig, SectorModel model, int calls, Random rnd, boolean flushes, Step step)
            throws Exception {
        var cut = rig.cutPowerAfter(calls, rnd);
        boolean inside;
        try {
            step.run(cut::get);
            if (flushes && !cut.get()) {
                model.flushed();
            }
        } catch (java.io.IOException expected) {
            assertTrue(cut.get(), "only the power cut fails the requests: " + expected);
        } finally {
            inside = cut.getAndSet(true);
        }
        if (!inside) {
            rig.cutPowerNow(rnd);
        }
        rig.recoverAfterCut();
        return inside;
    }

    private static boolean discardWithCutAfter(int calls, boolean partial, Random rnd) throws Exception {
        int lines = 8;
        int from = 64;
        Rig rig = new Rig(5, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 0));
        SectorModel model = new SectorModel(1, SECTORS);
        long[] id = {1};
        try {
            writeStamped(rig, model, id, from, lines * 8);
            rig.engine.drain();
            model.flushed();
            for (int l = 0; l < lines; l++) {
                if (partial) {
                    writeStamped(rig, model, id, from + l * 8 + 2, 4);
                } else {
                    writeStamped(rig, model, id, from + l * 8, 8);
                }
            }
            rig.engine.flushNow();
            model.flushed();
            boolean inside = cutDuring(rig, model, calls, rnd, true, cut -> {
                for (int l = 0; l < lines; l++) {
                    int at = partial ? from + l * 8 + 1 : from + l * 8;
                    int n = partial ? 6 : 8;
                    for (int i = 0; i < n; i++) {
                        model.written(1, at + i, 0); // issued: it may survive the cut whatever the call returns
                    }
                    rig.engine.discard(1, at, n);
                }
                rig.engine.flushNow();
            });
            assertNothingOlderThanAcknowledged(rig, model, "cut after " + calls + " call(s) (partial " + partial + ")");
            return inside;
        } finally {
            rig.engine.close();
        }
    }

    /**
     * A power cut after each device call of a writeback batch that copies a hot line forward
     * and writes cold ones back: the hot line written twice (so it is hot) and six cold lines,
     * flushed, then writeback forced until the segment is recorded written back. The old slot
     * must not be given up before the copy is durable: a cut between the record and the copy's
     * append would leave the hot line with only what the backing store holds, never written.
     */
    @org.junit.jupiter.api.Test
    void powerCutAtEachStepOfACopyForward() throws Exception {
        cutAtEachCall(47, CrashTest::copyForwardWithCutAfter);
    }

    private static boolean copyForwardWithCutAfter(int calls, Random rnd) throws Exception {
        Rig rig = new Rig(5, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 0)
                .knob(Knob.HIGH_WATERMARK, 0));
        SectorModel model = new SectorModel(1, SECTORS);
        long[] id = {1};
        try {
            writeStamped(rig, model, id, 0, 8);
            writeStamped(rig, model, id, 0, 8); // a rewrite: hot
            writeStamped(rig, model, id, 64, 6 * 8);
            rig.engine.flushNow();
            model.flushed();
            CacheEngine engine = rig.engine;
            long target = engine.status().lastFlushedId();
            boolean inside = cutDuring(rig, model, calls, rnd, false, cut -> {
                engine.setKnob(Knob.FORCE_MIGRATE, 1);
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (!cut.getAsBoolean() && engine.status().lastMigratedId() < target) {
                    assertTrue(System.nanoTime() < deadline, "writeback reaches segment " + target);
                    Thread.sleep(1);
                }
                if (!cut.getAsBoolean()) {
                    assertEquals(1, engine.status().copiedForwardLines(), "the hot line was copied forward");
                }
            });
            assertNothingOlderThanAcknowledged(rig, model, "copy-forward, cut after " + calls + " call(s)");
            return inside;
        } finally {
            rig.engine.close();
        }
    }

    /**
     * After everything is written back, the cache may only hold copies of what the backing
     * stores hold: a clean line a start kept that differs would serve data that changes under
     * a reader once it is evicted, with no write. Drains, then compares volume reads with the
     * stores' own contents.
     */
    static void assertCacheAgreesWithBackingStores(Rig rig, int volumes, String where) throws java.io.IOException {
        rig.engine.drain();
        for (int dev = 1; dev <= volumes; dev++) {
            ByteBuffer viaCache = ByteBuffer.allocate(VOLUME_BYTES);
            rig.engine.read(dev, 0, SECTORS, viaCache);
            ByteBuffer store = ByteBuffer.allocate(VOLUME_BYTES);
            rig.backings.get(dev).read(store, 0);
            for (int s = 0; s < SECTORS; s++) {
                if (viaCache.slice(s * 512, 512).compareTo(store.slice(s * 512, 512)) != 0) {
                    fail(where + ": dev " + dev + " sector " + s + " reads as write " + SectorModel.decode(viaCache, s * 512, dev, s)
                            + " through the cache, but the backing store holds write " + SectorModel.decode(store, s * 512, dev, s)
                            + " (" + rig.engine.status().warmCleanLines() + " clean line(s) kept by the start)");
                }
            }
        }
    }

    /**
     * Power cuts at each device call of the two windows in which a start could keep a clean
     * line the backing store no longer matches (docs/FORMAT.md, "Clean entries"); version 1
     * written back first, then:
     * <ul>
     *   <li>{@code bypass}, {@code discard}: every other line read into the cache and the log
     *       synced, then version 2 around the cache (write_around_mode) or a discard, and a
     *       flush. Were the backing change durable before the tombstones, a cut between would
     *       bring the old clean copy back over it: read until evicted, then the new data;
     *   <li>{@code read}: version 2 around the cache, not synced, every line read into the
     *       cache, then a flush, which syncs the log (with the clean entries) before the store:
     *       a cut between can roll the store back under them. They must not be kept.
     * </ul>
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @org.junit.jupiter.params.provider.ValueSource(strings = {"bypass", "discard", "read"})
    void powerCutAtEachStepAroundWarmLines(String kind) throws Exception {
        cutAtEachCall(43, (c, r) -> aroundWarmLinesWithCutAfter(c, kind, r));
    }

    private static boolean aroundWarmLinesWithCutAfter(int calls, String kind, Random rnd) throws Exception {
        int lines = 8;
        int from = 64;
        Rig rig = new Rig(8, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 0)
                .knob(Knob.READ_CACHE_SECOND_ACCESS, 0));
        SectorModel model = new SectorModel(1, SECTORS);
        long[] id = {1};
        try {
            writeStamped(rig, model, id, from, lines * 8);
            rig.engine.drain();
            model.flushed();
            rig.engine.setKnob(Knob.WRITE_AROUND_MODE, 1);
            if (kind.equals("read")) {
                writeStamped(rig, model, id, from, lines * 8); // around the cache, not synced
            }
            int step = kind.equals("read") ? 1 : 2;
            for (int l = 0; l < lines; l += step) {
                rig.engine.read(1, from + l * 8L, 8, ByteBuffer.allocate(4096));
            }
            assertEquals(lines / step, rig.engine.status().cleanLines(), "the reads admitted their lines");
            if (!kind.equals("read")) {
                rig.engine.flushNow();
            }
            CacheEngine engine = rig.engine;
            boolean inside = cutDuring(rig, model, calls, rnd, true, cut -> {
                if (kind.equals("discard")) {
                    for (int i = 0; i < lines * 8; i++) {
                        model.written(1, from + i, 0);
                    }
                    engine.discard(1, from, lines * 8);
                } else if (kind.equals("bypass")) {
                    writeStamped(rig, model, id, from, lines * 8);
                }
                engine.flush();
            });
            String where = kind + ", cut after " + calls + " call(s)";
            assertNothingOlderThanAcknowledged(rig, model, where);
            assertCacheAgreesWithBackingStores(rig, 1, where);
            return inside;
        } finally {
            rig.engine.close();
        }
    }

    /** After a recovery: every sector of volume 1 holds what the last flush acknowledged or a write issued since. */
    private static void assertNothingOlderThanAcknowledged(Rig rig, SectorModel model, String where) throws java.io.IOException {
        ByteBuffer all = ByteBuffer.allocate(VOLUME_BYTES);
        rig.engine.read(1, 0, SECTORS, all);
        for (int s = 0; s < SECTORS; s++) {
            long got = SectorModel.decode(all, s * 512, 1, s);
            if (got < 0 || !model.allowed(1, s, got)) {
                fail(where + ": sector " + s + " holds " + (got < 0 ? "garbage" : "write " + got)
                        + ", the last flush acknowledged write " + model.acked[1][s]);
            }
        }
    }

    /**
     * The windows of a staged stream, one power cut each: version 1 of a range written as a
     * stream (staged, then flushed), then version 2 the same way, each piece read
     * back right after its write, and a flush, with the power cut after the 1st, 2nd, ...
     * device call from version 2 on: the write-out of the staged lines (a window of more than
     * {@link StreamStaging#CACHE_AT_FLUSH_LINES}) or their log write (a smaller one, which the
     * flush logs in the cache), the log write of the stream's cached lead-in, the syncs.
     * Without {@code flush}, a write through the cache over
     * the last staged line makes the write-out instead, and nothing is flushed. The quiet time
     * is long, so that the calls come in the same order every run. Nothing older than version
     * 1 may come back, nor version 2 be lost once the flush returned.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @org.junit.jupiter.params.provider.CsvSource({"true, 6, 32", "true, 10, 240", "false, 6, 32"})
    void powerCutAtEachStepOfAStagedStream(boolean flush, int pieces, int piece) throws Exception {
        int cuts = 0;
        for (int calls = 1; ; calls++) {
            boolean cutInside = false;
            for (int fate = 0; fate < 6; fate++) {
                cutInside |= stagedStreamWithCutAfter(calls, flush, pieces, piece, new Random(calls * 37L + fate));
                cuts++;
            }
            if (!cutInside) {
                break;
            }
            assertTrue(calls < 200, "a staged stream and a flush take fewer than 200 device calls");
        }
        crashPoints.addAndGet(cuts);
    }

    private static boolean stagedStreamWithCutAfter(int calls, boolean flush, int pieces, int piece, Random rnd) throws Exception {
        int from = 256;        // sectors
        Rig rig = new Rig(5, 1, VOLUME_BYTES, new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 0)
                .knob(Knob.SEQUENTIAL_CUTOFF, 32 << 10).stagingQuietNanos(java.util.concurrent.TimeUnit.MINUTES.toNanos(10)));
        SectorModel model = new SectorModel(1, SECTORS);
        long[] id = {1};
        try {
            long bypassed = rig.engine.status().bypassedBytes();
            stagedStream(rig, model, id, from, pieces, piece);
            assertEquals(bypassed + pieces * piece * 512L, rig.engine.status().bypassedBytes(), "version 1 went around the cache");
            rig.engine.flush();
            model.flushed();
            int staged = pieces * piece / 8;
            assertEquals(staged > StreamStaging.CACHE_AT_FLUSH_LINES ? 0 : staged, rig.engine.status().stagedLinesCachedAtFlush(),
                    "staged lines the flush logged in the cache");
            boolean inside = cutDuring(rig, model, calls, rnd, flush, cut -> {
                stagedStream(rig, model, id, from, pieces, piece);
                if (flush) {
                    rig.engine.flush();
                } else {
                    writeStamped(rig, model, id, from + pieces * piece - 8, 8);
                }
            });
            ByteBuffer all = ByteBuffer.allocate(VOLUME_BYTES);
            rig.engine.read(1, 0, SECTORS, all);
            for (int s = 0; s < SECTORS; s++) {
                long got = SectorModel.decode(all, s * 512, 1, s);
                if (got < 0 || !model.allowed(1, s, got)) {
                    fail("cut after " + calls + " call(s) (flush " + flush + "): sector " + s + " holds "
                            + (got < 0 ? "garbage" : "write " + got) + ", the last flush acknowledged write " + model.acked[1][s]);
                }
            }
            return inside;
        } finally {
            rig.engine.close();
        }
    }

    /**
     * A 24 KiB lead-in through the cache (below the 32 KiB cutoff), then {@code pieces} pieces of {@code piece} sectors
     * from {@code from} on, which continue its stream past the cutoff and are staged; each read
     * back right after its write (unless the power is already gone).
     */
    private static void stagedStream(Rig rig, SectorModel model, long[] id, int from, int pieces, int piece)
            throws java.io.IOException {
        writeStamped(rig, model, id, from - 48, 48);
        for (int p = 0; p < pieces; p++) {
            int at = from + p * piece;
            writeStamped(rig, model, id, at, piece);
            ByteBuffer back = ByteBuffer.allocate(piece * 512);
            rig.engine.read(1, at, piece, back);
            for (int k = 0; k < piece; k++) {
                assertEquals(id[0] - 1, SectorModel.decode(back, k * 512, 1, at + k), "sector " + (at + k) + " right after its write");
            }
        }
    }

    /** Writes sectors [sector, sector + n) of volume 1 with a new stamp per write. */
    private static void writeStamped(Rig rig, SectorModel model, long[] id, int sector, int n) throws java.io.IOException {
        long write = id[0]++;
        ByteBuffer data = ByteBuffer.allocate(n * 512);
        for (int i = 0; i < n; i++) {
            SectorModel.stamp(data, i * 512, write, 1, sector + i);
            model.written(1, sector + i, write);
        }
        rig.engine.write(1, sector, n, data);
    }

    private static void run(long seed, int flushAfterWritePercent) throws Exception {
        run(seed, flushAfterWritePercent, false);
    }

    private static void run(long seed, int flushAfterWritePercent, boolean bypass) throws Exception {
        try {
            runWorkload(seed, flushAfterWritePercent, bypass, false);
        } catch (io.writeboost.recovery.LostDataException e) {
            lostDataRefusals.incrementAndGet();
            throw e;
        }
    }

    private static void runWorkload(long seed, int flushAfterWritePercent, boolean bypass, boolean hot) throws Exception {
        Random rnd = new Random(seed * 7919);
        EngineConfig config = new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 1)
                .knob(Knob.NR_MAX_BATCHED_MIGRATION, 1 + rnd.nextInt(2)).writebackGroupSegments(1 + rnd.nextInt(3));
        if (bypass) {
            config.knob(Knob.SEQUENTIAL_CUTOFF, 16 << 10);
        }
        config.knob(Knob.READ_CACHE_SECOND_ACCESS, rnd.nextInt(2));
        if (hot) {
            config.knob(Knob.FORCE_MIGRATE, 1);
        }
        Rig rig = new Rig(5, 2, VOLUME_BYTES, config);
        SectorModel model = new SectorModel(2, SECTORS);
        long nextId = 1;
        try {
            for (int crash = 0; crash < CRASHES_PER_SEED; crash++) {
                int ops = 20 + rnd.nextInt(400);
                for (int op = 0; op < ops; op++) {
                    int dev = 1 + rnd.nextInt(2);
                    int kind = rnd.nextInt(100);
                    if (bypass && kind < 12) {
                        // A stream of 1..48-sector writes, 24..120 KiB in all, often over the hot first 400 sectors.
                        int total = 48 + rnd.nextInt(192);
                        int sector = rnd.nextInt(rnd.nextBoolean() ? 400 : SECTORS - total);
                        for (int done = 0; done < total; ) {
                            int n = Math.min(total - done, 1 + rnd.nextInt(48));
                            ByteBuffer data = ByteBuffer.allocate(n * 512);
                            long id = nextId++;
                            for (int i = 0; i < n; i++) {
                                SectorModel.stamp(data, i * 512, id, dev, sector + done + i);
                            }
                            rig.engine.write(dev, sector + done, n, data);
                            for (int i = 0; i < n; i++) {
                                model.written(dev, sector + done + i, id);
                            }
                            done += n;
                        }
                        if (rnd.nextInt(100) < 30) {
                            rig.engine.flush();
                            model.flushed();
                        }
                        continue;
                    }
                    if (bypass && kind < 14) {
                        // Half the time write-back; else write-through, write-around or pass-through.
                        rig.engine.setKnob(Knob.CACHE_MODE, Math.max(0, rnd.nextInt(6) - 2));
                        continue;
                    }
                    if (kind >= 62 && kind < 70) {
                        // Whole lines, often in the hot region, so that misses are admitted and hit later.
                        int n = 8 * (1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 16 : 2));
                        int sector = 8 * rnd.nextInt(((hot ? rnd.nextInt(10) != 0 : rnd.nextBoolean()) ? 400 : SECTORS - n) / 8);
                        ByteBuffer got = ByteBuffer.allocate(n * 512);
                        rig.engine.read(dev, sector, n, got);
                        for (int i = 0; i < n; i++) {
                            long id = SectorModel.decode(got, i * 512, dev, sector + i);
                            if (id != model.current[dev][sector + i]) {
                                fail("seed " + seed + ": dev " + dev + " sector " + (sector + i) + " reads as write " + id
                                        + ", the newest write is " + model.current[dev][sector + i]);
                            }
                        }
                    } else if (kind < 70) {
                        int n = 1 + rnd.nextInt(rnd.nextInt(5) == 0 ? 200 : 16);
                        int sector = rnd.nextInt((hot ? rnd.nextInt(10) != 0 : rnd.nextBoolean()) ? 400 : SECTORS - n);
                        ByteBuffer data = ByteBuffer.allocate(n * 512);
                        long id = nextId++;
                        for (int i = 0; i < n; i++) {
                            SectorModel.stamp(data, i * 512, id, dev, sector + i);
                        }
                        rig.engine.write(dev, sector, n, data);
                        for (int i = 0; i < n; i++) {
                            model.written(dev, sector + i, id);
                        }
                        if (rnd.nextInt(100) < flushAfterWritePercent) {
                            rig.engine.flush();
                            model.flushed();
                        }
                    } else if (kind < 82) {
                        rig.engine.flush();
                        model.flushed();
                    } else if (kind < 87) {
                        int n = 1 + rnd.nextInt(24);
                        int sector = rnd.nextInt(SECTORS - n);
                        rig.engine.discard(dev, sector, n);
                        for (int i = 0; i < n; i++) {
                            model.written(dev, sector + i, 0);
                        }
                    } else if (kind < 95) {
                        rig.engine.setKnob(hot ? Knob.FORCE_MIGRATE : Knob.ALLOW_MIGRATE, hot ? (rnd.nextInt(4) == 0 ? 0 : 1) : rnd.nextInt(2));
                    } else {
                        Thread.sleep(rnd.nextInt(3));
                    }
                }
                countEngine(rig);
                if (flushAfterWritePercent > 0 && rnd.nextBoolean()) {
                    nextId = crashDuringFlushes(rig, model, rnd, nextId);
                    crashPoints.incrementAndGet();
                } else if (rnd.nextInt(4) == 0) {
                    rig.crashDuringRecovery(rnd);
                    crashPoints.addAndGet(2);
                } else {
                    rig.crashAndRecover(rnd);
                    crashPoints.incrementAndGet();
                }
                verifyAndSettle(rig, model, seed, crash);
            }
        } finally {
            rig.engine.close();
        }
    }

    /**
     * Power cut in the middle of a flush: a thread writes one line and flushes, over and
     * over, and the power goes after a random number of its flushes have returned, so the cut
     * lands between an append's writes and its sync, or inside one of them. Returns the next
     * write id.
     */
    private static long crashDuringFlushes(Rig rig, SectorModel model, Random rnd, long firstId) throws Exception {
        CacheEngine engine = rig.engine;
        java.util.concurrent.atomic.AtomicInteger flushes = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicLong nextId = new java.util.concurrent.atomic.AtomicLong(firstId);
        long seed = rnd.nextLong();
        Thread writer = new Thread(() -> {
            Random r = new Random(seed);
            try {
                while (true) {
                    int dev = 1 + r.nextInt(2);
                    int sector = r.nextInt(SECTORS / 8) * 8;
                    long id = nextId.getAndIncrement();
                    ByteBuffer data = ByteBuffer.allocate(8 * 512);
                    for (int i = 0; i < 8; i++) {
                        SectorModel.stamp(data, i * 512, id, dev, sector + i);
                        model.written(dev, sector + i, id);
                    }
                    engine.write(dev, sector, 8, data);
                    engine.flush();
                    model.flushed();
                    flushes.incrementAndGet();
                }
            } catch (java.io.IOException expected) {
                // the power went
            }
        }, "crash-test-writer");
        writer.start();
        int wanted = 1 + rnd.nextInt(20);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (flushes.get() < wanted && writer.isAlive() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        // Then wait for an append on its way: one or two of its writes issued, no sync yet.
        int unsynced = 1 + rnd.nextInt(2);
        while (rig.cache.unsyncedWrites() < unsynced && writer.isAlive() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        rig.crashAndRecover(rnd);
        writer.join();
        return nextId.get();
    }

    private static void verifyAndSettle(Rig rig, SectorModel model, long seed, int crash) throws Exception {
        warmKept.addAndGet(rig.engine.status().warmCleanLines());
        for (int dev = 1; dev <= 2; dev++) {
            ByteBuffer all = ByteBuffer.allocate(VOLUME_BYTES);
            rig.engine.read(dev, 0, SECTORS, all);
            for (int s = 0; s < SECTORS; s++) {
                long id = SectorModel.decode(all, s * 512, dev, s);
                if (id < 0 || !model.allowed(dev, s, id)) {
                    sectorsBad.incrementAndGet();
                }
                if (id < 0) {
                    fail("seed " + seed + " crash " + crash + ": dev " + dev + " sector " + s + " holds garbage");
                }
                if (!model.allowed(dev, s, id)) {
                    fail("seed " + seed + " crash " + crash + ": dev " + dev + " sector " + s + " holds write " + id
                            + ", but the last flush acknowledged write " + model.acked[dev][s]);
                }
                model.settle(dev, s, id);
            }
            sectorsChecked.addAndGet(SECTORS);
        }
        if (crash % 2 == 1) {
            // Clean lines the start kept (warm, docs/FORMAT.md "Clean entries") must equal the
            // backing store: written back, the cache then serves nothing else.
            assertCacheAgreesWithBackingStores(rig, 2, "seed " + seed + " crash " + crash);
        }
        // What recovery produced must itself be stable: a second power cut right away, with
        // nothing written, must give the same image.
        assertTrue(rig.engine.status().failure() == null, "engine usable after recovery");
        rig.crashAndRecover(new Random(seed + crash));
        for (int dev = 1; dev <= 2; dev++) {
            ByteBuffer all = ByteBuffer.allocate(VOLUME_BYTES);
            rig.engine.read(dev, 0, SECTORS, all);
            for (int s = 0; s < SECTORS; s++) {
                assertEquals(model.current[dev][s], SectorModel.decode(all, s * 512, dev, s),
                        "seed " + seed + " crash " + crash + ": dev " + dev + " sector " + s + " changed across an idle power cut");
            }
        }
    }
}
