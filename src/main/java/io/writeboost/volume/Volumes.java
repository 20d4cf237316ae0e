package io.writeboost.volume;

import java.util.ArrayList;
import java.util.List;

/**
 * The volumes a mount serves now, in device table order: fixed at start, changed by attach and
 * detach. The mount's tree, the status and the metrics read it; each read is one consistent
 * list.
 *
 * <p>Thread-safe: copy on write, changes serialised on this object.
 */
public final class Volumes {
    private volatile List<Volume> list;

    public Volumes(List<Volume> initial) {
        list = List.copyOf(initial);
    }

    public List<Volume> list() {
        return list;
    }

    /** The volume named {@code name}, or null. */
    public Volume byName(String name) {
        for (Volume v : list) {
            if (v.name().equals(name)) {
                return v;
            }
        }
        return null;
    }

    public synchronized void add(Volume v) {
        List<Volume> next = new ArrayList<>(list);
        next.add(v);
        list = List.copyOf(next);
    }

    public synchronized void remove(Volume v) {
        List<Volume> next = new ArrayList<>(list);
        next.remove(v);
        list = List.copyOf(next);
    }
}
