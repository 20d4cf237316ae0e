package io.writeboost.e2e;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The units under a real systemd: src/test/sh/systemd-boot-test.sh boots Debian 12 in a
 * systemd-nspawn container and runs the operator's whole story through the installed units
 * (format, start, loop unit, ext4 through the example .mount unit, kill -9 and systemd's
 * restart, stop, reboot, poweroff without a [FAILED] line). Its lines are printed as they
 * come; on failure it prints the container's journal and console. It exits 77 only when this
 * machine cannot boot a container at all (not root, no /dev/fuse, no cgroup hierarchy), and
 * the test is then skipped with its reason.
 */
class SystemdBootIT {
    @Test
    void theOperatorsStoryUnderARealSystemd(@TempDir Path dir) throws Exception {
        Path script = Path.of("src/test/sh/systemd-boot-test.sh").toAbsolutePath();
        Process p = new ProcessBuilder("bash", script.toString(), dir.resolve("work").toString()).redirectErrorStream(true).start();
        p.getOutputStream().close();
        StringBuilder out = new StringBuilder();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    System.out.println(line);
                    synchronized (out) {
                        out.append(line).append('\n');
                    }
                }
            } catch (java.io.IOException e) {
                System.out.println("reading the boot test's output: " + e);
            }
        }, "boot-test-output");
        reader.start();
        // A first run builds the Debian tree (about 1.5 min); later ones take about 30 s.
        if (!p.waitFor(15, TimeUnit.MINUTES)) {
            p.destroy();   // SIGTERM: the script's cleanup stops the container and undoes its setup
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
            reader.join(10_000);
            fail("the boot test did not finish within 15 minutes:\n" + out);
        }
        reader.join(10_000);
        String text;
        synchronized (out) {
            text = out.toString();
        }
        Assumptions.assumeTrue(p.exitValue() != 77, () -> "this machine cannot boot a container: " + text.strip());
        assertEquals(0, p.exitValue(), "the boot test failed (its output is above):\n" + text);
    }
}
