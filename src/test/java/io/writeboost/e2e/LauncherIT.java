package io.writeboost.e2e;

import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's first command and the launcher's background mode, with the packaged jar:
 * ./fuse-mount --demo mounts and prints what to try; the steps it prints work; a second run
 * after an unmount mounts the same data again.
 */
class LauncherIT {
    record Run(int status, String out) {
    }

    static Run launcher(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of("./fuse-mount"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), "launcher returned");
        return new Run(p.exitValue(), out);
    }

    static boolean mounted(Path mnt) throws IOException {
        return Files.readString(Path.of("/proc/mounts")).contains(" " + mnt + " fuse.writeboost ");
    }

    /** Unmounts and waits for the server to exit: its exit, not the unmount, marks the end of its clean stop. */
    static void unmountAndWait(Path mnt, Run started) throws Exception {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("server PID (\\d+)").matcher(started.out());
        assertTrue(m.find(), "the launcher names the server's PID: " + started.out());
        long pid = Long.parseLong(m.group(1));
        Loop.run("fusermount", "-u", mnt.toString());
        Fixture.waitFor("the server to exit", 120, () -> ProcessHandle.of(pid).map(h -> !h.isAlive()).orElse(true));
        assertFalse(mounted(mnt));
    }

    @Test
    void demoMountsAndItsStepsWork(@TempDir Path dir) throws Exception {
        Path demo = dir.resolve("demo"), mnt = demo.resolve("mnt"), fs = demo.resolve("fs");
        try {
            Run first = launcher("--demo", "--demo-dir", demo.toString());
            assertEquals(0, first.status(), first.out());
            assertTrue(first.out().contains("mounted (server PID"), first.out());
            assertTrue(first.out().contains("losetup -f --show --direct-io=on " + mnt + "/disk"), first.out());
            assertTrue(mounted(mnt));
            assertTrue(Files.readString(mnt.resolve("caches/1/status")).contains("state: ok"));
            String sum;
            try (Loop loop = Loop.attach(mnt.resolve("disk"), "--direct-io=on")) {
                Loop.run("mkfs.ext4", "-q", loop.device.toString());
                Files.createDirectories(fs);
                Loop.run("mount", loop.device.toString(), fs.toString());
                try {
                    Files.writeString(fs.resolve("hello.txt"), "hello through the cache\n".repeat(1000));
                    sum = Fixture.sha256(fs.resolve("hello.txt"));
                } finally {
                    Loop.run("umount", fs.toString());
                }
            }
            assertTrue(Long.parseLong(Files.readString(mnt.resolve("devices/1/nr_dirty_caches")).strip()) >= 0);
            assertTrue(Files.readString(mnt.resolve("caches/1/stat")).contains("# write hit on_buffer fullsize count"));
            Run again = launcher("--demo", "--demo-dir", demo.toString());
            assertTrue(again.out().contains("already mounted"), again.out());
            unmountAndWait(mnt, first);
            assertTrue(Files.readString(demo.resolve("writeboost.log")).contains("stopped cleanly"));

            Run second = launcher("--demo", "--demo-dir", demo.toString());
            assertEquals(0, second.status(), second.out());
            try (Loop loop = Loop.attach(mnt.resolve("disk"), "--direct-io=on")) {
                Loop.run("e2fsck", "-fn", loop.device.toString());
                Loop.run("mount", loop.device.toString(), fs.toString());
                try {
                    assertEquals(sum, Fixture.sha256(fs.resolve("hello.txt")), "the file after a stop and a new demo mount");
                } finally {
                    Loop.run("umount", fs.toString());
                }
            }
            unmountAndWait(mnt, second);
        } finally {
            if (mounted(mnt)) {
                new ProcessBuilder("fusermount", "-u", "-z", mnt.toString()).inheritIO().start().waitFor();
            }
        }
    }

    @Test
    void backgroundModeReportsErrorsAndNeverMountsOnBadInput(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Run r = launcher("--cache", dir.resolve("nope.img").toString(), "--backing", dir.resolve("none.img").toString(), mnt.toString());
        assertEquals(2, r.status(), r.out());
        assertTrue(r.out().contains("no such file or device"), r.out());
        assertFalse(mounted(mnt));
    }

    /** The command, in both modes: the launcher passes on the status and the message, and no trace. */
    @Test
    void aBackingStoreNoVolumeCanLiveOnExits2WithTheMessageAlone(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path cache = dir.resolve("cache.img");
        for (boolean foreground : new boolean[] {true, false}) {
            List<String> args = new java.util.ArrayList<>(List.of("--cache", cache.toString(), "--format", "--cache-size", "6M",
                    "--backing", "v=/dev/null", "--log-file", dir.resolve("log").toString(), mnt.toString()));
            if (foreground) {
                args.add(0, "--foreground");
            }
            Run r = launcher(args.toArray(new String[0]));
            assertEquals(2, r.status(), (foreground ? "foreground: " : "background: ") + r.out());
            assertTrue(r.out().contains("fuse-mount: /dev/null: neither a regular file nor a block device (backing store)"), r.out());
            assertFalse(r.out().contains("at io.writeboost") || r.out().contains("Exception"), "no stack trace: " + r.out());
            assertFalse(Files.exists(cache), "no cache file created");
            assertFalse(mounted(mnt));
        }
    }

    /**
     * A config that names the mount point, and none on the command line (the issue's
     * `fuse-mount --config FILE --format`): the log is named after it; a config's log-file is
     * used as it is rather than overridden by the launcher's default.
     */
    @Test
    void theMountPointAndTheLogFileMayComeFromTheConfig(@TempDir Path dir) throws Exception {
        String name = "wbtest-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        Path mnt = Files.createDirectories(dir.resolve(name));
        Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        Path conf = dir.resolve("t.conf");
        String common = "cache = " + dir.resolve("cache.img") + "\nbacking = data=" + dir.resolve("disk.img") + "\nmountpoint = " + mnt
                + "   # the only mount point given\n";
        Files.writeString(conf, common);
        Path log = "root".equals(System.getProperty("user.name")) ? Path.of("/var/log/writeboost", name + ".log")
                : Path.of(System.getenv().getOrDefault("XDG_STATE_HOME", System.getProperty("user.home") + "/.local/state"),
                        "writeboost", name + ".log");
        try {
            Run r = launcher("--config", conf.toString(), "--format", "--cache-size", "6M");
            assertEquals(0, r.status(), r.out());
            assertTrue(r.out().contains("log " + log + ")"), r.out());
            assertFalse(r.out().contains("readlink"), r.out());
            assertTrue(Files.readString(log).contains("serving " + mnt), "the server logs there");
            unmountAndWait(mnt, r);

            Files.writeString(conf, common + "log-file = " + dir.resolve("from-config.log") + "\n");
            r = launcher("--config", conf.toString());
            assertEquals(0, r.status(), r.out());
            assertTrue(r.out().contains("log " + dir.resolve("from-config.log") + ")"), r.out());
            assertTrue(Files.readString(dir.resolve("from-config.log")).contains("serving " + mnt));
            unmountAndWait(mnt, r);
        } finally {
            if (mounted(mnt)) {
                Loop.run("fusermount", "-u", "-z", mnt.toString());
            }
            Files.deleteIfExists(log);
        }
    }

    /**
     * `./fuse-mount upgrade`, which the refusal of a version 1 cache tells the user to run: the
     * launcher hands it to the tools (not to a mount of a directory named "upgrade"), which
     * write the golden image's data back and format it as version 2, recording the stores'
     * identities; a mount then starts on it.
     */
    @Test
    void upgradeRunsThroughTheLauncher(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("cache.img"), mnt = Files.createDirectories(dir.resolve("mnt"));
        try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(Path.of("test-images/cache-format-v1.img.gz")))) {
            Files.write(cache, in.readAllBytes());
        }
        Path g1 = Fixture.sparse(dir.resolve("g1.img"), 1 << 20), g2 = Fixture.sparse(dir.resolve("g2.img"), 512 << 10);
        String[] stores = {"--cache", cache.toString(), "--backing", "golden1=" + g1, "--backing", "golden2=" + g2};
        Run refused = launcher(Fixture.concat(stores, "--log-file", dir.resolve("log").toString(), mnt.toString()));
        assertEquals(2, refused.status(), refused.out());
        assertTrue(refused.out().contains("fuse-mount upgrade"), refused.out());

        Run up = launcher(Fixture.concat(new String[] {"upgrade"}, stores));
        assertEquals(0, up.status(), up.out());
        assertTrue(up.out().contains("formatted " + cache + " as format version 2"), up.out());
        assertFalse(Files.exists(Path.of("upgrade")), "no mount point named upgrade");
        byte[] want = new byte[2 * 512];
        for (int i = 0; i < want.length; i++) {
            want[i] = io.writeboost.format.GoldenImage.pattern(2, 1, 9 + i / 512, i % 512);
        }
        byte[] got = java.util.Arrays.copyOfRange(Files.readAllBytes(g1), 9 * 512, 11 * 512);
        org.junit.jupiter.api.Assertions.assertArrayEquals(want, got, "golden1's dirty sectors written back");

        Run started = launcher(Fixture.concat(stores, "--log-file", dir.resolve("log").toString(), mnt.toString()));
        try {
            assertEquals(0, started.status(), started.out());
            assertFalse(Files.readString(dir.resolve("log")).contains("has no backing store identity recorded"),
                    "the upgrade recorded the stores' identities");
        } finally {
            unmountAndWait(mnt, started);
        }
    }

    /** The background server's stderr is its log file, not the launcher's temporary file deleted once the mount is ready. */
    @Test
    void theBackgroundServersStderrIsItsLog(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt")), log = dir.resolve("server.log");
        Path disk = Fixture.sparse(dir.resolve("disk.img"), 8 << 20);
        Run started = launcher("--cache", dir.resolve("cache.img").toString(), "--format", "--cache-size", "4M", "--sparse",
                "--backing", "disk=" + disk, "--log-file", log.toString(), mnt.toString());
        assertEquals(0, started.status(), started.out());
        try {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("server PID (\\d+)").matcher(started.out());
            assertTrue(m.find(), started.out());
            Path fd2 = Path.of("/proc/" + m.group(1) + "/fd/2");
            assertEquals(log.toRealPath().toString(), Files.readSymbolicLink(fd2).toString(), "stderr of the server");
            String cmdline = Files.readString(Path.of("/proc/" + m.group(1) + "/cmdline")).replace('\0', ' ');
            assertTrue(cmdline.contains("-XX:+ExitOnOutOfMemoryError"), cmdline);
        } finally {
            unmountAndWait(mnt, started);
        }
    }
}
