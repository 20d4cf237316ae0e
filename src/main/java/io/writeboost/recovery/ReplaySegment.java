package io.writeboost.recovery;

/**
 * A segment recovery found valid and in sequence: its id, ring slot and header entries;
 * {@code verified} false when its checksum is still to be checked (recovery took its header
 * on the record's word that it was written completely).
 */
public record ReplaySegment(long id, int slot, int nrLines, long[] keys, byte[] dirty, boolean verified) {
}
