package io.writeboost.recovery;

import java.io.IOException;

/**
 * A start refused because recovery found acknowledged data it cannot give back; nothing was
 * written. Starting with the loss accepted (--accept-data-loss) is the operator's decision.
 */
public final class LostDataException extends IOException {
    private static final long serialVersionUID = 1L;
    private final transient DataLoss loss;

    public LostDataException(DataLoss loss) {
        super(loss.report() + "Nothing was written to the cache or the backing stores. To start anyway and give up these "
                + "ranges, start again with --accept-data-loss (see README, \"When something went wrong\").");
        this.loss = loss;
    }

    public DataLoss loss() {
        return loss;
    }
}
