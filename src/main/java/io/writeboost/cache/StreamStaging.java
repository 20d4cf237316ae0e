package io.writeboost.cache;

import io.writeboost.format.Layout;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.function.BooleanSupplier;

/**
 * The staging buffer of streams that go around the cache: their whole lines wait here, in RAM,
 * until they can reach the backing store in large requests, and the write that brought them
 * returns at once. A writer that waits for each request before it sends the next (dd or
 * qemu-img on the volume file: the kernel sends the 128 KiB FUSE pieces of a synchronous
 * direct write one after another) otherwise gets one backing request per piece, and a disk
 * that counts requests serves about 200 a second (docs/ENGINE.md, "Staging").
 *
 * <p>Staged lines live in windows: 4 MiB aligned ranges of one volume, each with a RAM buffer
 * and a bit per line. A window is written out by the stager thread ({@code wb-stager-N}) when
 * all its lines are staged, when nothing was staged in it for {@link #QUIET_NANOS}, when a
 * flush asks ({@link #writeOutAll}), when a request that must not pass it overlaps it
 * ({@link #awaitClear}), or when a stream needs a window and none is free. Each run of staged
 * lines goes out as one request (a window's tail and the next window's head as one, when both
 * are written together), and then runs the rest of the bypass protocol
 * ({@link WritePath#settleBypass}); only then do its lines leave the window.
 *
 * <p>The rules that keep this correct (argued in docs/ENGINE.md):
 * <ul>
 *   <li>a line is never staged and cached at once: a piece is staged only while none of its
 *       lines is cached and no dropped line is unsettled ({@link WritePath}'s check), and a
 *       write through the cache of a staged line first waits for its window to be written out;
 *   <li>reads of a staged line copy it from the window, until its write-out has completed;
 *   <li>a discard, or a bypass not staged, waits until no window holds its lines before it
 *       touches the backing store, so that no staged data lands after it;
 *   <li>a flush writes out every window first, then the log and the backing-store syncs;
 *   <li>a window whose write-out failed keeps its lines (reads still see them) and is retried;
 *       a flush or a request waiting for it gets the error.
 * </ul>
 *
 * <p>Not thread-safe on its own: every method expects the {@link EngineLock} held (and checks
 * it), except {@link #settleWith}, {@link #start}, {@link #stop}, {@link #writeOutAll} and
 * {@link #writeOutForFailover}, which take it themselves; waits release it.
 */
final class StreamStaging {
    private static final Logger log = LogManager.getLogger(StreamStaging.class);

    /** Lines per window: 4 MiB, the longest request writeback and the bypass send. */
    static final int WINDOW_LINES = 1024;
    static final int WINDOW_BYTES = WINDOW_LINES * Layout.LINE_SIZE;
    /**
     * Windows at most (32 MiB of RAM once all are in use): while one is written, a stream fills
     * the next, and a few streams (or the out-of-order pieces of a loop device's requests) each
     * have their own.
     */
    static final int WINDOWS = 8;
    /**
     * A window nothing was staged in for this long is written out. The gaps between the pieces
     * of a sequential writer (dd: a fraction of a millisecond; a copy that reads its source
     * from a disk: a few milliseconds per read) are well under it, and holding staged lines
     * longer costs nothing a flush does not bound: they are no more durable in a request in
     * flight than here.
     */
    static final long QUIET_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
    /**
     * A flush logs a filling window of at most this many lines in the cache instead of waiting
     * for its backing write ({@link #cacheForFlush}): a journal's or a log's latest lines, not
     * the tail of a large copy, whose ring room and writeback would cost more than its wait.
     */
    static final int CACHE_AT_FLUSH_LINES = WINDOW_LINES / 4;
    private static final long RETRY_MIN_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long RETRY_MAX_NANOS = TimeUnit.SECONDS.toNanos(30);

    private static final int FREE = 0, FILLING = 1, WRITING = 2, FAILED = 3;

    private final EngineLock lock;
    private final Health health;
    private final BackingStores backings;
    private final BackingOrder order;
    private final BypassWriter counters;
    private final long quietNanos;
    /** The stager waits on it: a window became due, or a new window started (a new quiet deadline). */
    private final Condition work;
    private final Window[] windows = new Window[WINDOWS];
    /** Windows not free. */
    private int active;
    private WritePath writePath;
    private Stager stager;

    StreamStaging(EngineLock lock, Health health, BackingStores backings, BackingOrder order, BypassWriter counters,
                  long quietNanos) {
        this.lock = lock;
        this.health = health;
        this.backings = backings;
        this.order = order;
        this.counters = counters;
        this.quietNanos = quietNanos;
        this.work = lock.newCondition();
        for (int i = 0; i < WINDOWS; i++) {
            windows[i] = new Window();
        }
    }

    private static final class Window {
        int state = FREE;
        /** Written out as soon as the stager gets to it, quiet or not. */
        boolean due;
        int dev;
        /** Its first line number (a multiple of {@link #WINDOW_LINES}). */
        long first;
        final long[] held = new long[WINDOW_LINES / 64];
        int lines;
        /** Per line, the {@link BackingOrder#beginChange} calls its pieces made, ended when it is written out. */
        final int[] changes = new int[WINDOW_LINES];
        ByteBuffer data;
        long touched;
        /** {@link BackingOrder#batchesDone()} when its first piece was staged. */
        long batchesBefore;
        /** Bumped each time the window is written out and freed: a waiter compares it. */
        long generation;
        int attempts;
        IOException error;
        long retryAt;
        long backoff;

        boolean holds(long line) {
            long i = line - first;
            return i >= 0 && i < WINDOW_LINES && (held[(int) (i >>> 6)] & (1L << i)) != 0;
        }

        boolean holdsAny(int d, long from, long to) {
            if (state == FREE || d != dev || to <= first || from >= first + WINDOW_LINES) {
                return false;
            }
            for (long l = Math.max(from, first), e = Math.min(to, first + WINDOW_LINES); l < e; l++) {
                if (holds(l)) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Wires the protocol's second half; called once, before {@link #start}. */
    void settleWith(WritePath path) {
        this.writePath = path;
    }

    void start(int cacheId) {
        stager = new Stager(cacheId);
        stager.start();
    }

    /** Called without the lock once the engine is closing or failed ({@link Health#stopped}): ends the stager. */
    void stop(java.util.function.Predicate<Thread> leftBehind) {
        if (stager == null) {
            return;
        }
        lock.lock();
        try {
            work.signalAll();
        } finally {
            lock.unlock();
        }
        stager.join(leftBehind);
    }

    /** Lock held: whether line {@code line} of volume {@code dev} is staged (a cheap test while nothing is). */
    boolean holds(int dev, long line) {
        lock.assertHeld();
        return active != 0 && holding(dev, line, line + 1) != null;
    }

    /**
     * Lock held: if line {@code line} of {@code dev} is staged, copies its sectors
     * {@code first .. first + n - 1} to {@code dst} at {@code dstLine} plus their offset in the
     * line, and returns true.
     */
    boolean read(int dev, long line, int first, int n, ByteBuffer dst, int dstLine) {
        lock.assertHeld();
        if (active == 0) {
            return false;
        }
        Window w = holding(dev, line, line + 1);
        if (w == null) {
            return false;
        }
        int from = (int) (line - w.first) * Layout.LINE_SIZE + (first << Layout.SECTOR_SHIFT);
        dst.put(dstLine + (first << Layout.SECTOR_SHIFT), w.data, from, n << Layout.SECTOR_SHIFT);
        return true;
    }

    /**
     * Lock held (released while it waits): stages whole lines [sector, sector + nSectors) of
     * {@code dev} from {@code src} at {@code srcPos}, and counts them as changing in
     * {@link ReadAdmission} until they are written out. Returns false, staging nothing, when
     * {@code eligible} says no (checked before staging, again after every wait) or when every
     * window has failed; the caller then writes them itself.
     */
    boolean stage(int dev, long sector, int nSectors, ByteBuffer src, int srcPos, long batchesBefore,
                  BooleanSupplier eligible) throws IOException {
        lock.assertHeld();
        long firstLine = sector >>> 3;
        long endLine = firstLine + (nSectors >>> 3);
        while (true) {
            health.checkUsable();
            if (!eligible.getAsBoolean()) {
                return false;
            }
            Window blocker = null;
            int newWindows = 0;
            for (long l = firstLine; l < endLine; ) {
                long base = l & -WINDOW_LINES;
                long end = Math.min(endLine, base + WINDOW_LINES);
                Window f = filling(dev, base);
                blocker = holdingOther(dev, l, end, f);
                if (blocker != null) {
                    break;
                }
                if (f == null) {
                    newWindows++;
                }
                l = end;
            }
            if (blocker != null) {
                awaitWrittenOut(blocker);
                continue;
            }
            if (newWindows > WINDOWS) {
                return false; // larger than all the windows together (the engine's callers may send such writes; FUSE does not)
            }
            if (newWindows <= WINDOWS - active) {
                for (long l = firstLine; l < endLine; ) {
                    long base = l & -WINDOW_LINES;
                    long end = Math.min(endLine, base + WINDOW_LINES);
                    add(dev, base, l, end, src, srcPos + (int) ((l - firstLine) << Layout.LINE_SHIFT), batchesBefore);
                    l = end;
                }
                counters.countStaged(nSectors << Layout.SECTOR_SHIFT);
                return true;
            }
            if (!makeRoom()) {
                return false;
            }
        }
    }

    /** Lock held: lines [from, to) of the window for {@code base} (one exists or is free), from {@code src} at {@code srcPos}. */
    private void add(int dev, long base, long from, long to, ByteBuffer src, int srcPos, long batchesBefore) {
        lock.assertHeld();
        Window w = filling(dev, base);
        long now = System.nanoTime();
        if (w == null) {
            w = free();
            w.state = FILLING;
            w.due = false;
            w.dev = dev;
            w.first = base;
            w.batchesBefore = batchesBefore;
            if (w.data == null) {
                w.data = ByteBuffer.allocateDirect(WINDOW_BYTES + Layout.LINE_SIZE).alignedSlice(Layout.LINE_SIZE);
            }
            active++;
            work.signal();
        }
        w.data.put((int) (from - base) << Layout.LINE_SHIFT, src, srcPos, (int) (to - from) << Layout.LINE_SHIFT);
        for (long l = from; l < to; l++) {
            int i = (int) (l - base);
            if ((w.held[i >>> 6] & (1L << i)) == 0) {
                w.held[i >>> 6] |= 1L << i;
                w.lines++;
            }
            w.changes[i]++;
        }
        order.beginChange(dev, from, to - from);
        w.touched = now;
        if (w.lines == WINDOW_LINES && !w.due) {
            w.due = true;
            work.signal();
        }
    }

    /**
     * Lock held (released while it waits): returns once no window holds a line of sectors
     * [sector, sector + nSectors) of {@code dev}, writing out those that do first. Throws when
     * the write-out of one of them fails.
     */
    void awaitClear(int dev, long sector, long nSectors) throws IOException {
        lock.assertHeld();
        if (active == 0) {
            return;
        }
        long from = sector >>> 3;
        long to = (sector + nSectors + 7) >>> 3;
        Window w;
        while ((w = holding(dev, from, to)) != null) {
            awaitWrittenOut(w);
        }
    }

    /**
     * Called without the lock: writes out every window that holds lines now and returns once
     * they are on the backing store (durable where the store takes O_DIRECT with O_DSYNC, else
     * for the flush to sync) and past the bypass protocol; throws when one of them fails.
     */
    void writeOutAll() throws IOException {
        lock.lock();
        try {
            if (active == 0) {
                return;
            }
            for (Window w : windows) {
                if (w.state == FILLING && w.lines <= CACHE_AT_FLUSH_LINES) {
                    cacheForFlush(w);
                }
            }
            Window[] ws = new Window[WINDOWS];
            long[] generations = new long[WINDOWS];
            int n = 0;
            for (Window w : windows) {
                if (w.state != FREE) {
                    w.due = true;
                    ws[n] = w;
                    generations[n++] = w.generation;
                }
            }
            work.signal();
            for (int i = 0; i < n; i++) {
                awaitGeneration(ws[i], generations[i], ws[i].attempts);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Called by the failover without the lock, once the stager has ended and the engine's
     * machinery has stopped: writes every staged line to its backing store, without the bypass
     * protocol's second half (no staged line is cached, and no writeback batch runs again), and
     * frees the windows. A write that fails is thrown: the backing store fails with it.
     */
    void writeOutForFailover() throws IOException {
        for (Window w : windows) {
            int dev;
            lock.lock();
            try {
                if (w.state == FREE) {
                    continue;
                }
                w.state = WRITING;
                dev = w.dev;
            } finally {
                lock.unlock();
            }
            writeRuns(dev, new Window[] {w});
            lock.lock();
            try {
                release(w);
                lock.signalChanged();
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Lock held, not released: logs the staged lines of {@code w} in the cache, as many as the
     * log has room for without waiting, and lets them leave the window. The flush's wait is
     * then the cache device's, not the backing store's: a stager's write can sit behind a
     * writeback sync of half a second of random writes, and a file system's journal
     * (sequential, so staged once past sequential_cutoff) is what its fsync waits for.
     */
    private void cacheForFlush(Window w) throws IOException {
        lock.assertHeld();
        int cached = 0;
        for (int i = nextHeld(w, 0); i < WINDOW_LINES; i = nextHeld(w, i + 1)) {
            if (!writePath.cacheStagedLine(w.dev, w.first + i, w.data, i << Layout.LINE_SHIFT)) {
                break;
            }
            w.held[i >>> 6] &= ~(1L << i);
            w.lines--;
            endChanges(w, i);
            cached++;
        }
        if (cached > 0) {
            counters.countCachedAtFlush(cached);
            if (w.lines == 0) {
                release(w);
            }
            lock.signalChanged();
        }
    }

    /** Lock held: asks for {@code w}'s write-out now and waits for it. */
    private void awaitWrittenOut(Window w) throws IOException {
        lock.assertHeld();
        w.due = true;
        work.signal();
        awaitGeneration(w, w.generation, w.attempts);
    }

    /** Lock held: waits until {@code w} is written out past {@code generation}; throws if an attempt after {@code attempts} failed. */
    private void awaitGeneration(Window w, long generation, int attempts) throws IOException {
        lock.assertHeld();
        while (w.generation == generation && w.state != FREE) {
            if (w.state == FAILED && w.attempts != attempts) {
                throw new IOException("staged lines " + w.first + ".. of volume " + w.dev + " could not be written to the "
                        + "backing store: " + w.error, w.error);
            }
            health.checkFailure();
            if (health.closing() && (stager == null || !stager.isAlive())) {
                throw new IOException("the cache is stopping with staged lines not written");
            }
            try {
                lock.awaitChanged();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for staged lines to be written", e);
            }
        }
    }

    /**
     * Lock held (released while it waits): no window is free; asks for the one staged in
     * longest ago to be written out and waits for any to be freed. False when every window
     * has failed and none can be freed.
     */
    private boolean makeRoom() throws IOException {
        lock.assertHeld();
        Window oldest = null;
        boolean writing = false;
        for (Window w : windows) {
            if (w.state == FILLING && (oldest == null || w.touched < oldest.touched)) {
                oldest = w;
            }
            writing |= w.state == WRITING;
        }
        if (oldest == null && !writing) {
            return false;
        }
        if (oldest != null) {
            oldest.due = true;
            work.signal();
        }
        health.checkFailure();
        try {
            lock.awaitChanged();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for a staging window", e);
        }
        return true;
    }

    /** Lock held: the filling window of {@code dev} at {@code base}, or null. */
    private Window filling(int dev, long base) {
        lock.assertHeld();
        for (Window w : windows) {
            if (w.state == FILLING && w.dev == dev && w.first == base) {
                return w;
            }
        }
        return null;
    }

    private Window free() {
        lock.assertHeld();
        for (Window w : windows) {
            if (w.state == FREE) {
                return w;
            }
        }
        throw new IllegalStateException("no free staging window");
    }

    /** Lock held: a window holding a line of [from, to) of {@code dev}, or null. */
    private Window holding(int dev, long from, long to) {
        lock.assertHeld();
        return holdingOther(dev, from, to, null);
    }

    private Window holdingOther(int dev, long from, long to, Window except) {
        lock.assertHeld();
        for (Window w : windows) {
            if (w != except && w.holdsAny(dev, from, to)) {
                return w;
            }
        }
        return null;
    }

    // ------------------------------------------------------------------ the stager thread

    private final class Stager extends Daemon {
        private volatile boolean alive = true;

        Stager(int cacheId) {
            super("stager", cacheId, StreamStaging.this.health);
        }

        boolean isAlive() {
            return alive;
        }

        @Override
        protected void work() throws Exception {
            lock.lock();
            try {
                while (!health.stopped()) {
                    long now = System.nanoTime();
                    Window w = ready(now);
                    if (w == null) {
                        // Timed, so that a stop or a failure is seen whatever signalled it.
                        work.awaitNanos(Math.min(nextDeadline(now) - now, TimeUnit.SECONDS.toNanos(1)));
                        continue;
                    }
                    writeOut(w);
                }
                if (active > 0 && !health.failed()) {
                    log.warn("stopping with {} staging window(s) not written out", active);
                }
            } finally {
                alive = false;
                lock.signalChanged();
                lock.unlock();
            }
        }
    }

    /**
     * Lock held: the window to write out now (due; quiet, unless its stream went on into the
     * next window, which takes it along when it goes; failed and due for a retry), oldest
     * first; or null.
     */
    private Window ready(long now) {
        lock.assertHeld();
        Window best = null;
        for (Window w : windows) {
            boolean go = (w.state == FILLING && (w.due || (now - w.touched >= quietNanos && !continued(w))))
                    || (w.state == FAILED && (w.due || now - w.retryAt >= 0));
            if (go && (best == null || w.touched < best.touched)) {
                best = w;
            }
        }
        return best;
    }

    /** Lock held: whether {@code w}'s last line and the first of the filling window after it are staged. */
    private boolean continued(Window w) {
        lock.assertHeld();
        if (!w.holds(w.first + WINDOW_LINES - 1)) {
            return false;
        }
        Window next = filling(w.dev, w.first + WINDOW_LINES);
        return next != null && next.holds(next.first);
    }

    /** Lock held: when the next window falls quiet or is due for a retry (far off when none). */
    private long nextDeadline(long now) {
        lock.assertHeld();
        long next = now + TimeUnit.SECONDS.toNanos(1);
        for (Window w : windows) {
            if (w.state == FILLING && w.touched + quietNanos - next < 0) {
                next = w.touched + quietNanos;
            } else if (w.state == FAILED && w.retryAt - next < 0) {
                next = w.retryAt;
            }
        }
        return next;
    }

    /**
     * Lock held (released for the I/O): writes {@code w} out, together with the filling window
     * just before it when that one's last line and {@code w}'s first are staged, or else with
     * the one just after it when that one is due too and they meet the same way (a stream's
     * first window, staged from where it passed the cutoff, would otherwise go out alone).
     */
    private void writeOut(Window w) {
        lock.assertHeld();
        Window prev = null, next = null;
        if (w.state == FILLING && w.holds(w.first)) {
            prev = filling(w.dev, w.first - WINDOW_LINES);
            if (prev != null && !prev.holds(w.first - 1)) {
                prev = null;
            }
        }
        if (prev == null && w.state == FILLING && w.holds(w.first + WINDOW_LINES - 1)) {
            next = filling(w.dev, w.first + WINDOW_LINES);
            if (next != null && (!next.holds(next.first) || !(next.due || System.nanoTime() - next.touched >= quietNanos))) {
                next = null;
            }
        }
        Window[] chain = prev != null ? new Window[] {prev, w} : next != null ? new Window[] {w, next} : new Window[] {w};
        for (Window c : chain) {
            c.state = WRITING;
            c.due = false;
        }
        int dev = w.dev;
        IOException error = null;
        lock.unlock();
        try {
            boolean durable = writeRuns(dev, chain);
            for (Window c : chain) {
                for (int i = nextHeld(c, 0); i < WINDOW_LINES; ) {
                    int e = nextFree(c, i);
                    writePath.settleBypass(dev, (c.first + i) << 3, (e - i) << 3, c.data, i << Layout.LINE_SHIFT, c.batchesBefore,
                            durable);
                    i = nextHeld(c, e);
                }
            }
        } catch (IOException e) {
            error = e;
        } finally {
            lock.lock();
        }
        long now = System.nanoTime();
        for (Window c : chain) {
            if (error == null) {
                release(c);
            } else {
                c.state = FAILED;
                c.attempts++;
                c.error = error;
                c.backoff = Math.min(RETRY_MAX_NANOS, Math.max(RETRY_MIN_NANOS, c.backoff * 2));
                c.retryAt = now + c.backoff;
            }
        }
        if (error != null) {
            int n = 0;
            for (Window c : chain) {
                n += c.lines;
            }
            log.warn("writing {} staged line(s) of volume {} to its backing store failed (retried in {} ms): {}",
                    n, dev, TimeUnit.NANOSECONDS.toMillis(w.backoff), error.toString());
        }
        lock.signalChanged();
    }

    /**
     * Without the lock: every run of staged lines across {@code chain} (adjacent windows, in
     * order) as one request; returns whether every request made itself durable (else the store
     * is marked changed, for the next flush to sync).
     */
    private boolean writeRuns(int dev, Window[] chain) throws IOException {
        ByteBuffer[] parts = new ByteBuffer[chain.length];
        boolean durable = true;
        int k = 0;
        long runStart = -1;
        for (int c = 0; c < chain.length; c++) {
            Window w = chain[c];
            for (int i = nextHeld(w, 0); i < WINDOW_LINES; ) {
                int e = nextFree(w, i);
                if (k > 0 && (i != 0 || chain[c - 1].first + WINDOW_LINES != w.first || !chain[c - 1].holds(w.first - 1))) {
                    durable &= writeRun(dev, runStart, parts, k);
                    k = 0;
                }
                if (k == 0) {
                    runStart = w.first + i;
                }
                parts[k++] = w.data.duplicate().limit(e << Layout.LINE_SHIFT).position(i << Layout.LINE_SHIFT);
                if (e < WINDOW_LINES) {
                    durable &= writeRun(dev, runStart, parts, k);
                    k = 0;
                }
                i = nextHeld(w, e);
            }
        }
        if (k > 0) {
            durable &= writeRun(dev, runStart, parts, k);
        }
        return durable;
    }

    private boolean writeRun(int dev, long line, ByteBuffer[] parts, int k) throws IOException {
        boolean durable = backings.writeDurably(dev, parts, k, line << 3);
        counters.countRequest();
        return durable;
    }

    /** Lock held: ends the changes line {@code i} of {@code w} announced ({@link Window#changes}). */
    private void endChanges(Window w, int i) {
        lock.assertHeld();
        for (int c = w.changes[i]; c > 0; c--) {
            order.endChange(w.dev, w.first + i, 1);
        }
        w.changes[i] = 0;
    }

    /** Lock held: {@code w} is on the backing store; its lines leave it and their change ends. */
    private void release(Window w) {
        lock.assertHeld();
        for (int i = 0; i < WINDOW_LINES; i++) {
            endChanges(w, i);
        }
        java.util.Arrays.fill(w.held, 0);
        w.lines = 0;
        w.state = FREE;
        w.due = false;
        w.attempts = 0;
        w.error = null;
        w.backoff = 0;
        w.generation++;
        active--;
    }

    private static int nextHeld(Window w, int from) {
        for (int i = from; i < WINDOW_LINES; i++) {
            if ((w.held[i >>> 6] & (1L << i)) != 0) {
                return i;
            }
        }
        return WINDOW_LINES;
    }

    private static int nextFree(Window w, int from) {
        for (int i = from; i < WINDOW_LINES; i++) {
            if ((w.held[i >>> 6] & (1L << i)) == 0) {
                return i;
            }
        }
        return WINDOW_LINES;
    }
}
