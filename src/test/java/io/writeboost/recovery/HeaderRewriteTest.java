package io.writeboost.recovery;

import io.writeboost.cache.CacheEngine;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.BackingIdentity;
import io.writeboost.format.FormatException;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The volume table rewritten after the format (an accepted moved backing store) survives a
 * rewrite cut short: the header torn, the spare copy stands in; and a spare of an earlier
 * format never does.
 */
class HeaderRewriteTest {
    @TempDir
    Path dir;

    private static final BackingIdentity TAG_A = new BackingIdentity(BackingIdentity.Kind.FILE_TAG, new byte[] {1, 2, 3});
    private static final BackingIdentity TAG_B = new BackingIdentity(BackingIdentity.Kind.FILE_TAG, new byte[] {9, 8, 7});

    private static Superblock moved(Superblock sb) {
        return sb.withVolumes(List.of(sb.volumes().get(0).moved("/new/path", TAG_B)));
    }

    /** The first block of {@code sb}'s header (its checksum) over the old one, not its volume table: a write a power loss cut short. */
    private static void tornHeader(FileBlockDevice cache, Superblock sb) throws Exception {
        cache.write(sb.encode().limit(Superblock.VOLUME_TABLE_OFFSET), 0);
    }

    @Test
    void aRewriteReplacesTheVolumeTable() throws Exception {
        try (FileBlockDevice cache = FileBlockDevice.createSparse(dir.resolve("c"), 4 << 20)) {
            Superblock sb = CacheEngine.format(cache, 3, List.of(new VolumeEntry(1, 1 << 20, "a", "/old/path", TAG_A)));
            HeaderRewrite.write(cache, moved(sb));
            Superblock read = Recovery.readSuperblock(cache);
            assertEquals(moved(sb).volumes(), read.volumes());
            assertEquals(sb.nonce(), read.nonce());
        }
    }

    @Test
    void aTornRewriteLeavesTheSpare() throws Exception {
        try (FileBlockDevice cache = FileBlockDevice.createSparse(dir.resolve("c"), 4 << 20)) {
            Superblock sb = CacheEngine.format(cache, 3, List.of(new VolumeEntry(1, 1 << 20, "a", "/old/path", TAG_A)));
            // The first step of a rewrite done, the second cut short.
            cache.write(moved(sb).encode(), Superblock.SPARE_OFFSET);
            tornHeader(cache, moved(sb).withVolumes(List.of(sb.volumes().get(0).moved("/new/path/that/is/longer", TAG_B))));
            assertThrows(FormatException.class, () -> Superblock.decode(Recovery.superblockRegion(cache)), "the header is torn");
            assertEquals(moved(sb).volumes(), Recovery.readSuperblock(cache).volumes());
        }
    }

    @Test
    void aFormatClearsTheSpareOfTheFormatBefore() throws Exception {
        try (FileBlockDevice cache = FileBlockDevice.createSparse(dir.resolve("c"), 4 << 20)) {
            Superblock first = CacheEngine.format(cache, 3, List.of(new VolumeEntry(1, 1 << 20, "a", "/old/path", TAG_A)));
            HeaderRewrite.write(cache, moved(first));
            Superblock second = CacheEngine.format(cache, 4, List.of(new VolumeEntry(1, 1 << 20, "a", "/old/path", TAG_A)));
            tornHeader(cache, moved(second));
            assertThrows(FormatException.class, () -> Recovery.readSuperblock(cache));
        }
    }
}
