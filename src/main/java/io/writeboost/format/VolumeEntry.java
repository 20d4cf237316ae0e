package io.writeboost.format;

/** One row of the superblock's volume table: which backing store a device id names. */
public record VolumeEntry(int deviceId, long sizeBytes, String name, String path) {
    public static final int MAX_NAME_BYTES = 62;
    public static final int MAX_PATH_BYTES = 174;
}
