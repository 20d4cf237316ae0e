package io.writeboost.cache;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Layout;
import io.writeboost.format.LostRange;
import io.writeboost.format.SegmentHeader;
import io.writeboost.format.SuperblockRecord;
import io.writeboost.recovery.LostDataException;
import io.writeboost.testutil.PowerLossDevice;
import io.writeboost.testutil.SectorModel;
import io.writeboost.format.VolumeEntry;
import io.writeboost.knob.Knob;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.config.Configurator;
import io.writeboost.testutil.QuietLogs;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Damages a cleanly stopped cache (random bit flips, zeroed sectors, random bytes, swapped
 * slots anywhere; and, targeted, each header field of a segment the record vouches for, its
 * data, the record copies) and starts it. Every trial must end in exactly one of:
 *
 * <ol>
 *   <li>refused with a message naming the loss, nothing written; the start that accepts the
 *       loss then holds the newest acknowledged version in every sector outside the reported
 *       ranges (a damaged superblock, which names nothing because nothing can be read, is
 *       counted apart);
 *   <li>started, and every sector holds its newest acknowledged version;
 *   <li>started, the verification behind the start failed the run (a vouched segment's data
 *       is damaged), and the next start is refused as in 1.
 * </ol>
 *
 * A sector holding zeros or an older version without a report fails the test, as does garbage
 * anywhere. The logs are silenced during the trials (each one logs the damage it meets); the
 * counts are printed at the end. -Dcorrupt.trials raises the count of random trials.
 */
@ExtendWith(QuietLogs.class)
class CorruptionTest {
    static final int TRIALS = Integer.getInteger("corrupt.trials", 400);
    static final int SEGMENTS = 6;
    static final int VOLUME = 1 << 20;
    static final int SECTORS = VOLUME / 512;

    /** The image after a clean stop, the backing stores' images, the newest write id per sector. */
    static byte[] image;
    static final Map<Integer, byte[]> backingImages = new LinkedHashMap<>();
    static long[][] newest;
    static final int[] outcomes = new int[5];
    /** Refusals whose lost segment's header could not be proven: every volume reported whole. */
    static int wholeVolumes;
    static final String[] OUTCOME = {"refused naming the loss", "refused: superblock unreadable", "recovered whole",
            "failed in verification, then refused naming the loss", "accepted after a refusal, intact outside the ranges"};
    static Level savedLevel;

    @BeforeAll
    static void writeAndStop() throws Exception {
        Object power = new Object();
        PowerLossDevice cache = new PowerLossDevice("cache", (int) Layout.slotOffset(SEGMENTS), power);
        Map<Integer, BlockDevice> backings = new LinkedHashMap<>();
        List<VolumeEntry> entries = new ArrayList<>();
        for (int dev = 1; dev <= 2; dev++) {
            backings.put(dev, new PowerLossDevice("backing" + dev, VOLUME, power));
            entries.add(new VolumeEntry(dev, VOLUME, "vol" + dev, "backing" + dev));
        }
        CacheEngine.format(cache, 1, entries);
        // Writeback only when the ring is full: by dirty level it would run in the background and
        // leave a varying number of segments vouched for, some runs fewer than the trials need.
        // Without copy-forward, too: its copies refill the open segment by a batch's timing.
        CacheEngine engine = CacheEngine.open(cache, backings, new EngineConfig().ramBuffers(2).knob(Knob.HIGH_WATERMARK, 0)
                .knob(Knob.COPY_FORWARD, 0));
        Random rnd = new Random(77);
        newest = new long[3][SECTORS];
        long id = 1;
        for (int i = 0; i < 1200; i++) {
            int dev = 1 + rnd.nextInt(2);
            int n = 1 + rnd.nextInt(16);
            int sector = rnd.nextInt(SECTORS - n);
            ByteBuffer b = ByteBuffer.allocate(n * 512);
            for (int s = 0; s < n; s++) {
                SectorModel.stamp(b, s * 512, id, dev, sector + s);
                newest[dev][sector + s] = id;
            }
            id++;
            engine.write(dev, sector, n, b);
            if (i % 100 == 0) {
                engine.flush();
            }
        }
        engine.close();
        image = cache.visibleBytes().clone();
        for (Map.Entry<Integer, BlockDevice> e : backings.entrySet()) {
            backingImages.put(e.getKey(), ((PowerLossDevice) e.getValue()).visibleBytes().clone());
        }
        savedLevel = LogManager.getRootLogger().getLevel();
        Configurator.setRootLevel(Level.OFF);
    }

    @AfterAll
    static void report() {
        Configurator.setRootLevel(savedLevel);
        StringBuilder b = new StringBuilder("CorruptionTest: ");
        for (int i = 0; i < outcomes.length; i++) {
            b.append(i == 0 ? "" : ", ").append(outcomes[i]).append(' ').append(OUTCOME[i]);
        }
        System.out.println(b.append(" (").append(wholeVolumes).append(" of the refusals reported every volume whole: the "
                + "damage reached a header's entries); 0 silent losses, 0 garbage"));
    }

    @Test
    void randomCorruptionIsRefusedWithTheLossOrRecoveredWhole() throws Exception {
        Random rnd = new Random(78);
        int[] before = outcomes.clone();
        for (int t = 0; t < TRIALS; t++) {
            byte[] bad = image.clone();
            String what = corrupt(bad, rnd);
            trial(bad, what);
        }
        summarise("random", before, TRIALS);
        assertTrue(outcomes[0] > before[0] && outcomes[1] > before[1] && outcomes[2] > before[2] && outcomes[3] > before[3],
                "every outcome occurs: " + Arrays.toString(outcomes));
    }

    /** Each field of a vouched segment's header copy, its data, its whole header, and the records. */
    @Test
    void targetedDamageToVouchedSegmentsAndRecordsIsNeverSilent() throws Exception {
        int[] before = outcomes.clone();
        SuperblockRecord record = newestRecord(image);
        String[] fields = {"magic", "version", "lines", "id", "nonce", "crc", "data crc", "sequence", "reserved", "entry 0",
                "last entry"};
        int[] offsets = {0, 4, 6, 8, 16, 24, 28, 32, 40, 64 + 3, -1};
        int vouchedSlots = 0;
        for (int slot = 0; slot < SEGMENTS; slot++) {
            int at = (int) Layout.slotOffset(slot);
            SegmentHeader h = decodeAny(image, at);
            if (h == null || h.id <= record.lastMigratedId() || h.id > record.lastFlushedId()) {
                continue;
            }
            vouchedSlots++;
            int copy = at + SegmentHeader.copyOffset(h.seq);
            for (int f = 0; f < fields.length; f++) {
                byte[] bad = image.clone();
                int off = offsets[f] >= 0 ? offsets[f] : SegmentHeader.FIXED_SIZE + (h.nrLines - 1) * SegmentHeader.ENTRY_SIZE + 1;
                bad[copy + off] ^= 0x10;
                trial(bad, "segment " + h.id + " (slot " + slot + "): header field " + fields[f] + " flipped");
            }
            byte[] bad = image.clone();
            Arrays.fill(bad, at, at + Layout.SEGMENT_HEADER_SIZE, (byte) 0);
            trial(bad, "segment " + h.id + ": both header copies zeroed");
            bad = image.clone();
            bad[at + SegmentHeader.lineOffset(h.nrLines - 1) + 100] ^= 1;
            trial(bad, "segment " + h.id + ": a bit of its last line flipped");
        }
        assertTrue(vouchedSlots >= 2, "the image has vouched segments to damage: " + vouchedSlots);
        for (long off : new long[] {SuperblockRecord.OFFSET_A, SuperblockRecord.OFFSET_B}) {
            byte[] bad = image.clone();
            bad[(int) off + 24] ^= 1;
            trial(bad, "record copy at " + off + ": last_migrated flipped");
        }
        byte[] bad = image.clone();
        bad[(int) SuperblockRecord.OFFSET_A + 8] ^= 1;
        bad[(int) SuperblockRecord.OFFSET_B + 8] ^= 1;
        trial(bad, "both record copies: sequence flipped");
        summarise("targeted", before, -1);
        assertTrue(outcomes[0] > before[0] && outcomes[3] > before[3], "targeted damage is found at start and behind it: "
                + Arrays.toString(outcomes));
    }

    private static void summarise(String which, int[] before, int trials) {
        int n = 0;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 4; i++) {
            n += outcomes[i] - before[i];
            b.append(i == 0 ? "" : ", ").append(outcomes[i] - before[i]).append(' ').append(OUTCOME[i]);
        }
        assertTrue(trials < 0 || n == trials, which + ": every trial ended in exactly one outcome");
        System.out.println("CorruptionTest, " + which + ": " + n + " trials: " + b);
    }

    /** The cache's valid header copy in a slot, whatever its nonce is (the test knows none). */
    private static SegmentHeader decodeAny(byte[] img, int at) {
        SegmentHeader a = SegmentHeader.decode(ByteBuffer.wrap(img, at, 4096).slice(), 0);
        SegmentHeader b = SegmentHeader.decode(ByteBuffer.wrap(img, at + 4096, 4096).slice(), 0);
        if (a == null || b == null) {
            return a == null ? b : a;
        }
        return a.id != b.id ? (a.id > b.id ? a : b) : (a.seq > b.seq ? a : b);
    }

    private static SuperblockRecord newestRecord(byte[] img) throws IOException {
        long nonce = io.writeboost.format.Superblock.decode(ByteBuffer.wrap(img, 0, io.writeboost.format.Superblock.REGION)).nonce();
        SuperblockRecord a = SuperblockRecord.decode(ByteBuffer.wrap(img, (int) SuperblockRecord.OFFSET_A, 4096).slice(), nonce);
        SuperblockRecord b = SuperblockRecord.decode(ByteBuffer.wrap(img, (int) SuperblockRecord.OFFSET_B, 4096).slice(), nonce);
        return a == null ? b : b == null || a.sequence() > b.sequence() ? a : b;
    }

    /** One start on {@code bad}, classified into exactly one outcome, or a failure. */
    private static void trial(byte[] bad, String what) throws Exception {
        Object power = new Object();
        PowerLossDevice cache = PowerLossDevice.of("cache", bad, power);
        Map<Integer, BlockDevice> backings = backings(power);
        CacheEngine engine;
        try {
            engine = CacheEngine.open(cache, backings, new EngineConfig().ramBuffers(2));
        } catch (LostDataException e) {
            refused(cache, backings, e, what, 0);
            return;
        } catch (FormatException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains("superblock"), what + ": refused, but not for the "
                    + "superblock, and without naming a loss: " + e.getMessage());
            assertArrayEquals(bad, cache.visibleBytes(), what + ": a refused start wrote to the cache");
            outcomes[1]++;
            return;
        } catch (IOException | RuntimeException | Error e) {
            throw new AssertionError(what + ": start failed other than by a refusal: " + e, e);
        }
        boolean failedLate = false;
        try {
            checkNewest(engine, what, List.of());
            engine.flush();
        } catch (IOException e) {
            assertTrue(String.valueOf(engine.status().failure()).contains("checksum"),
                    what + ": refused I/O for another reason than a checksum: " + e);
            failedLate = true;
        } finally {
            try {
                engine.close();
            } catch (IOException ignored) {
                // a failed run fails its clean stop too; what it left is checked next
            }
        }
        if (!failedLate) {
            outcomes[2]++;
            return;
        }
        PowerLossDevice next = cache.reopen(power);
        try {
            CacheEngine again = CacheEngine.open(next, backings, new EngineConfig().ramBuffers(2));
            again.close();
            fail(what + ": the start after a failed verification came up without reporting the loss");
        } catch (LostDataException e) {
            refused(next, backings, e, what, 3);
        }
    }

    /** A refusal: it names the loss and wrote nothing; accepting it must leave the rest intact. */
    private static void refused(PowerLossDevice cache, Map<Integer, BlockDevice> backings, LostDataException e, String what,
                                int outcome) throws Exception {
        String m = e.getMessage();
        // Without a record, losing it may be all there is to report: the segments may all replay.
        assertTrue(m.contains("lost") && m.contains("--accept-data-loss")
                        && (!e.loss().ranges().isEmpty() || e.loss().cause().contains("superblock record")),
                what + ": the refusal does not name the loss: " + m);
        byte[] before = cache.visibleBytes().clone();
        outcomes[outcome]++;
        wholeVolumes += e.loss().headersLost() ? 1 : 0;
        CacheEngine engine = CacheEngine.open(cache, backings, new EngineConfig().ramBuffers(2).acceptDataLoss(true));
        try {
            assertTrue(engine.status().lostLines() >= e.loss().dirtyLines(), what + ": the status shows the loss");
            checkNewest(engine, what + " (accepted)", e.loss().ranges());
            engine.flush();
        } finally {
            engine.close();
        }
        assertTrue(!Arrays.equals(before, cache.visibleBytes()), what + ": the accepting start went on and wrote");
        outcomes[4]++;
    }

    private static Map<Integer, BlockDevice> backings(Object power) {
        Map<Integer, BlockDevice> m = new LinkedHashMap<>();
        backingImages.forEach((dev, img) -> m.put(dev, PowerLossDevice.of("backing" + dev, img.clone(), power)));
        return m;
    }

    /** Every sector outside {@code lost} holds the newest write to it; inside, some write or zeros, never garbage. */
    private static void checkNewest(CacheEngine engine, String what, List<LostRange> lost) throws IOException {
        for (int dev = 1; dev <= 2; dev++) {
            ByteBuffer all = ByteBuffer.allocate(VOLUME);
            engine.read(dev, 0, SECTORS, all);
            for (int s = 0; s < SECTORS; s++) {
                long got = SectorModel.decode(all, s * 512, dev, s);
                if (got < 0) {
                    fail(what + ": dev " + dev + " sector " + s + " holds garbage");
                }
                if (got != newest[dev][s] && !inside(lost, dev, s)) {
                    fail(what + ": dev " + dev + " sector " + s + " holds write " + got + ", not the newest acknowledged write "
                            + newest[dev][s] + ", and no report names it");
                }
            }
        }
    }

    private static boolean inside(List<LostRange> ranges, int dev, long sector) {
        for (LostRange r : ranges) {
            if (r.device() == dev && sector >= r.firstSector() && sector <= r.lastSector()) {
                return true;
            }
        }
        return false;
    }

    /** Damages {@code img} in one of several ways; returns a description. */
    static String corrupt(byte[] img, Random rnd) {
        int kind = rnd.nextInt(7);
        int slot = rnd.nextInt(SEGMENTS);
        int seg = (int) Layout.slotOffset(slot);
        switch (kind) {
            case 0 -> {
                int at = rnd.nextInt(4096);
                img[at] ^= (byte) (1 << rnd.nextInt(8));
                return "superblock bit flip at " + at;
            }
            case 1 -> {
                int at = (int) (rnd.nextBoolean() ? SuperblockRecord.OFFSET_A : SuperblockRecord.OFFSET_B) + rnd.nextInt(48);
                img[at] ^= (byte) (1 + rnd.nextInt(255));
                return "record byte flip at " + at;
            }
            case 2 -> {
                int at = seg + rnd.nextInt(4096);
                img[at] ^= (byte) (1 + rnd.nextInt(255));
                return "header byte flip in slot " + slot + " at +" + (at - seg);
            }
            case 3 -> {
                int at = seg + rnd.nextInt(Layout.SEGMENT_SIZE - 512);
                Arrays.fill(img, at, at + 512, (byte) 0);
                return "512 zero bytes in slot " + slot + " at +" + (at - seg);
            }
            case 4 -> {
                byte[] junk = new byte[Layout.SEGMENT_SIZE];
                rnd.nextBytes(junk);
                System.arraycopy(junk, 0, img, seg, junk.length);
                return "slot " + slot + " overwritten with random bytes";
            }
            case 5 -> {
                int other = (slot + 1 + rnd.nextInt(SEGMENTS - 1)) % SEGMENTS;
                int o = (int) Layout.slotOffset(other);
                byte[] tmp = Arrays.copyOfRange(img, seg, seg + Layout.SEGMENT_SIZE);
                System.arraycopy(img, o, img, seg, Layout.SEGMENT_SIZE);
                System.arraycopy(tmp, 0, img, o, Layout.SEGMENT_SIZE);
                return "slots " + slot + " and " + other + " swapped";
            }
            default -> {
                int at = rnd.nextInt(img.length - 64);
                for (int i = 0; i < 64; i++) {
                    img[at + i] = (byte) rnd.nextInt(256);
                }
                return "64 random bytes at " + at;
            }
        }
    }
}
