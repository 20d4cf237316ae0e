package io.writeboost.server;

/**
 * The request cannot be served as given, found by reading its devices before anything was
 * written (the wrong backing stores, a cache that would lose data): reported in one line,
 * nothing changed. The CLI treats it as bad input, like its own usage errors.
 */
public class RequestException extends Exception {
    private static final long serialVersionUID = 1L;

    public RequestException(String message) {
        super(message);
    }
}
