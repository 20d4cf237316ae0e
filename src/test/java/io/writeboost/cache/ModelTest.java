package io.writeboost.cache;

import io.writeboost.knob.Knob;
import io.writeboost.testutil.Rig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random operations against the engine and against a plain byte array; every read must
 * match. The cache is small (6 segments) so the ring wraps, writers hit backpressure and
 * writeback runs under them. Reads admit missed lines as clean lines (read caching on, as by
 * default, with the second-access filter on or off and a sequential threshold per seed), so
 * writes, discards, bypasses, drains and restarts happen over clean lines too.
 */
class ModelTest {
    static final int SEEDS = 40;
    static final int OPS = 1500;
    static final int VOLUME_BYTES = 3 << 20;
    static final int SECTORS = VOLUME_BYTES / 512;

    static LongStream seeds() {
        return LongStream.range(1, SEEDS + 1);
    }

    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("seeds")
    void randomOperationsMatchModel(long seed) throws Exception {
        run(seed, 0);
    }

    /** The database pattern: a flush after nearly every write, so segments fill by appends and slots are reused after them. */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("fsyncSeeds")
    void flushesAfterNearlyEveryWriteMatchModel(long seed) throws Exception {
        run(seed, 90);
    }

    static LongStream fsyncSeeds() {
        return LongStream.range(101, 101 + SEEDS / 2);
    }

    /**
     * Sequential runs long enough to bypass the cache (a 32 KiB cutoff), over the hot region's
     * cached dirty lines, with the cache mode switched among all four, restarts, drains and
     * writeback running under them.
     */
    @ParameterizedTest
    @org.junit.jupiter.api.parallel.Execution(org.junit.jupiter.api.parallel.ExecutionMode.CONCURRENT)
    @MethodSource("bypassSeeds")
    void bypassedWritesMatchModel(long seed) throws Exception {
        run(seed, 20, true);
    }

    static LongStream bypassSeeds() {
        return LongStream.range(201, 201 + SEEDS / 2);
    }

    /** The engine's bypass counters after the last {@link #run} with bypasses, for the check that they happened. */
    static final java.util.concurrent.atomic.AtomicLong bypassedBytes = new java.util.concurrent.atomic.AtomicLong();
    /** Lines reads admitted and reads clean lines served, over every run. */
    static final io.writeboost.testutil.ReadCacheCounts readCache = new io.writeboost.testutil.ReadCacheCounts();

    @org.junit.jupiter.api.AfterAll
    static void bypassesHappened() {
        if (bypassedBytes.get() > 0) {
            System.out.printf("ModelTest: %d bytes bypassed the cache%n", bypassedBytes.get());
        }
        System.out.printf("ModelTest: %d lines admitted by reads, %d clean hits%n", readCache.admissions(), readCache.cleanHits());
        // Per seed it may be none: with a 6-segment ring full of dirty lines and allow_migrate
        // 0, admission leaves the room to writers, as it should.
        assertTrue(readCache.admissions() > 0 && readCache.cleanHits() > 0, "the reads exercised read caching");
    }

    private static void run(long seed, int flushAfterWritePercent) throws Exception {
        run(seed, flushAfterWritePercent, false);
    }

    private static void run(long seed, int flushAfterWritePercent, boolean bypass) throws Exception {
        Random rnd = new Random(seed);
        EngineConfig config = new EngineConfig().ramBuffers(3).knob(Knob.BARRIER_DEADLINE_MS, 1)
                .knob(Knob.NR_MAX_BATCHED_MIGRATION, 1 + rnd.nextInt(2)).writebackGroupSegments(1 + rnd.nextInt(3));
        if (bypass) {
            config.knob(Knob.SEQUENTIAL_CUTOFF, 32 << 10);
        }
        config.knob(Knob.READ_CACHE_SECOND_ACCESS, rnd.nextInt(2)).knob(Knob.READ_CACHE_THRESHOLD, 1 + rnd.nextInt(64));
        Rig rig = new Rig(6, 2, VOLUME_BYTES, config);
        byte[][] model = {null, new byte[VOLUME_BYTES], new byte[VOLUME_BYTES]};
        long bypassedBefore = 0; // by the engines a restart replaced
        try {
            for (int op = 0; op < OPS; op++) {
                int dev = 1 + rnd.nextInt(2);
                int kind = rnd.nextInt(100);
                if (bypass && kind < 12) {
                    // A stream: chunks of 1..80 sectors one after the other, 40..200 KiB in all,
                    // starting anywhere (often in the hot region), line-aligned or not.
                    int total = 80 + rnd.nextInt(320);
                    long sector = pickSector(rnd, total);
                    for (int done = 0; done < total; ) {
                        int n = Math.min(total - done, 1 + rnd.nextInt(80));
                        byte[] data = new byte[n * 512];
                        rnd.nextBytes(data);
                        rig.engine.write(dev, sector + done, n, rnd.nextBoolean() ? ByteBuffer.wrap(data)
                                : ByteBuffer.allocateDirect(n * 512).put(data).flip());
                        System.arraycopy(data, 0, model[dev], (int) (sector + done) * 512, data.length);
                        done += n;
                    }
                    if (rnd.nextInt(100) < flushAfterWritePercent) {
                        rig.engine.flush();
                    }
                    continue;
                }
                if (bypass && kind < 14) {
                    // Half the time write-back; else write-through, write-around or pass-through.
                    rig.engine.setKnob(Knob.CACHE_MODE, Math.max(0, rnd.nextInt(6) - 2));
                    continue;
                }
                if (kind < 45) {
                    int n = 1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 300 : 24);
                    long sector = pickSector(rnd, n);
                    byte[] data = new byte[n * 512];
                    rnd.nextBytes(data);
                    rig.engine.write(dev, sector, n, ByteBuffer.wrap(data));
                    System.arraycopy(data, 0, model[dev], (int) sector * 512, data.length);
                    if (rnd.nextInt(100) < flushAfterWritePercent) {
                        rig.engine.flush();
                    }
                } else if (kind < 80) {
                    int n = 1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 300 : 24);
                    long sector = pickSector(rnd, n);
                    ByteBuffer got = rnd.nextBoolean() ? ByteBuffer.allocate(n * 512) : ByteBuffer.allocateDirect(n * 512);
                    rig.engine.read(dev, sector, n, got);
                    byte[] actual = new byte[n * 512];
                    got.get(0, actual);
                    byte[] expected = new byte[n * 512];
                    System.arraycopy(model[dev], (int) sector * 512, expected, 0, expected.length);
                    assertArrayEquals(expected, actual, "seed " + seed + " op " + op + ": read dev " + dev + " sector " + sector + " n " + n);
                } else if (kind < 88) {
                    rig.engine.flush();
                } else if (kind < 93) {
                    int n = 1 + rnd.nextInt(64);
                    long sector = pickSector(rnd, n);
                    rig.engine.discard(dev, sector, n);
                    java.util.Arrays.fill(model[dev], (int) sector * 512, (int) (sector + n) * 512, (byte) 0);
                } else if (kind < 96) {
                    rig.engine.setKnob(Knob.ALLOW_MIGRATE, rnd.nextInt(2));
                } else if (kind < 98) {
                    rig.engine.drain();
                    assertEquals(0, rig.engine.status().dirtyLines(), "drain leaves no dirty line");
                } else {
                    bypassedBefore += rig.engine.status().bypassedBytes();
                    readCache.add(rig.engine.status());
                    rig.restart();
                }
            }
            if (bypass) {
                long bypassed = bypassedBefore + rig.engine.status().bypassedBytes();
                assertTrue(bypassed > 0, "seed " + seed + ": some writes bypassed the cache");
                bypassedBytes.addAndGet(bypassed);
            }
            readCache.add(rig.engine.status());
            rig.restart();
            for (int dev = 1; dev <= 2; dev++) {
                ByteBuffer all = ByteBuffer.allocate(VOLUME_BYTES);
                rig.engine.read(dev, 0, SECTORS, all);
                assertArrayEquals(model[dev], all.array(), "seed " + seed + ": whole volume " + dev + " after restart");
            }
            rig.engine.drain();
            for (int dev = 1; dev <= 2; dev++) {
                ByteBuffer back = ByteBuffer.allocate(VOLUME_BYTES);
                rig.backings.get(dev).read(back, 0);
                assertArrayEquals(model[dev], back.array(), "seed " + seed + ": backing " + dev + " after drain");
            }
        } catch (Throwable t) {
            // The engine may be the one a failed restart left closed: its close would fail
            // too and hide what went wrong first.
            try {
                rig.engine.close();
            } catch (IOException e) {
                t.addSuppressed(e);
            }
            throw t;
        }
        rig.engine.close();
    }

    /** Mostly a hot 256 KiB region so lines get overwritten in RAM, on the device and across segments. */
    static long pickSector(Random rnd, int n) {
        int span = rnd.nextInt(3) == 0 ? SECTORS : 512;
        return rnd.nextInt(Math.max(1, span - n));
    }
}
