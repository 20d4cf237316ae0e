package io.writeboost.knob;

/**
 * How a cache treats writes and reads (the cache_mode knob, as bcache's and Open CAS's modes).
 * The ordinal is the knob's value and the byte the superblock record keeps (docs/FORMAT.md),
 * so the order is fixed: new modes go at the end.
 */
public enum CacheMode {
    /** Writes land in the cache and are written back later (dirty lines); reads are cached. */
    WRITE_BACK("write-back"),
    /** Writes go to the backing store before they return; their whole lines stay cached as clean lines; no dirty line. */
    WRITE_THROUGH("write-through"),
    /** Whole lines of every write go to the backing store, cached copies dropped; reads are cached (write_around_mode). */
    WRITE_AROUND("write-around"),
    /** Reads and writes go to the backing store; only dirty lines left from before are read from the cache and written back. */
    PASS_THROUGH("pass-through");

    public final String text;

    CacheMode(String text) {
        this.text = text;
    }

    /** The mode with this ordinal (a knob value or a record's byte); write-back for an unknown one. */
    public static CacheMode of(long value) {
        CacheMode[] all = values();
        return value >= 0 && value < all.length ? all[(int) value] : WRITE_BACK;
    }

    /** Whether the write path keeps new dirty lines out of the cache (the modes that write back what is left). */
    public boolean writesAround() {
        return this != WRITE_BACK;
    }

    @Override
    public String toString() {
        return text;
    }
}
