package io.writeboost.e2e;

import io.writeboost.e2e.LauncherIT.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;

import static io.writeboost.e2e.LauncherIT.launcher;
import static io.writeboost.e2e.LauncherIT.mounted;
import static io.writeboost.e2e.LauncherIT.unmountAndWait;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 14's scenario through ./fuse-mount: one 4 KiB block written and fsynced through the
 * volume, a clean stop, the nonce of segment 1's header damaged. The start refuses (exit 2)
 * naming the cache, the segment, the line and the volume range, and the command that accepts
 * the loss, without writing; check exits 1 with the range; dump --json marks the segment;
 * --accept-data-loss starts, the log and the status file show the range, and every other
 * sector of the volume is what it was.
 */
class DataLossIT {
    static final int VOLUME = 16 << 20;
    static final long BLOCK_AT = 64 << 10;

    @Test
    void aDamagedVouchedSegmentIsRefusedUntilTheLossIsAccepted(@TempDir Path dir) throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Path cache = dir.resolve("cache.img");
        Path disk = dir.resolve("disk.img");
        Path log = dir.resolve("writeboost.log");
        byte[] before = new byte[VOLUME];
        new Random(14).nextBytes(before);
        Files.write(disk, before);
        String[] args = {"--cache", cache.toString(), "--backing", "disk=" + disk, "--log-file", log.toString(), mnt.toString()};
        try {
            Run started = launcher(Fixture.concat(args, "--format", "--cache-size", "8M"));
            assertEquals(0, started.status(), started.out());
            byte[] block = new byte[4096];
            Arrays.fill(block, (byte) 0x5A);
            try (FileChannel f = FileChannel.open(mnt.resolve("disk"), StandardOpenOption.WRITE)) {
                f.write(ByteBuffer.wrap(block), BLOCK_AT);
                f.force(false);
            }
            unmountAndWait(mnt, started);

            // Segment 1 (slot 0, at 1 MiB): flip its header's format nonce.
            try (RandomAccessFile raf = new RandomAccessFile(cache.toFile(), "rw")) {
                for (int i = 0; i < 4; i++) {
                    raf.seek((1 << 20) + 16 + i);
                    int b = raf.read();
                    raf.seek((1 << 20) + 16 + i);
                    raf.write(b ^ 0xFF);
                }
            }
            byte[] damaged = Files.readAllBytes(cache);
            String range = "device 1 (disk) sectors " + BLOCK_AT / 512 + "-" + (BLOCK_AT / 512 + 7);

            Run refused = launcher(args);
            assertEquals(2, refused.status(), refused.out());
            assertTrue(refused.out().contains("cache 1 on " + cache) && refused.out().contains("acknowledged data is lost")
                    && refused.out().contains("segment 1") && refused.out().contains("lost segment(s): [1]")
                    && refused.out().contains("dirty lines affected: 1") && refused.out().contains(range), refused.out());
            assertTrue(refused.out().contains("To start anyway, giving up these ranges: fuse-mount --cache " + cache)
                    && refused.out().contains(" --accept-data-loss"), "the command that accepts the loss: " + refused.out());
            assertFalse(refused.out().contains("at io.writeboost"), "no stack trace: " + refused.out());
            assertFalse(mounted(mnt));
            assertArrayEquals(damaged, Files.readAllBytes(cache), "the refused start wrote nothing to the cache");
            assertArrayEquals(before, Files.readAllBytes(disk), "nor to the backing store");

            Run check = launcher("check", "--cache", cache.toString());
            assertEquals(1, check.status(), check.out());
            assertTrue(check.out().contains("PROBLEM: LOST ACKNOWLEDGED DATA") && check.out().contains(range), check.out());
            Run dump = launcher("dump", "--cache", cache.toString(), "--json");
            assertEquals(0, dump.status(), dump.out());
            assertTrue(dump.out().contains("{\"segment\":1,\"slot\":0,\"lines\":null,\"state\":\"lost\",\"lost\":true}"), dump.out());

            // A config file alone never accepts a loss.
            Path conf = dir.resolve("wb.conf");
            Files.writeString(conf, "cache = " + cache + "\nbacking = disk=" + disk + "\nmountpoint = " + mnt
                    + "\naccept-data-loss = yes\n");
            Run fromFile = launcher("--config", conf.toString(), "--log-file", log.toString());
            assertEquals(2, fromFile.status(), fromFile.out());
            assertTrue(fromFile.out().contains("counts only when --accept-data-loss is on the command line"), fromFile.out());
            assertArrayEquals(damaged, Files.readAllBytes(cache));

            Run accepted = launcher(Fixture.concat(args, "--accept-data-loss"));
            assertEquals(0, accepted.status(), accepted.out());
            String status = Files.readString(mnt.resolve("caches/1/status"));
            assertTrue(status.contains("lost_lines: 1\n") && status.contains("lost_range: 1 (disk) " + BLOCK_AT / 512 + " "
                    + (BLOCK_AT / 512 + 7) + "\n"), status);
            assertTrue(Files.readString(log).contains("ERROR [main] CacheEngine: cache 1: lost range: " + range),
                    "the log names the range at ERROR");
            byte[] now = Files.readAllBytes(mnt.resolve("disk"));
            for (int i = 0; i < VOLUME; i++) {
                if ((i < BLOCK_AT || i >= BLOCK_AT + 4096) && now[i] != before[i]) {
                    throw new AssertionError("byte " + i + " outside the lost range changed");
                }
            }
            unmountAndWait(mnt, accepted);

            // Accepted once: later starts come up, and the status keeps the loss until a format.
            Run later = launcher(args);
            assertEquals(0, later.status(), later.out());
            assertTrue(Files.readString(mnt.resolve("caches/1/status")).contains("lost_lines: 1\n"));
            unmountAndWait(mnt, later);
            Run clean = launcher("check", "--cache", cache.toString());
            assertEquals(0, clean.status(), clean.out());
            assertTrue(clean.out().contains("data loss accepted since the format: 1 line(s) in 1 range(s)"), clean.out());
        } finally {
            if (mounted(mnt)) {
                new ProcessBuilder("fusermount", "-u", "-z", mnt.toString()).inheritIO().start().waitFor();
            }
        }
    }

}
