package io.writeboost.knob;

/** A value refused for a knob; the message says why. */
public class KnobException extends Exception {
    private static final long serialVersionUID = 1L;

    public KnobException(String message) {
        super(message);
    }
}
