package io.writeboost.format;

/**
 * The device holds a writeboost cache, but of a format version this build does not read: it
 * may hold dirty data, so it is neither opened nor formatted over without being told to.
 */
public final class UnsupportedVersionException extends FormatException {
    private static final long serialVersionUID = 1L;
    private final int version;

    public UnsupportedVersionException(int version, String message) {
        super(message);
        this.version = version;
    }

    public int version() {
        return version;
    }
}
