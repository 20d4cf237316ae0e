package io.writeboost.testutil;

import io.writeboost.cache.Status;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What a randomized suite's engines did with read caching, summed over its cases (which may run
 * concurrently), so that the suite can show, and check, that its reads exercised it. Taken from
 * each engine before a power cut takes its counters with it.
 */
public final class ReadCacheCounts {
    private final AtomicLong admissions = new AtomicLong();
    private final AtomicLong cleanHits = new AtomicLong();

    public void add(Status st) {
        admissions.addAndGet(st.readCacheAdmissions());
        cleanHits.addAndGet(st.readHitsClean());
    }

    /** Lines read misses stored as clean lines. */
    public long admissions() {
        return admissions.get();
    }

    /** Line reads served by clean lines. */
    public long cleanHits() {
        return cleanHits.get();
    }
}
