package io.writeboost.fuse;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.Struct;
import jnr.ffi.byref.IntByReference;
import jnr.ffi.byref.PointerByReference;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import ru.serce.jnrfuse.FuseException;
import ru.serce.jnrfuse.struct.FuseOperations;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * libfuse 2's request loop, run on threads the JVM created.
 *
 * <p>jnr-fuse hands the loop to libfuse ({@code fuse_main_real}), whose worker threads are
 * native: every callback into Java then attaches the thread to the JVM and detaches it again
 * (jffi keeps a thread attached only after 1,000 callbacks, and libfuse retires idle workers
 * long before that). Measured with a do-nothing file system under 4 KiB random reads: 70 % of
 * callbacks created a new java.lang.Thread, with an mmap, an mprotect and three sigprocmask
 * calls per request. Here the same libfuse calls ({@code fuse_setup}, {@code fuse_chan_recv},
 * {@code fuse_session_process}, {@code fuse_teardown}) run on Java threads, already attached,
 * so a callback is a plain JNI upcall.
 *
 * <p>Workers are added when every worker is busy (a slow request such as a drain or an fsync
 * must not stall the others) up to {@link #MAX_WORKERS}, and stay until the unmount: an idle
 * worker only sleeps in read(2) on /dev/fuse.
 */
public final class FuseLoop {
    private static final Logger log = LogManager.getLogger(FuseLoop.class);
    static final int MAX_WORKERS = 128;
    private static final int EINTR = 4, EAGAIN = 11, ENOENT = 2;

    /** The part of libfuse 2's API the loop needs (all exported by libfuse.so.2). */
    public interface LibFuseLoop {
        Pointer fuse_setup(int argc, String[] argv, FuseOperations op, long opSize, PointerByReference mountpoint,
                           IntByReference multithreaded, Pointer userData);

        Pointer fuse_get_session(Pointer fuse);

        Pointer fuse_session_next_chan(Pointer session, Pointer chan);

        long fuse_chan_bufsize(Pointer chan);

        /** {@code chp} points at a {@code struct fuse_chan *}; returns bytes read, 0 at unmount, or -errno. */
        int fuse_chan_recv(Pointer chp, Pointer buf, long size);

        void fuse_session_process(Pointer session, Pointer buf, long len, Pointer chan);

        int fuse_session_exited(Pointer session);

        void fuse_session_exit(Pointer session);

        void fuse_teardown(Pointer fuse, Pointer mountpoint);
    }

    private static volatile LibFuseLoop lib;

    private final Runtime runtime = Runtime.getSystemRuntime();
    private final LibFuseLoop fuse = library();
    private final Pointer handle;
    private final Pointer mountpointString;
    private final Pointer session;
    private final Pointer chan;
    private final long bufsize;
    private final String name;
    private final AtomicInteger idle = new AtomicInteger();
    private final List<Thread> workers = new ArrayList<>();
    private volatile int error;

    private static LibFuseLoop library() {
        LibFuseLoop l = lib;
        if (l == null) {
            try {
                l = LibraryLoader.create(LibFuseLoop.class).failImmediately().load("fuse");
            } catch (Throwable e) {
                l = LibraryLoader.create(LibFuseLoop.class).failImmediately().load("libfuse.so.2");
            }
            lib = l;
        }
        return l;
    }

    private FuseLoop(String[] args, FuseOperations ops, String name) {
        this.name = name;
        PointerByReference mp = new PointerByReference();
        IntByReference mt = new IntByReference();
        handle = fuse.fuse_setup(args.length, args, ops, Struct.size(ops), mp, mt, null);
        if (handle == null) {
            throw new FuseException("Unable to mount FS (fuse_setup failed; libfuse printed why on stderr)");
        }
        mountpointString = mp.getValue();
        session = fuse.fuse_get_session(handle);
        chan = fuse.fuse_session_next_chan(session, null);
        bufsize = fuse.fuse_chan_bufsize(chan);
    }

    /**
     * Mounts with libfuse's command line {@code args} (program name, "-f", mount point, "-o"
     * options) and serves until the file system is unmounted; then tears the mount down.
     */
    public static void run(String[] args, FuseOperations ops, String threadName) {
        new FuseLoop(args, ops, threadName).serve();
    }

    private void serve() {
        try {
            synchronized (workers) {
                addWorker();
            }
            while (true) {
                Thread t;
                synchronized (workers) {
                    if (workers.isEmpty()) {
                        break;
                    }
                    t = workers.get(workers.size() - 1);
                }
                try {
                    t.join();
                } catch (InterruptedException e) {
                    fuse.fuse_session_exit(session);
                    Thread.currentThread().interrupt();
                }
                synchronized (workers) {
                    workers.remove(t);
                }
            }
        } finally {
            fuse.fuse_teardown(handle, mountpointString);
        }
        if (error != 0) {
            throw new FuseException("reading /dev/fuse failed: errno " + error);
        }
    }

    /** Called with the workers' lock held. */
    private void addWorker() {
        if (workers.size() >= MAX_WORKERS) {
            return;
        }
        idle.incrementAndGet();
        Thread t = new Thread(this::work, name + "-" + workers.size());
        t.setDaemon(true);
        workers.add(t);
        t.start();
    }

    private void work() {
        Pointer buf = Memory.allocateDirect(runtime, (int) bufsize);
        Pointer chp = Memory.allocateDirect(runtime, runtime.addressSize());
        while (fuse.fuse_session_exited(session) == 0) {
            chp.putPointer(0, chan);
            int n = fuse.fuse_chan_recv(chp, buf, bufsize);
            if (n == -EINTR || n == -EAGAIN || n == -ENOENT) {
                continue; // interrupted, or a request the kernel withdrew
            }
            if (n <= 0) {
                if (n < 0) {
                    error = -n;
                    log.error("reading /dev/fuse failed: errno {}", -n);
                }
                fuse.fuse_session_exit(session);
                break;
            }
            if (idle.decrementAndGet() == 0) {
                synchronized (workers) {
                    addWorker();
                }
            }
            try {
                fuse.fuse_session_process(session, buf, n, chp.getPointer(0));
            } finally {
                idle.incrementAndGet();
            }
        }
    }
}
