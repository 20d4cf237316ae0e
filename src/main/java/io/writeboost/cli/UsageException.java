package io.writeboost.cli;

/** Bad input on the command line: reported in one line, exit status 2, nothing changed. */
public class UsageException extends Exception {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
        super(message);
    }
}
