package io.writeboost.fuse;

import jnr.ffi.Pointer;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

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
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
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
            new ProcessBuilder("fusermount", "-u", mnt.toString()).start().waitFor();
            loop.join(10_000);
        }
        assertFalse(loop.isAlive(), "the loop returns after the unmount");
        assertNull(loopError.get());
        assertFalse(Files.readString(Path.of("/proc/mounts")).contains(mnt.toString()));
    }
}
