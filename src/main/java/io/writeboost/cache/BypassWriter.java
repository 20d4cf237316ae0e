package io.writeboost.cache;

import io.writeboost.format.Layout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The backing-store writes of bypassed lines, gathered into large requests. FUSE hands the
 * server at most 128 KiB per request, and a slow disk or a network block device charges per
 * request: written one by one, a stream reaches such a disk at its request rate times 128 KiB
 * at best. So the
 * pieces of concurrent bypassed writes queue here while one writer (the leader, whoever finds
 * no write under way) writes everything queued, adjacent pieces of one volume as one
 * gathering write of up to 4 MiB, O_DIRECT where the backing store allows it. The kernel sends
 * the 128 KiB pieces of a large direct write at once, so while one write is under way the
 * rest of the request gathers behind it (group commit, as flushes do).
 *
 * <p>Pieces are copied into 4 KiB aligned buffers: the request's bytes sit behind the FUSE
 * headers, never aligned, and O_DIRECT needs alignment.
 *
 * <p>Thread-safe: the queue, the leader flag and the buffer pool are guarded by this class's
 * own lock, never held across I/O; it takes no other lock.
 */
final class BypassWriter {
    /** Size of one piece and its buffer: FUSE's largest request. */
    static final int PIECE_BYTES = 128 << 10;
    /** Longest gathered write. */
    static final int MAX_RUN_BYTES = 4 << 20;
    /** A leader stops gathering after this long without a new piece ... */
    static final long GATHER_QUIET_NANOS = 60_000;
    /** ... or after this long in all. */
    static final long GATHER_MAX_NANOS = 400_000;
    /** Buffers kept for reuse: enough for the requests FUSE may have in flight (max_background 64). */
    private static final int POOL_MAX = 64;

    private final BackingStores backings;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition written = lock.newCondition();
    private final ArrayList<Piece> queue = new ArrayList<>();
    private final ArrayDeque<ByteBuffer> pool = new ArrayDeque<>();
    private boolean leading;

    private final AtomicLong writes = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong cachedAtFlush = new AtomicLong();

    BypassWriter(BackingStores backings) {
        this.backings = backings;
    }

    private static final class Piece {
        final int dev;
        final long sector;
        final ByteBuffer data;
        boolean done;
        boolean durable;
        IOException error;

        Piece(int dev, long sector, ByteBuffer data) {
            this.dev = dev;
            this.sector = sector;
            this.data = data;
        }
    }

    /**
     * Writes sectors [sector, sector + n) of volume {@code dev} from {@code src} at
     * {@code srcPos} to its backing store; returns once the write completed, with whether it
     * is durable already. If it is not, the store is marked changed, for the next flush to
     * sync. Called without any engine lock.
     */
    boolean write(int dev, long sector, int n, ByteBuffer src, int srcPos) throws IOException {
        int total = n << Layout.SECTOR_SHIFT;
        Piece[] mine = new Piece[(total + PIECE_BYTES - 1) / PIECE_BYTES];
        for (int i = 0; i < mine.length; i++) {
            int off = i * PIECE_BYTES;
            int len = Math.min(PIECE_BYTES, total - off);
            ByteBuffer b = take();
            b.clear().limit(len);
            b.put(0, src, srcPos + off, len);
            mine[i] = new Piece(dev, sector + (off >> Layout.SECTOR_SHIFT), b);
        }
        IOException error = null;
        boolean durable = true;
        lock.lock();
        try {
            java.util.Collections.addAll(queue, mine);
            while (!allDone(mine)) {
                if (leading) {
                    written.awaitUninterruptibly();
                    continue;
                }
                leading = true;
                gather();
                ArrayList<Piece> batch = new ArrayList<>(queue);
                queue.clear();
                lock.unlock();
                try {
                    writeAll(batch);
                } finally {
                    lock.lock();
                    leading = false;
                    for (Piece p : batch) {
                        p.done = true;
                    }
                    written.signalAll();
                }
            }
            for (Piece p : mine) {
                error = error == null ? p.error : error;
                durable &= p.durable;
                give(p.data);
            }
        } finally {
            lock.unlock();
        }
        if (error != null) {
            throw error;
        }
        writes.incrementAndGet();
        bytes.addAndGet(total);
        return durable;
    }

    /**
     * Lock held, as the new leader: waits while pieces keep arriving (each quiet spell of
     * {@link #GATHER_QUIET_NANOS} ends it, {@link #GATHER_MAX_NANOS} at most). The kernel sends
     * the eight 128 KiB pieces of a 1 MiB direct write at once, but server threads pick them up
     * a few microseconds apart: written as soon as the first one came, a 1 MiB write would
     * leave as two or three requests.
     */
    private void gather() {
        assert lock.isHeldByCurrentThread();
        long deadline = System.nanoTime() + GATHER_MAX_NANOS;
        int seen = queue.size();
        while (queuedBytes() < MAX_RUN_BYTES) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            try {
                written.awaitNanos(Math.min(left, GATHER_QUIET_NANOS));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return; // write what is there
            }
            if (queue.size() == seen) {
                return;
            }
            seen = queue.size();
        }
    }

    private long queuedBytes() {
        long n = 0;
        for (Piece p : queue) {
            n += p.data.remaining();
        }
        return n;
    }

    private static boolean allDone(Piece[] pieces) {
        for (Piece p : pieces) {
            if (!p.done) {
                return false;
            }
        }
        return true;
    }

    /** Writes the pieces in backing order, adjacent ones of a volume as one request; a failed request fails its pieces only. */
    private void writeAll(ArrayList<Piece> batch) {
        batch.sort(Comparator.comparingInt((Piece p) -> p.dev).thenComparingLong(p -> p.sector));
        ByteBuffer[] run = new ByteBuffer[Math.min(batch.size(), MAX_RUN_BYTES / Layout.LINE_SIZE)];
        for (int i = 0; i < batch.size(); ) {
            Piece first = batch.get(i);
            int j = i + 1;
            long next = first.sector + (first.data.remaining() >> Layout.SECTOR_SHIFT);
            int runBytes = first.data.remaining();
            while (j < batch.size() && batch.get(j).dev == first.dev && batch.get(j).sector == next
                    && runBytes + batch.get(j).data.remaining() <= MAX_RUN_BYTES) {
                runBytes += batch.get(j).data.remaining();
                next += batch.get(j).data.remaining() >> Layout.SECTOR_SHIFT;
                j++;
            }
            try {
                for (int k = i; k < j; k++) {
                    run[k - i] = batch.get(k).data.duplicate();
                }
                boolean durable = backings.writeDurably(first.dev, run, j - i, first.sector);
                for (int k = i; k < j; k++) {
                    batch.get(k).durable = durable;
                }
                requests.incrementAndGet();
            } catch (IOException e) {
                for (int k = i; k < j; k++) {
                    batch.get(k).error = e;
                }
            }
            i = j;
        }
    }

    /** A 4 KiB aligned piece buffer, from the pool or new; takes the lock itself. */
    private ByteBuffer take() {
        lock.lock();
        try {
            ByteBuffer b = pool.poll();
            if (b != null) {
                return b;
            }
        } finally {
            lock.unlock();
        }
        return ByteBuffer.allocateDirect(PIECE_BYTES + Layout.LINE_SIZE).alignedSlice(Layout.LINE_SIZE);
    }

    /** Lock held: back to the pool. */
    private void give(ByteBuffer b) {
        assert lock.isHeldByCurrentThread();
        if (pool.size() < POOL_MAX) {
            pool.push(b);
        }
    }

    /** A bypassed write staged by {@link StreamStaging}: counted with the others. */
    void countStaged(long stagedBytes) {
        writes.incrementAndGet();
        bytes.addAndGet(stagedBytes);
    }

    /** Staged lines a flush logged in the cache instead ({@link StreamStaging#writeOutAll}): they did not go around it. */
    void countCachedAtFlush(int lines) {
        bytes.addAndGet(-((long) lines << Layout.LINE_SHIFT));
        cachedAtFlush.addAndGet(lines);
    }

    long stagedLinesCachedAtFlush() {
        return cachedAtFlush.get();
    }

    /** A backing request {@link StreamStaging} sent for staged lines. */
    void countRequest() {
        requests.incrementAndGet();
    }

    /** Bypassed writes since start (engine write calls whose whole lines went to the backing store). */
    long writes() {
        return writes.get();
    }

    /** Bytes those writes carried to the backing stores. */
    long bytes() {
        return bytes.get();
    }

    /** Backing-store write requests they took after gathering. */
    long requests() {
        return requests.get();
    }
}
