package io.writeboost.fuse;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.front.WriteboostFs;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.FuseServer;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.QuietLogs;
import io.writeboost.volume.Volume;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A callback whose code throws, through a real mount: the cache engine of a volume reads a
 * backing store that throws an unchecked exception (or an Error) instead of an IOException,
 * so the throwable comes up through the engine, the volume and WriteboostFs to the binding.
 */
@ExtendWith(QuietLogs.class)
class CallbackFailureTest {
    static final int VOLUME_BYTES = 1 << 20;

    /** A backing store whose reads throw what {@link #failure} makes, while it is set. */
    static final class ThrowingBacking extends DelegatingDevice {
        volatile java.util.function.Supplier<Throwable> failure;

        ThrowingBacking(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void read(ByteBuffer dst, long offset) throws IOException {
            java.util.function.Supplier<Throwable> f = failure;
            if (f != null) {
                Throwable t = f.get();
                if (t instanceof Error e) {
                    throw e;
                }
                throw (RuntimeException) t;
            }
            super.read(dst, offset);
        }
    }

    /** A cache engine with one volume, "vol", on in-memory devices, mounted by JnrFuseMount on a thread of its own. */
    static final class Mounted implements AutoCloseable {
        final Path mnt;
        final ThrowingBacking backing;
        final CacheEngine engine;
        final Thread loop;
        final AtomicReference<Throwable> loopError = new AtomicReference<>();
        final CountDownLatch ready = new CountDownLatch(1);

        Mounted(Path mnt) throws Exception {
            this.mnt = mnt;
            Object power = new Object();
            PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(8), power);
            backing = new ThrowingBacking(new PowerLossDevice("backing", VOLUME_BYTES, power));
            CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, VOLUME_BYTES, "vol", "backing")));
            engine = CacheEngine.open(cache, Map.of(1, backing), new EngineConfig());
            Volume vol = new Volume(engine, 1, "vol", "backing", VOLUME_BYTES);
            JnrFuseMount fuse = new JnrFuseMount(new WriteboostFs(engine, List.of(vol)), ready::countDown);
            loop = new Thread(() -> {
                try {
                    fuse.serve(mnt, List.of("direct_io", "default_permissions"), true, true);
                } catch (Throwable t) {
                    loopError.set(t);
                }
            }, "test-serve");
            loop.start();
            if (!ready.await(30, TimeUnit.SECONDS)) {
                close();
                fail("not mounted within 30 s");
            }
        }

        @Override
        public void close() throws Exception {
            FuseServer.unmount(mnt);
            loop.join(30_000);
            engine.close();
        }
    }

    /** Log events of CallbackFailures, counted while the test runs. */
    static final class Counter extends AbstractAppender {
        final List<LogEvent> events = new ArrayList<>();

        Counter() {
            super("callback-failures", null, null, true, Property.EMPTY_ARRAY);
        }

        @Override
        public synchronized void append(LogEvent event) {
            if (event.getLoggerName().equals(CallbackFailures.class.getName())) {
                events.add(event.toImmutable());
            }
        }

        synchronized long withStackTrace() {
            return events.stream().filter(e -> e.getThrown() != null).count();
        }

        synchronized int size() {
            return events.size();
        }
    }

    private static Counter countLogs() {
        Counter c = new Counter();
        c.start();
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        ctx.getConfiguration().getRootLogger().addAppender(c, null, null);
        ctx.updateLoggers();
        return c;
    }

    private static void stopCounting(Counter c) {
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        ctx.getConfiguration().getRootLogger().removeAppender(c.getName());
        ctx.updateLoggers();
        c.stop();
    }

    /**
     * More throwing reads in a row than the loop can ever have workers: each is answered EIO,
     * the mount serves on (reads, writes, fsync, a control file), and the log holds the stack
     * trace once and a few one-line repeats, not one entry per request.
     */
    @Test
    void aCallbackThatThrowsIsAnsweredEioAndTheWorkersServeOn(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Counter logs = countLogs();
        try (Mounted m = new Mounted(mnt)) {
            m.backing.failure = () -> new IllegalStateException("injected: the backing store's read threw");
            int failures = 2 * FuseLoop.MAX_WORKERS + 1;
            try (FileChannel f = FileChannel.open(mnt.resolve("vol"), StandardOpenOption.READ)) {
                for (int i = 0; i < failures; i++) {
                    ByteBuffer b = ByteBuffer.allocate(4096);
                    long at = (long) (i % (VOLUME_BYTES / 4096)) * 4096;
                    try {
                        int n = f.read(b, at);
                        fail("read " + i + " at " + at + " returned " + n + " instead of failing with EIO");
                    } catch (IOException expected) {
                        assertEquals("Input/output error", expected.getMessage(), "read " + i);
                    }
                }
            }
            assertTrue(m.loop.isAlive(), "the loop still runs");
            m.backing.failure = null;
            byte[] data = new byte[8192];
            java.util.Arrays.fill(data, (byte) 0x5a);
            try (FileChannel f = FileChannel.open(mnt.resolve("vol"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ByteBuffer clean = ByteBuffer.allocate(4096);
                assertEquals(4096, f.read(clean, 65536), "a read of the backing store once it stops throwing");
                assertEquals(8192, f.write(ByteBuffer.wrap(data), 0));
                f.force(false);
                ByteBuffer back = ByteBuffer.allocate(8192);
                assertEquals(8192, f.read(back, 0));
                assertEquals(ByteBuffer.wrap(data), back.flip());
            }
            assertTrue(Files.readString(mnt.resolve("caches/1/status")).startsWith("state: ok\n"));
            assertEquals(1, logs.withStackTrace(), "the stack trace is logged once");
            assertTrue(logs.size() <= 2 + Long.numberOfTrailingZeros(Long.highestOneBit(failures)),
                    "a repeat is logged at its 2nd, 4th, 8th... time only: " + logs.size() + " lines for " + failures + " failures");
            assertNull(m.loopError.get());
        } finally {
            stopCounting(logs);
        }
        assertFalse(Files.readString(Path.of("/proc/mounts")).contains(" " + mnt + " "), "unmounted");
    }

    /**
     * Run in a JVM of its own by {@link #anOutOfMemoryErrorInACallbackEndsTheProcess}: mounts at
     * args[0] a volume whose backing store's reads throw OutOfMemoryError, writes args[1] once
     * mounted, and serves; exits 0 once unmounted.
     */
    public static void main(String[] args) throws Exception {
        try (Mounted m = new Mounted(Path.of(args[0]))) {
            m.backing.failure = () -> new OutOfMemoryError("injected: the backing store's read ran out of memory");
            Files.writeString(Path.of(args[1]), "ready\n");
            m.loop.join();
        }
        System.exit(0);
    }

    /**
     * An OutOfMemoryError in a callback: the process cannot be trusted after it, and ends at
     * once with exit status 1 (for systemd's Restart=on-failure), saying why.
     */
    @Test
    void anOutOfMemoryErrorInACallbackEndsTheProcess(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path ready = dir.resolve("ready");
        Path stderr = dir.resolve("stderr");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "-cp", System.getProperty("java.class.path"), CallbackFailureTest.class.getName(), mnt.toString(), ready.toString()));
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(stderr.toFile()).start();
        try {
            for (int i = 0; i < 600 && !Files.exists(ready) && p.isAlive(); i++) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(ready), "mounted: " + Files.readString(stderr));
            try (FileChannel f = FileChannel.open(mnt.resolve("vol"), StandardOpenOption.READ)) {
                f.read(ByteBuffer.allocate(4096), 0);
                fail("the read returned");
            } catch (IOException expected) {
                // The server is gone before it could answer (ENOTCONN), or answered EIO on its way out.
            }
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the process ended");
            String err = Files.readString(stderr, StandardCharsets.UTF_8);
            assertEquals(CallbackFailures.FATAL_EXIT_STATUS, p.exitValue(), err);
            assertTrue(err.contains("java.lang.OutOfMemoryError: injected") && err.contains("ends now with exit status 1"), err);
        } finally {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
            FuseServer.unmount(mnt);
        }
    }
}
