package io.writeboost.cli;

import io.writeboost.knob.Command;
import io.writeboost.server.ServerSettings;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * {@code fuse-mount attach MOUNTPOINT [NAME=]PATH} and {@code fuse-mount detach MOUNTPOINT NAME}:
 * write the mount's {@code caches/<id>/attach} or {@code detach} control file, as a script
 * could, and print its outcome. Exit 0 when done, 2 when refused (nothing changed) or for a
 * bad request, 1 when it failed.
 */
final class VolumeCommands {
    private VolumeCommands() {}

    static final List<String> COMMANDS = List.of("attach", "detach");

    static int run(String command, String[] args, PrintStream out, PrintStream err) {
        Command c = command.equals("attach") ? Command.ATTACH : Command.DETACH;
        String usage = "usage: fuse-mount " + c.fileName + " MOUNTPOINT " + c.argument;
        if (args.length != 2) {
            err.println("fuse-mount " + c.fileName + ": " + usage);
            return 2;
        }
        Path mount = Path.of(args[0]);
        String argument;
        String name;
        try {
            if (c == Command.ATTACH) {
                ServerSettings.Backing b = MountOptions.parseBacking(args[1]);
                name = b.name();
                // The server's working directory is not ours: the path goes over absolute.
                argument = b.name() + "=" + b.path().toAbsolutePath().normalize();
            } else {
                name = args[1];
                argument = name;
            }
        } catch (UsageException e) {
            err.println("fuse-mount " + c.fileName + ": " + e.getMessage());
            return 2;
        }
        Path file;
        try {
            file = controlFile(mount, c);
        } catch (UsageException e) {
            err.println("fuse-mount " + c.fileName + ": " + e.getMessage());
            return 2;
        }
        try {
            Files.write(file, (argument + "\n").getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            String outcome = outcome(file);
            if (outcome.startsWith("refused: ")) {
                err.println("fuse-mount " + c.fileName + ": " + outcome.substring("refused: ".length()) + "; nothing was changed");
                return 2;
            }
            err.println("fuse-mount " + c.fileName + ": " + (outcome.isEmpty() ? e.getMessage() : outcome)
                    + " (the server's log has the details)");
            return 1;
        }
        out.println(outcome(file));
        out.println(c == Command.ATTACH
                ? "The next start must name it too: add --backing " + argument + " after the other --backing options "
                + "(or a 'backing = " + argument + "' line at the end of the config file)."
                : "The next start must not name it: remove its --backing option (or 'backing' line) for " + name + ".");
        return 0;
    }

    /** MOUNTPOINT/caches/<id>/FILE of the one cache a mount serves. */
    private static Path controlFile(Path mount, Command c) throws UsageException {
        Path caches = mount.resolve("caches");
        List<Path> ids;
        try (Stream<Path> s = Files.list(caches)) {
            ids = s.toList();
        } catch (IOException e) {
            throw new UsageException(mount + " is not a writeboost mount (no " + caches + ")");
        }
        if (ids.size() != 1) {
            throw new UsageException(caches + " holds " + ids.size() + " caches, not one");
        }
        return ids.get(0).resolve(c.fileName);
    }

    private static String outcome(Path file) {
        try {
            return Files.readString(file).strip();
        } catch (IOException e) {
            return "";
        }
    }
}
