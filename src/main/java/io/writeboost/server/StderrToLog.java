package io.writeboost.server;

import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Points the server's standard error at its log file once the mount is ready, when the
 * launcher asks for it (environment variable {@value #VARIABLE}, the log file's path). Until
 * then the launcher keeps stderr for itself, to show the user why a start failed; after that it
 * has returned, and what the JVM or the server prints on stderr (a stack trace, the JVM's
 * out-of-memory message) must land where the operator will look, not in a file nobody can open.
 */
final class StderrToLog {
    static final String VARIABLE = "WRITEBOOST_STDERR_LOG";
    private static final Logger log = LogManager.getLogger(StderrToLog.class);
    private static final int O_WRONLY = 01, O_CREAT = 0100, O_APPEND = 02000, STDERR = 2;

    private StderrToLog() {}

    static void redirectIfAsked() {
        String path = System.getenv(VARIABLE);
        if (path == null || path.isEmpty()) {
            return;
        }
        System.err.flush();
        POSIX posix = POSIXFactory.getNativePOSIX();
        int fd = posix.open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || posix.dup2(fd, STDERR) < 0) {
            log.warn("cannot send stderr to {} (errno {}): it stays where the launcher pointed it", path, posix.errno());
        }
        if (fd >= 0 && fd != STDERR) {
            posix.close(fd);
        }
    }
}
