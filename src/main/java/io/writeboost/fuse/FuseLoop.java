package io.writeboost.fuse;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.Struct;
import jnr.ffi.annotations.Delegate;
import jnr.ffi.byref.IntByReference;
import jnr.ffi.byref.PointerByReference;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;
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
 * must not stall the others), and stay until the unmount: an idle worker only sleeps in
 * read(2) on /dev/fuse. Workers serving data requests (read, write, fsync, flush, fallocate)
 * may wait as long as the backing store takes (a full ring waits for writeback), so they do
 * not count against {@link #MAX_WORKERS}: however many writers wait for room, a worker is
 * left to answer a {@code cat status} or the control-file write that gets them out of it.
 * {@link #MAX_THREADS} bounds the whole.
 *
 * <p>The loop also grants the kernel two features libfuse 2 predates ({@link Grants}) by
 * setting their bits in the INIT and OPEN replies on their way out.
 */
public final class FuseLoop {
    private static final Logger log = LogManager.getLogger(FuseLoop.class);
    static final int MAX_WORKERS = 128;
    static final int MAX_THREADS = 1024;
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

        int fuse_chan_fd(Pointer chan);

        /** {@code ops} points at a {@code struct fuse_chan_ops} (receive, send, destroy), which is copied. */
        Pointer fuse_chan_new(Pointer ops, int fd, long bufsize, Pointer data);

        void fuse_chan_destroy(Pointer chan);
    }

    /** {@code int (*receive)(struct fuse_chan **chp, char *buf, size_t size)} */
    public interface ChanReceive {
        @Delegate
        int call(Pointer chp, Pointer buf, @size_t long size);
    }

    /** {@code int (*send)(struct fuse_chan *ch, const struct iovec iov[], size_t count)} */
    public interface ChanSend {
        @Delegate
        int call(Pointer ch, Pointer iov, @size_t long count);
    }

    public interface LibC {
        @ssize_t
        long writev(int fd, Pointer iov, int iovcnt);
    }

    /**
     * What the loop adds to libfuse 2's replies. libfuse 2 speaks protocol 7.19 and knows
     * neither bit, but the kernel reads the INIT flags for any minor version from 7.6 on and
     * tests the open flags without a version check, so both take effect when set by hand.
     *
     * @param asyncDio FUSE_ASYNC_DIO in the INIT reply: the kernel sends an asynchronous
     *        direct I/O (a loop device's, with --direct-io=on) as requests that are in flight
     *        together, instead of one at a time
     * @param parallelDirectWrites FOPEN_PARALLEL_DIRECT_WRITES (with FOPEN_DIRECT_IO) in the
     *        reply to an open whose callback called {@link #grantParallelDirectWrites()}: the
     *        kernel takes the file's inode lock shared, not exclusive, for direct writes that do
     *        not extend the file, so writes to one file reach the file system together
     */
    public record Grants(boolean asyncDio, boolean parallelDirectWrites) {
        public static final Grants NONE = new Grants(false, false);
        public static final Grants ALL = new Grants(true, true);
    }

    static final int FUSE_OPEN = 14, FUSE_INIT = 26;
    static final int FUSE_READ = 15, FUSE_WRITE = 16, FUSE_FSYNC = 20, FUSE_FLUSH = 25, FUSE_FALLOCATE = 43;
    static final int FUSE_ASYNC_DIO = 1 << 15;
    static final int FOPEN_DIRECT_IO = 1, FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;
    /** struct fuse_in_header: len, opcode, unique, nodeid, uid, gid, pid, padding. */
    private static final int IN_OPCODE = 4, IN_UNIQUE = 8, IN_HEADER_SIZE = 40;
    /** struct fuse_out_header: len, error, unique. */
    private static final int OUT_ERROR = 4, OUT_UNIQUE = 8;
    /** struct fuse_init_out: flags after major, minor, max_readahead. */
    private static final int INIT_OUT_FLAGS = 12;
    /** struct fuse_open_out: fh, open_flags, padding. */
    private static final int OPEN_OUT_FLAGS = 8, OPEN_OUT_SIZE = 16;

    private static volatile LibFuseLoop lib;
    private static volatile LibC libc;

    /** The request a worker is processing, for the reply patcher on the same thread. */
    private static final class Request {
        int opcode;
        long unique;
        int kernelMinor;
        boolean parallelDirectWrites;
    }

    private static final ThreadLocal<Request> CURRENT = new ThreadLocal<>();

    /**
     * Called from an open callback on one of the loop's threads: the reply to this open
     * carries FOPEN_PARALLEL_DIRECT_WRITES and FOPEN_DIRECT_IO, if the loop runs with that
     * grant. Anywhere else it does nothing.
     */
    public static void grantParallelDirectWrites() {
        Request r = CURRENT.get();
        if (r != null) {
            r.parallelDirectWrites = true;
        }
    }

    private final Runtime runtime = Runtime.getSystemRuntime();
    private final LibFuseLoop fuse = library();
    private final Pointer handle;
    private final Pointer mountpointString;
    private final Pointer session;
    private final Pointer chan;
    private final long bufsize;
    private final String name;
    private final AtomicInteger idle = new AtomicInteger();
    private final AtomicInteger busyOnData = new AtomicInteger();
    private final List<Thread> workers = new ArrayList<>();
    private volatile int error;
    private final Grants grants;
    private final CallbackFailures failures = new CallbackFailures();
    /**
     * A channel of our own on the same /dev/fuse descriptor, whose send patches the reply:
     * INIT and OPEN requests are processed with it, every other request with libfuse's
     * channel (its send stays native). Null when nothing is granted.
     */
    private final Pointer patchChan;
    private final int fd;
    // Strong references: native code holds only the closures' addresses.
    private final ChanReceive patchReceive = this::patchReceive;
    private final ChanSend patchSend = this::patchSend;
    private final Pointer patchOps;

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

    private static LibC libc() {
        LibC l = libc;
        if (l == null) {
            l = LibraryLoader.create(LibC.class).failImmediately().load("c");
            libc = l;
        }
        return l;
    }

    private FuseLoop(String[] args, FuseOperations ops, String name, Grants grants) {
        this.name = name;
        this.grants = grants;
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
        fd = fuse.fuse_chan_fd(chan);
        log.info("kernel features beyond libfuse 2: async direct I/O {}, parallel direct writes {}",
                grants.asyncDio() ? "on" : "off", grants.parallelDirectWrites() ? "on" : "off");
        if (grants.asyncDio() || grants.parallelDirectWrites()) {
            var closures = runtime.getClosureManager();
            int ptr = runtime.addressSize();
            patchOps = Memory.allocateDirect(runtime, 3 * ptr, true);
            patchOps.putPointer(0, closures.getClosurePointer(ChanReceive.class, patchReceive));
            patchOps.putPointer(ptr, closures.getClosurePointer(ChanSend.class, patchSend));
            patchChan = fuse.fuse_chan_new(patchOps, fd, bufsize, null);
            if (patchChan == null) {
                fuse.fuse_teardown(handle, mountpointString);
                throw new FuseException("Unable to mount FS (fuse_chan_new failed)");
            }
        } else {
            patchOps = null;
            patchChan = null;
        }
    }

    /**
     * Mounts with libfuse's command line {@code args} (program name, "-f", mount point, "-o"
     * options) and serves until the file system is unmounted; then tears the mount down.
     */
    public static void run(String[] args, FuseOperations ops, String threadName, Grants grants) {
        new FuseLoop(args, ops, threadName, grants).serve();
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
            if (patchChan != null) {
                fuse.fuse_chan_destroy(patchChan);
            }
        }
        if (error != 0) {
            throw new FuseException("reading /dev/fuse failed: errno " + error);
        }
    }

    /** Called with the workers' lock held. */
    private void addWorker() {
        assert Thread.holdsLock(workers);
        if (!mayAddWorker(workers.size(), busyOnData.get())) {
            return;
        }
        idle.incrementAndGet();
        Thread t = new Thread(this::work, name + "-" + workers.size());
        t.setDaemon(true);
        workers.add(t);
        t.start();
    }

    /** Whether a worker may be added to {@code workers} of which {@code busyOnData} serve data requests. */
    static boolean mayAddWorker(int workers, int busyOnData) {
        return workers < MAX_THREADS && workers - busyOnData < MAX_WORKERS;
    }

    static boolean isDataRequest(int opcode) {
        return opcode == FUSE_READ || opcode == FUSE_WRITE || opcode == FUSE_FSYNC || opcode == FUSE_FLUSH
                || opcode == FUSE_FALLOCATE;
    }

    private void work() {
        Pointer buf = Memory.allocateDirect(runtime, (int) bufsize);
        Pointer chp = Memory.allocateDirect(runtime, runtime.addressSize());
        Request request = new Request();
        CURRENT.set(request);
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
            int opcode = buf.getInt(IN_OPCODE);
            boolean data = isDataRequest(opcode);
            if (data) {
                busyOnData.incrementAndGet();
            }
            if (idle.decrementAndGet() == 0) {
                synchronized (workers) {
                    addWorker();
                }
            }
            Pointer replyChan = chp.getPointer(0);
            if ((opcode == FUSE_INIT && grants.asyncDio()) || (opcode == FUSE_OPEN && grants.parallelDirectWrites())) {
                request.opcode = opcode;
                request.unique = buf.getLong(IN_UNIQUE);
                request.kernelMinor = opcode == FUSE_INIT ? buf.getInt(IN_HEADER_SIZE + 4) : 0;
                replyChan = patchChan;
            }
            try {
                fuse.fuse_session_process(session, buf, n, replyChan);
            } catch (Throwable t) {
                // A callback let a throwable through to libfuse (JnrFuseMount's let none through;
                // another file system's, or jnr-fuse's own wrappers, may): it surfaces here, after
                // libfuse answered with whatever the closure returned. The worker must survive it,
                // or each such request takes one more worker away, and the last one the mount.
                failures.report("FUSE request (opcode " + opcode + ")", t, "libfuse had answered it already");
            } finally {
                request.opcode = 0;
                request.parallelDirectWrites = false;
                if (data) {
                    busyOnData.decrementAndGet();
                }
                idle.incrementAndGet();
            }
        }
    }

    /** Not called by this loop (it receives on libfuse's channel); reads as that channel does. */
    private int patchReceive(Pointer chp, Pointer buf, long size) {
        chp.putPointer(0, chan);
        return fuse.fuse_chan_recv(chp, buf, size);
    }

    /**
     * Sends a reply as libfuse's channel does (one writev), after setting the granted bits in
     * the reply to the INIT or OPEN request this thread is processing.
     */
    private int patchSend(Pointer ch, Pointer iov, long count) {
        try {
            patch(iov, count);
        } catch (Throwable t) {
            // The reply goes out unpatched: a request left without one would hang its caller.
            failures.report("patching a FUSE reply", t, "sent without the granted bits");
        }
        long written = libc().writev(fd, iov, (int) count);
        if (written < 0) {
            int errno = runtime.getLastError();
            if (errno != ENOENT && fuse.fuse_session_exited(session) == 0) {
                // ENOENT: the kernel dropped an interrupted request; libfuse stays quiet about it too.
                log.warn("writing a reply to /dev/fuse failed: errno {}", errno);
            }
            return -errno;
        }
        return 0;
    }

    /** Sets the granted bits in the reply to the INIT or OPEN request this thread is processing. */
    private void patch(Pointer iov, long count) {
        Request r = CURRENT.get();
        int iovSize = 2 * runtime.addressSize();
        if (r != null && r.opcode != 0 && count >= 2) {
            Pointer header = iov.getPointer(0);
            Pointer body = iov.getPointer(iovSize);
            long bodyLen = iov.getLong(iovSize + runtime.addressSize());
            if (header.getLong(OUT_UNIQUE) == r.unique && header.getInt(OUT_ERROR) == 0) {
                if (r.opcode == FUSE_INIT && bodyLen >= INIT_OUT_FLAGS + 4) {
                    body.putInt(INIT_OUT_FLAGS, body.getInt(INIT_OUT_FLAGS) | FUSE_ASYNC_DIO);
                    log.info("FUSE INIT: kernel protocol 7.{}, libfuse answers 7.{}; FUSE_ASYNC_DIO granted",
                            r.kernelMinor, body.getInt(4));
                } else if (r.opcode == FUSE_OPEN && r.parallelDirectWrites && bodyLen == OPEN_OUT_SIZE) {
                    body.putInt(OPEN_OUT_FLAGS, body.getInt(OPEN_OUT_FLAGS) | FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES);
                }
            }
        }
    }
}
