package io.writeboost.recovery;

/**
 * A segment recovery found valid and in sequence: its id, ring slot, the sequence number of
 * the header copy it was loaded from, and that copy's entries ({@code clean}: read-cached lines;
 * {@code warm}: those of them a start may keep, docs/FORMAT.md "Clean entries"); {@code verified} false when its
 * data checksum is still to be checked (recovery took its header on the record's word that it
 * was written completely).
 */
public record ReplaySegment(long id, int slot, int seq, int nrLines, long[] keys, byte[] dirty, boolean[] clean, boolean[] warm,
                            boolean verified) {
    /** This segment without its entries ({@code keys}, {@code dirty} and {@code clean} null). */
    public ReplaySegment withoutEntries() {
        return new ReplaySegment(id, slot, seq, nrLines, null, null, null, null, verified);
    }
}
