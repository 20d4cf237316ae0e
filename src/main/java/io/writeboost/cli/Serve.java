package io.writeboost.cli;

import io.writeboost.server.MountServer;
import io.writeboost.server.RequestException;
import org.apache.logging.log4j.LogManager;

/** Runs a validated mount request; kept apart from Main so no logger exists before logging is configured. */
final class Serve {
    private Serve() {}

    static int run(MountOptions opts) {
        MountServer server = new MountServer(opts.settings());
        try {
            server.preflight();
        } catch (RequestException e) {
            System.err.println("fuse-mount: " + e.getMessage());
            return 2;
        } catch (Exception e) {
            System.err.println("fuse-mount: " + e.getMessage());
            return 1;
        }
        try {
            return server.run();
        } catch (Exception e) {
            System.err.println("fuse-mount: " + e.getMessage());
            LogManager.getLogger(Serve.class).error("server failed", e);
            return 1;
        }
    }
}
