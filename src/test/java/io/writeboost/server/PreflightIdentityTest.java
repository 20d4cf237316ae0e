package io.writeboost.server;

import io.writeboost.cache.CacheEngine;
import io.writeboost.device.FileBlockDevice;
import io.writeboost.format.BackingIdentity;
import io.writeboost.format.VolumeEntry;
import io.writeboost.testutil.Loop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The server's check of backing identities, in process: a store that is not the recorded one
 * is refused by {@link MountServer#preflight()} before anything is written; a block device is
 * known by its stable id (a loop device by its backing file's).
 */
class PreflightIdentityTest {
    @TempDir
    Path dir;

    private static Path file(Path p) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        return p;
    }

    private static ServerSettings settings(Path cache, Path mnt, List<ServerSettings.Backing> backings, Set<String> accept) {
        return new ServerSettings(cache, backings, mnt, false, false, null, false, null, Map.of(), false, null, true, true,
                false, false, null, accept);
    }

    @Test
    void aSwappedStoreIsRefusedByThePreflightAndAcceptedOnRequest() throws Exception {
        Path a = file(dir.resolve("a")), b = file(dir.resolve("b")), cache = dir.resolve("cache");
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        try (FileBlockDevice c = FileBlockDevice.createSparse(cache, 4 << 20)) {
            List<ServerSettings.Backing> given = List.of(new ServerSettings.Backing("a", a), new ServerSettings.Backing("b", b));
            CacheEngine.format(c, 1, MovedBackings.identified(List.of(new VolumeEntry(1, 4 << 20, "a", ""),
                    new VolumeEntry(2, 4 << 20, "b", "")), given));
        }
        List<ServerSettings.Backing> swapped = List.of(new ServerSettings.Backing("a", b), new ServerSettings.Backing("b", a));
        MountServer refused = new MountServer(settings(cache, mnt, swapped, Set.of()));
        RequestException e = assertThrows(RequestException.class, refused::preflight);
        assertTrue(e.getMessage().contains("given for volume 'a' is not the one"), e.getMessage());
        // The same checks without the locks a MountServer would keep until it ran.
        Preflight.check(settings(cache, mnt, swapped, Set.of("a", "b")));
        Preflight.check(settings(cache, mnt, List.of(new ServerSettings.Backing("a", a), new ServerSettings.Backing("b", b)), Set.of()));
    }

    @Test
    void aLoopDeviceIsKnownByItsBackingFile() throws Exception {
        Path a = file(dir.resolve("a")), b = file(dir.resolve("b"));
        BackingIdentity onA, onB;
        try (Loop loop = Loop.attach(a)) {
            StoreIdentity.Found found = StoreIdentity.of(loop.device, true);
            assertEquals(BackingIdentity.Kind.BLOCK_DEVICE, found.identity().kind());
            assertTrue(found.text().startsWith("device id loop on file tag"), found.text());
            onA = found.identity();
            assertEquals(onA, StoreIdentity.of(loop.device, false).identity(), "the same store, the same identity");
        }
        try (Loop loop = Loop.attach(b)) {
            onB = StoreIdentity.of(loop.device, true).identity();
        }
        assertNotEquals(onA, onB);
    }
}
