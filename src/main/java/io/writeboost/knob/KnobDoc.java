package io.writeboost.knob;

/** The knob reference (docs/KNOBS.md), generated from the {@link Knob} table so the two cannot drift. */
public final class KnobDoc {
    private KnobDoc() {}

    public static String markdown() {
        StringBuilder b = new StringBuilder();
        b.append("# Knobs\n\n")
                .append("Generated from `src/main/java/io/writeboost/knob/Knob.java` by `./fuse-mount --knobs-doc`;\n")
                .append("a test fails when this file and the table differ. Names and meanings follow dm-writeboost's sysfs.\n")
                .append("A read gives the value and a newline. A write takes a decimal number in ASCII digits (leading\n")
                .append("zeros and one trailing newline allowed) within the range; anything else, a number past the range\n")
                .append("however many digits it has included, is refused with EINVAL (EACCES for a read-only file) and\n")
                .append("changes nothing, and the log says why; `-o` refuses it with exit status 2. A knob whose range\n")
                .append("is a list of names (`cache_mode`) takes and shows one of them instead. Writing nothing\n")
                .append("(`: > file`) changes nothing. Actions run when 1 is written and return when done.\n");
        for (Knob.Scope scope : Knob.Scope.values()) {
            b.append("\n## ").append(scope == Knob.Scope.CACHE ? "Cache knobs: `caches/<cache_id>/`" : "Volume knobs: `devices/<device_id>/`")
                    .append("\n\n| name | access | range | default | meaning |\n| --- | --- | --- | --- | --- |\n");
            for (Knob k : Knob.values()) {
                if (k.scope != scope) {
                    continue;
                }
                String access = switch (k.access) {
                    case READ_WRITE -> "read-write";
                    case READ_ONLY -> "read-only";
                    case ACTION -> "action";
                };
                String range = k.access == Knob.Access.READ_ONLY ? "" : k.rangeText("...");
                String def = k.access == Knob.Access.READ_WRITE ? k.format(k.defaultValue) : "";
                b.append("| `").append(k.fileName).append("` | ").append(access).append(" | ").append(range).append(" | ")
                        .append(def).append(" | ").append(k.description).append(" |\n");
            }
        }
        b.append("\n## Volume commands: `caches/<cache_id>/`\n\n")
                .append("A write of the argument (one line) runs the command and returns when it is done; a refusal fails the\n")
                .append("write with the errno below and changes nothing. A read gives the outcome of the last command\n")
                .append("(`attached ...`, `detached ...`, `refused: ...`, `failed: ...`). `fuse-mount attach` and `fuse-mount detach`\n")
                .append("write these files and print the outcome.\n\n| name | argument | meaning |\n| --- | --- | --- |\n");
        for (Command c : Command.values()) {
            b.append("| `").append(c.fileName).append("` | `").append(c.argument).append("` | ").append(c.description).append(" |\n");
        }
        return b.toString();
    }
}
