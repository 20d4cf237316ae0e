package io.writeboost.format;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decodes the committed image of format version 1 field by field. If this fails, the code
 * no longer reads caches written by released versions: a format change must be deliberate
 * (a new version number, a new golden image, and a reader for the old one).
 */
class GoldenImageTest {
    static byte[] golden() throws Exception {
        Path p = Path.of("test-images/cache-format-v1.img.gz");
        try (InputStream in = new GZIPInputStream(Files.newInputStream(p))) {
            return in.readAllBytes();
        }
    }

    @Test
    void superblockRecordAndHeadersDecode() throws Exception {
        byte[] img = golden();
        assertEquals(Layout.slotOffset(3), img.length);
        ByteBuffer b = ByteBuffer.wrap(img);

        Superblock sb = Superblock.decode(b.duplicate());
        assertEquals(3, sb.nrSegments());
        assertEquals(7, sb.cacheId());
        assertEquals(0x5742_4F4F_5354_0001L, sb.nonce());
        assertEquals(1_764_000_000_000L, sb.formatTimeMillis());
        assertEquals(GoldenImage.VOLUMES, sb.volumes());
        assertEquals(0x42535453_4F4F4257L, b.order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(0), "magic WBOOSTSB");

        SuperblockRecord a = SuperblockRecord.decode(b.duplicate().position((int) SuperblockRecord.OFFSET_A).slice(), sb.nonce());
        SuperblockRecord bb = SuperblockRecord.decode(b.duplicate().position((int) SuperblockRecord.OFFSET_B).slice(), sb.nonce());
        SuperblockRecord newest = a == null ? bb : bb == null || a.sequence() > bb.sequence() ? a : bb;
        assertEquals(1, newest.sequence(), "format wrote 0, the clean stop wrote 1");
        assertEquals(0, newest.lastMigratedId());
        assertEquals(2, newest.lastFlushedId());
        assertTrue(newest.cleanShutdown());

        ByteBuffer seg1 = b.duplicate().position((int) Layout.slotOffset(0)).slice();
        assertTrue(SegmentHeader.crcValid(seg1));
        SegmentHeader h1 = SegmentHeader.decode(seg1);
        assertEquals(1, h1.id);
        assertEquals(sb.nonce(), h1.nonce);
        assertEquals(3, h1.nrLines);
        assertEquals(LineKey.of(1, 0), h1.keys[0]);
        assertEquals((byte) 0xFF, h1.dirty[0]);
        assertEquals(LineKey.of(1, 1), h1.keys[1]);
        assertEquals((byte) 0b0000_0110, h1.dirty[1]);
        assertEquals(LineKey.of(2, 3), h1.keys[2]);
        assertEquals((byte) 0xFF, h1.dirty[2]);
        assertEquals(24L, seg1.order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(SegmentHeader.FIXED_SIZE + 2 * SegmentHeader.ENTRY_SIZE),
                "entries store the backing sector of the line");

        ByteBuffer seg2 = b.duplicate().position((int) Layout.slotOffset(1)).slice();
        assertTrue(SegmentHeader.crcValid(seg2));
        SegmentHeader h2 = SegmentHeader.decode(seg2);
        assertEquals(2, h2.id);
        assertEquals(2, h2.nrLines);
        assertEquals(LineKey.of(1, 0) | LineKey.TOMBSTONE, h2.keys[0]);
        assertEquals(LineKey.of(2, 3), h2.keys[1]);
        assertEquals((byte) 0xFF, h2.dirty[1]);

        assertEquals(null, SegmentHeader.decode(b.duplicate().position((int) Layout.slotOffset(2)).slice()), "slot 2 never written");
    }

    @Test
    void engineOpensGoldenImageAndReadsItsData() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = PowerLossDevice.of("golden", golden(), power);
        CacheEngine e = CacheEngine.open(cache, GoldenImage.zeroBackings(power), new EngineConfig());
        try {
            assertEquals(2, e.recovery().replay().size());
            ByteBuffer got = ByteBuffer.allocate(4096);
            e.read(1, 0, 8, got);
            assertArrayEquals(new byte[4096], got.array(), "dev 1 line 0 was discarded");
            got = ByteBuffer.allocate(1024);
            e.read(1, 9, 2, got);
            assertArrayEquals(GoldenImage.data(2, 1, 9, 2).array(), got.array());
            got = ByteBuffer.allocate(4096);
            e.read(2, 24, 8, got);
            ByteBuffer expected = GoldenImage.data(3, 2, 24, 8);
            expected.put(0, GoldenImage.data(4, 2, 24, 2), 0, 1024);
            assertArrayEquals(expected.array(), got.array(), "dev 2 line 3: two new sectors over the older line");
            assertEquals(1, e.nrDirtyLines(1));
            assertEquals(1, e.nrDirtyLines(2));
        } finally {
            e.close();
        }
    }
}
