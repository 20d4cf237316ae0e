package io.writeboost.cli;

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
}
