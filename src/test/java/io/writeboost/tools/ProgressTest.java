package io.writeboost.tools;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The offline tools' progress bar: drawn on a terminal once work passes a second, silent otherwise. */
class ProgressTest {
    @Test
    void drawsAfterASecondOnATerminalAndClearsItsLine() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Progress p = new Progress("reading", 200, true, new PrintStream(out, true, StandardCharsets.UTF_8))) {
            p.update(10);
            assertEquals("", out.toString(StandardCharsets.UTF_8), "nothing for work shorter than a second");
            Thread.sleep(1100);
            p.update(100);
        }
        String s = out.toString(StandardCharsets.UTF_8);
        assertTrue(s.startsWith("\rreading [###############               ]  50% (100/200)"), s);
        assertTrue(s.endsWith("\r\033[K"), "the line is cleared at the end");
    }

    @Test
    void silentWhenNotOnATerminal() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Progress p = new Progress("reading", 200, false, new PrintStream(out, true, StandardCharsets.UTF_8))) {
            Thread.sleep(1100);
            p.update(100);
        }
        assertEquals("", out.toString(StandardCharsets.UTF_8));
    }
}
