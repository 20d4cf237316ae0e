package io.writeboost.format;

/** One row of the superblock's volume table: which backing store a device id names. */
public record VolumeEntry(int deviceId, long sizeBytes, String name, String path) {
    public static final int MAX_NAME_BYTES = 62;
    public static final int MAX_PATH_BYTES = 174;

    /**
     * What is wrong with {@code name} as a volume's name, a file name at the mount's root
     * beside {@code caches} and {@code devices}; null when nothing is.
     */
    public static String nameProblem(String name) {
        if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..") || name.equals("caches")
                || name.equals("devices") || name.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            return "volume name '" + name + "' is not a plain file name (no '/', control characters, '.', '..', 'caches' or 'devices')";
        }
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            return "volume name is longer than " + MAX_NAME_BYTES + " bytes";
        }
        return null;
    }
}
