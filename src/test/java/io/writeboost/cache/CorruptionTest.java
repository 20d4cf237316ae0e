package io.writeboost.cache;

import io.writeboost.format.Layout;
import io.writeboost.format.SuperblockRecord;
import io.writeboost.testutil.Rig;
import io.writeboost.testutil.SectorModel;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Flip, zero and shuffle bytes of the superblock, the records, segment headers and whole
 * segments: a start must either refuse with a clear error or come up with every sector
 * holding data once written there, or come up and fail with a checksum error before serving
 * the damaged segment or acknowledging a flush, after which the next start comes up; never an
 * unhandled exception, never garbage.
 * -Dcorrupt.trials raises the count for long runs.
 */
class CorruptionTest {
    static final int TRIALS = Integer.getInteger("corrupt.trials", 400);
    static final int SEGMENTS = 6;
    static final int VOLUME = 1 << 20;

    @Test
    void corruptMetadataIsRefusedOrRecoveredNeverGarbage() throws Exception {
        Rig rig = new Rig(SEGMENTS, 2, VOLUME, new EngineConfig().ramBuffers(2));
        Random rnd = new Random(77);
        long id = 1;
        for (int i = 0; i < 1200; i++) {
            int dev = 1 + rnd.nextInt(2);
            int n = 1 + rnd.nextInt(16);
            int sector = rnd.nextInt(VOLUME / 512 - n);
            ByteBuffer b = ByteBuffer.allocate(n * 512);
            for (int s = 0; s < n; s++) {
                SectorModel.stamp(b, s * 512, id, dev, sector + s);
            }
            id++;
            rig.engine.write(dev, sector, n, b);
            if (i % 100 == 0) {
                rig.engine.flush();
            }
        }
        rig.engine.close();
        byte[] image = rig.cache.visibleBytes().clone();
        int refused = 0, recovered = 0, failedThenRecovered = 0;
        for (int t = 0; t < TRIALS; t++) {
            byte[] bad = image.clone();
            String what = corrupt(bad, rnd);
            rig.cache = io.writeboost.testutil.PowerLossDevice.of("cache", bad, rig.power);
            // A clean stop's record vouches for every segment, so corruption inside one is found
            // only by the verification behind the start: that run fails (reads of the segment and
            // flushes are refused), and the next start, on what the failed run left, cuts the log.
            for (int run = 1; ; run++) {
                try {
                    rig.open();
                } catch (IOException e) {
                    assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), what + ": refused without a message");
                    refused++;
                    break;
                } catch (RuntimeException | Error e) {
                    throw new AssertionError(what + ": unhandled " + e, e);
                }
                boolean failedLate = false;
                try {
                    readAllChecked(rig.engine, what);
                    rig.engine.flush();
                } catch (IOException e) {
                    assertTrue(String.valueOf(rig.engine.status().failure()).contains("checksum"),
                            what + ": run " + run + " refused I/O for another reason: " + e);
                    assertTrue(run == 1, what + ": the start after a failed verification verifies again and fails again");
                    failedLate = true;
                } finally {
                    try {
                        rig.engine.close();
                    } catch (IOException ignored) {
                        // a corrupt device may fail the clean stop; the checks above are what matter
                    }
                }
                if (!failedLate) {
                    if (run == 1) {
                        recovered++;
                    } else {
                        failedThenRecovered++;
                    }
                    break;
                }
                rig.cache = rig.cache.reopen(rig.power);
            }
        }
        System.out.printf("CorruptionTest: %d corruptions tried, %d refused at start with an error, %d recovered, "
                + "%d failed in verification and recovered at the next start, 0 garbage%n", TRIALS, refused, recovered, failedThenRecovered);
        assertTrue(recovered > 0 && refused > 0 && failedThenRecovered > 0,
                "every outcome occurs: " + recovered + " recovered, " + refused + " refused, " + failedThenRecovered + " failed then recovered");
    }

    /** Reads both volumes whole; every sector must hold a version written to it, or zeros. */
    private static void readAllChecked(CacheEngine engine, String what) throws IOException {
        for (int dev = 1; dev <= 2; dev++) {
            ByteBuffer all = ByteBuffer.allocate(VOLUME);
            engine.read(dev, 0, VOLUME / 512, all);
            for (int s = 0; s < VOLUME / 512; s++) {
                if (SectorModel.decode(all, s * 512, dev, s) < 0) {
                    fail(what + ": dev " + dev + " sector " + s + " holds garbage");
                }
            }
        }
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
                java.util.Arrays.fill(img, at, at + 512, (byte) 0);
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
                byte[] tmp = java.util.Arrays.copyOfRange(img, seg, seg + Layout.SEGMENT_SIZE);
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
