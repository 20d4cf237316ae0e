package io.writeboost.server;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How a refusal names the process that holds a device: by PID and a command line short enough for one line. */
class LockHolderTest {
    @Test
    void writeboostIsNamedByItsArgumentsAndOtherJavaWithoutItsClassPath() {
        assertEquals("fuse-mount --cache /c --backing d=/d /mnt",
                LockHolder.command(List.of("java", "-Xmx1g", "-jar", "/usr/local/lib/writeboost/writeboost.jar", "--cache", "/c",
                        "--backing", "d=/d", "/mnt")));
        assertEquals("fuse-mount writeback --cache /c", LockHolder.command(List.of("/opt/java/bin/java", "-cp", "a.jar:b.jar",
                "io.writeboost.cli.Main", "writeback", "--cache", "/c")));
        assertEquals("java -cp ... x.Y arg", LockHolder.command(List.of("java", "-cp", "a.jar:b.jar", "x.Y", "arg")));
        assertEquals("dd if=/dev/zero of=/c", LockHolder.command(List.of("dd", "if=/dev/zero", "of=/c")));
        String longOne = LockHolder.command(List.of("x".repeat(1000)));
        assertEquals(400, longOne.length());
        assertTrue(longOne.endsWith("..."));
    }

    @Test
    void aProcessIsNamedFromProcAndOneNotVisibleIsNot() throws Exception {
        Process sleep = new ProcessBuilder("sleep", "600").start();
        try {
            assertEquals("process " + sleep.pid() + " (sleep 600)", LockHolder.describe(sleep.pid()));
        } finally {
            sleep.destroyForcibly();
            assertTrue(sleep.waitFor(30, TimeUnit.SECONDS));
        }
        assertEquals("this process", LockHolder.describe(ProcessHandle.current().pid()));
        assertEquals("another process", LockHolder.describe(0));
    }
}
