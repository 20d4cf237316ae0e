package io.writeboost.e2e;

import io.writeboost.testutil.Loop;
import io.writeboost.testutil.NotifySocket;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The systemd units as installed by systemd/install into a temporary root: systemd-analyze
 * verify accepts them, and their command lines, run by hand (PID 1 here is not systemd), do
 * what the units promise: READY=1, STATUS= and STOPPING=1 on the notify socket, loop devices
 * attached and detached, a clean stop on SIGTERM; the generator writes each config's drop-in.
 * Then uninstall removes everything. (SystemdBootIT runs them under a real systemd.)
 */
class SystemdIT {
    static String run(Path cwd, List<String> cmd, String env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true);
        if (env != null) {
            pb.environment().put("NOTIFY_SOCKET", env);
        }
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }

    /** The unit's Exec line, its absolute paths moved under {@code root}, %i replaced. */
    static List<String> execLine(Path unit, String key, Path root, String instance) throws Exception {
        for (String line : Files.readAllLines(unit)) {
            if (line.startsWith(key + "=")) {
                List<String> argv = new ArrayList<>();
                for (String a : line.substring(key.length() + 1).split(" ")) {
                    a = a.replace("%i", instance);
                    argv.add(a.startsWith("/") ? root + a : a);
                }
                return argv;
            }
        }
        throw new AssertionError(unit + " has no " + key);
    }

    @Test
    void installVerifyRunByHandAndUninstall(@TempDir Path dir) throws Exception {
        Path repo = Path.of("").toAbsolutePath();
        Path root = dir.resolve("root");
        run(repo, List.of("systemd/install", "--root", root.toString()), null);
        Path units = root.resolve("etc/systemd/system");
        assertTrue(Files.isExecutable(root.resolve("usr/local/bin/fuse-mount")));
        assertTrue(Files.exists(root.resolve("usr/local/lib/writeboost/writeboost.jar")));

        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Fixture.sparse(dir.resolve("disk.img"), 64 << 20);
        Files.writeString(root.resolve("etc/writeboost/t.conf"), String.join("\n",
                "# test cache", "cache = " + dir.resolve("cache.img"), "backing = data=" + dir.resolve("disk.img"),
                "mountpoint = " + mnt, "allow_migrate = 1", ""));
        Files.writeString(root.resolve("etc/writeboost/m.conf"), String.join("\n",
                "cache = " + dir.resolve("m-cache.img"), "backing = data=" + dir.resolve("disk.img"),
                "mountpoint = " + dir.resolve("m-mnt"), "metrics-listen = 9500   # served to Prometheus", ""));
        Files.copy(repo.resolve("systemd/srv-data.mount.example"), units.resolve("srv-data.mount"));
        // The generator, as systemd runs it at boot, its output where verify reads drop-ins.
        Path generator = root.resolve("usr/local/lib/systemd/system-generators/writeboost-generator");
        assertTrue(Files.isExecutable(generator));
        ProcessBuilder gen = new ProcessBuilder(generator.toString(), units.toString(), units.toString(), units.toString())
                .redirectErrorStream(true);
        gen.environment().put("WRITEBOOST_CONF_DIR", root.resolve("etc/writeboost").toString());
        Process g = gen.start();
        String genOut = new String(g.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, g.waitFor(), genOut);
        String dropin = Files.readString(units.resolve("writeboost@t.service.d/50-writeboost-config.conf"));
        String mountUnit = run(repo, List.of("systemd-escape", "--path", "--suffix=mount", mnt.toString()), null).strip();
        assertTrue(dropin.contains("\nAfter=" + mountUnit + "\n"), "ordered after the mount point's unit: " + dropin);
        assertTrue(dropin.contains("RequiresMountsFor=" + dir.resolve("cache.img") + "\n")
                && dropin.contains("RequiresMountsFor=" + dir.resolve("disk.img") + "\n"), dropin);
        assertFalse(dropin.contains("RestrictAddressFamilies"), "no network sockets without metrics-listen: " + dropin);
        String metricsDropin = Files.readString(units.resolve("writeboost@m.service.d/50-writeboost-config.conf"));
        assertTrue(metricsDropin.contains("\n[Service]\nRestrictAddressFamilies=AF_INET AF_INET6\n"),
                "a config with metrics-listen may open IP sockets: " + metricsDropin);
        assertTrue(Files.exists(units.resolve("writeboost@example.service.d/50-writeboost-config.conf")),
                "one drop-in per config: the installed example.conf has one too");
        for (String unit : new String[] {"writeboost@t.service", "writeboost@m.service", "writeboost-loop@t.service", "srv-data.mount"}) {
            String out = run(repo, List.of("systemd-analyze", "verify", "--root=" + root, units.resolve(unit).toString()), null);
            assertEquals("", out.strip(), "systemd-analyze verify " + unit + " says nothing");
        }

        // The cache must exist before the unit starts it: the administrator formats once.
        String formatted = run(repo, List.of(root + "/usr/local/bin/fuse-mount", "--config", root + "/etc/writeboost/t.conf", "--format",
                "--cache-size", "16M", "--log-file", dir.resolve("format.log").toString()), null);
        java.util.regex.Matcher formatServer = java.util.regex.Pattern.compile("server PID (\\d+)").matcher(formatted);
        assertTrue(formatServer.find(), "the launcher names the server's PID: " + formatted);
        long formatPid = Long.parseLong(formatServer.group(1));
        run(repo, List.of("fusermount", "-u", mnt.toString()), null);
        // Its exit, not its log line, ends the stop: until then it holds the cache, and the unit's start would be refused.
        Fixture.waitFor("the formatting server's exit", 60, () -> ProcessHandle.of(formatPid).map(h -> !h.isAlive()).orElse(true));
        assertTrue(Files.readString(dir.resolve("format.log")).contains("stopped cleanly"));

        List<String> exec = execLine(units.resolve("writeboost@.service"), "ExecStart", root, "t");
        assertEquals(Arrays.asList(root + "/usr/local/bin/fuse-mount", "--foreground", "--config", root + "/etc/writeboost/t.conf"), exec);
        try (NotifySocket sock = new NotifySocket("wb-test-" + ProcessHandle.current().pid())) {
            ProcessBuilder pb = new ProcessBuilder(exec).redirectErrorStream(true).redirectOutput(dir.resolve("journal").toFile())
                    .directory(repo.toFile());
            pb.environment().put("NOTIFY_SOCKET", sock.address);
            Process server = pb.start();
            try {
                List<String> msgs = sock.receiveUntil("READY=1", 60_000);
                assertTrue(msgs.stream().anyMatch(m -> m.contains("READY=1") && m.contains("STATUS=write-back, 0 dirty line(s)")), msgs.toString());
                assertTrue(Files.exists(mnt.resolve("data")), "the mount is live at READY=1");
                Files.write(mnt.resolve("data"), new byte[8192], java.nio.file.StandardOpenOption.WRITE);
                msgs = sock.receiveUntil("STATUS=", 10_000);
                assertTrue(msgs.stream().anyMatch(m -> m.startsWith("STATUS=")), "STATUS refreshed: " + msgs);

                List<String> attach = execLine(units.resolve("writeboost-loop@.service"), "ExecStart", root, "t");
                String out = run(repo, attach, null);
                Path link = Path.of("/run/writeboost/t/data");
                assertTrue(Files.isSymbolicLink(link), out);
                String loopDev = Files.readSymbolicLink(link).toString();
                assertTrue(Loop.run("losetup", "-j", mnt.resolve("data").toString()).contains(loopDev));
                run(repo, execLine(units.resolve("writeboost-loop@.service"), "ExecStop", root, "t"), null);
                assertEquals("", Loop.run("losetup", "-j", mnt.resolve("data").toString()).strip(), "detached");
                assertFalse(Files.exists(link));

                Loop.run("kill", "-TERM", Long.toString(server.pid()));
                msgs = sock.receiveUntil("STOPPING=1", 60_000);
                assertTrue(msgs.stream().anyMatch(m -> m.contains("STOPPING=1")), msgs.toString());
                assertTrue(server.waitFor(120, TimeUnit.SECONDS));
                assertEquals(0, server.exitValue(), Files.readString(dir.resolve("journal")));
                assertTrue(Files.readString(dir.resolve("journal")).contains("stopped cleanly"));
            } finally {
                if (server.isAlive()) {
                    server.destroyForcibly().waitFor();
                }
                if (Files.readString(Path.of("/proc/mounts")).contains(" " + mnt + " ")) {
                    new ProcessBuilder("fusermount", "-u", "-z", mnt.toString()).start().waitFor();
                }
            }
        }

        run(repo, List.of("systemd/install", "--uninstall", "--root", root.toString()), null);
        assertFalse(Files.exists(root.resolve("usr/local/bin/fuse-mount")));
        assertFalse(Files.exists(root.resolve("usr/local/lib/writeboost")));
        assertFalse(Files.exists(units.resolve("writeboost@.service")));
        assertFalse(Files.exists(generator));
        assertTrue(Files.exists(root.resolve("etc/writeboost/t.conf")), "the administrator's config stays");
    }
}
