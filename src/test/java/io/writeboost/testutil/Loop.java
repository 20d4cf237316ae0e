package io.writeboost.testutil;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** A loop device attached to a file for the length of a try-with-resources block. */
public final class Loop implements AutoCloseable {
    public final Path device;

    private Loop(Path device) {
        this.device = device;
    }

    public static Loop attach(Path file, String... options) throws IOException, InterruptedException {
        String[] cmd = new String[3 + options.length + 1];
        cmd[0] = "losetup";
        cmd[1] = "-f";
        cmd[2] = "--show";
        System.arraycopy(options, 0, cmd, 3, options.length);
        cmd[cmd.length - 1] = file.toString();
        return new Loop(Path.of(run(cmd).trim()));
    }

    @Override
    public void close() throws IOException, InterruptedException {
        run("losetup", "-d", device.toString());
    }

    /** Runs a command, returns its standard output, fails with its error output. */
    public static String run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + ": timed out");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " exited " + p.exitValue() + ": "
                    + new String(err, StandardCharsets.UTF_8).trim());
        }
        return new String(out, StandardCharsets.UTF_8);
    }
}
