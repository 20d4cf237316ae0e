package io.writeboost.server;

import io.writeboost.format.BackingIdentity;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;

/**
 * Finds what a backing store is, to tell it from another store of the same size
 * ({@link BackingIdentity}; docs/FORMAT.md says why each kind). Nothing here writes the
 * store's data: a file's tag is an extended attribute, a block device's id is read from sysfs.
 */
public final class StoreIdentity {
    /** The file's extended attribute that holds its tag (in the user namespace: user.writeboost.id). */
    static final String TAG_ATTRIBUTE = "writeboost.id";
    private static final SecureRandom RANDOM = new SecureRandom();

    private StoreIdentity() {}

    /**
     * A store's identity and how to name it in a message.
     *
     * @param identity what the volume table records
     * @param text     the identity in the user's words (a block device's id in full, not its hash)
     */
    public record Found(BackingIdentity identity, String text) {
    }

    /**
     * The identity of the store at {@code path} as it is now. With {@code tag}, a regular file
     * that has no tag yet is given one (at format, or when the operator accepts a moved store),
     * and so is a loop device's backing file; without it nothing is written.
     */
    public static Found of(Path path, boolean tag) throws IOException {
        if (Files.isRegularFile(path)) {
            return ofFile(path, tag);
        }
        Object rdev = Files.getAttribute(path, "unix:rdev");
        String id = blockDeviceId(sysfs((Long) rdev), tag);
        if (id == null) {
            return new Found(BackingIdentity.UNIDENTIFIED_DEVICE, BackingIdentity.Kind.UNIDENTIFIED.label);
        }
        return new Found(new BackingIdentity(BackingIdentity.Kind.BLOCK_DEVICE, sha256(id)), "device id " + id);
    }

    private static Found ofFile(Path path, boolean tag) throws IOException {
        UserDefinedFileAttributeView view = Files.getFileAttributeView(path, UserDefinedFileAttributeView.class);
        try {
            if (view != null && view.list().contains(TAG_ATTRIBUTE) && view.size(TAG_ATTRIBUTE) == BackingIdentity.TAG_BYTES) {
                ByteBuffer b = ByteBuffer.allocate(BackingIdentity.TAG_BYTES);
                view.read(TAG_ATTRIBUTE, b);
                return fileTag(b.array());
            }
            if (tag && view != null) {
                byte[] t = new byte[BackingIdentity.TAG_BYTES];
                RANDOM.nextBytes(t);
                view.write(TAG_ATTRIBUTE, ByteBuffer.wrap(t));
                return fileTag(t);
            }
        } catch (IOException | UnsupportedOperationException noExtendedAttributes) {
            // A file system without user extended attributes: the file's place in it instead.
        }
        long dev = (Long) Files.getAttribute(path, "unix:dev");
        long ino = (Long) Files.getAttribute(path, "unix:ino");
        BackingIdentity id = new BackingIdentity(BackingIdentity.Kind.FILE_INODE, ByteBuffer.allocate(16).putLong(dev).putLong(ino).array());
        return new Found(id, id + " (no user.writeboost.id tag)");
    }

    private static Found fileTag(byte[] t) {
        BackingIdentity id = new BackingIdentity(BackingIdentity.Kind.FILE_TAG, t);
        return new Found(id, id.toString());
    }

    /** /sys/dev/block/MAJOR:MINOR of a device number, resolved to the device's own directory. */
    private static Path sysfs(long rdev) throws IOException {
        long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
        long minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
        return Path.of("/sys/dev/block/" + major + ":" + minor).toRealPath();
    }

    /**
     * The stable id of the block device at {@code sys}, the first of: a partition's disk id and
     * its number; a device-mapper or md UUID; a loop device's backing file identity; the
     * disk's WWID; its model and serial number. Null when it has none: its name and number
     * are what change across boots, so they do not count.
     */
    private static String blockDeviceId(Path sys, boolean tag) throws IOException {
        String partition = read(sys.resolve("partition"));
        if (partition != null) {
            String disk = blockDeviceId(sys.getParent(), tag);
            return disk == null ? null : disk + "-part" + partition;
        }
        String v;
        if ((v = read(sys.resolve("dm/uuid"))) != null) {
            return "dm-uuid-" + v;
        }
        if ((v = read(sys.resolve("md/uuid"))) != null) {
            return "md-uuid-" + v;
        }
        if ((v = read(sys.resolve("loop/backing_file"))) != null) {
            Path file = Path.of(v.endsWith(" (deleted)") ? v.substring(0, v.length() - 10) : v);
            return Files.isRegularFile(file) ? "loop on " + ofFile(file, tag).text() : null;
        }
        if ((v = read(sys.resolve("wwid"))) != null || (v = read(sys.resolve("device/wwid"))) != null) {
            return "wwid-" + v;
        }
        if ((v = read(sys.resolve("device/serial"))) != null || (v = read(sys.resolve("serial"))) != null) {
            String model = read(sys.resolve("device/model"));
            return "serial-" + (model == null ? "" : model + "_") + v;
        }
        return null;
    }

    /** A sysfs attribute, trimmed; null when absent or empty. */
    private static String read(Path p) {
        try {
            String s = Files.readString(p, StandardCharsets.UTF_8).strip();
            return s.isEmpty() ? null : s;
        } catch (IOException e) {
            return null;
        }
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }
}
