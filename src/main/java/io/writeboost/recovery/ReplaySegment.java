package io.writeboost.recovery;

/** A segment recovery found valid and in sequence: its id, ring slot and header entries. */
public record ReplaySegment(long id, int slot, int nrLines, long[] keys, byte[] dirty) {
}
