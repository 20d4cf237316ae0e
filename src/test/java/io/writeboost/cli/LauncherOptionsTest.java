package io.writeboost.cli;

import org.apache.commons.cli.Option;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launcher reads the command line before the server does, to find the mount point: it
 * must skip the value of every option that takes one, or that value is taken for the mount
 * point. Its list (a bash case arm) is checked here against the options the code declares.
 */
class LauncherOptionsTest {
    @Test
    void theLauncherSkipsTheValueOfEveryOptionThatTakesOne() throws Exception {
        Set<String> launcher = new TreeSet<>();
        for (String line : Files.readAllLines(Path.of("fuse-mount"))) {
            // The case arms of the argument loop: "--opt) ... i=$((i + 1))" and "--a|--b|-o) i=$((i + 1))".
            Matcher arm = Pattern.compile("^\\s*((?:-[-a-z]+\\|?)+)\\)(.*i=\\$\\(\\(i \\+ 1\\)\\).*)$").matcher(line);
            if (arm.find()) {
                launcher.addAll(Set.of(arm.group(1).split("\\|")));
            }
        }
        Set<String> declared = new TreeSet<>();
        for (Option o : Main.options().getOptions()) {
            if (o.hasArg()) {
                declared.add(o.getLongOpt() != null ? "--" + o.getLongOpt() : "-" + o.getOpt());
            }
        }
        assertTrue(declared.contains("--accept-moved-backing"), declared.toString());
        assertEquals(declared, launcher);
    }
}
