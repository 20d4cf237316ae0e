package io.writeboost.cache;

import io.writeboost.format.LineKey;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.SplittableRandom;

/**
 * Benchmark: the line table and its index alone, on the CPU, as a full ring turns over. Each
 * round takes the ring slot by slot: writeback clears the slot's dirty lines, the slot is
 * reclaimed, and 254 random keys (over a backing store 4x the cache) are written into it
 * (lookup, assign, supersede the older copy, index); then as many random lookups as the cache
 * has lines (about a fifth of them find their key). Prints the best time per write and per
 * lookup over the rounds after the first two (the first fills the empty ring, the second warms
 * up), in wall time and in the thread's CPU time, which a machine shared with other work
 * disturbs less. Asserts nothing. Usage: bench/line-table [CACHE_GIB, default 8] [ROUNDS, default 8]
 */
public final class LineTableBench {
    public static void main(String[] args) {
        long gib = args.length > 0 ? Long.parseLong(args[0]) : 8;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        int segments = (int) (gib << 10);
        int lps = LineTable.LPS;
        EngineLock lock = new EngineLock();
        lock.lock(); // the table's contract
        LineTable table = new LineTable(lock, segments);
        long backingLines = (long) segments * lps * 4;
        SplittableRandom rnd = new SplittableRandom(7);
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        double bestWrite = Double.MAX_VALUE, bestLookup = Double.MAX_VALUE;
        double bestWriteCpu = Double.MAX_VALUE, bestLookupCpu = Double.MAX_VALUE;
        long found = 0;
        for (int round = 0; round < rounds; round++) {
            long t0 = System.nanoTime();
            long c0 = cpu.getCurrentThreadCpuTime();
            long id = (long) round * segments;
            for (int slot = 0; slot < segments; slot++) {
                id++;
                int used = table.linesUsed(slot);
                for (int k = 0; k < used; k++) {
                    int line = slot * lps + k;
                    int bits = table.dirtyBits(line);
                    if (bits != 0) {
                        table.clearDirty(line, table.key(line), bits);
                    }
                }
                table.reclaim(slot);
                for (int k = 0; k < lps; k++) {
                    long key = LineKey.of(1, rnd.nextLong(backingLines));
                    int older = table.lookup(key);
                    table.assign(slot, k, key);
                    if (older >= 0) {
                        table.supersede(older, id, slot);
                    }
                    table.makeCurrent(slot * lps + k, 0xFF);
                }
            }
            double writeNs = (System.nanoTime() - t0) / (double) ((long) segments * lps);
            double writeCpu = (cpu.getCurrentThreadCpuTime() - c0) / (double) ((long) segments * lps);
            long t1 = System.nanoTime();
            long c1 = cpu.getCurrentThreadCpuTime();
            int lookups = segments * lps;
            for (int i = 0; i < lookups; i++) {
                if (table.lookup(LineKey.of(1, rnd.nextLong(backingLines))) >= 0) {
                    found++;
                }
            }
            double lookupNs = (System.nanoTime() - t1) / (double) lookups;
            double lookupCpu = (cpu.getCurrentThreadCpuTime() - c1) / (double) lookups;
            if (round >= 2) {
                bestWrite = Math.min(bestWrite, writeNs);
                bestLookup = Math.min(bestLookup, lookupNs);
                bestWriteCpu = Math.min(bestWriteCpu, writeCpu);
                bestLookupCpu = Math.min(bestLookupCpu, lookupCpu);
            }
        }
        System.out.printf("line table of %d GiB (%d lines, %d indexed): best of rounds 3..%d: %.1f ns per write, %.1f ns per "
                + "lookup (%d lookups found their key); thread CPU time: %.1f ns per write, %.1f ns per lookup%n", gib,
                (long) segments * lps, table.indexedLines(), rounds, bestWrite, bestLookup, found, bestWriteCpu, bestLookupCpu);
    }
}
