package io.writeboost;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packages depend one way, down the data path: a package names only packages of a higher
 * layer number. A server that imported the CLI (as it once did, for its options) could not be
 * started by anything else; an engine that knew the mount could not be tested without it.
 */
class PackageLayersTest {
    static final Map<String, Integer> LAYER = Map.ofEntries(
            Map.entry("cli", 0),
            Map.entry("server", 1), Map.entry("tools", 1),
            Map.entry("fuse", 2),
            Map.entry("front", 3),
            Map.entry("volume", 4),
            Map.entry("cache", 5),
            Map.entry("recovery", 6),
            Map.entry("format", 7), Map.entry("device", 7), Map.entry("knob", 7));
    static final Pattern REFERENCE = Pattern.compile("\\bio\\.writeboost\\.([a-z]+)\\.");

    @Test
    void everyPackageNamesOnlyPackagesBelowIt() throws Exception {
        Path root = Path.of("src/main/java/io/writeboost");
        List<String> violations = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(root)) {
            files = s.filter(p -> p.toString().endsWith(".java")).toList();
        }
        assertTrue(files.size() > 40, "found the sources: " + files.size());
        for (Path f : files) {
            String pkg = root.relativize(f).getName(0).toString();
            Integer own = LAYER.get(pkg);
            assertTrue(own != null, "package " + pkg + " has a layer in this test");
            int lineNo = 0;
            for (String line : Files.readAllLines(f)) {
                lineNo++;
                if (line.startsWith("package ")) {
                    continue;
                }
                Matcher m = REFERENCE.matcher(line);
                while (m.find()) {
                    String other = m.group(1);
                    Integer layer = LAYER.get(other);
                    if (!other.equals(pkg) && (layer == null || layer <= own)) {
                        violations.add(f + ":" + lineNo + ": " + pkg + " names " + other + ": " + line.strip());
                    }
                }
            }
        }
        assertEquals(List.of(), violations);
    }
}
