package io.writeboost.testutil;

import java.util.ArrayList;
import java.util.List;

/**
 * Every write and discard issued to each sector of one volume, with when it started and when
 * it was acknowledged, for checking what concurrent reads return: per sector, a read must give
 * the data of an operation that had started before the read ended and that no other
 * operation had replaced (started after it was acknowledged, acknowledged before the read
 * began). Write ids are unique and carried in the sector's stamp ({@link SectorModel}); id 0
 * means zeros (a discard, or the volume as it was at the start).
 */
public final class SectorHistory {
    /** One operation's life on one sector. */
    public static final class Op {
        final long id;
        final long start;
        volatile long end = Long.MAX_VALUE;

        Op(long id, long start) {
            this.id = id;
            this.start = start;
        }
    }

    private final List<Op>[] ops;

    @SuppressWarnings("unchecked")
    public SectorHistory(int sectors) {
        ops = new List[sectors];
        for (int s = 0; s < sectors; s++) {
            ops[s] = new ArrayList<>();
        }
        settle(new long[sectors]);
    }

    /** Forgets the history: each sector now holds {@code ids[sector]}, as if written long ago. */
    public void settle(long[] ids) {
        for (int s = 0; s < ops.length; s++) {
            Op known = new Op(ids[s], Long.MIN_VALUE);
            known.end = Long.MIN_VALUE;
            synchronized (ops[s]) {
                ops[s].clear();
                ops[s].add(known);
            }
        }
    }

    /** Records a write ({@code id > 0}) or discard (0) of {@code n} sectors at {@code at} before it is issued. */
    public Op[] begin(long id, int at, int n) {
        Op[] op = new Op[n];
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            op[i] = new Op(id, start);
            synchronized (ops[at + i]) {
                ops[at + i].add(op[i]);
            }
        }
        return op;
    }

    /** The operation was acknowledged. (One never acknowledged stays in flight for ever: it may or may not have landed.) */
    public static void acknowledged(Op[] op) {
        long end = System.nanoTime();
        for (Op x : op) {
            x.end = end;
        }
    }

    /**
     * Null when {@code id} (from {@link SectorModel#decode}) is what a read of {@code sector}
     * during [readStart, readEnd] may return; otherwise why not.
     */
    public String check(int sector, long id, long readStart, long readEnd) {
        if (id < 0) {
            return "sector " + sector + " holds neither zeros nor one whole write (a mix of versions, or garbage)";
        }
        List<Op> copy;
        synchronized (ops[sector]) {
            copy = new ArrayList<>(ops[sector]);
        }
        // The latest start among operations acknowledged before the read began: whatever was
        // acknowledged before that start had been replaced before the read.
        long replacedBefore = Long.MIN_VALUE;
        for (Op w : copy) {
            if (w.end < readStart && w.start > replacedBefore) {
                replacedBefore = w.start;
            }
        }
        for (Op w : copy) {
            if (w.id == id && w.start < readEnd && !(w.end < replacedBefore)) {
                return null;
            }
        }
        StringBuilder h = new StringBuilder();
        for (Op w : copy) {
            if (w.start == Long.MIN_VALUE || w.end > readStart - 50_000_000L) {
                h.append(String.format("%n  %s %d: [%s, %s]", w.id == 0 ? "zeros" : "write", w.id, rel(w.start, readStart),
                        rel(w.end, readStart)));
            }
        }
        return "sector " + sector + " returned " + (id == 0 ? "zeros" : "write " + id) + ", which a read in [0, +"
                + (readEnd - readStart) + "] ns may not see; recent history (ns, relative to the read's start):" + h;
    }

    private static String rel(long t, long base) {
        return t == Long.MIN_VALUE ? "start" : t == Long.MAX_VALUE ? "never acknowledged" : String.format("%+d", t - base);
    }
}
