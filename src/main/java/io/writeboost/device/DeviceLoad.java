package io.writeboost.device;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How busy the block device under a backing store is: the share of wall-clock time it had I/O
 * in flight (io_ticks from /sys/dev/block/MAJ:MIN/stat) between two samples, as iostat's
 * %util. For a file, the device holding the file; for a block device, itself.
 */
public final class DeviceLoad {
    private final Path statFile;
    private final java.util.function.LongSupplier ticks;
    private long lastTicksMs = -1;
    private long lastNanos;

    private DeviceLoad(Path statFile, java.util.function.LongSupplier ticks) {
        this.statFile = statFile;
        this.ticks = ticks;
    }

    /** A probe over another source of busy milliseconds (for tests). */
    public static DeviceLoad ofTicks(java.util.function.LongSupplier busyMillis) {
        return new DeviceLoad(null, busyMillis);
    }

    /** The load probe for {@code path}, or null when the kernel does not say (no sysfs entry). */
    public static DeviceLoad of(Path path, boolean blockDevice) {
        try {
            long dev = ((Number) Files.getAttribute(path, blockDevice ? "unix:rdev" : "unix:dev")).longValue();
            long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
            long minor = (dev & 0xff) | ((dev >>> 12) & ~0xffL);
            Path stat = Path.of("/sys/dev/block/" + major + ":" + minor + "/stat");
            return Files.isReadable(stat) ? new DeviceLoad(stat, null) : null;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return null;
        }
    }

    /** Percent busy since the previous call (0 on the first call, or when the file cannot be read). */
    public synchronized int sample() {
        long busy;
        try {
            if (ticks != null) {
                busy = ticks.getAsLong();
            } else {
                String[] f = Files.readString(statFile).trim().split("\\s+");
                busy = Long.parseLong(f[9]);
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        long now = System.nanoTime();
        int pct = 0;
        if (lastTicksMs >= 0 && now > lastNanos) {
            double elapsedMs = (now - lastNanos) / 1e6;
            pct = (int) Math.min(100, Math.max(0, Math.round((busy - lastTicksMs) * 100 / elapsedMs)));
        }
        lastTicksMs = busy;
        lastNanos = now;
        return pct;
    }
}
