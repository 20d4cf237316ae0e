package io.writeboost.testutil;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * What each sector may hold after a crash: the value the last completed flush covered, or any
 * value written since. Sectors carry stamps (write id, device, sector) repeated 32 times, so a
 * read tells exactly which write a sector came from, or that it is garbage.
 */
public final class SectorModel {
    private final int devices;
    private final int sectors;
    public final long[][] acked;
    public final long[][] current;
    private final long[][][] since;
    private final int[][] sinceCount;

    public SectorModel(int devices, int sectors) {
        this.devices = devices;
        this.sectors = sectors;
        acked = new long[devices + 1][sectors];
        current = new long[devices + 1][sectors];
        since = new long[devices + 1][sectors][];
        sinceCount = new int[devices + 1][sectors];
    }

    /** A write of {@code id} (0 for a discard) was issued to a sector; it may or may not survive a crash. */
    public void written(int dev, int sector, long id) {
        current[dev][sector] = id;
        long[] list = since[dev][sector];
        if (list == null) {
            list = since[dev][sector] = new long[4];
        } else if (sinceCount[dev][sector] == list.length) {
            list = since[dev][sector] = Arrays.copyOf(list, list.length * 2);
        }
        list[sinceCount[dev][sector]++] = id;
    }

    /** A flush completed: everything issued before it must survive. */
    public void flushed() {
        for (int dev = 1; dev <= devices; dev++) {
            System.arraycopy(current[dev], 0, acked[dev], 0, sectors);
            Arrays.fill(sinceCount[dev], 0);
        }
    }

    public boolean allowed(int dev, int sector, long id) {
        if (acked[dev][sector] == id) {
            return true;
        }
        for (int i = 0; i < sinceCount[dev][sector]; i++) {
            if (since[dev][sector][i] == id) {
                return true;
            }
        }
        return false;
    }

    /** After recovery, what was read is the new durable baseline. */
    public void settle(int dev, int sector, long id) {
        current[dev][sector] = id;
        acked[dev][sector] = id;
        sinceCount[dev][sector] = 0;
    }

    /** A buffer of {@code n} sectors from {@code at} on, each stamped as write {@code id}. */
    public static ByteBuffer stamped(long id, int dev, long at, int n) {
        ByteBuffer b = ByteBuffer.allocate(n * 512);
        for (int i = 0; i < n; i++) {
            stamp(b, i * 512, id, dev, at + i);
        }
        return b;
    }

    public static void stamp(ByteBuffer buf, int index, long id, int dev, long sector) {
        for (int i = 0; i < 512; i += 16) {
            buf.putLong(index + i, id);
            buf.putLong(index + i + 8, ((long) dev << 48) | sector);
        }
    }

    /** The write id a sector's bytes came from (0 for zeros), or -1 for garbage. */
    public static long decode(ByteBuffer buf, int index, int dev, long sector) {
        long id = buf.getLong(index);
        long tag = buf.getLong(index + 8);
        if (id == 0 && tag == 0) {
            for (int i = 0; i < 512; i += 8) {
                if (buf.getLong(index + i) != 0) {
                    return -1;
                }
            }
            return 0;
        }
        if (tag != (((long) dev << 48) | sector)) {
            return -1;
        }
        for (int i = 0; i < 512; i += 16) {
            if (buf.getLong(index + i) != id || buf.getLong(index + i + 8) != tag) {
                return -1;
            }
        }
        return id;
    }

    /**
     * What a sector that {@link #decode} calls garbage holds, as runs of 16-byte stamps:
     * "[0,256) write 17 (sector 9); [256,512) zeros", to tell a torn copy from foreign data.
     */
    public static String describe(ByteBuffer buf, int index) {
        StringBuilder d = new StringBuilder();
        int runStart = 0;
        String run = null;
        for (int i = 0; i <= 512; i += 16) {
            String here = null;
            if (i < 512) {
                long id = buf.getLong(index + i), tag = buf.getLong(index + i + 8);
                here = id == 0 && tag == 0 ? "zeros" : "write " + id + " (dev " + (tag >>> 48) + " sector " + (tag & 0xFFFFFFFFFFFFL) + ")";
            }
            if (run != null && !run.equals(here)) {
                d.append(d.length() == 0 ? "" : "; ").append('[').append(runStart).append(',').append(i).append(") ").append(run);
                runStart = i;
            }
            run = here;
        }
        return d.toString();
    }
}
