package io.writeboost.server;

/**
 * The product's version, from the jar manifest when packaged. It lives with the server, which
 * logs it at start, so that the CLI (which prints it) depends on the server and not the reverse.
 */
public final class Version {
    private Version() {}

    public static String get() {
        String v = Version.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }
}
