package io.writeboost.fuse;

import jnr.constants.platform.Errno;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What becomes of an exception or Error that a FUSE callback's code lets through. libfuse,
 * which called the callback, cannot take a Java exception: one left pending answers the
 * request with whatever the closure returned (a write "succeeds" with 0 bytes, and the caller
 * retries it for ever) and then ends the worker thread that called libfuse, and with the last
 * worker the mount. So every callback catches everything and hands it here:
 *
 * <ul>
 * <li>The request is answered EIO, as by a disk that failed it; the worker serves on. The
 * failure is logged with its stack trace the first time it is seen (a failure is its class
 * and the frame that threw it, both finite in number), then in one line at its 2nd, 4th,
 * 8th... time, so that a failure on every request cannot flood the log.
 * <li>An Error after which the process cannot be trusted ends it at once with exit status
 * {@value #FATAL_EXIT_STATUS}, as a crash would: an OutOfMemoryError (other threads, the
 * flusher's or writeback's, may have died of it already, and half-built state may be left
 * anywhere), an InternalError or UnknownError of the JVM. Halted, not exited: System.exit would
 * run the shutdown hook's clean stop with that same JVM and could exit 0, which systemd's
 * Restart=on-failure takes as a wanted stop. What an fsync acknowledged is in the log; the next
 * start clears the dead mount and replays it.
 * <li>A StackOverflowError is not such an Error: it concerns the one thread whose stack
 * overflowed, which is unwound by the time it gets here, and java.util.concurrent's locks
 * reserve stack for their own critical sections (JEP 270), so the engine's locks are left
 * consistent. It answers EIO like an exception.
 * </ul>
 */
final class CallbackFailures {
    private static final Logger log = LogManager.getLogger(CallbackFailures.class);
    static final int FATAL_EXIT_STATUS = 1;
    private static final int EIO = Errno.EIO.intValue();

    private final ConcurrentHashMap<String, AtomicLong> seen = new ConcurrentHashMap<>();

    /** Reports {@code t}, thrown by the {@code call} callback for {@code path}; returns the answer, -EIO. */
    int answerEio(String call, String path, Throwable t) {
        report("FUSE " + call + (path == null ? "" : " " + path), t, "answered EIO");
        return -EIO;
    }

    /**
     * Logs {@code t}, thrown while serving {@code what}, once in full and then sparingly (see
     * the class comment), with {@code outcome}; ends the process when it is fatal. Never throws.
     */
    void report(String what, Throwable t, String outcome) {
        if (fatal(t)) {
            halt(what, t);
        }
        try {
            StackTraceElement[] trace = t.getStackTrace();
            String key = t.getClass().getName() + (trace.length > 0 ? " at " + trace[0] : "");
            long n = seen.computeIfAbsent(key, k -> new AtomicLong()).incrementAndGet();
            if (n == 1) {
                log.error("{} failed with an unexpected {}; {}, the server serves on; the same failure is logged again at its "
                        + "2nd, 4th, 8th... time, without the stack trace", what, t, outcome, t);
            } else if (Long.bitCount(n) == 1) {
                log.error("{} failed with an unexpected {}; {} (the same failure {} times so far; its stack trace was logged the first time)",
                        what, t, outcome, n);
            }
        } catch (Throwable logging) {
            if (fatal(logging)) {
                halt(what, logging);
            }
            // Logging failed: the request is answered all the same.
        }
    }

    /** An Error the process cannot be trusted after (see the class comment), as {@code t} or one of its causes. */
    static boolean fatal(Throwable t) {
        for (int depth = 0; t != null && depth < 16; depth++, t = t.getCause()) {
            if (t instanceof VirtualMachineError && !(t instanceof StackOverflowError)) {
                return true;
            }
        }
        return false;
    }

    private static void halt(String what, Throwable t) {
        try {
            log.fatal("{} failed: {}; the process cannot be trusted after this and ends now with exit status {} "
                    + "(acknowledged data is in the cache's log; the next start replays it)", what, t, FATAL_EXIT_STATUS, t);
        } catch (Throwable logging) {
            try {
                System.err.println("writeboost: " + what + " failed: " + t + "; exiting with status " + FATAL_EXIT_STATUS);
            } catch (Throwable ignored) {
                // Nothing left to tell it with.
            }
        } finally {
            Runtime.getRuntime().halt(FATAL_EXIT_STATUS);
        }
    }
}
