package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the mount does not support fails with the right errno, as a user's tools report it;
 * and the security defaults: no allow_other, default_permissions, modes 0600/0644/0444, and
 * another user cannot get in.
 */
class UnsupportedCallsTest {
    @TempDir
    static Path dir;
    static FuseServer server;

    @BeforeAll
    static void mount() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Fixture.sparse(dir.resolve("disk.img"), 4 << 20);
        server = FuseServer.start(mnt, dir.resolve("log"), "--cache", dir.resolve("cache.img").toString(), "--format",
                "--cache-size", "4M", "--backing", "vol=" + dir.resolve("disk.img"));
    }

    @AfterAll
    static void unmount() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    /** Runs a shell command that must fail, and returns its error output. */
    static String fails(String command) throws Exception {
        Process p = new ProcessBuilder("bash", "-c", command).directory(server.mountPoint.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        assertTrue(p.exitValue() != 0, command + " succeeded: " + out);
        return out;
    }

    @Test
    void unsupportedCallsReturnTheRightErrno() throws Exception {
        String eperm = "Operation not permitted";
        assertTrue(fails("truncate -s 1M vol").contains(eperm));
        assertTrue(fails("mv vol other").contains(eperm));
        assertTrue(fails("chmod 0666 vol").contains(eperm));
        assertTrue(fails("chown nobody vol").contains(eperm));
        assertTrue(fails("mknod node p").contains(eperm));
        assertTrue(fails("mkdir d").contains(eperm));
        assertTrue(fails("rm -f vol").contains(eperm));
        assertTrue(fails("touch newfile").contains(eperm));
        assertTrue(fails("ln -s vol link").contains(eperm));
        assertTrue(fails("dd if=/dev/zero of=vol bs=512 count=1 seek=8192 conv=notrunc").contains("No space left on device"));
        assertTrue(fails("cat caches").contains("Is a directory"));
        assertTrue(fails("cat nothing").contains("No such file or directory"));
        assertTrue(fails("echo 1 > caches/1/last_flushed_segment_id").contains("Permission denied"));
        assertTrue(fails("echo 7 > caches/1/allow_migrate").contains("Invalid argument"));
        assertEquals(4 << 20, Files.size(server.file("vol")), "size unchanged");
    }

    @Test
    void securityDefaults() throws Exception {
        String mounts = Files.readString(Path.of("/proc/mounts"));
        String line = mounts.lines().filter(l -> l.contains(" " + server.mountPoint + " ")).findFirst().orElseThrow();
        assertTrue(line.contains("default_permissions"), line);
        assertFalse(line.contains("allow_other"), line);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(server.file("vol"))));
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(server.file("caches/1/allow_migrate"))));
        assertEquals("r--r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(server.file("caches/1/status"))));
        // Another user gets nothing: without allow_other the kernel refuses everyone but the owner.
        Path mnt = server.mountPoint;
        for (String cmd : List.of("cat " + mnt + "/caches/1/status", "head -c 1 " + mnt + "/vol", "ls " + mnt)) {
            Process p = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", cmd)
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor();
            assertTrue(p.exitValue() != 0 && out.contains("Permission denied"), cmd + " as nobody: " + out);
        }
    }
}
