package io.writeboost.cache;

import java.io.IOException;

/**
 * An attach or detach refused before anything was changed, with the reason a caller turns
 * into an errno ({@code caches/<id>/attach} and {@code detach}) or an exit status.
 */
public final class VolumeRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    public enum Reason {
        /** The store or the name is a volume already. */
        EXISTS,
        /** The store is in use elsewhere, or the volume's file is open. */
        BUSY,
        /** No volume of that name. */
        NO_SUCH_VOLUME,
        /** A bad name or store (size, kind), or the last volume. */
        INVALID,
        /** Every device id is taken. */
        NO_ROOM
    }

    private final Reason reason;

    public VolumeRefusedException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
