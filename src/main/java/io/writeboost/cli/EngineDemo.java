package io.writeboost.cli;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.cache.Status;
import io.writeboost.device.BlockDevice;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.Layout;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import io.writeboost.server.Version;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/**
 * The engine on its own, on sparse demo images it creates: random 4 KiB writes with periodic
 * fsyncs, a clean stop and start, a check of every block written, a full writeback, and the
 * figures. Stands in for the mount until the FUSE front end exists.
 */
public final class EngineDemo {
    private final Path dir;
    private final PrintStream out;

    public EngineDemo(Path dir, PrintStream out) {
        this.dir = dir;
        this.out = out;
    }

    public void run() throws IOException {
        Files.createDirectories(dir);
        Path cachePath = dir.resolve("cache.img");
        Path[] backingPaths = {dir.resolve("disk1.img"), dir.resolve("disk2.img")};
        long cacheBytes = 65L << 20, backingBytes = 256L << 20;
        out.printf("writeboost %s engine demo in %s%n", Version.get(), dir.toAbsolutePath());
        Files.deleteIfExists(cachePath);
        for (Path p : backingPaths) {
            Files.deleteIfExists(p);
        }
        try (FileBlockDevice cache = FileBlockDevice.createSparse(cachePath, cacheBytes);
             FileBlockDevice b1 = FileBlockDevice.createSparse(backingPaths[0], backingBytes);
             FileBlockDevice b2 = FileBlockDevice.createSparse(backingPaths[1], backingBytes)) {
            CacheEngine.format(cache, 1, List.of(
                    new VolumeEntry(1, backingBytes, "disk1", b1.name()),
                    new VolumeEntry(2, backingBytes, "disk2", b2.name())));
            Map<Integer, BlockDevice> volumes = new LinkedHashMap<>();
            volumes.put(1, b1);
            volumes.put(2, b2);
            out.printf("  cache  %s: %d MiB sparse file, %d segments of 1 MiB%n", cachePath, cacheBytes >> 20,
                    Layout.segmentsFor(cacheBytes));
            out.printf("  volume 1 on %s, volume 2 on %s: %d MiB each%n", backingPaths[0], backingPaths[1], backingBytes >> 20);

            int lines = (int) (backingBytes / Layout.LINE_SIZE);
            int[][] crcs = new int[3][lines];
            CacheEngine engine = CacheEngine.open(cache, volumes, new EngineConfig());
            ByteBuffer buf = ByteBuffer.allocateDirect(Layout.LINE_SIZE);
            SplittableRandom rnd = new SplittableRandom(1);
            int writes = 40_000;
            long t0 = System.nanoTime();
            for (int i = 0; i < writes; i++) {
                int dev = 1 + (i & 1);
                int line = rnd.nextInt(lines);
                for (int j = 0; j < Layout.LINE_SIZE; j += 8) {
                    buf.putLong(j, rnd.nextLong());
                }
                engine.write(dev, (long) line * 8, 8, buf);
                crcs[dev][line] = crc(buf);
                if (i % 1000 == 999) {
                    engine.flush();
                }
            }
            engine.flush();
            double secs = (System.nanoTime() - t0) / 1e9;
            out.printf("  wrote %d random 4 KiB blocks with an fsync every 1000: %.0f writes/s, %.1f MiB/s%n", writes, writes / secs,
                    writes * 4096.0 / secs / (1 << 20));
            Status st = engine.status();
            out.printf("  segments flushed %d, written back %d (the ring of %d filled and writeback ran under it), dirty lines %d%n",
                    st.lastFlushedId(), st.lastMigratedId(), st.nrSegments(), st.dirtyLines());
            engine.close();

            engine = CacheEngine.open(cache, volumes, new EngineConfig());
            out.printf("  clean stop and start: %d segment(s) with dirty data loaded in %d ms%n",
                    engine.recovery().replay().size(), engine.recovery().millis());
            int checked = verify(engine, crcs, lines, buf);
            out.printf("  read back %d blocks written: all match%n", checked);
            long t1 = System.nanoTime();
            engine.setKnob(Knob.ALLOW_MIGRATE, 1);
            engine.drain();
            out.printf("  writeback of everything left: %d ms; dirty lines now %d%n", (System.nanoTime() - t1) / 1_000_000,
                    engine.status().dirtyLines());
            st = engine.status();
            out.printf("  stats (write,hit,on_buffer,fullsize): write-miss-full %d, read-hit-full %d, read-miss-full %d%n",
                    st.stat(true, false, false, true), st.stat(false, true, false, true), st.stat(false, false, false, true));
            out.printf("  heap for line metadata and index: %.1f bytes per 4 KiB cache line%n", engine.heapBytesPerLine());
            engine.close();
        } catch (Exception e) {
            throw e instanceof IOException io ? io : new IOException(e);
        }
        out.println("done. The FUSE mount (issue: FUSE front end) will serve these images as files.");
    }

    private static int verify(CacheEngine engine, int[][] crcs, int lines, ByteBuffer buf) throws IOException {
        int checked = 0;
        for (int dev = 1; dev <= 2; dev++) {
            for (int line = 0; line < lines; line++) {
                if (crcs[dev][line] == 0) {
                    continue;
                }
                engine.read(dev, (long) line * 8, 8, buf);
                if (crc(buf) != crcs[dev][line]) {
                    throw new IOException("volume " + dev + " block " + line + " does not read back what was written");
                }
                checked++;
            }
        }
        return checked;
    }

    private static int crc(ByteBuffer b) {
        CRC32C c = new CRC32C();
        c.update(b.duplicate().clear());
        return (int) c.getValue() | 1;
    }
}
