package io.writeboost.format;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/** CRC-32C helpers over ByteBuffer ranges without moving the caller's position. */
public final class Crc {
    private Crc() {}

    public static void update(CRC32C crc, ByteBuffer buf, int from, int length) {
        ByteBuffer view = buf.duplicate();
        view.limit(from + length).position(from);
        crc.update(view);
    }
}
