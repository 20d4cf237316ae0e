package io.writeboost.cache;

import java.io.IOException;

/**
 * Verifies, in id order, the checksums of the segments recovery replayed from their headers
 * alone, so that the cache can take I/O before a full read of the cache device. Ends when
 * all are verified; a mismatch fails the engine ({@link SegmentVerification#ensureVerified}).
 */
final class Verifier extends Daemon {
    private final SegmentVerification verification;
    private final int[] slots;

    /** @param slots the unverified slots in id order */
    Verifier(int cacheId, Health health, SegmentVerification verification, int[] slots) {
        super("verifier", cacheId, health);
        this.verification = verification;
        this.slots = slots;
    }

    @Override
    protected void work() {
        for (int slot : slots) {
            if (health.stopped()) {
                return;
            }
            try {
                verification.ensureVerified(slot);
            } catch (IOException e) {
                // A checksum that did not match failed the engine already; a segment the device
                // cannot read back fails over (flushes would wait for its verification for ever).
                health.cacheDeviceFailed(e);
                return;
            }
        }
    }
}
