package io.writeboost.testutil;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.apache.logging.log4j.core.layout.PatternLayout;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.util.ArrayDeque;

/**
 * For tests that provoke failures on purpose (power cuts, injected I/O errors, damaged
 * segments): the engine logs each one as it must in production, which in such a test is
 * hundreds of lines that say nothing new. While the test runs its log events are held in
 * memory; afterwards one line says how many were held back and shows the first line of the
 * first (not the stack trace it may carry), and a test that failed gets the last
 * {@value #KEEP} printed as well, for the diagnosis.
 *
 * <p>Tests that run concurrently (CrashTest's and ModelTest's, on JUnit's worker threads)
 * each keep their own events: an event goes to the capture of the test whose thread logged it
 * or started the thread that did (an engine's daemons are started by the test), and an event
 * of any other thread, or of a daemon that outlived its test, goes to the console as usual. The console leaves the root logger while
 * any capture is active.
 */
public final class QuietLogs implements BeforeEachCallback, AfterEachCallback {
    static final int KEEP = 40;
    private static final String CONSOLE = "stderr"; // the appender of src/test/resources/log4j2-test.xml
    private static final InheritableThreadLocal<Capture> CURRENT = new InheritableThreadLocal<>();
    /** Tests with a capture now; guarded by the class monitor, as is the routing appender. */
    private static int active;
    private static Router router;

    @Override
    public void beforeEach(ExtensionContext context) {
        Capture capture = new Capture();
        CURRENT.set(capture);
        synchronized (QuietLogs.class) {
            if (active++ == 0) {
                LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
                LoggerConfig root = ctx.getConfiguration().getRootLogger();
                router = new Router(ctx.getConfiguration().getAppender(CONSOLE));
                router.start();
                root.removeAppender(CONSOLE);
                root.addAppender(router, null, null);
                ctx.updateLoggers();
            }
        }
        context.getStore(ExtensionContext.Namespace.create(QuietLogs.class)).put("capture", capture);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        Capture capture = context.getStore(ExtensionContext.Namespace.create(QuietLogs.class)).remove("capture", Capture.class);
        CURRENT.remove();
        synchronized (QuietLogs.class) {
            if (--active == 0) {
                LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
                Configuration config = ctx.getConfiguration();
                LoggerConfig root = config.getRootLogger();
                root.removeAppender(router.getName());
                Appender console = config.getAppender(CONSOLE);
                if (console != null) {
                    root.addAppender(console, null, null);
                }
                ctx.updateLoggers();
                router.stop();
                router = null;
            }
        }
        String test = context.getRequiredTestClass().getSimpleName() + "." + context.getRequiredTestMethod().getName()
                + context.getDisplayName().replaceFirst("^[^\\[]*", " ");
        synchronized (capture) {
            capture.closed = true;
            StringBuilder out = new StringBuilder();
            if (capture.total > 0) {
                out.append(String.format("%s: %d log line(s) held back (%d ERROR, %d WARN; the test provokes them), the first: %s%n",
                        test.trim(), capture.total, capture.errors, capture.warnings, capture.first.lines().findFirst().orElse("")));
            }
            if (context.getExecutionException().isPresent() && !capture.last.isEmpty()) {
                out.append(String.format("%s failed; its last %d log line(s):%n", test.trim(), capture.last.size()));
                capture.last.forEach(out::append);
            }
            System.out.print(out); // one print, so that concurrent tests' reports do not interleave
        }
    }

    /** Sends each event to the capture of the thread that logged it, or to the console. */
    private static final class Router extends AbstractAppender {
        private final Appender console;

        Router(Appender console) {
            super("quiet-logs", null, null, true, Property.EMPTY_ARRAY);
            this.console = console;
        }

        @Override
        public void append(LogEvent event) {
            Capture c = CURRENT.get();
            if ((c == null || !c.offer(event)) && console != null) {
                console.append(event);
            }
        }
    }

    /** Counts events and keeps the first and the last {@link #KEEP}, formatted. */
    private static final class Capture {
        private static final PatternLayout LAYOUT = PatternLayout.newBuilder()
                .withPattern("%d{HH:mm:ss.SSS} %-5level [%t] %c{1}: %msg%n").build();
        long total, errors, warnings;
        String first;
        /** Its test has ended: a daemon it left running logs to the console. */
        boolean closed;
        final ArrayDeque<String> last = new ArrayDeque<>();

        /** False once its test has ended. */
        synchronized boolean offer(LogEvent event) {
            if (closed) {
                return false;
            }
            String line = LAYOUT.toSerializable(event);
            total++;
            if (event.getLevel().isMoreSpecificThan(Level.ERROR)) {
                errors++;
            } else if (event.getLevel() == Level.WARN) {
                warnings++;
            }
            if (first == null) {
                first = line;
            }
            if (last.size() == KEEP) {
                last.removeFirst();
            }
            last.addLast(line);
            return true;
        }
    }
}
