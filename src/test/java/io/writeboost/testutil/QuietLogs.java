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
 */
public final class QuietLogs implements BeforeEachCallback, AfterEachCallback {
    static final int KEEP = 40;
    private static final String CONSOLE = "stderr"; // the appender of src/test/resources/log4j2-test.xml

    @Override
    public void beforeEach(ExtensionContext context) {
        Capture capture = new Capture();
        capture.start();
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        LoggerConfig root = ctx.getConfiguration().getRootLogger();
        root.removeAppender(CONSOLE);
        root.addAppender(capture, null, null);
        ctx.updateLoggers();
        context.getStore(ExtensionContext.Namespace.create(QuietLogs.class)).put("capture", capture);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        Capture capture = context.getStore(ExtensionContext.Namespace.create(QuietLogs.class)).remove("capture", Capture.class);
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Configuration config = ctx.getConfiguration();
        LoggerConfig root = config.getRootLogger();
        root.removeAppender(capture.getName());
        Appender console = config.getAppender(CONSOLE);
        if (console != null) {
            root.addAppender(console, null, null);
        }
        ctx.updateLoggers();
        capture.stop();
        String test = context.getRequiredTestClass().getSimpleName() + "." + context.getRequiredTestMethod().getName();
        synchronized (capture) {
            if (capture.total > 0) {
                System.out.printf("%s: %d log line(s) held back (%d ERROR, %d WARN; the test provokes them), the first: %s%n",
                        test, capture.total, capture.errors, capture.warnings, capture.first.lines().findFirst().orElse(""));
            }
            if (context.getExecutionException().isPresent() && !capture.last.isEmpty()) {
                System.out.printf("%s failed; its last %d log line(s):%n", test, capture.last.size());
                capture.last.forEach(System.out::print);
            }
        }
    }

    /** Counts events and keeps the first and the last {@link #KEEP}, formatted. */
    private static final class Capture extends AbstractAppender {
        long total, errors, warnings;
        String first;
        final ArrayDeque<String> last = new ArrayDeque<>();

        Capture() {
            super("quiet-logs", null, PatternLayout.newBuilder().withPattern("%d{HH:mm:ss.SSS} %-5level [%t] %c{1}: %msg%n").build(),
                    true, Property.EMPTY_ARRAY);
        }

        @Override
        public synchronized void append(LogEvent event) {
            String line = ((PatternLayout) getLayout()).toSerializable(event);
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
        }
    }
}
