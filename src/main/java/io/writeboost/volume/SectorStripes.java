package io.writeboost.volume;

import io.writeboost.format.Layout;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Makes a write of part of a sector atomic against every other change of that sector.
 *
 * <p>A write that covers only part of a sector reads the sector, merges its bytes in and
 * writes the whole sector back. Any other write or discard of that sector completing between
 * the read and the write back would be undone by it. Such a read-merge-write holds the
 * exclusive side of the stripes its sectors fall in; whole-sector writes and discards hold the
 * shared side of theirs, so they run in parallel with each other as before and wait only for
 * a read-merge-write of the same stripe.
 *
 * <p>A stripe is every 4 MiB region whose index is the same modulo 64: wide enough that a FUSE
 * request (at most 1 MiB) takes one or two, narrow enough that a partial write in one place
 * does not hold up writers elsewhere. A set of stripes is a 64-bit mask and is always locked in
 * ascending stripe order, so two holders can never wait for each other.
 *
 * <p>Partial-sector writes are rare (the kernel's loop driver and file systems write whole
 * sectors); the cost whole-sector writes pay is one uncontended read-lock per stripe.
 */
final class SectorStripes {
    private static final int REGION_SECTOR_SHIFT = 22 - Layout.SECTOR_SHIFT;
    private static final int STRIPES = Long.SIZE;

    private final ReentrantReadWriteLock[] stripes = new ReentrantReadWriteLock[STRIPES];

    SectorStripes() {
        for (int i = 0; i < STRIPES; i++) {
            stripes[i] = new ReentrantReadWriteLock();
        }
    }

    /** The stripes of sectors [first, last], both included. */
    static long of(long first, long last) {
        long firstRegion = first >>> REGION_SECTOR_SHIFT;
        long lastRegion = last >>> REGION_SECTOR_SHIFT;
        if (lastRegion - firstRegion >= STRIPES - 1) {
            return -1L;
        }
        long mask = 0;
        for (long r = firstRegion; r <= lastRegion; r++) {
            mask |= 1L << (r & (STRIPES - 1));
        }
        return mask;
    }

    /** Takes the shared side of {@code mask}'s stripes: for a change of whole sectors. */
    void lockShared(long mask) {
        for (long m = mask; m != 0; m &= m - 1) {
            stripes[Long.numberOfTrailingZeros(m)].readLock().lock();
        }
    }

    void unlockShared(long mask) {
        for (long m = mask; m != 0; m &= m - 1) {
            stripes[Long.numberOfTrailingZeros(m)].readLock().unlock();
        }
    }

    /** Takes the exclusive side of {@code mask}'s stripes: for a read-merge-write. */
    void lockExclusive(long mask) {
        for (long m = mask; m != 0; m &= m - 1) {
            stripes[Long.numberOfTrailingZeros(m)].writeLock().lock();
        }
    }

    void unlockExclusive(long mask) {
        for (long m = mask; m != 0; m &= m - 1) {
            stripes[Long.numberOfTrailingZeros(m)].writeLock().unlock();
        }
    }

    /** Whether the calling thread holds the exclusive side of every stripe of {@code mask}. */
    boolean heldExclusively(long mask) {
        for (long m = mask; m != 0; m &= m - 1) {
            if (!stripes[Long.numberOfTrailingZeros(m)].isWriteLockedByCurrentThread()) {
                return false;
            }
        }
        return true;
    }
}
