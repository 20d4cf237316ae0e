package io.writeboost.tools;

import java.io.PrintStream;

/**
 * A progress bar on stderr for work that takes more than a second, drawn only when a person
 * is watching (stdin and stdout are a terminal); silent otherwise, so scripts and logs stay clean.
 */
public final class Progress implements AutoCloseable {
    private static final long DELAY_NANOS = 1_000_000_000L;
    private final String what;
    private final long total;
    private final boolean enabled;
    private final PrintStream out;
    private final long start = System.nanoTime();
    private long lastDraw;
    private boolean drawn;

    public Progress(String what, long total) {
        this(what, total, System.console() != null, System.err);
    }

    Progress(String what, long total, boolean enabled, PrintStream out) {
        this.what = what;
        this.total = Math.max(1, total);
        this.enabled = enabled;
        this.out = out;
    }

    public void update(long done) {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        if (now - start < DELAY_NANOS || now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        int width = 30;
        int filled = (int) Math.min(width, done * width / total);
        out.printf("\r%s [%s%s] %3d%% (%d/%d)", what, "#".repeat(filled), " ".repeat(width - filled),
                Math.min(100, done * 100 / total), done, total);
        out.flush();
        drawn = true;
    }

    @Override
    public void close() {
        if (drawn) {
            out.print("\r\033[K");
            out.flush();
        }
    }
}
