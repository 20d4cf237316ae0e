package io.writeboost.format;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.testutil.PowerLossDevice;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * Makes the golden image of format version 2 (test-images/cache-format-v2.img.gz). Run it only
 * when a new format version is released, never to make a failing GoldenImageTest pass:
 * {@code java -cp target/classes:target/test-classes:target/lib/* io.writeboost.format.GoldenImage test-images/cache-format-v2.img.gz}
 * (The version 1 image, test-images/cache-format-v1.img.gz, was made by the same program as it
 * was in format version 1; GoldenImageTest checks that it is refused, not misread.)
 */
public final class GoldenImage {
    static final long NONCE = 0x5742_4F4F_5354_0001L;
    static final long TIME = 1_764_000_000_000L;
    static final int CACHE_ID = 7;
    static final int SEGMENTS = 3;
    static final List<VolumeEntry> VOLUMES = List.of(
            new VolumeEntry(1, 1 << 20, "golden1", "/dev/golden1"),
            new VolumeEntry(2, 512 << 10, "golden2", "/srv/images/golden2.img"));

    /** The byte at offset {@code i} of sector {@code sector} of device {@code dev} in write number {@code w}. */
    public static byte pattern(int w, int dev, long sector, int i) {
        return (byte) (w * 31 + dev * 7 + sector * 3 + i);
    }

    static ByteBuffer data(int w, int dev, long sector, int n) {
        ByteBuffer b = ByteBuffer.allocate(n * 512);
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < 512; i++) {
                b.put(s * 512 + i, pattern(w, dev, sector + s, i));
            }
        }
        return b;
    }

    static Map<Integer, BlockDevice> zeroBackings(Object power) {
        Map<Integer, BlockDevice> m = new LinkedHashMap<>();
        for (VolumeEntry v : VOLUMES) {
            m.put(v.deviceId(), new PowerLossDevice("zero" + v.deviceId(), (int) v.sizeBytes(), power));
        }
        return m;
    }

    /**
     * The workload behind the image: segment 1 takes two flushes that append to it and then a
     * final write after its seal (a tombstone and a merged line among its lines), segment 2
     * is written whole by one seal.
     */
    static byte[] build() throws IOException {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("golden", (int) Layout.slotOffset(SEGMENTS), power);
        CacheEngine.format(cache, CACHE_ID, VOLUMES, NONCE, TIME);
        CacheEngine e = CacheEngine.open(cache, zeroBackings(power), new EngineConfig());
        e.write(1, 0, 8, data(1, 1, 0, 8));        // segment 1, line 0: dev 1 line 0, all dirty
        e.flush();                                  // append: header copy 0 (block 0), 1 line
        e.write(1, 9, 2, data(2, 1, 9, 2));        // line 1: dev 1 line 1, sectors 1-2 dirty
        e.write(2, 24, 8, data(3, 2, 24, 8));      // line 2: dev 2 line 3, all dirty
        e.flush();                                  // append: header copy 1 (block 1), 3 lines
        e.discard(1, 0, 8);                         // line 3: tombstone for dev 1 line 0 (line 0 is frozen)
        e.write(2, 24, 2, data(4, 2, 24, 2));      // line 4: dev 2 line 3 merged, all dirty
        e.flushNow();                               // seal: header copy 2 (block 0), 5 lines
        e.write(1, 40, 8, data(5, 1, 40, 8));      // segment 2, line 0: dev 1 line 5, all dirty
        e.flushNow();                               // seal of a segment never appended to: copy 0, one write
        e.close();
        return cache.visibleBytes().clone();
    }

    public static void main(String[] args) throws IOException {
        byte[] image = build();
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(Path.of(args[0])))) {
            out.write(image);
        }
        System.out.println("wrote " + args[0] + " (" + image.length + " bytes uncompressed)");
    }
}
