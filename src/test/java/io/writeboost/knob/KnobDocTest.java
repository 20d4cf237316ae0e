package io.writeboost.knob;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class KnobDocTest {
    @Test
    void docsMatchTheKnobTable() throws Exception {
        assertEquals(KnobDoc.markdown(), Files.readString(Path.of("docs/KNOBS.md")),
                "docs/KNOBS.md is stale: regenerate it with ./fuse-mount --knobs-doc > docs/KNOBS.md");
    }
}
