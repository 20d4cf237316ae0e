package io.writeboost.format;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * Which backing store a volume was formatted on, beyond its name and size: what tells two
 * disks of the same size apart after their paths have traded places. Stored in the volume
 * table entry ({@link VolumeEntry}); what each kind holds and why is in docs/FORMAT.md.
 *
 * @param kind  how the store was identified
 * @param value {@link #VALUE_BYTES} bytes, meaningful as the kind says (zeros for NONE)
 */
public record BackingIdentity(Kind kind, byte[] value) {
    public static final int VALUE_BYTES = 32;
    /** Bytes of a file tag, the random part of FILE_TAG. */
    public static final int TAG_BYTES = 16;

    public enum Kind {
        /** Written before identities were recorded: the store cannot be told apart from another of its size. */
        NONE(0, "no identity recorded"),
        /** A regular file: a random tag kept in its extended attribute {@code user.writeboost.id}. */
        FILE_TAG(1, "file tag"),
        /** A regular file on a file system without user extended attributes: its device and inode numbers. */
        FILE_INODE(2, "file inode"),
        /** A block device: the SHA-256 of its stable id (WWN, serial, device-mapper or md UUID, loop backing file's identity). */
        BLOCK_DEVICE(3, "device id"),
        /** A block device that offers no stable id: recorded as such, checked only by size. */
        UNIDENTIFIED(4, "a block device without a stable id");

        public final int code;
        public final String label;

        Kind(int code, String label) {
            this.code = code;
            this.label = label;
        }

        static Kind of(int code) throws FormatException {
            for (Kind k : values()) {
                if (k.code == code) {
                    return k;
                }
            }
            throw new FormatException("volume table entry has backing identity kind " + code + ", unknown to this build");
        }
    }

    public static final BackingIdentity NONE = new BackingIdentity(Kind.NONE, new byte[VALUE_BYTES]);
    public static final BackingIdentity UNIDENTIFIED_DEVICE = new BackingIdentity(Kind.UNIDENTIFIED, new byte[VALUE_BYTES]);

    public BackingIdentity {
        if (value.length > VALUE_BYTES) {
            throw new IllegalArgumentException("an identity holds at most " + VALUE_BYTES + " bytes, got " + value.length);
        }
        value = Arrays.copyOf(value, VALUE_BYTES);
    }

    /** An identity that can prove a store is not the recorded one (NONE and UNIDENTIFIED cannot). */
    public boolean comparable() {
        return kind != Kind.NONE && kind != Kind.UNIDENTIFIED;
    }

    @Override
    public byte[] value() {
        return value.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BackingIdentity other && other.kind == kind && Arrays.equals(other.value, value);
    }

    @Override
    public int hashCode() {
        return kind.hashCode() * 31 + Arrays.hashCode(value);
    }

    /** For messages: the kind and enough of the value to tell two apart. */
    @Override
    public String toString() {
        return switch (kind) {
            case NONE, UNIDENTIFIED -> kind.label;
            case FILE_TAG -> kind.label + " " + HexFormat.of().formatHex(value, 0, TAG_BYTES);
            case FILE_INODE -> kind.label + " " + java.nio.ByteBuffer.wrap(value).getLong(8) + " on device number "
                    + java.nio.ByteBuffer.wrap(value).getLong(0);
            case BLOCK_DEVICE -> kind.label + " hash " + HexFormat.of().formatHex(value, 0, 8);
        };
    }
}
