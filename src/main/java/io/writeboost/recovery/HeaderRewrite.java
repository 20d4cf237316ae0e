package io.writeboost.recovery;

import io.writeboost.device.BlockDevice;
import io.writeboost.format.FormatException;
import io.writeboost.format.Superblock;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Rewrites the superblock header of a formatted cache (its volume table, when the operator
 * accepts a moved backing store), which the format otherwise writes once. The header has one
 * place; a write of it cut short by a power loss would leave no valid header and the cache's
 * dirty data unreachable. So the new header goes first, whole and synced, to the spare place
 * ({@link Superblock#SPARE_OFFSET}), then over the header, synced again: whenever the power
 * goes, one of the two is whole, and {@link #spareOrNull} finds the spare when the header is not.
 */
public final class HeaderRewrite {
    private static final Logger log = LogManager.getLogger(HeaderRewrite.class);

    private HeaderRewrite() {}

    /** Replaces the header of {@code cache} (already formatted, with the same nonce) by {@code sb}. */
    public static void write(BlockDevice cache, Superblock sb) throws IOException {
        ByteBuffer header = sb.encode();
        cache.write(header.duplicate(), Superblock.SPARE_OFFSET);
        cache.sync();
        cache.write(header.duplicate(), 0);
        cache.sync();
    }

    /** Clears the spare place at format: a spare of an earlier format must never stand in for this one's header. */
    public static void clearSpare(BlockDevice cache) throws IOException {
        cache.write(ByteBuffer.allocateDirect(4096), Superblock.SPARE_OFFSET);
    }

    /**
     * The spare header when {@code region} (read from offset 0) has the magic but not a valid
     * header, and the spare is valid and belongs to this format (a record copy with its nonce
     * is valid); null otherwise.
     */
    static Superblock spareOrNull(BlockDevice cache, ByteBuffer region) throws IOException {
        if (!Superblock.hasMagic(region)) {
            return null;
        }
        ByteBuffer spare = ByteBuffer.allocate(Superblock.REGION);
        cache.read(spare, Superblock.SPARE_OFFSET);
        Superblock sb;
        try {
            sb = Superblock.decode(spare);
        } catch (FormatException e) {
            return null;
        }
        if (Recovery.readRecordOrNull(cache, sb) == null) {
            return null;
        }
        log.warn("{}: the superblock header is not valid but its spare copy is (a rewrite of the volume table was cut short); "
                + "reading the spare", cache.name());
        return sb;
    }
}
