package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * One row of the superblock's volume table: which backing store a device id names. Its 256
 * bytes are encoded here, and nowhere else, so that whatever writes the table writes the same
 * entry:
 * <pre>
 *   0 u8 device id   1 u8 backing identity kind (0: none recorded)   2..7 reserved
 *   8 u64 backing size in bytes
 *  16 u16 name length, 18 name (UTF-8, 62 bytes)
 *  80 u16 path length, 82 path (UTF-8: 174 bytes with identity kind 0, else 142)
 * 224 identity value (32 bytes, with an identity kind other than 0)
 * </pre>
 * An entry without an identity keeps the whole path field of the entries written before
 * identities existed; one with an identity takes the field's last 32 bytes for it.
 */
public record VolumeEntry(int deviceId, long sizeBytes, String name, String path, BackingIdentity identity) {
    public static final int SIZE = 256;
    public static final int MAX_NAME_BYTES = 62;
    /** The path bytes an entry with an identity keeps (the longest path that --format records whole). */
    public static final int MAX_PATH_BYTES = 142;
    /** The path bytes of an entry without an identity. */
    static final int MAX_PATH_BYTES_WITHOUT_IDENTITY = 174;
    private static final int KIND = 1, SIZE_BYTES = 8, NAME = 16, PATH = 80, IDENTITY = SIZE - BackingIdentity.VALUE_BYTES;

    public VolumeEntry {
        java.util.Objects.requireNonNull(identity, "identity");
    }

    /** An entry with no identity recorded (as written before identities existed). */
    public VolumeEntry(int deviceId, long sizeBytes, String name, String path) {
        this(deviceId, sizeBytes, name, path, BackingIdentity.NONE);
    }

    /** This entry for the same volume on a store found elsewhere, as accepted by the operator. */
    public VolumeEntry moved(String newPath, BackingIdentity newIdentity) {
        return new VolumeEntry(deviceId, sizeBytes, name, newPath, newIdentity);
    }

    void encode(ByteBuffer b, int off) {
        boolean hasIdentity = identity.kind() != BackingIdentity.Kind.NONE;
        b.put(off, (byte) deviceId);
        b.put(off + KIND, (byte) identity.kind().code);
        b.putLong(off + SIZE_BYTES, sizeBytes);
        putString(b, off + NAME, name, MAX_NAME_BYTES);
        putString(b, off + PATH, path, hasIdentity ? MAX_PATH_BYTES : MAX_PATH_BYTES_WITHOUT_IDENTITY);
        if (hasIdentity) {
            b.put(off + IDENTITY, identity.value());
        }
    }

    /** The entry at {@code off}; the device id's range is the caller's to check. */
    static VolumeEntry decode(ByteBuffer b, int off) throws FormatException {
        BackingIdentity.Kind kind = BackingIdentity.Kind.of(Byte.toUnsignedInt(b.get(off + KIND)));
        BackingIdentity identity = BackingIdentity.NONE;
        if (kind != BackingIdentity.Kind.NONE) {
            byte[] value = new byte[BackingIdentity.VALUE_BYTES];
            b.get(off + IDENTITY, value);
            identity = new BackingIdentity(kind, value);
        }
        return new VolumeEntry(Byte.toUnsignedInt(b.get(off)), b.getLong(off + SIZE_BYTES), getString(b, off + NAME, MAX_NAME_BYTES),
                getString(b, off + PATH, identity == BackingIdentity.NONE ? MAX_PATH_BYTES_WITHOUT_IDENTITY : MAX_PATH_BYTES), identity);
    }

    /** {@code s} cut to at most {@code max} bytes of UTF-8, never inside a character. */
    private static void putString(ByteBuffer b, int off, String s, int max) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(bytes.length, max);
        while (n < bytes.length && n > 0 && (bytes[n] & 0xC0) == 0x80) {
            n--;
        }
        b.putShort(off, (short) n);
        b.put(off + 2, bytes, 0, n);
    }

    private static String getString(ByteBuffer b, int off, int max) throws FormatException {
        int n = Short.toUnsignedInt(b.getShort(off));
        if (n > max) {
            throw new FormatException("superblock string length " + n + " exceeds " + max);
        }
        byte[] bytes = new byte[n];
        b.get(off + 2, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

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
