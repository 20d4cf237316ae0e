package io.writeboost.knob;

/**
 * The control files that take a command with text arguments rather than a number, declared
 * once like the {@link Knob}s: the control tree, the help and docs/KNOBS.md derive from this.
 * A write runs the command and returns when it is done; a refused one fails with an errno
 * and changes nothing. A read gives the outcome of the last one, for a script (or the
 * launcher) to show.
 */
public enum Command {
    ATTACH("attach", "[NAME=]PATH",
            "add the backing store at PATH (absolute) as a new volume NAME (default: PATH's file name) while running: the same "
                    + "checks as at format, then it is in the volume table (crash-safe) and MOUNTPOINT/NAME and devices/<id>/ "
                    + "appear. Refused: EEXIST (the store or the name is a volume already), EBUSY (the store is in use), "
                    + "EINVAL (too small, not a multiple of 512 bytes, not a file or block device, a bad name), ENOSPC (no "
                    + "device id free)"),
    DETACH("detach", "NAME",
            "remove volume NAME while running: its dirty lines are written back and its store synced, then it leaves the "
                    + "volume table (crash-safe), the mount and devices/. Refused: EBUSY (NAME's file is open, e.g. by a loop "
                    + "device), ENOENT (no such volume), EINVAL (the only volume)");

    public final String fileName;
    public final String argument;
    public final String description;

    Command(String fileName, String argument, String description) {
        this.fileName = fileName;
        this.argument = argument;
        this.description = description;
    }
}
