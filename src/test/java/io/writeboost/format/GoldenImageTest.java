package io.writeboost.format;

import io.writeboost.cache.CacheEngine;
import io.writeboost.cache.EngineConfig;
import io.writeboost.device.BlockDevice;
import io.writeboost.recovery.UpgradeFromV1;
import io.writeboost.testutil.PowerLossDevice;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decodes the committed image of format version 2 field by field. If this fails, the code
 * no longer reads caches written by released versions: a format change must be deliberate
 * (a new version number, a new golden image, and a reader for the old one or a refusal that
 * says what to do). The version 1 image must be refused, never misread.
 */
class GoldenImageTest {
    static byte[] golden(int version) throws Exception {
        Path p = Path.of("test-images/cache-format-v" + version + ".img.gz");
        try (InputStream in = new GZIPInputStream(Files.newInputStream(p))) {
            return in.readAllBytes();
        }
    }

    @Test
    void superblockRecordAndHeaderCopiesDecode() throws Exception {
        byte[] img = golden(2);
        assertEquals(Layout.slotOffset(3), img.length);
        ByteBuffer b = ByteBuffer.wrap(img);

        Superblock sb = Superblock.decode(b.duplicate());
        assertEquals(3, sb.nrSegments());
        assertEquals(7, sb.cacheId());
        assertEquals(0x5742_4F4F_5354_0001L, sb.nonce());
        assertEquals(1_764_000_000_000L, sb.formatTimeMillis());
        assertEquals(GoldenImage.VOLUMES, sb.volumes());
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x42535453_4F4F4257L, le.getLong(0), "magic WBOOSTSB");
        assertEquals(2, le.getShort(8), "format version");
        assertEquals(8192, le.getInt(20), "segment header size: two copies");
        assertEquals(254, le.getInt(24), "lines per segment");

        SuperblockRecord a = SuperblockRecord.decode(b.duplicate().position((int) SuperblockRecord.OFFSET_A).slice(), sb.nonce());
        SuperblockRecord bb = SuperblockRecord.decode(b.duplicate().position((int) SuperblockRecord.OFFSET_B).slice(), sb.nonce());
        SuperblockRecord newest = a == null ? bb : bb == null || a.sequence() > bb.sequence() ? a : bb;
        assertEquals(2, newest.sequence(), "format wrote 0, the start 1, the clean stop 2");
        assertEquals(0, newest.lastMigratedId());
        assertEquals(2, newest.lastFlushedId());
        assertTrue(newest.cleanShutdown());
        // Record version 2 (issue 14): the verify-at-start flag, accepted data loss, a CRC of the whole 4 KiB.
        ByteBuffer rec = le.duplicate().position((int) newest.offset()).slice().order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x43524257, rec.getInt(0), "record magic WBRC");
        assertEquals(2, rec.getShort(4), "record version");
        assertEquals(1, rec.getShort(6), "flags: clean, no verification asked for");
        assertEquals(0L, rec.getLong(48), "lost_lines");
        assertEquals(0, rec.getInt(44), "lost ranges in all");
        assertEquals(0, rec.getInt(56), "lost ranges stored");
        assertFalse(newest.verifyAtStart());
        assertEquals(0, newest.lostLines());
        ByteBuffer flipped = ByteBuffer.allocate(SuperblockRecord.SIZE);
        flipped.put(0, rec, 0, SuperblockRecord.SIZE);
        flipped.put(4000, (byte) 1);
        assertNull(SuperblockRecord.decode(flipped, sb.nonce()), "the CRC covers the ranges' area too");

        // Segment 1: copy 2 (block 0, after the seal) and copy 1 (block 1, the second append).
        ByteBuffer seg1 = b.duplicate().position((int) Layout.slotOffset(0)).slice();
        SegmentHeader c2 = SegmentHeader.decode(seg1, 0);
        SegmentHeader c1 = SegmentHeader.decode(seg1, 4096);
        assertEquals(2, c2.seq);
        assertEquals(1, c1.seq);
        assertEquals(c2.seq, SegmentHeader.newerCopy(seg1, sb.nonce()).seq);
        assertEquals(c1.seq, SegmentHeader.olderCopy(seg1, sb.nonce()).seq);
        assertEquals(1, c2.id);
        assertEquals(sb.nonce(), c2.nonce);
        assertEquals(5, c2.nrLines);
        assertEquals(3, c1.nrLines);
        assertTrue(c2.dataValid(seg1), "copy 2's data CRC covers lines 0..4");
        assertTrue(c1.dataValid(seg1), "copy 1's data CRC covers lines 0..2, untouched by later writes");
        assertEquals(LineKey.of(1, 0), c2.keys[0]);
        assertEquals((byte) 0, c2.dirty[0], "superseded by the tombstone in the same segment");
        assertEquals((byte) 0xFF, c1.dirty[0], "copy 1 still has it dirty");
        assertEquals(LineKey.of(1, 1), c2.keys[1]);
        assertEquals((byte) 0b0000_0110, c2.dirty[1]);
        assertEquals(LineKey.of(2, 3), c2.keys[2]);
        assertEquals(LineKey.of(1, 0) | LineKey.TOMBSTONE, c2.keys[3]);
        assertEquals(LineKey.of(2, 3), c2.keys[4]);
        assertEquals((byte) 0xFF, c2.dirty[4]);
        ByteBuffer seg1le = seg1.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(24L, seg1le.getLong(SegmentHeader.FIXED_SIZE + 2 * SegmentHeader.ENTRY_SIZE),
                "entries store the backing sector of the line");
        assertEquals(0x47455342, seg1le.getInt(0), "magic BSEG");
        assertEquals(2, seg1le.getShort(4), "header version");
        assertEquals(2, seg1le.getInt(32), "sequence number at offset 32");
        assertArrayEquals(GoldenImage.data(1, 1, 0, 8).array(), bytes(seg1, 8192, 4096), "line 0 right after the two copies");

        // Segment 2: written whole, copy 0 in block 0, block 1 empty.
        ByteBuffer seg2 = b.duplicate().position((int) Layout.slotOffset(1)).slice();
        SegmentHeader h2 = SegmentHeader.newerCopy(seg2, sb.nonce());
        assertEquals(2, h2.id);
        assertEquals(0, h2.seq);
        assertEquals(1, h2.nrLines);
        assertTrue(h2.dataValid(seg2));
        assertNull(SegmentHeader.decode(seg2, 4096), "block 1 of a segment written whole is empty");
        assertEquals(LineKey.of(1, 5), h2.keys[0]);

        assertNull(SegmentHeader.newerCopy(b.duplicate().position((int) Layout.slotOffset(2)).slice(), sb.nonce()),
                "slot 2 never written");
    }

    @Test
    void engineOpensGoldenImageAndReadsItsData() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = PowerLossDevice.of("golden", golden(2), power);
        CacheEngine e = CacheEngine.open(cache, GoldenImage.zeroBackings(power), new EngineConfig().knob(io.writeboost.knob.Knob.HIGH_WATERMARK, 0)); // the loaded state, before writeback by level
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
            got = ByteBuffer.allocate(4096);
            e.read(1, 40, 8, got);
            assertArrayEquals(GoldenImage.data(5, 1, 40, 8).array(), got.array());
            assertEquals(2, e.nrDirtyLines(1));
            assertEquals(1, e.nrDirtyLines(2));
        } finally {
            e.close();
        }
    }

    @Test
    void formatVersion1IsRefusedWithWhatToDo() throws Exception {
        byte[] v1 = golden(1);
        Object power = new Object();
        PowerLossDevice cache = PowerLossDevice.of("golden-v1", v1, power);
        FormatException ex = assertThrows(FormatException.class,
                () -> CacheEngine.open(cache, GoldenImage.zeroBackings(power), new EngineConfig()));
        assertTrue(ex.getMessage().contains("format version 1"), ex.getMessage());
        assertTrue(ex.getMessage().contains("fuse-mount upgrade"), ex.getMessage());
        assertArrayEquals(v1, cache.visibleBytes(), "nothing was written to the version 1 cache");
    }

    /**
     * The version 1 image upgraded in place: its log (segment 1: dev 1 line 0, dev 1 line 1
     * sectors 1-2, dev 2 line 3; segment 2: a tombstone for dev 1 line 0 and dev 2 line 3
     * merged) reaches zeroed backing stores, newest copy first, and the cache then opens as
     * version 2, empty, reading the same volumes.
     */
    @Test
    void formatVersion1IsUpgradedInPlace() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = PowerLossDevice.of("golden-v1", golden(1), power);
        Map<Integer, BlockDevice> backings = GoldenImage.zeroBackings(power);
        PowerLossDevice dev1 = (PowerLossDevice) backings.get(1), dev2 = (PowerLossDevice) backings.get(2);
        dev1.write(ByteBuffer.wrap(filled(8 * 512, (byte) 0x5A)), 0); // stale data the tombstone must punch
        dev1.sync();
        Superblock sb = UpgradeFromV1.superblock(cache);
        assertEquals(GoldenImage.CACHE_ID, sb.cacheId());
        assertEquals(GoldenImage.VOLUMES, sb.volumes());
        UpgradeFromV1.Result r = UpgradeFromV1.writeBack(cache, sb, backings);
        assertEquals(new UpgradeFromV1.Result(2, 10, 1, 1, 2), r, "dev 1 line 1 (2 sectors), dev 2 line 3 (8), one tombstone");
        byte[] want1 = new byte[1 << 20], want2 = new byte[512 << 10];
        System.arraycopy(GoldenImage.data(2, 1, 9, 2).array(), 0, want1, 9 * 512, 2 * 512);
        System.arraycopy(GoldenImage.data(4, 2, 24, 2).array(), 0, want2, 24 * 512, 2 * 512);
        System.arraycopy(GoldenImage.data(3, 2, 26, 6).array(), 0, want2, 26 * 512, 6 * 512);
        assertArrayEquals(want1, dev1.durableBytes(), "volume golden1 on its backing store, synced");
        assertArrayEquals(want2, dev2.durableBytes(), "volume golden2 on its backing store, synced");

        CacheEngine.format(cache, sb.cacheId(), sb.volumes());
        CacheEngine e = CacheEngine.open(cache, backings, new EngineConfig());
        try {
            assertEquals(0, e.nrDirtyLines(1) + e.nrDirtyLines(2));
            ByteBuffer got = ByteBuffer.allocate(512 << 10);
            e.read(2, 0, 1024, got);
            assertArrayEquals(want2, got.array());
        } finally {
            e.close();
        }
    }

    private static byte[] filled(int n, byte b) {
        byte[] a = new byte[n];
        java.util.Arrays.fill(a, b);
        return a;
    }

    /** Caches written before record version 2 carry version 1 records: they still open. */
    @Test
    void recordVersion1IsStillRead() {
        ByteBuffer b = ByteBuffer.allocate(SuperblockRecord.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, 0x43524257).putShort(4, (short) 1).putShort(6, (short) 1).putLong(8, 9).putLong(16, 77).putLong(24, 3)
                .putLong(32, 5);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array(), 0, 40);
        b.putInt(40, (int) crc.getValue());
        SuperblockRecord r = SuperblockRecord.decode(b, 77);
        assertEquals(new SuperblockRecord(9, 77, 3, 5, true), r);
        b.putLong(24, 4);
        assertNull(SuperblockRecord.decode(b, 77), "its CRC covers bytes [0, 40)");
    }

    private static byte[] bytes(ByteBuffer b, int at, int n) {
        byte[] out = new byte[n];
        b.get(at, out);
        return out;
    }
}
