package io.writeboost.format;

import java.io.IOException;

/** The cache device does not hold what the on-disk format (docs/FORMAT.md) says it must. */
public class FormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public FormatException(String message) {
        super(message);
    }
}
