package io.writeboost.volume;

import java.io.IOException;

/** A write at or past the end of a fixed-size volume (ENOSPC, as a block device answers). */
public class VolumeFullException extends IOException {
    private static final long serialVersionUID = 1L;

    public VolumeFullException(String message) {
        super(message);
    }
}
