package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.testutil.DelegatingDevice;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sizes the line table can serve: a volume of at most 4 PiB (40 bits of line number in
 * {@link LineKeys}) and at most {@link LineTable#MAX_SEGMENTS} segments (the index in one
 * array), refused at format and at open with an error that says so, before anything is written.
 */
class SizeLimitTest {
    private static final long TOO_LARGE = LineKeys.MAX_VOLUME_BYTES + Layout.LINE_SIZE;

    /** A device that reports a size other than what it holds (a store of petabytes, in a few MiB). */
    private static final class Sized extends DelegatingDevice {
        private final long size;

        Sized(BlockDevice inner, long size) {
            super(inner);
            this.size = size;
        }

        @Override
        public long size() {
            return size;
        }
    }

    private static byte[] image(BlockDevice d) throws Exception {
        ByteBuffer b = ByteBuffer.allocate((int) d.size());
        d.read(b, 0);
        return b.array();
    }

    @Test
    void formatRefusesAVolumeAbove4PiBAndWritesNothing() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(4), power);
        byte[] before = image(cache);
        FormatException e = assertThrows(FormatException.class, () -> CacheEngine.format(cache, 1,
                List.of(new VolumeEntry(1, TOO_LARGE, "big", "big"))));
        assertTrue(e.getMessage().contains("4 PiB"), e.getMessage());
        assertArrayEquals(before, image(cache), "nothing written");
        CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, LineKeys.MAX_VOLUME_BYTES, "4 PiB", "big")));
    }

    @Test
    void openRefusesAVolumeAbove4PiBBeforeRecoveryWritesAnything() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(4), power);
        Superblock sb = CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 1 << 20, "v", "big")));
        // A superblock no build of this engine writes: as if formatted by one without the limit.
        Superblock big = new Superblock(sb.nrSegments(), sb.cacheId(), sb.nonce(), sb.formatTimeMillis(),
                List.of(new VolumeEntry(1, TOO_LARGE, "v", "big")));
        cache.write(big.encode(), 0);
        cache.sync();
        byte[] before = image(cache);
        BlockDevice backing = new Sized(new PowerLossDevice("big", 1 << 20, power), TOO_LARGE);
        FormatException e = assertThrows(FormatException.class,
                () -> CacheEngine.open(cache, Map.of(1, backing), new EngineConfig()).close());
        assertTrue(e.getMessage().contains("4 PiB"), e.getMessage());
        assertArrayEquals(before, image(cache), "nothing written");
    }

    @Test
    void formatMakesNoMoreSegmentsThanTheIndexServesAndOpenRefusesMore() throws Exception {
        int lps = Layout.LINES_PER_SEGMENT;
        LineIndex.capacityFor((long) LineTable.MAX_SEGMENTS * lps, LineTable.INDEX_LOAD);
        assertThrows(IllegalArgumentException.class,
                () -> LineIndex.capacityFor((long) (LineTable.MAX_SEGMENTS + 1) * lps, LineTable.INDEX_LOAD));

        Object power = new Object();
        PowerLossDevice small = new PowerLossDevice("cache", (int) Layout.slotOffset(4), power);
        BlockDevice cache = new Sized(small, 16L << 40);
        Superblock sb = CacheEngine.format(cache, 1, List.of(new VolumeEntry(1, 1 << 20, "v", "v")));
        assertEquals(LineTable.MAX_SEGMENTS, sb.nrSegments(), "a 16 TiB cache device holds more segments than one index serves");

        Superblock more = new Superblock(LineTable.MAX_SEGMENTS + 1, sb.cacheId(), sb.nonce(), sb.formatTimeMillis(),
                sb.volumes());
        cache.write(more.encode(), 0);
        cache.sync();
        byte[] before = image(small);
        FormatException e = assertThrows(FormatException.class, () -> CacheEngine.open(cache,
                Map.of(1, new PowerLossDevice("v", 1 << 20, power)), new EngineConfig()).close());
        assertTrue(e.getMessage().contains("at most " + LineTable.MAX_SEGMENTS), e.getMessage());
        assertArrayEquals(before, image(small), "nothing written");
    }
}
