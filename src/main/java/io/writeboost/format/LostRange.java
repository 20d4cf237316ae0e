package io.writeboost.format;

/**
 * A run of sectors of one volume whose newest acknowledged data was lost with a damaged
 * segment: {@code firstSector} to {@code lastSector}, both included.
 */
public record LostRange(int device, long firstSector, long lastSector) {
    public long sectors() {
        return lastSector - firstSector + 1;
    }

    @Override
    public String toString() {
        return "device " + device + " sectors " + firstSector + "-" + lastSector;
    }
}
