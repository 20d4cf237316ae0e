package io.writeboost.front;

import io.writeboost.volume.Volume;

import java.io.IOException;
import java.nio.file.Path;

/**
 * What the server does for the volume commands ({@link io.writeboost.knob.Command}): opening,
 * checking and locking a backing store and handing it to the engine, and giving it up after
 * the engine's detach. The mount's tree is {@link WriteboostFs}'s part.
 */
public interface VolumeControl {
    /**
     * Adds the store at {@code store} as volume {@code name}; a refusal
     * ({@link io.writeboost.cache.VolumeRefusedException}) changes nothing.
     */
    Volume attach(String name, Path store) throws IOException;

    /** Removes {@code volume}, which no file has open any more, and closes its store. */
    void detach(Volume volume) throws IOException;
}
