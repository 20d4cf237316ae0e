package io.writeboost.fuse;

/** Told once the kernel has the mount and requests can flow. */
public interface ReadyListener {
    void ready();
}
