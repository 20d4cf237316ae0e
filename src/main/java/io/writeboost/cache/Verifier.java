package io.writeboost.cache;

import io.writeboost.recovery.ReplaySegment;

import java.util.List;

/**
 * Verifies, in id order, the checksums of the segments recovery replayed from their headers
 * alone, so that the cache can take I/O before a full read of the cache device. Ends when
 * all are verified; a mismatch fails the engine ({@link CacheEngine#ensureVerified}).
 */
final class Verifier extends Daemon {
    private final int[] slots;

    Verifier(CacheEngine engine, List<ReplaySegment> replay) {
        super(engine, "verifier");
        slots = replay.stream().filter(s -> !s.verified()).mapToInt(ReplaySegment::slot).toArray();
    }

    @Override
    protected void work() throws Exception {
        for (int slot : slots) {
            if (engine.closing || engine.failure != null) {
                return;
            }
            try {
                engine.ensureVerified(slot);
            } catch (java.io.IOException e) {
                engine.fail(e); // already failed when the checksum did not match; a read error fails it here
                return;
            }
        }
    }
}
