package io.writeboost.front;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.writeboost.cache.EngineConfig;
import io.writeboost.testutil.Rig;
import io.writeboost.volume.Volume;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * monitoring/grafana-dashboard.json is valid JSON, every panel queries something, and every
 * metric its queries name is one the server exports: {@link EngineMetrics}' series, and the
 * JVM's that the HTTP listener adds.
 */
class GrafanaDashboardTest {
    private static final Pattern METRIC = Pattern.compile("\\b((?:writeboost|jvm|process)_[a-zA-Z0-9_]+)\\b");

    @Test
    void everyQueriedMetricIsExported() throws Exception {
        JsonNode dash = new ObjectMapper().readTree(Path.of("monitoring/grafana-dashboard.json").toFile());
        Set<String> exported = exported();
        List<String> exprs = new ArrayList<>();
        int panels = 0;
        for (JsonNode p : dash.get("panels")) {
            if (p.get("type").asText().equals("row")) {
                continue;
            }
            panels++;
            assertTrue(p.has("targets") && p.get("targets").size() > 0, p.get("title") + " has a query");
            for (JsonNode t : p.get("targets")) {
                exprs.add(t.get("expr").asText());
            }
        }
        for (JsonNode v : dash.get("templating").get("list")) {
            if (v.has("definition")) {
                exprs.add(v.get("definition").asText());
            }
        }
        Set<String> queried = new TreeSet<>();
        for (String e : exprs) {
            Matcher m = METRIC.matcher(e);
            boolean any = false;
            while (m.find()) {
                queried.add(m.group(1));
                any = true;
            }
            assertTrue(any, "names a metric: " + e);
        }
        Set<String> unknown = new TreeSet<>(queried);
        unknown.removeAll(exported);
        assertEquals(Set.of(), unknown, "metrics the dashboard queries that the server does not export");
        for (String wanted : new String[] {"writeboost_read_lines_total", "writeboost_read_hit_lines_total", "writeboost_ring_use_ratio",
                "writeboost_high_watermark_ratio", "writeboost_written_back_bytes_total", "writeboost_volume_backing_load_ratio",
                "writeboost_writeback_errors_total", "writeboost_state"}) {
            assertTrue(queried.contains(wanted), "the dashboard shows " + wanted);
        }
        System.out.printf("GrafanaDashboardTest: %d panels, %d queries, %d metrics, all exported%n", panels, exprs.size(),
                queried.size());
    }

    /** Sample names as a scrape of the server shows them: the engine's, and the JVM's. */
    private static Set<String> exported() throws Exception {
        Set<String> names = new TreeSet<>();
        Rig rig = new Rig(4, 1, 1 << 20, new EngineConfig());
        try {
            Volume v = new Volume(rig.engine, 1, "vol1", "backing1", 1 << 20);
            sampleNames(new EngineMetrics(rig.engine, List.of(v), "test").text(), names);
        } finally {
            rig.engine.close();
        }
        assertFalse(names.isEmpty());
        PrometheusRegistry jvm = new PrometheusRegistry();
        JvmMetrics.builder().register(jvm);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrometheusTextFormatWriter.create().write(out, jvm.scrape());
        sampleNames(out.toString(StandardCharsets.UTF_8), names);
        return names;
    }

    private static void sampleNames(String text, Set<String> names) {
        for (String line : text.split("\n")) {
            if (!line.isEmpty() && !line.startsWith("#")) {
                int end = line.indexOf('{') >= 0 ? line.indexOf('{') : line.indexOf(' ');
                names.add(line.substring(0, end));
            }
        }
    }
}
