package io.writeboost.fuse;

import com.sun.nio.file.ExtendedOpenOption;
import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.Loop;
import io.writeboost.testutil.QuietLogs;
import jnr.ffi.Pointer;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The loop on Java threads: callbacks run on the loop's own (attached) threads, the same
 * thread serves many requests, a request that blocks does not stall the others, and the
 * loop returns once the file system is unmounted.
 */
class FuseLoopTest {
    /** Two files: reading "slow" waits for {@link #release}; "fast" answers at once. */
    static final class TwoFiles extends FuseStubFS {
        final CountDownLatch slowEntered = new CountDownLatch(1);
        final AtomicInteger slowWaiting = new AtomicInteger();
        final CountDownLatch release = new CountDownLatch(1);
        final Set<Thread> callbackThreads = ConcurrentHashMap.newKeySet();
        volatile int reads;

        @Override
        public int getattr(String path, FileStat stat) {
            callbackThreads.add(Thread.currentThread());
            if (path.equals("/")) {
                stat.st_mode.set(FileStat.S_IFDIR | 0755);
                stat.st_nlink.set(2);
                return 0;
            }
            if (path.equals("/slow") || path.equals("/fast")) {
                stat.st_mode.set(FileStat.S_IFREG | 0644);
                stat.st_nlink.set(1);
                stat.st_size.set(4096);
                return 0;
            }
            return -ErrorCodes.ENOENT();
        }

        @Override
        public int open(String path, FuseFileInfo fi) {
            return 0;
        }

        @Override
        public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
            callbackThreads.add(Thread.currentThread());
            reads++;
            if (path.equals("/slow")) {
                slowEntered.countDown();
                slowWaiting.incrementAndGet();
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    slowWaiting.decrementAndGet();
                }
            }
            long n = Math.max(0, Math.min(size, 4096 - offset));
            for (int i = 0; i < n; i++) {
                buf.putByte(i, (byte) 'x');
            }
            return (int) n;
        }

        ru.serce.jnrfuse.struct.FuseOperations fuseOperations() {
            return fuseOperations;
        }
    }

    @Test
    void servesOnItsOwnThreadsGrowsWhenBusyAndEndsAtUnmount(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        TwoFiles fs = new TwoFiles();
        AtomicReference<Throwable> loopError = new AtomicReference<>();
        Thread loop = new Thread(() -> {
            try {
                FuseLoop.run(new String[] {"fuselooptest", "-f", mnt.toString(), "-o", "direct_io,default_permissions"},
                        fs.fuseOperations(), "t-fuse", FuseLoop.Grants.ALL);
            } catch (Throwable t) {
                loopError.set(t);
            }
        });
        loop.start();
        try {
            for (int i = 0; i < 100 && !Files.exists(mnt.resolve("fast")); i++) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(mnt.resolve("fast")), "mounted");
            AtomicReference<byte[]> slow = new AtomicReference<>();
            Thread slowReader = new Thread(() -> {
                try {
                    slow.set(Files.readAllBytes(mnt.resolve("slow")));
                } catch (Exception e) {
                    slow.set(new byte[0]);
                }
            });
            slowReader.start();
            assertTrue(fs.slowEntered.await(10, TimeUnit.SECONDS), "the slow read reached the file system");
            for (int i = 0; i < 50; i++) {
                assertEquals(4096, Files.readAllBytes(mnt.resolve("fast")).length, "served while another request blocks");
            }
            assertTrue(slowReader.isAlive(), "the fast reads did not wait for the slow one");
            fs.release.countDown();
            slowReader.join(10_000);
            assertEquals(4096, slow.get().length);
            assertTrue(fs.reads >= 51);
            for (Thread t : fs.callbackThreads) {
                assertTrue(t.getName().startsWith("t-fuse-"), "callback on a loop thread, not a natively attached one: " + t);
            }
            assertTrue(fs.callbackThreads.size() < 10, "few threads serve many requests: " + fs.callbackThreads.size());
        } finally {
            fs.release.countDown();
            FuseServer.unmount(mnt);
            loop.join(10_000);
        }
        assertFalse(loop.isAlive(), "the loop returns after the unmount");
        assertNull(loopError.get());
        assertFalse(Files.readString(Path.of("/proc/mounts")).contains(mnt.toString()));
    }

    /**
     * More data requests waiting at once than {@link FuseLoop#MAX_WORKERS} (as writers waiting
     * for room in a full ring over a stuck backing store): the loop still has a worker for the
     * next request, the kind an operator sends to get out of it.
     */
    @Test
    void aWorkerIsLeftWhenMoreDataRequestsWaitThanMaxWorkers(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        TwoFiles fs = new TwoFiles();
        Thread loop = new Thread(() -> FuseLoop.run(new String[] {"fuselooptest", "-f", mnt.toString(), "-o", "direct_io"},
                fs.fuseOperations(), "t-fuse", FuseLoop.Grants.ALL));
        loop.start();
        int waiting = FuseLoop.MAX_WORKERS + 8;
        Thread[] readers = new Thread[waiting];
        try {
            for (int i = 0; i < 100 && !Files.exists(mnt.resolve("fast")); i++) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(mnt.resolve("fast")), "mounted");
            for (int i = 0; i < waiting; i++) {
                readers[i] = new Thread(() -> {
                    try {
                        Files.readAllBytes(mnt.resolve("slow"));
                    } catch (Exception ignored) {
                        // the assertions below say what went wrong
                    }
                });
                readers[i].start();
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (fs.slowWaiting.get() < waiting && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(waiting, fs.slowWaiting.get(), "every slow read reached the file system and waits there");
            AtomicReference<byte[]> fast = new AtomicReference<>();
            Thread fastReader = new Thread(() -> {
                try {
                    fast.set(Files.readAllBytes(mnt.resolve("fast")));
                } catch (Exception e) {
                    fast.set(new byte[0]);
                }
            });
            fastReader.start();
            fastReader.join(10_000);
            assertEquals(4096, fast.get() == null ? -1 : fast.get().length, "served while more requests wait than MAX_WORKERS");
        } finally {
            fs.release.countDown();
            for (Thread r : readers) {
                if (r != null) {
                    r.join(10_000);
                }
            }
            FuseServer.unmount(mnt);
            loop.join(10_000);
        }
    }

    /**
     * "ok" reads as 4096 bytes of 'x'; a read of "throw" throws, with nothing in the file
     * system to catch it (as in a file system without JnrFuseMount's catch-all).
     */
    static final class Throwing extends FuseStubFS {
        final AtomicInteger thrown = new AtomicInteger();

        @Override
        public int getattr(String path, FileStat stat) {
            if (path.equals("/")) {
                stat.st_mode.set(FileStat.S_IFDIR | 0755);
                stat.st_nlink.set(2);
                return 0;
            }
            if (path.equals("/ok") || path.equals("/throw")) {
                stat.st_mode.set(FileStat.S_IFREG | 0644);
                stat.st_nlink.set(1);
                stat.st_size.set(4096);
                return 0;
            }
            return -ErrorCodes.ENOENT();
        }

        @Override
        public int open(String path, FuseFileInfo fi) {
            return 0;
        }

        @Override
        public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
            if (path.equals("/throw")) {
                thrown.incrementAndGet();
                throw new IllegalStateException("injected: a callback that throws");
            }
            long n = Math.max(0, Math.min(size, 4096 - offset));
            for (int i = 0; i < n; i++) {
                buf.putByte(i, (byte) 'x');
            }
            return (int) n;
        }

        ru.serce.jnrfuse.struct.FuseOperations fuseOperations() {
            return fuseOperations;
        }
    }

    /**
     * An exception that a callback lets through to libfuse costs no worker: after more of them
     * than the loop can have workers, the loop still runs and serves. (What libfuse answered
     * those requests with is the callback's business: JnrFuseMount answers EIO, see
     * CallbackFailureTest.)
     */
    @Test
    @ExtendWith(QuietLogs.class)
    void anExceptionThroughLibfuseCostsNoWorker(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Throwing fs = new Throwing();
        AtomicReference<Throwable> loopError = new AtomicReference<>();
        Thread loop = new Thread(() -> {
            try {
                FuseLoop.run(new String[] {"fuselooptest", "-f", mnt.toString(), "-o", "direct_io,default_permissions"},
                        fs.fuseOperations(), "t-fuse", FuseLoop.Grants.ALL);
            } catch (Throwable t) {
                loopError.set(t);
            }
        });
        loop.start();
        try {
            for (int i = 0; i < 100 && !Files.exists(mnt.resolve("ok")); i++) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(mnt.resolve("ok")), "mounted");
            int requests = 2 * FuseLoop.MAX_WORKERS + 1;
            for (int i = 0; i < requests; i++) {
                try (FileChannel f = FileChannel.open(mnt.resolve("throw"), StandardOpenOption.READ)) {
                    f.read(ByteBuffer.allocate(4096), 0);
                } catch (java.io.IOException answered) {
                    // whatever libfuse made of it
                }
            }
            assertEquals(requests, fs.thrown.get(), "every read reached the callback");
            assertTrue(loop.isAlive(), "the loop runs on");
            assertEquals(4096, Files.readAllBytes(mnt.resolve("ok")).length, "and serves");
        } finally {
            FuseServer.unmount(mnt);
            loop.join(10_000);
        }
        assertFalse(loop.isAlive(), "the loop returns after the unmount");
        assertNull(loopError.get());
    }

    /**
     * Two files of 4 MiB: "img" is opened with parallel direct writes granted, "ctl" without.
     * Reads and writes at or past 1 MiB wait up to {@link #WAIT_MS} for a second one to arrive,
     * so the most seen in flight at once tells whether the kernel let two through together.
     * (Anything below 1 MiB, such as udev probing a new loop device, is answered at once.)
     */
    static final class Overlap extends FuseStubFS {
        static final long SIZE = 4 << 20, WATCHED = 1 << 20, WAIT_MS = 700;
        final AtomicInteger inFlight = new AtomicInteger();
        final AtomicInteger most = new AtomicInteger();

        @Override
        public int getattr(String path, FileStat stat) {
            if (path.equals("/")) {
                stat.st_mode.set(FileStat.S_IFDIR | 0755);
                stat.st_nlink.set(2);
                return 0;
            }
            if (path.equals("/img") || path.equals("/ctl")) {
                stat.st_mode.set(FileStat.S_IFREG | 0600);
                stat.st_nlink.set(1);
                stat.st_size.set(SIZE);
                return 0;
            }
            return -ErrorCodes.ENOENT();
        }

        @Override
        public int open(String path, FuseFileInfo fi) {
            if (path.equals("/img")) {
                FuseLoop.grantParallelDirectWrites();
            }
            return 0;
        }

        @Override
        public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
            overlap(offset);
            return (int) Math.max(0, Math.min(size, SIZE - offset));
        }

        @Override
        public int write(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
            overlap(offset);
            return (int) size;
        }

        private void overlap(long offset) {
            if (offset < WATCHED) {
                return;
            }
            int now = inFlight.incrementAndGet();
            most.accumulateAndGet(now, Math::max);
            long deadline = System.nanoTime() + WAIT_MS * 1_000_000;
            while (inFlight.get() < 2 && System.nanoTime() < deadline) {
                LockSupport.parkNanos(200_000);
            }
            inFlight.decrementAndGet();
        }

        /** Runs {@code io} on two threads at once, at 1 MiB and 2 MiB; returns the most seen in flight. */
        int together(IoAt io) throws Exception {
            most.set(0);
            CyclicBarrier start = new CyclicBarrier(2);
            AtomicReference<Exception> failed = new AtomicReference<>();
            Thread[] threads = new Thread[2];
            for (int i = 0; i < 2; i++) {
                long at = (i + 1) * WATCHED;
                threads[i] = new Thread(() -> {
                    try {
                        start.await();
                        io.run(at);
                    } catch (Exception e) {
                        failed.set(e);
                    }
                });
                threads[i].start();
            }
            for (Thread t : threads) {
                t.join(30_000);
            }
            if (failed.get() != null) {
                throw failed.get();
            }
            return most.get();
        }

        ru.serce.jnrfuse.struct.FuseOperations fuseOperations() {
            return fuseOperations;
        }
    }

    interface IoAt {
        void run(long offset) throws Exception;
    }

    /** In flight at once: {writes to img, writes to ctl, direct reads of a loop device on img}. */
    private static int[] measure(Path dir, FuseLoop.Grants grants) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt-" + grants.asyncDio() + "-" + grants.parallelDirectWrites()));
        Overlap fs = new Overlap();
        AtomicReference<Throwable> loopError = new AtomicReference<>();
        Thread loop = new Thread(() -> {
            try {
                FuseLoop.run(new String[] {"fuselooptest", "-f", mnt.toString(), "-o", "direct_io,default_permissions"},
                        fs.fuseOperations(), "t-fuse", grants);
            } catch (Throwable t) {
                loopError.set(t);
            }
        });
        loop.start();
        int[] most = new int[3];
        try {
            for (int i = 0; i < 100 && !Files.exists(mnt.resolve("img")); i++) {
                Thread.sleep(50);
            }
            for (int k = 0; k < 2; k++) {
                try (FileChannel f = FileChannel.open(mnt.resolve(k == 0 ? "img" : "ctl"), StandardOpenOption.WRITE)) {
                    most[k] = fs.together(at -> f.write(ByteBuffer.allocate(4096), at));
                }
            }
            try (Loop dev = Loop.attach(mnt.resolve("img"), "--direct-io=on");
                 FileChannel f = FileChannel.open(dev.device, StandardOpenOption.READ, ExtendedOpenOption.DIRECT)) {
                most[2] = fs.together(at -> f.read(ByteBuffer.allocateDirect(8192).alignedSlice(4096).limit(4096), at));
            }
        } finally {
            FuseServer.unmount(mnt);
            loop.join(10_000);
        }
        assertNull(loopError.get());
        return most;
    }

    @Test
    void parallelDirectWritesAndAsyncDirectIoWhenGrantedOnly(@TempDir Path dir) throws Exception {
        int[] granted = measure(dir, FuseLoop.Grants.ALL);
        int[] none = measure(dir, FuseLoop.Grants.NONE);
        assertEquals(2, granted[0], "writes to a file opened with parallel direct writes reach the file system together");
        assertEquals(1, granted[1], "a file opened without the grant gets one write at a time");
        assertEquals(2, granted[2], "a loop device's direct reads are in flight together with FUSE_ASYNC_DIO");
        assertEquals(1, none[0], "without the grants, one write at a time");
        assertEquals(1, none[2], "without FUSE_ASYNC_DIO, the loop device's reads one at a time");
    }
}
