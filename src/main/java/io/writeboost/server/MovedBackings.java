package io.writeboost.server;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.Superblock;
import io.writeboost.format.VolumeEntry;
import io.writeboost.format.VolumeTable;
import io.writeboost.recovery.HeaderRewrite;
import io.writeboost.recovery.Recovery;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Records in the volume table the identity and path of the backing stores the operator
 * accepted as moved (--accept-moved-backing), once {@link Preflight} has let them through and
 * before the cache is opened: from then on, the store as found now is the one checked against.
 */
public final class MovedBackings {
    private static final Logger log = LogManager.getLogger(MovedBackings.class);

    private MovedBackings() {}

    /**
     * Rewrites the volume table of {@code cache} (the header, or the next table copy once a
     * volume was attached or detached) for the volumes named in {@code accepted} whose
     * store differs from the one recorded; a volume whose store has no tag yet is given one.
     * Writes nothing when nothing differs.
     */
    public static void record(BlockDevice cache, List<ServerSettings.Backing> backings, Set<String> accepted) throws IOException {
        if (accepted.isEmpty()) {
            return;
        }
        Superblock header = Recovery.readHeader(cache);
        VolumeTable table = Recovery.readVolumeTable(cache, header);
        List<VolumeEntry> entries = new ArrayList<>(table.volumes());
        boolean changed = false;
        for (int i = 0; i < entries.size(); i++) {
            VolumeEntry e = entries.get(i);
            if (!accepted.contains(e.name())) {
                continue;
            }
            Path path = backings.get(i).path().toAbsolutePath();
            StoreIdentity.Found found = StoreIdentity.of(path, true);
            if (!found.identity().equals(e.identity()) || !e.path().equals(path.toString())) {
                entries.set(i, e.moved(path.toString(), found.identity()));
                log.info("volume '{}': recorded backing store {} ({}) in place of {} ({})", e.name(), path, found.text(), e.path(),
                        e.identity());
                changed = true;
            }
        }
        if (!changed) {
            return;
        }
        if (table.generation() == 0) {
            HeaderRewrite.write(cache, header.withVolumes(entries));
        } else {
            // Volumes were attached or detached: the newest table copy is what a start reads, so
            // the accepted stores go into the next copy, written as an attach writes it.
            Recovery.writeVolumeTable(cache, table.next(entries, table.retiredAt()));
        }
    }

    /** The entries of a new format: each store's identity, a regular file given its tag when it has none. */
    public static List<VolumeEntry> identified(List<VolumeEntry> entries, List<ServerSettings.Backing> backings) throws IOException {
        List<VolumeEntry> out = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            VolumeEntry e = entries.get(i);
            Path path = backings.get(i).path().toAbsolutePath();
            out.add(e.moved(path.toString(), StoreIdentity.of(path, true).identity()));
        }
        return out;
    }
}
