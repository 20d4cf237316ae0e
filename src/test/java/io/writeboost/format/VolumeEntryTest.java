package io.writeboost.format;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The volume table entry keeps its old layout without an identity, and fits one into the path field's tail. */
class VolumeEntryTest {
    private static VolumeEntry roundTrip(VolumeEntry e) throws FormatException {
        ByteBuffer b = ByteBuffer.allocate(VolumeEntry.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        e.encode(b, 0);
        return VolumeEntry.decode(b, 0);
    }

    @Test
    void anEntryWithoutIdentityKeepsTheWholePathField() throws Exception {
        VolumeEntry e = new VolumeEntry(5, 4096, "v", "/" + "p".repeat(173));
        ByteBuffer b = ByteBuffer.allocate(VolumeEntry.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        e.encode(b, 0);
        assertEquals(0, b.get(1), "identity kind 0, as the reserved byte was");
        assertEquals(174, b.getShort(80));
        assertEquals(e, VolumeEntry.decode(b, 0));
    }

    @Test
    void anEntryWithIdentityKeepsIt() throws Exception {
        byte[] hash = new byte[32];
        for (int i = 0; i < hash.length; i++) {
            hash[i] = (byte) (i * 7 + 1);
        }
        VolumeEntry e = new VolumeEntry(2, 1 << 20, "disk", "/dev/sdb", new BackingIdentity(BackingIdentity.Kind.BLOCK_DEVICE, hash));
        assertEquals(e, roundTrip(e));
        // A path too long for the field is cut before the identity, at a character's start.
        VolumeEntry longPath = e.moved("/" + "é".repeat(80), e.identity());
        VolumeEntry read = roundTrip(longPath);
        assertEquals(e.identity(), read.identity());
        assertEquals("/" + "é".repeat(70), read.path());
    }

    @Test
    void anUnknownIdentityKindIsRefused() {
        ByteBuffer b = ByteBuffer.allocate(VolumeEntry.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        new VolumeEntry(1, 4096, "v", "/x").encode(b, 0);
        b.put(1, (byte) 99);
        assertThrows(FormatException.class, () -> VolumeEntry.decode(b, 0));
    }
}
