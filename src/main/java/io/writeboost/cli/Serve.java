package io.writeboost.cli;

import io.writeboost.recovery.LostDataException;
import io.writeboost.server.MountServer;
import io.writeboost.server.RequestException;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;

/** Runs a validated mount request; kept apart from Main so no logger exists before logging is configured. */
final class Serve {
    private Serve() {}

    static int run(MountOptions opts) {
        MountServer server = new MountServer(opts.settings());
        try {
            server.preflight();
            return server.run();
        } catch (LostDataException e) {
            // The operator's decision: refuse like bad input, with what is lost and how to go on.
            System.err.print("fuse-mount: " + e.loss().report());
            System.err.println("Nothing was written to the cache or the backing stores. See README, \"When something went wrong\".");
            System.err.println("To start anyway, giving up these ranges: " + acceptCommand(opts));
            LogManager.getLogger(Serve.class).error("start refused: {}", e.getMessage());
            return 2;
        } catch (RequestException e) {
            System.err.println("fuse-mount: " + e.getMessage());
            return 2;
        } catch (IOException e) {
            // A device or the mount failed, not the code: the message says what; the trace
            // would only repeat it on the terminal (logs go to stderr in the foreground).
            System.err.println("fuse-mount: " + e.getMessage());
            Logger log = LogManager.getLogger(Serve.class);
            log.error("server failed: {}", e.getMessage());
            log.debug("server failed", e);
            return 1;
        } catch (RuntimeException e) {
            System.err.println("fuse-mount: " + e);
            LogManager.getLogger(Serve.class).error("server failed (a bug)", e);
            return 1;
        }
    }

    /** The command as given (by the launcher, which starts the server with arguments of its own), with --accept-data-loss added. */
    static String acceptCommand(MountOptions opts) {
        String launched = System.getenv("WRITEBOOST_ARGS");
        if (launched != null && !launched.isBlank()) {
            return "fuse-mount " + launched.strip() + " --accept-data-loss";
        }
        StringBuilder b = new StringBuilder("fuse-mount");
        for (String a : opts.commandLine) {
            b.append(' ').append(a.isEmpty() || a.matches(".*[\\s'\"$`\\\\].*") ? "'" + a.replace("'", "'\\''") + "'" : a);
        }
        return b.append(" --accept-data-loss").toString();
    }
}
