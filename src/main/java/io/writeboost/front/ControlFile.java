package io.writeboost.front;

import io.writeboost.knob.KnobException;

import java.io.IOException;

/** A small text file in the mount whose content is computed on read and acted on when written. */
public interface ControlFile {
    /** The current content: a value and a newline, or a multi-line report. */
    String read() throws IOException;

    boolean writable();

    /** Acts on a whole written value; refuses a bad one and changes nothing. */
    void write(String value) throws KnobException, IOException;
}
