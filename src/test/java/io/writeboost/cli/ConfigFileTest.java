package io.writeboost.cli;

import io.writeboost.knob.Knob;
import io.writeboost.server.ServerSettings.Backing;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How a config file's lines are read: comments, quotes, and keys given twice. */
class ConfigFileTest {
    @TempDir
    Path dir;

    private MountOptions read(String... lines) throws Exception {
        Path f = dir.resolve("wb.conf");
        Files.writeString(f, String.join("\n", lines) + "\n");
        MountOptions o = new MountOptions();
        ConfigFile.apply(f, o);
        return o;
    }

    private String refused(String... lines) {
        UsageException e = assertThrows(UsageException.class, () -> read(lines));
        assertTrue(e.getMessage().startsWith(dir.resolve("wb.conf") + ":"), "names the file: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void aHashStartsACommentOnlyAtTheLineStartOrAfterWhitespace() throws Exception {
        MountOptions o = read(
                "# a comment",
                "   # an indented one",
                "cache = /srv/cache#1.img",
                "backing = data=/srv/disk#2.img   # the second disk",
                "backing = logs=/srv/logs.img\t# after a tab",
                "mountpoint = /srv/wb#mnt#",
                "allow_migrate = 1 # on",
                "log-file=/var/log/wb.log #");
        assertEquals(Path.of("/srv/cache#1.img"), o.cache);
        assertEquals(List.of(new Backing("data", Path.of("/srv/disk#2.img")), new Backing("logs", Path.of("/srv/logs.img"))),
                o.backings);
        assertEquals(Path.of("/srv/wb#mnt#"), o.mountPoint);
        assertEquals(1L, o.knobs.get(Knob.ALLOW_MIGRATE));
        assertEquals(Path.of("/var/log/wb.log"), o.logFile);
    }

    @Test
    void aQuotedValueIsTakenWhole() throws Exception {
        MountOptions o = read(
                "cache = \"/srv/my cache #1.img\"   # a comment after it",
                "mountpoint='/srv/a \"b\" #c'",
                "log-file = \"/var/log/it's.log\"");
        assertEquals(Path.of("/srv/my cache #1.img"), o.cache);
        assertEquals(Path.of("/srv/a \"b\" #c"), o.mountPoint);
        assertEquals(Path.of("/var/log/it's.log"), o.logFile);
    }

    @Test
    void badQuotesAndEmptyValuesAreRefused() {
        assertTrue(refused("cache = \"/srv/cache.img").endsWith(":1: cache: the value's opening \" has no closing \""));
        assertTrue(refused("cache = '/srv/a' b").endsWith(":1: cache: only a comment may follow the quoted value, got 'b'"));
        assertTrue(refused("cache = \"/srv/a\"#b").contains("only a comment may follow the quoted value, got '#b'"));
        assertTrue(refused("cache = # no value").endsWith(":1: cache has no value"));
        assertTrue(refused("cache = \"\"").endsWith(":1: cache has no value"));
        assertTrue(refused("# x", "cache /srv/cache.img # no equals sign").endsWith(":2: expected 'key = value', got 'cache /srv/cache.img'"));
        assertTrue(refused(" = /srv/cache.img").endsWith(":1: expected 'key = value', got '= /srv/cache.img'"));
    }

    @Test
    void aKeyGivenTwiceIsRefusedNamingBothLines() {
        assertTrue(refused("cache = /a.img", "# x", "cache = /b.img").endsWith(
                ":3: cache is given a second time (first on line 1); give each key once"));
        assertTrue(refused("allow_migrate = 1", "allow_migrate = 1").endsWith(
                ":2: allow_migrate is given a second time (first on line 1); give each key once"));
        assertTrue(refused("cache = /a.img", "mountpoint = /m", "log-level = info", "mountpoint=/m").contains(
                ":4: mountpoint is given a second time (first on line 2)"));
    }

    @Test
    void backingIsTheOneKeyGivenOncePerVolume() throws Exception {
        MountOptions o = read("backing = a=/srv/a.img", "backing = b=/srv/b.img", "backing = c=/srv/c.img");
        assertEquals(3, o.backings.size());
    }
}
