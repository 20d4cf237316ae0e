package io.writeboost.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Codec of one copy of a segment header (format version 2, docs/FORMAT.md). A slot starts
 * with two 4 KiB copies; the copy with sequence number {@code seq} lives at
 * {@link #copyOffset(int) (seq mod 2) * 4 KiB}.
 *
 * <pre>
 *   0  u32 magic 0x47455342 ("BSEG")     28 u32 crc32c of lines [0, nrLines) of the segment
 *   4  u16 version = 2                   32 u32 sequence number of this copy (0, 1, 2, ...)
 *   6  u16 number of lines (0..254)      36 28 bytes reserved (0)
 *   8  u64 segment id                    64 entries, 12 bytes each, one per line:
 *  16  u64 format nonce of the cache        u64 backing sector of the line, u8 device id (0 = empty),
 *  24  u32 crc32c of this copy (4 KiB,      u8 dirty sector bits, u8 flags (bit 0 = tombstone,
 *      this field taken as 0)                bit 1 = clean, bit 2 = warm), u8 0
 * </pre>
 */
public final class SegmentHeader {
    public static final int MAGIC = 0x47455342;
    public static final short VERSION = 2;
    public static final int FIXED_SIZE = 64;
    public static final int ENTRY_SIZE = 12;
    public static final int FLAG_TOMBSTONE = 1;
    /** A read-cached line: data equal to the backing store's when it was cached, no dirty bits, never written back, not replayed. */
    public static final int FLAG_CLEAN = 2;
    /**
     * With {@link #FLAG_CLEAN}: the line was cached while its backing store had no change
     * outside writeback still unsynced, so its data was durable there; only such clean
     * entries may be replayed at start (docs/FORMAT.md, "Clean entries").
     */
    public static final int FLAG_WARM = 4;

    private static final int OFF_MAGIC = 0, OFF_VERSION = 4, OFF_NR_LINES = 6, OFF_ID = 8, OFF_NONCE = 16, OFF_CRC = 24,
            OFF_DATA_CRC = 28, OFF_SEQ = 32;

    public final long id;
    public final long nonce;
    public final int nrLines;
    public final int seq;
    public final int dataCrc;
    /** Keys as in {@link LineKey}, 0 for an empty entry, tombstone bit set for a discard record. */
    public final long[] keys;
    public final byte[] dirty;
    /** Entries flagged clean (read-cached lines); their dirty bits read as 0. */
    public final boolean[] clean;
    /** Clean entries also flagged {@link #FLAG_WARM}. */
    public final boolean[] warm;

    private SegmentHeader(long id, long nonce, int nrLines, int seq, int dataCrc, long[] keys, byte[] dirty, boolean[] clean,
                          boolean[] warm) {
        this.id = id;
        this.nonce = nonce;
        this.nrLines = nrLines;
        this.seq = seq;
        this.dataCrc = dataCrc;
        this.keys = keys;
        this.dirty = dirty;
        this.clean = clean;
        this.warm = warm;
    }

    /** Byte offset, inside the slot, of the header copy with sequence number {@code seq}. */
    public static int copyOffset(int seq) {
        return (seq & 1) * Layout.HEADER_COPY_SIZE;
    }

    /**
     * Writes header copy {@code seq} for lines {@code keys[base..base+nrLines)} into
     * {@code segment} at {@link #copyOffset} (absolute puts; position untouched); {@code clean}
     * is a bit set over the same line numbers as {@code keys} (null: none clean). The CRCs are
     * filled in by {@link #seal}.
     */
    public static void encode(ByteBuffer segment, long id, long nonce, int nrLines, int seq, long[] keys, byte[] dirty,
                              long[] clean, int base) {
        ByteBuffer b = encodeFixed(segment, id, nonce, nrLines, seq);
        for (int k = 0; k < nrLines; k++) {
            int line = base + k;
            encodeEntry(b, seq, k, keys[line], dirty[line], clean != null && (clean[line >>> 6] & (1L << line)) != 0);
        }
    }

    /**
     * Starts header copy {@code seq} in {@code segment}: zeroes it and writes its fixed fields.
     * Returns the view {@link #encodeEntry} writes the entries through (absolute puts; the
     * segment's position untouched). The CRCs are filled in by {@link #seal}.
     */
    public static ByteBuffer encodeFixed(ByteBuffer segment, long id, long nonce, int nrLines, int seq) {
        int at = copyOffset(seq);
        ByteBuffer b = segment.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < Layout.HEADER_COPY_SIZE; i += 8) {
            b.putLong(at + i, 0L);
        }
        b.putInt(at + OFF_MAGIC, MAGIC);
        b.putShort(at + OFF_VERSION, VERSION);
        b.putShort(at + OFF_NR_LINES, (short) nrLines);
        b.putLong(at + OFF_ID, id);
        b.putLong(at + OFF_NONCE, nonce);
        b.putInt(at + OFF_SEQ, seq);
        return b;
    }

    /**
     * Writes entry {@code k} of header copy {@code seq} into the view {@link #encodeFixed}
     * returned: line {@code key} (0: an empty entry), its dirty bits, and whether it is a clean
     * line (ignored for a tombstone).
     */
    public static void encodeEntry(ByteBuffer view, int seq, int k, long key, int dirty, boolean clean) {
        encodeEntry(view, seq, k, key, dirty, clean, false);
    }

    /** {@link #encodeEntry(ByteBuffer, int, int, long, int, boolean)}, a clean entry flagged {@link #FLAG_WARM} when {@code warm}. */
    public static void encodeEntry(ByteBuffer view, int seq, int k, long key, int dirty, boolean clean, boolean warm) {
        if (key == 0) {
            return;
        }
        int off = copyOffset(seq) + FIXED_SIZE + k * ENTRY_SIZE;
        boolean tombstone = LineKey.isTombstone(key);
        boolean isClean = clean && !tombstone;
        view.putLong(off, LineKey.line(key) * Layout.SECTORS_PER_LINE);
        view.put(off + 8, (byte) LineKey.device(key));
        view.put(off + 9, tombstone || isClean ? 0 : (byte) dirty);
        view.put(off + 10, (byte) (tombstone ? FLAG_TOMBSTONE : isClean ? FLAG_CLEAN | (warm ? FLAG_WARM : 0) : 0));
    }

    /** Stores {@code dataCrc} and then the copy's own CRC into header copy {@code seq} of {@code segment}. */
    public static void seal(ByteBuffer segment, int seq, int dataCrc) {
        int at = copyOffset(seq);
        ByteBuffer b = segment.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(at + OFF_DATA_CRC, dataCrc);
        b.putInt(at + OFF_CRC, 0);
        b.putInt(at + OFF_CRC, copyCrc(b, at));
    }

    /** Bytes of a slot a segment of {@code nrLines} lines occupies: both header copies and its lines. */
    public static int usedBytes(int nrLines) {
        return Layout.SEGMENT_HEADER_SIZE + nrLines * Layout.LINE_SIZE;
    }

    /** Byte offset of line {@code k} inside a slot. */
    public static int lineOffset(int k) {
        return Layout.SEGMENT_HEADER_SIZE + k * Layout.LINE_SIZE;
    }

    /** Folds lines [from, to) of {@code segment} (laid out as a slot) into a running data CRC. */
    public static void updateDataCrc(CRC32C crc, ByteBuffer segment, int from, int to) {
        if (to > from) {
            Crc.update(crc, segment, lineOffset(from), (to - from) * Layout.LINE_SIZE);
        }
    }

    /** True when lines [0, nrLines) of {@code segment} (laid out as a slot) match this copy's data CRC. */
    public boolean dataValid(ByteBuffer segment) {
        if (segment.limit() < usedBytes(nrLines)) {
            return false;
        }
        CRC32C crc = new CRC32C();
        updateDataCrc(crc, segment, 0, nrLines);
        return (int) crc.getValue() == dataCrc;
    }

    /**
     * Decodes the header copy at {@code offset} of {@code buf}; null when it does not carry the
     * segment magic and version 2 or fails its own CRC (never written, foreign, or torn).
     */
    public static SegmentHeader decode(ByteBuffer buf, int offset) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.limit() < offset + Layout.HEADER_COPY_SIZE || b.getInt(offset + OFF_MAGIC) != MAGIC
                || b.getShort(offset + OFF_VERSION) != VERSION || b.getInt(offset + OFF_CRC) != copyCrc(b, offset)) {
            return null;
        }
        int nrLines = Short.toUnsignedInt(b.getShort(offset + OFF_NR_LINES));
        if (nrLines > Layout.LINES_PER_SEGMENT) {
            return null;
        }
        long[] keys = new long[nrLines];
        byte[] dirty = new byte[nrLines];
        boolean[] clean = new boolean[nrLines];
        boolean[] warm = new boolean[nrLines];
        for (int k = 0; k < nrLines; k++) {
            int off = offset + FIXED_SIZE + k * ENTRY_SIZE;
            int dev = Byte.toUnsignedInt(b.get(off + 8));
            if (dev == 0) {
                continue;
            }
            long sector = b.getLong(off);
            long key = LineKey.of(dev & 0x7F, sector / Layout.SECTORS_PER_LINE);
            int flags = b.get(off + 10);
            if ((flags & FLAG_TOMBSTONE) != 0) {
                key |= LineKey.TOMBSTONE;
            }
            keys[k] = key;
            clean[k] = (flags & (FLAG_CLEAN | FLAG_TOMBSTONE)) == FLAG_CLEAN;
            warm[k] = clean[k] && (flags & FLAG_WARM) != 0;
            dirty[k] = clean[k] ? 0 : b.get(off + 9);
        }
        return new SegmentHeader(b.getLong(offset + OFF_ID), b.getLong(offset + OFF_NONCE), nrLines, b.getInt(offset + OFF_SEQ),
                b.getInt(offset + OFF_DATA_CRC), keys, dirty, clean, warm);
    }

    /**
     * A damaged copy whose own CRC holds once its identity fields (magic, version, id, nonce)
     * and its reserved bytes are set to what they must be: then only those were damaged, and
     * its line entries are what was written. Null when the CRC still fails (or the line count
     * is impossible): then nothing in the copy can be trusted.
     */
    public static SegmentHeader provenWith(ByteBuffer buf, int offset, long id, long nonce) {
        ByteBuffer b = ByteBuffer.allocate(Layout.HEADER_COPY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, buf, offset, Layout.HEADER_COPY_SIZE);
        int nrLines = Short.toUnsignedInt(b.getShort(OFF_NR_LINES));
        if (nrLines > Layout.LINES_PER_SEGMENT) {
            return null;
        }
        b.putInt(OFF_MAGIC, MAGIC);
        b.putShort(OFF_VERSION, VERSION);
        b.putLong(OFF_ID, id);
        b.putLong(OFF_NONCE, nonce);
        for (int i = OFF_SEQ + 4; i < FIXED_SIZE; i++) {
            b.put(i, (byte) 0);
        }
        for (int i = FIXED_SIZE + nrLines * ENTRY_SIZE; i < Layout.HEADER_COPY_SIZE; i++) {
            b.put(i, (byte) 0);
        }
        for (int k = 0; k < nrLines; k++) {
            b.put(FIXED_SIZE + k * ENTRY_SIZE + 11, (byte) 0);
        }
        return decode(b, 0);
    }

    /**
     * Whether the copy at {@code offset} is the final copy of {@code valid}'s segment encoded at
     * its seal but written before it was sealed: the identity fields and the next sequence
     * number of that segment, both CRC fields 0, and no line beyond those {@code valid}
     * describes. Engines before 2026-12-02 could send one along with a segment's first append
     * when a seal raced that write, and left it in the slot when the final write had no new
     * line (so the line counts are equal). It describes nothing {@code valid} does not: a start
     * may erase it instead of taking it for damage. A torn write cannot make one: the magic and
     * the CRCs share the first sector, and a sealed copy's CRCs are both 0 with odds of 2^-64.
     */
    public static boolean unsealedCopyOf(ByteBuffer buf, int offset, SegmentHeader valid) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return b.limit() >= offset + Layout.HEADER_COPY_SIZE && b.getInt(offset + OFF_MAGIC) == MAGIC
                && b.getShort(offset + OFF_VERSION) == VERSION && b.getLong(offset + OFF_ID) == valid.id
                && b.getLong(offset + OFF_NONCE) == valid.nonce && b.getInt(offset + OFF_SEQ) == valid.seq + 1
                && b.getInt(offset + OFF_CRC) == 0 && b.getInt(offset + OFF_DATA_CRC) == 0
                && Short.toUnsignedInt(b.getShort(offset + OFF_NR_LINES)) <= valid.nrLines;
    }

    /**
     * The newer of the two header copies at the start of {@code slotStart} (a buffer laid out
     * as a slot, at least {@link Layout#SEGMENT_HEADER_SIZE} bytes) that decode and carry
     * {@code nonce}; null when neither does. {@link #olderCopy} gives the other.
     */
    public static SegmentHeader newerCopy(ByteBuffer slotStart, long nonce) {
        SegmentHeader a = decodeFor(slotStart, 0, nonce), b = decodeFor(slotStart, Layout.HEADER_COPY_SIZE, nonce);
        if (a == null || b == null) {
            return a == null ? b : a;
        }
        return newer(a, b) ? a : b;
    }

    /** The older of two valid copies of the same segment, or null when there are not two. */
    public static SegmentHeader olderCopy(ByteBuffer slotStart, long nonce) {
        SegmentHeader a = decodeFor(slotStart, 0, nonce), b = decodeFor(slotStart, Layout.HEADER_COPY_SIZE, nonce);
        if (a == null || b == null || a.id != b.id) {
            return null;
        }
        return newer(a, b) ? b : a;
    }

    /** Copies of different segments (a slot reused) rank by id; of one segment, by sequence. */
    private static boolean newer(SegmentHeader a, SegmentHeader b) {
        return a.id != b.id ? a.id > b.id : Integer.compareUnsigned(a.seq, b.seq) > 0;
    }

    private static SegmentHeader decodeFor(ByteBuffer buf, int offset, long nonce) {
        SegmentHeader h = decode(buf, offset);
        return h != null && h.nonce == nonce ? h : null;
    }

    private static int copyCrc(ByteBuffer b, int at) {
        CRC32C crc = new CRC32C();
        Crc.update(crc, b, at, OFF_CRC);
        crc.update(new byte[4]);
        Crc.update(crc, b, at + OFF_CRC + 4, Layout.HEADER_COPY_SIZE - OFF_CRC - 4);
        return (int) crc.getValue();
    }
}
