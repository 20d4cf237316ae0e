package io.writeboost.knob;

/**
 * Every tunable, status value and action of the product, declared once. Control files,
 * command-line {@code -o} options and the knob documentation are all derived from this table.
 */
public enum Knob {
    // Cache knobs: caches/<cache_id>/NAME
    ALLOW_MIGRATE(Scope.CACHE, "allow_migrate", Access.READ_WRITE, 0, 1, 0,
            "1: write dirty data back in the background while the backing stores are below migrate_threshold; "
                    + "0: only above high_watermark, or when the ring is full"),
    FORCE_MIGRATE(Scope.CACHE, "force_migrate", Access.READ_WRITE, 0, 1, 0,
            "1: write back continuously whatever the backing store's load"),
    HIGH_WATERMARK(Scope.CACHE, "high_watermark", Access.READ_WRITE, 0, 100, 50,
            "percent of the ring's slots holding data not yet written back at which writeback starts whatever "
                    + "allow_migrate and the backing stores' load say, and runs until low_watermark; 0: only when the "
                    + "ring is full, as in dm-writeboost (dm-writecache's name)"),
    LOW_WATERMARK(Scope.CACHE, "low_watermark", Access.READ_WRITE, 0, 100, 25,
            "percent at which writeback started by high_watermark stops (at most high_watermark; dm-writecache's name)"),
    COPY_FORWARD(Scope.CACHE, "copy_forward", Access.READ_WRITE, 0, 1, 1,
            "1: when writeback empties the oldest ring slots, lines rewritten or read since they were cached are "
                    + "copied into the open segment (a second chance) instead of being written back or evicted, at most "
                    + "a quarter of the lines written to the cache device; 0: every dirty line of the oldest slots is "
                    + "written back and every clean one evicted, as in dm-writeboost"),
    WRITEBACK_MAX_MBPS(Scope.CACHE, "writeback_max_mbps", Access.READ_WRITE, 0, 1_000_000, 0,
            "MB/s (10^6 bytes) background writeback may write to the backing stores while the ring has room (at "
                    + "least a quarter free); once writers are paced, or the cache stops, it runs at full speed, since a "
                    + "stalled writer is worse than a busy disk; 0: no cap"),
    WRITEBACK_MAX_IOPS(Scope.CACHE, "writeback_max_iops", Access.READ_WRITE, 0, 1_000_000, 0,
            "requests a second background writeback may send to the backing stores while the ring has room, as "
                    + "writeback_max_mbps; 0: no cap"),
    IO_TIMEOUT_MS(Scope.CACHE, "io_timeout_ms", Access.READ_WRITE, 0, 86_400_000, 0,
            "time (ms) a write may wait for a free ring slot (while writeback empties the oldest one) before it fails "
                    + "with EIO; 0: wait as long as it takes, as a disk behind a stuck controller does, since a file "
                    + "system takes a failed write as lost data"),
    IO_ERROR_LIMIT(Scope.CACHE, "io_error_limit", Access.READ_WRITE, 0, 1_000_000, 8,
            "cache device errors (failed reads, and write attempts the engine retries) tolerated before the cache "
                    + "fails over: it stops using the cache device, writes back every dirty line it can still read, "
                    + "reports the rest as lost, and serves every volume from its backing store (pass-through, status: "
                    + "state degraded) until a new cache is formatted. A write that fails for good or a failed sync fails "
                    + "over at once, whatever the count; 0: fail over at the first error (bcache's name; a read error on "
                    + "a clean line costs only a backing read, and a few are what a single bad sector gives)"),
    CACHE_IO_TIMEOUT_MS(Scope.CACHE, "cache_io_timeout_ms", Access.READ_WRITE, 0, 86_400_000, 30_000,
            "time (ms) a call to the cache device (a read, write or sync) may stay outstanding before the device "
                    + "counts as failed and the cache fails over as on a failed sync (see io_error_limit): a dying "
                    + "device often hangs rather than fails, and every fsync would wait for it. The default is the "
                    + "Linux SCSI layer's command timeout; the thread in the hung call stays in it, the others are "
                    + "served from the backing stores. 0: no deadline"),
    BARRIER_DEADLINE_MS(Scope.CACHE, "barrier_deadline_ms", Access.READ_WRITE, 0, 60_000, 0,
            "time (ms) a flush waits for more writes before it appends the open segment's new lines to the cache "
                    + "device; 0: as soon as the device is free (flushes arriving during an append's write and sync share "
                    + "the next one). Above 0 fsyncs wait longer and share more syncs (dm-writeboost's default was 3)"),
    COMMIT_SUPER_BLOCK(Scope.CACHE, "commit_super_block", Access.ACTION, 1, 1, 0,
            "write 1: write the superblock record now"),
    COMMIT_SUPER_BLOCK_INTERVAL(Scope.CACHE, "commit_super_block_interval", Access.READ_WRITE, 0, 86_400, 0,
            "seconds between superblock record writes (0 = off)"),
    FLUSH_CURRENT_BUFFER(Scope.CACHE, "flush_current_buffer", Access.ACTION, 1, 1, 0,
            "write 1: seal the open RAM segment, write it and sync the cache device"),
    DRAIN(Scope.CACHE, "drain", Access.ACTION, 1, 1, 0,
            "write 1: write back every dirty line, sync the backing stores, mark the cache clean; returns when done "
                    + "(safe detach: afterwards the backing stores alone hold the volumes)"),
    CLEAR_STAT(Scope.CACHE, "clear_stat", Access.ACTION, 1, 1, 0,
            "write 1: set every counter in stat to 0"),
    FLUSH_CURRENT_BUFFER_INTERVAL(Scope.CACHE, "flush_current_buffer_interval", Access.READ_WRITE, 0, 86_400, 0,
            "seconds after which a partly filled RAM segment is sealed and written (0 = off)"),
    NR_MAX_BATCHED_MIGRATION(Scope.CACHE, "nr_max_batched_migration", Access.READ_WRITE, 1, 256, 16,
            "segments written back in one batch (sorted and coalesced together; 1 MiB of RAM each)"),
    UPDATE_INTERVAL(Scope.CACHE, "update_interval", Access.READ_WRITE, 1, 3_600, 1,
            "seconds between the writeback daemon's samples of backing load and looks at whether it may run"),
    SEQUENTIAL_CUTOFF(Scope.CACHE, "sequential_cutoff", Access.READ_WRITE, 0, 1L << 30, 4L << 20,
            "bytes: a write continuing a sequential stream (per volume, a few streams tracked by where they end) "
                    + "that has reached this length goes straight to the backing store, its whole 4 KiB lines only; "
                    + "while fewer than a sixteenth of the ring slots are free, at most 64 KiB; 0: never. "
                    + "A flush forgets streams still shorter than this, so a log that fsyncs as it goes "
                    + "(a database's WAL, a file system's journal) stays in the cache (bcache's name and default)"),
    CACHE_MODE(Scope.CACHE, "cache_mode", CacheMode.class,
            "write-back: writes are acknowledged from the cache and written back later. write-through: a write goes to "
                    + "the backing store before it returns (durable then where the store takes O_DIRECT with O_DSYNC, else "
                    + "at the next flush, as a write-back write), its whole "
                    + "4 KiB lines stay in the cache as clean lines, no line is ever dirty. write-around: as "
                    + "write_around_mode 1. pass-through: reads and writes go to the backing store, a write drops cached "
                    + "copies, nothing new is cached. Outside write-back, a write that covers part of a line still dirty "
                    + "goes into the cache, and writeback runs whatever the watermarks say until no dirty line is left "
                    + "(status: cache_mode). Switching is allowed at any time; the mode is kept in the superblock record "
                    + "and survives a restart unless -o or the config file sets it (bcache's and Open CAS's modes)"),
    WRITE_AROUND_MODE(Scope.CACHE, "write_around_mode", Access.READ_WRITE, 0, 1, 0,
            "alias of cache_mode: 1 sets write-around, 0 sets write-back if the mode was write-around (else changes "
                    + "nothing); reads 1 while the mode is write-around. In write-around every write's whole 4 KiB lines "
                    + "go straight to the backing store (cached copies are dropped); the cache keeps only what it already "
                    + "holds and lines a write covers in part (dm-writeboost's name)"),
    READ_CACHE_THRESHOLD(Scope.CACHE, "read_cache_threshold", Access.READ_WRITE, 0, 127, 32,
            "read caching: a 4 KiB line a read missed is stored in the cache as a clean line (later reads of it hit "
                    + "the cache device; never written back), unless the read continues a sequential read run of more "
                    + "than this many lines (a scan or a copy); 0: read caching off (dm-writeboost's name and meaning; "
                    + "its default was 0)"),
    READ_CACHE_SECOND_ACCESS(Scope.CACHE, "read_cache_second_access", Access.READ_WRITE, 0, 1, 1,
            "1: a missed line is stored only when it is missed a second time while it is still remembered (about as "
                    + "many other missed lines as the cache holds), so that a one-pass scan does not push out lines "
                    + "read many times; 0: on its first miss"),
    LAST_FLUSHED_SEGMENT_ID(Scope.CACHE, "last_flushed_segment_id", Access.READ_ONLY, 0, Long.MAX_VALUE, 0,
            "id of the newest segment written to the cache device"),
    LAST_MIGRATED_SEGMENT_ID(Scope.CACHE, "last_migrated_segment_id", Access.READ_ONLY, 0, Long.MAX_VALUE, 0,
            "id of the newest segment whose dirty data is on the backing store"),

    // Volume knobs: devices/<device_id>/NAME
    CACHE_ID(Scope.DEVICE, "cache_id", Access.READ_ONLY, 0, Long.MAX_VALUE, 0, "id of the cache this volume uses"),
    DEV(Scope.DEVICE, "dev", Access.READ_ONLY, 0, Long.MAX_VALUE, 0, "the backing store's path"),
    DEVICE_NO(Scope.DEVICE, "device_no", Access.READ_ONLY, 0, Long.MAX_VALUE, 0, "this volume's device id (1..127)"),
    MIGRATE_THRESHOLD(Scope.DEVICE, "migrate_threshold", Access.READ_WRITE, 0, 100, 70,
            "with allow_migrate 1, writeback runs while this backing store is busy less than this percent of the "
                    + "time (the higher of iostat's %util and the share of time the engine had a request other than writeback's "
                    + "own to it in flight, sampled every update_interval); 100: whatever the load"),
    NR_DIRTY_CACHES(Scope.DEVICE, "nr_dirty_caches", Access.READ_ONLY, 0, Long.MAX_VALUE, 0,
            "cache lines holding data not yet on the backing store");

    public enum Scope { CACHE, DEVICE }

    public enum Access { READ_WRITE, READ_ONLY, ACTION }

    public final Scope scope;
    public final String fileName;
    public final Access access;
    public final long min;
    public final long max;
    public final long defaultValue;
    public final String description;
    /** For a knob that takes a name rather than a number: the names, the value being the index (else null). */
    private final Enum<?>[] choices;

    Knob(Scope scope, String fileName, Access access, long min, long max, long defaultValue, String description) {
        this.scope = scope;
        this.fileName = fileName;
        this.access = access;
        this.min = min;
        this.max = max;
        this.defaultValue = defaultValue;
        this.description = description;
        this.choices = null;
    }

    /** A read-write knob whose values are the names of {@code choices}' constants ({@code toString}); the first is the default. */
    Knob(Scope scope, String fileName, Class<? extends Enum<?>> choices, String description) {
        this.scope = scope;
        this.fileName = fileName;
        this.access = Access.READ_WRITE;
        this.choices = choices.getEnumConstants();
        this.min = 0;
        this.max = this.choices.length - 1;
        this.defaultValue = 0;
        this.description = description;
    }

    /** Whether the knob takes names rather than numbers (cache_mode). */
    public boolean named() {
        return choices != null;
    }

    /** The text a control file shows for {@code value}: the number, or the name for a knob of names. */
    public String format(long value) {
        return choices == null ? Long.toString(value) : choices[(int) value].toString();
    }

    /** What the knob takes, for the documentation and --help: "0...100", or the names joined with " ". */
    public String rangeText(String numberSeparator) {
        if (choices == null) {
            return min + numberSeparator + max;
        }
        StringBuilder b = new StringBuilder();
        for (Enum<?> c : choices) {
            b.append(b.length() == 0 ? "" : ", ").append(c);
        }
        return b.toString();
    }

    /** Refuses a value outside the knob's range (a value that did not come through {@link #parse}). */
    public void check(long value) throws KnobException {
        if (access == Access.READ_ONLY) {
            throw new KnobException(fileName + " is read-only");
        }
        if (value < min || value > max) {
            throw new KnobException(fileName + ": " + value + " is out of range " + min + ".." + max);
        }
    }

    public boolean writable() {
        return access != Access.READ_ONLY;
    }

    public static Knob byName(String fileName) {
        for (Knob k : values()) {
            if (k.fileName.equals(fileName)) {
                return k;
            }
        }
        return null;
    }

    /**
     * Parses a value written by a user: ASCII decimal digits (leading zeros allowed, any number
     * of them), optionally one trailing newline, within [min, max]; for a knob of names, one
     * of the names exactly, optionally with one trailing newline. Anything else is refused
     * with the reason; nothing here throws anything but a KnobException, whatever the text.
     */
    public long parse(String text) throws KnobException {
        if (access == Access.READ_ONLY) {
            throw new KnobException(fileName + " is read-only");
        }
        String s = text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
        if (choices != null) {
            for (int i = 0; i < choices.length; i++) {
                if (choices[i].toString().equals(s)) {
                    return i;
                }
            }
            throw new KnobException(fileName + ": '" + printable(text) + "' is not one of " + rangeText(""));
        }
        if (s.isEmpty() || !s.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new KnobException(fileName + ": '" + printable(text) + "' is not a non-negative decimal number");
        }
        int first = 0;
        while (first < s.length() - 1 && s.charAt(first) == '0') {
            first++;
        }
        String digits = s.substring(first);
        // Above Long.MAX_VALUE (more than 19 digits, or 19 that compare higher) Long.parseLong
        // would throw; such a number is above every knob's maximum anyway.
        if (digits.length() > LONG_MAX_DIGITS.length()
                || (digits.length() == LONG_MAX_DIGITS.length() && digits.compareTo(LONG_MAX_DIGITS) > 0)) {
            throw new KnobException(fileName + ": " + printable(digits) + " is out of range " + min + ".." + max);
        }
        long v = Long.parseLong(digits);
        if (v < min || v > max) {
            throw new KnobException(fileName + ": " + v + " is out of range " + min + ".." + max);
        }
        return v;
    }

    private static final String LONG_MAX_DIGITS = Long.toString(Long.MAX_VALUE);

    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c));
            if (b.length() > 40) {
                return b.append("...").toString();
            }
        }
        return b.toString();
    }
}
