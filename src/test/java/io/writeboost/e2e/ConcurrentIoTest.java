package io.writeboost.e2e;

import com.sun.nio.file.ExtendedOpenOption;
import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.Loop;
import io.writeboost.testutil.SectorHistory;
import io.writeboost.testutil.SectorModel;
import jnr.ffi.LibraryLoader;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * One volume under real concurrency through the mount, with the transport's grants on
 * (parallel direct writes, asynchronous direct I/O): threads write, read, fdatasync and
 * discard at once, some over one shared half of the volume (overlapping), some each in a
 * region of their own; two of the latter go through a loop device (--direct-io=on), whose
 * requests reach the server together only with FUSE_ASYNC_DIO. Writeback runs meanwhile on a
 * cache small enough to wrap. Every sector a read returns must be one whole write that the
 * read may see ({@link SectorHistory}); the server is killed with operations in flight, and
 * after the restart nothing an fdatasync covered is missing; then a second round ends
 * quietly, the volume must hold the last write of every sector, and the same after a clean
 * stop and start.
 */
class ConcurrentIoTest {
    static final int VOLUME = 8 << 20, SECTORS = VOLUME / 512;
    static final int SHARED = SECTORS / 2, SHARED_THREADS = 4, OWN_THREADS = 4, LOOP_THREADS = 2;
    static final int REGION = (SECTORS - SHARED) / OWN_THREADS;
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;

    public interface LibC {
        int fallocate(int fd, int mode, long offset, long len);
    }

    static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    static final POSIX POSIX = POSIXFactory.getNativePOSIX();

    final SectorHistory history = new SectorHistory(SECTORS);
    final AtomicLong ids = new AtomicLong(1);

    @Test
    void readsWritesFlushesAndDiscardsInFlightTogether(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path disk = Fixture.sparse(dir.resolve("disk.img"), VOLUME);
        String[] args = {"--cache", dir.resolve("cache.img").toString(), "--backing", "data=" + disk, "-o", "allow_migrate=1"};
        long checked = 0;
        Round first;
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log"), Fixture.concat(args, "--format", "--cache-size", "6M"))) {
            assertTrue(Files.readString(s.log).contains("FUSE_ASYNC_DIO granted"), "the INIT reply granted asynchronous direct I/O");
            first = new Round(s);
            try {
                Thread.sleep(3000);
                first.killed = true;
                s.signal("KILL");
            } finally {
                first.join();   // detaches the loop device, which would outlive the killed server's mount
            }
        }
        checked += first.checkReads();
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), args)) {
            long[] after = readAll(s);
            for (int sector = 0; sector < SECTORS; sector++) {
                // As a read that began when the last acknowledged fdatasync began, and may see anything later.
                String why = history.check(sector, after[sector], first.durableFrom.get(), Long.MAX_VALUE);
                if (why != null) {
                    fail("after kill -9 and restart: " + why);
                }
            }
            history.settle(after);
            Round second = new Round(s);
            Thread.sleep(2000);
            second.join();
            checked += second.checkReads();
            long[] last = readAll(s);
            long now = System.nanoTime();
            for (int sector = 0; sector < SECTORS; sector++) {
                String why = history.check(sector, last[sector], now, Long.MAX_VALUE);
                if (why != null) {
                    fail("once every operation was acknowledged: " + why);
                }
            }
            assertEquals(0, s.stop(), "clean stop");
            try (FuseServer again = FuseServer.start(mnt, dir.resolve("log3"), args)) {
                assertArrayEquals(last, readAll(again), "the volume after a clean stop and start");
            }
            System.out.printf("ConcurrentIoTest: %d + %d operations by %d threads, %d sector reads checked, kill -9 with "
                    + "operations in flight, 0 lost%n", first.operations.get(), second.operations.get(),
                    SHARED_THREADS + OWN_THREADS, checked);
        }
    }

    private static long[] readAll(FuseServer s) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(VOLUME);
        try (FileChannel f = FileChannel.open(s.file("data"), StandardOpenOption.READ)) {
            while (all.hasRemaining()) {
                if (f.read(all, all.position()) < 0) {
                    throw new IOException("short volume");
                }
            }
        }
        long[] ids = new long[SECTORS];
        for (int sector = 0; sector < SECTORS; sector++) {
            ids[sector] = SectorModel.decode(all, sector * 512, 1, sector);
        }
        return ids;
    }

    interface Closer {
        void close() throws Exception;
    }

    /** What one read returned, checked once the round is over (writers record their acknowledgement after it). */
    record Read(int at, long[] ids, long start, long end, boolean viaLoop, String torn) {
    }

    /** The threads of one round; {@link #join} stops them (after a kill, their errors are expected). */
    final class Round {
        final FuseServer server;
        final List<Thread> threads = new ArrayList<>();
        final ConcurrentLinkedQueue<Read> reads = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
        final AtomicLong durableFrom = new AtomicLong(Long.MIN_VALUE);
        final AtomicLong operations = new AtomicLong();
        volatile boolean stop;
        volatile boolean killed;
        final Loop loop;
        final FileChannel file;
        final FileChannel device;
        final int fd;

        Round(FuseServer s) throws Exception {
            server = s;
            file = FileChannel.open(s.file("data"), StandardOpenOption.READ, StandardOpenOption.WRITE);
            fd = POSIX.open(s.file("data").toString(), 2 /* O_RDWR */, 0);
            assertTrue(fd >= 0, "open for fallocate");
            loop = Loop.attach(s.file("data"), "--direct-io=on");
            device = FileChannel.open(loop.device, StandardOpenOption.READ, StandardOpenOption.WRITE, ExtendedOpenOption.DIRECT);
            for (int t = 0; t < SHARED_THREADS + OWN_THREADS; t++) {
                int first = t < SHARED_THREADS ? 0 : SHARED + (t - SHARED_THREADS) * REGION;
                int span = t < SHARED_THREADS ? SHARED : REGION;
                boolean viaLoop = t >= SHARED_THREADS + OWN_THREADS - LOOP_THREADS;
                long seed = ids.get() * 31 + t;
                Thread th = new Thread(() -> work(new Random(seed), first, span, viaLoop), "io-" + t);
                threads.add(th);
                th.start();
            }
        }

        void join() throws Exception {
            stop = true;
            for (Thread t : threads) {
                t.join(60_000);
                assertTrue(!t.isAlive(), t.getName() + " stopped");
            }
            close(device::close);
            close(loop::close);
            close(file::close);
            POSIX.close(fd);
            if (!failures.isEmpty()) {
                AssertionError e = new AssertionError(failures.size() + " operation(s) failed before any kill; the first:",
                        failures.peek());
                throw e;
            }
        }

        /** After a kill, closing a file of the dead mount fails (ENOTCONN): expected. */
        private void close(Closer c) throws Exception {
            try {
                c.close();
            } catch (IOException e) {
                if (!killed) {
                    throw e;
                }
            }
        }

        long checkReads() {
            long n = 0;
            for (Read r : reads) {
                for (int i = 0; i < r.ids.length; i++) {
                    String why = history.check(r.at + i, r.ids[i], r.start, r.end);
                    if (why != null) {
                        fail("a read during the run (" + r.ids.length + " sectors at " + r.at + (r.viaLoop ? ", via the loop device" : "")
                                + "): " + why + (r.torn == null ? "" : "; torn sectors: " + r.torn));
                    }
                    n++;
                }
            }
            return n;
        }

        private void work(Random rnd, int first, int span, boolean viaLoop) {
            // Through the loop device every request must be in whole 4 KiB blocks, aligned.
            int unit = viaLoop ? 8 : 1;
            // Page-aligned buffers on the file too: the kernel cuts a direct_io request into
            // FUSE requests of at most 32 pages, so a buffer that starts inside a page (a heap
            // buffer's temporary copy) is cut inside a sector, and the halves of that sector
            // are separate requests, each atomic on its own (docs/FUSE.md, "Atomicity").
            ByteBuffer aligned = ByteBuffer.allocateDirect((256 << 9) + 4096).alignedSlice(4096);
            try {
                while (!stop) {
                    int n = unit * (1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 256 / unit : Math.max(1, 16 / unit)));
                    int at = first + unit * rnd.nextInt((span - n) / unit + 1);
                    int kind = rnd.nextInt(20);
                    operations.incrementAndGet();
                    if (kind < 9) {
                        long id = ids.getAndIncrement();
                        ByteBuffer b = aligned.clear().limit(n * 512).slice();
                        for (int i = 0; i < n; i++) {
                            SectorModel.stamp(b, i * 512, id, 1, at + i);
                        }
                        SectorHistory.Op[] op = history.begin(id, at, n);
                        FileChannel f = viaLoop ? device : file;
                        while (b.hasRemaining()) {
                            f.write(b, (long) at * 512 + b.position());
                        }
                        SectorHistory.acknowledged(op);
                    } else if (kind < 16) {
                        ByteBuffer b = aligned.clear().limit(n * 512).slice();
                        long start = System.nanoTime();
                        FileChannel f = viaLoop ? device : file;
                        while (b.hasRemaining()) {
                            if (f.read(b, (long) at * 512 + b.position()) < 0) {
                                throw new IOException("short read at sector " + at);
                            }
                        }
                        long end = System.nanoTime();
                        long[] got = new long[n];
                        StringBuilder torn = null;
                        for (int i = 0; i < n; i++) {
                            got[i] = SectorModel.decode(b, i * 512, 1, at + i);
                            if (got[i] < 0) {
                                torn = (torn == null ? new StringBuilder() : torn.append(" | "))
                                        .append(at + i).append(": ").append(SectorModel.describe(b, i * 512));
                            }
                        }
                        reads.add(new Read(at, got, start, end, viaLoop, torn == null ? null : torn.toString()));
                    } else if (kind < 18) {
                        long start = System.nanoTime();
                        (viaLoop ? device : file).force(false);
                        durableFrom.accumulateAndGet(start, Math::max);
                    } else if (!viaLoop) {
                        SectorHistory.Op[] op = history.begin(0, at, n);
                        if (LIBC.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (long) at * 512, (long) n * 512) != 0) {
                            throw new IOException("fallocate(PUNCH_HOLE) at sector " + at + ": errno " + POSIX.errno());
                        }
                        SectorHistory.acknowledged(op);
                    }
                }
            } catch (Throwable t) {
                if (!killed) {
                    failures.add(t);
                    stop = true;
                }
            }
        }
    }
}
