package io.writeboost.e2e;

import io.writeboost.testutil.FuseServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The metrics of a real mount with two volumes, some dirty data and some reads: the
 * {@code metrics} file against {@code status} and {@code stat}, promtool's check of both
 * outputs, the HTTP listener against the file, where it binds, and a real Prometheus server
 * scraping it.
 */
class MetricsTest {
    @TempDir
    static Path dir;
    static FuseServer server;
    static int port;
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void mount() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        Fixture.sparse(dir.resolve("a.img"), 16 << 20);
        Fixture.sparse(dir.resolve("b.img"), 8 << 20);
        port = freePort();
        server = FuseServer.start(mnt, dir.resolve("log"), "--cache", dir.resolve("cache.img").toString(), "--format",
                "--cache-size", "16M", "--sparse", "--cache-id", "5", "--backing", "vol=" + dir.resolve("a.img"),
                "--backing", "other=" + dir.resolve("b.img"), "--metrics-listen", Integer.toString(port));
        // Dirty lines on one volume (made durable), and reads that hit and miss.
        try (FileChannel c = FileChannel.open(server.file("vol"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer data = ByteBuffer.allocate(10 * 4096);
            while (data.hasRemaining()) {
                data.put((byte) 7);
            }
            c.write(data.flip(), 1 << 20);
            c.force(false);
            c.read(ByteBuffer.allocate(8192), 1 << 20);
            c.read(ByteBuffer.allocate(8192), 4 << 20);
        }
    }

    @AfterAll
    static void unmount() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** Samples, keyed by name and labels (sorted), from the text format; comments skipped. */
    static Map<String, Double> samples(String text) {
        Map<String, Double> out = new LinkedHashMap<>();
        Pattern line = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? (\\S+)");
        Pattern label = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"");
        for (String l : text.split("\n")) {
            if (l.isEmpty() || l.startsWith("#")) {
                continue;
            }
            Matcher m = line.matcher(l);
            assertTrue(m.matches(), "a sample line: " + l);
            Map<String, String> labels = new TreeMap<>();
            if (m.group(3) != null) {
                Matcher lm = label.matcher(m.group(3));
                while (lm.find()) {
                    labels.put(lm.group(1), lm.group(2));
                }
            }
            out.put(m.group(1) + labels, Double.parseDouble(m.group(4)));
        }
        return out;
    }

    static String key(String name, String... labels) {
        Map<String, String> l = new TreeMap<>();
        l.put("cache", "5");
        for (int i = 0; i < labels.length; i += 2) {
            l.put(labels[i], labels[i + 1]);
        }
        return name + l;
    }

    /** The status file's values by key (the text after "key: "). */
    static Map<String, String> statusFields(String status) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String l : status.split("\n")) {
            int colon = l.indexOf(": ");
            out.putIfAbsent(l.substring(0, colon), l.substring(colon + 2));
        }
        return out;
    }

    static double number(String value) {
        Matcher m = Pattern.compile("^-?[0-9.]+").matcher(value);
        assertTrue(m.find(), "a number at the start of '" + value + "'");
        return Double.parseDouble(m.group());
    }

    /** Reads {@code first}, then {@code second}, then {@code first} again until both reads of {@code first} agree. */
    static String[] stable(Read first, Read second) throws Exception {
        for (int i = 0; i < 200; i++) {
            String a = first.read(), b = second.read(), c = first.read();
            if (a.equals(c)) {
                return new String[] {a, b};
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the figures did not settle in 20 s");
    }

    interface Read {
        String read() throws Exception;
    }

    static String scrape(String path) throws Exception {
        HttpResponse<String> r = get(path);
        assertEquals(200, r.statusCode(), path);
        return r.body();
    }

    static HttpResponse<String> get(String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void metricsFileHasEveryFigureOfStatusAndStat() throws Exception {
        String[] read = stable(() -> server.read("caches/5/status") + "\0" + server.read("caches/5/stat"),
                () -> server.read("caches/5/metrics"));
        String status = read[0].split("\0")[0], stat = read[0].split("\0")[1];
        Map<String, String> st = statusFields(status);
        Map<String, Double> m = samples(read[1]);
        Map<String, Double> expected = new LinkedHashMap<>();
        for (String plain : List.of("segments", "current_segment_id", "current_segment_lines", "last_flushed_segment_id",
                "last_durable_segment_id", "last_migrated_segment_id", "segments_awaiting_writeback", "segments_with_dirty_lines",
                "segments_queued_for_flush", "ring_slots_in_use", "dirty_lines", "indexed_lines", "clean_lines", "warm_clean_lines",
                "ram_buffers_in_use_bytes", "ram_buffers_max", "lost_lines")) {
            expected.put(key("writeboost_" + plain), number(st.get(plain)));
        }
        for (String counter : List.of("flushed_bytes", "written_back_bytes", "bypassed_writes", "bypassed_bytes", "staged_lines_cached_at_flush",
                "read_cache_admissions", "read_hits_clean", "writeback_errors")) {
            expected.put(key("writeboost_" + counter + "_total"), number(st.get(counter)));
        }
        expected.put(key("writeboost_segment_size_bytes"), number(st.get("segment_size")));
        expected.put(key("writeboost_segment_capacity_lines"), number(st.get("current_segment_lines").replaceFirst(".* of ", "")));
        expected.put(key("writeboost_sealed_segments_total"), number(st.get("ring_lines_per_segment").replaceFirst(".*\\(", "")));
        expected.put(key("writeboost_ring_use_ratio"), number(st.get("ring_use_percent")) / 100);
        expected.put(key("writeboost_dirty_bytes"), number(st.get("dirty_lines")) * 4096);
        for (String vol : List.of("vol", "other")) {
            expected.put(key("writeboost_volume_dirty_lines", "volume", vol), number(st.get("dirty_lines." + vol)));
            expected.put(key("writeboost_volume_dirty_bytes", "volume", vol), number(st.get("dirty_lines." + vol)) * 4096);
            String load = st.get("backing_load." + vol);
            expected.put(key("writeboost_volume_backing_load_ratio", "volume", vol), number(load) / 100);
            expected.put(key("writeboost_volume_migrate_threshold_ratio", "volume", vol),
                    number(load.replaceFirst(".*migrate_threshold ", "")) / 100);
            expected.put(key("writeboost_volume_engine_busy_ratio", "volume", vol),
                    number(load.replaceFirst(".*in flight ", "")) / 100);
        }
        expected.put(key("writeboost_writeback_rate_bytes_per_second"),
                number(st.get("writeback_rate").replaceFirst(".*\\(", "")) * 4096);
        expected.put(key("writeboost_paced_writes_total"), number(st.get("paced_writes")));
        expected.put(key("writeboost_bypass_backing_requests_total"), number(st.get("bypassed_bytes").replaceFirst(".*\\(in ", "")));
        for (String kind : List.of("read", "write")) {
            String ratio = st.get(kind + "_hit_ratio");
            Matcher r = Pattern.compile("\\((\\d+) of (\\d+) lines\\)").matcher(ratio);
            assertTrue(r.find(), kind + "_hit_ratio has its counts: " + ratio);
            expected.put(key("writeboost_" + kind + "_hit_lines_total"), Double.parseDouble(r.group(1)));
            expected.put(key("writeboost_" + kind + "_lines_total"), Double.parseDouble(r.group(2)));
        }
        for (String s : List.of("ok", "draining", "degraded", "failed")) {
            expected.put(key("writeboost_state", "state", s), st.get("state").startsWith(s) ? 1.0 : 0.0);
        }
        for (String s : List.of("idle", "pending", "running", "paused")) {
            expected.put(key("writeboost_writeback_state", "state", s), st.get("writeback").startsWith(s) ? 1.0 : 0.0);
        }
        expected.put(key("writeboost_cache_info", "cache_device", st.get("cache_device")), 1.0);
        for (String mode : List.of("write-back", "write-through", "write-around", "pass-through")) {
            expected.put(key("writeboost_cache_mode", "mode", mode), st.get("cache_mode").startsWith(mode) ? 1.0 : 0.0);
        }
        for (String l : stat.split("\n")) {
            if (!l.startsWith("#")) {
                String[] f = l.split(" ");
                expected.put(key("writeboost_stat_lines_total", "write", f[0], "hit", f[1], "on_buffer", f[2], "fullsize", f[3]),
                        Double.parseDouble(f[4]));
            }
        }
        Map<String, Double> actual = new LinkedHashMap<>();
        for (String k : expected.keySet()) {
            actual.put(k, m.get(k));
        }
        assertEquals(expected, actual, "metrics:\n" + read[1] + "\nstatus:\n" + status);
        // The data written above shows: lines dirty on 'vol' only, reads counted.
        assertEquals(10.0, m.get(key("writeboost_volume_dirty_lines", "volume", "vol")));
        assertEquals(0.0, m.get(key("writeboost_volume_dirty_lines", "volume", "other")));
        assertTrue(m.get(key("writeboost_read_lines_total")) >= 4, "reads counted");
        assertEquals(1.0, m.get(key("writeboost_state", "state", "ok")));
    }

    @Test
    void promtoolFindsNoProblemInTheFileOrTheListener() throws Exception {
        assertEquals("", promtool(server.read("caches/5/metrics")));
        assertEquals("", promtool(scrape("/metrics")));
    }

    /** promtool check metrics on {@code text}: what it reported (nothing when the names, types and units are right). */
    static String promtool(String text) throws Exception {
        Process p = new ProcessBuilder("promtool", "check", "metrics").redirectErrorStream(true).start();
        try (var in = p.getOutputStream()) {
            in.write(text.getBytes(StandardCharsets.UTF_8));
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "promtool exits");
        return p.exitValue() == 0 ? out : "exit " + p.exitValue() + ": " + out;
    }

    @Test
    void listenerServesTheFileFiguresAndTheJvms() throws Exception {
        String[] read = stable(() -> server.read("caches/5/metrics"), () -> scrape("/metrics"));
        Map<String, Double> file = samples(read[0]);
        Map<String, Double> http = new LinkedHashMap<>(samples(read[1]));
        assertTrue(http.keySet().stream().anyMatch(k -> k.startsWith("jvm_memory_used_bytes{")), "the JVM's heap is there");
        assertTrue(http.keySet().stream().anyMatch(k -> k.startsWith("jvm_gc_collection_seconds_count{")), "the GC is there");
        http.keySet().removeIf(k -> !k.startsWith("writeboost_"));
        assertEquals(file, http);
        assertTrue(file.size() > 60, "the file has the engine's figures: " + file.size());
    }

    @Test
    void listenerAnswersMetricsOnlyAndOnlyOnLoopback() throws Exception {
        assertEquals(404, get("/").statusCode());
        assertEquals(404, get("/-/healthy").statusCode());
        assertEquals(404, get("/status").statusCode());
        assertEquals(404, get("/metricsx").statusCode());
        assertEquals(404, get("/metrics/x").statusCode());
        assertEquals(200, get("/metrics?name[]=writeboost_state").statusCode());
        List<String> listening = listeningOn(port);
        assertEquals(List.of("127.0.0.1"), listening, "sockets listening on port " + port);
    }

    /** The local addresses of sockets in LISTEN state on {@code port}, from /proc/net/tcp and tcp6. */
    static List<String> listeningOn(int port) throws IOException {
        List<String> out = new ArrayList<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            for (String l : Files.readAllLines(Path.of(table))) {
                String[] f = l.trim().split("\\s+");
                if (f.length < 4 || !f[3].equals("0A") || !f[1].contains(":")) {
                    continue;
                }
                String[] local = f[1].split(":");
                if (Integer.parseInt(local[1], 16) != port) {
                    continue;
                }
                byte[] raw = java.util.HexFormat.of().parseHex(local[0]);
                // The kernel prints each 32-bit word of the address in host (little-endian) order.
                byte[] addr = new byte[raw.length];
                for (int w = 0; w < raw.length; w += 4) {
                    for (int b = 0; b < 4; b++) {
                        addr[w + b] = raw[w + 3 - b];
                    }
                }
                out.add(InetAddress.getByAddress(addr).getHostAddress());
            }
        }
        return out;
    }

    @Test
    void listenerBindsTheAddressGivenAndATakenPortRefusesTheStart() throws Exception {
        Path mnt = Files.createDirectories(dir.resolve("mnt2"));
        Fixture.sparse(dir.resolve("c.img"), 8 << 20);
        String[] args = {"--cache", dir.resolve("cache2.img").toString(), "--format", "--cache-size", "8M", "--sparse",
                "--backing", "c=" + dir.resolve("c.img")};
        FuseServer.Result refused = FuseServer.startExpectingRefusal(mnt, Fixture.concat(args, "--metrics-listen",
                "127.0.0.1:" + port));
        assertEquals(2, refused.status(), refused.stderr());
        assertTrue(refused.stderr().contains("--metrics-listen 127.0.0.1:" + port + ": cannot listen there"), refused.stderr());
        assertTrue(Files.notExists(dir.resolve("cache2.img")), "the refused start created no cache");

        int other = freePort();
        try (FuseServer s = FuseServer.start(mnt, dir.resolve("log2"), Fixture.concat(args, "--metrics-listen", "[::1]:" + other))) {
            assertEquals(List.of("0:0:0:0:0:0:0:1"), listeningOn(other), "the listener is on ::1 only");
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://[::1]:" + other + "/metrics"))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode());
            assertTrue(r.body().contains("writeboost_volume_dirty_lines{cache=\"1\",volume=\"c\"} 0.0"), r.body());
            assertEquals(0, s.stop());
        }
        assertEquals(List.of(), listeningOn(other), "the listener is gone with the server");
    }

    @Test
    void prometheusScrapesTheListener() throws Exception {
        Path work = Files.createDirectories(dir.resolve("prometheus"));
        Path config = work.resolve("prometheus.yml");
        Files.writeString(config, "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: writeboost\n"
                + "    static_configs:\n      - targets: ['127.0.0.1:" + port + "']\n");
        int web = freePort();
        Path out = work.resolve("out");
        Process prometheus = new ProcessBuilder("prometheus", "--config.file=" + config, "--storage.tsdb.path=" + work.resolve("data"),
                "--web.listen-address=127.0.0.1:" + web).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        try {
            String query = "writeboost_volume_dirty_lines{volume=\"vol\"}";
            URI uri = URI.create("http://127.0.0.1:" + web + "/api/v1/query?query=" + URLEncoder.encode(query, StandardCharsets.UTF_8));
            Pattern sample = Pattern.compile("\"metric\":\\{([^}]*)\\},\"value\":\\[[0-9.]+,\"([^\"]+)\"\\]");
            String body = "";
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                try {
                    body = HTTP.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(),
                            HttpResponse.BodyHandlers.ofString()).body();
                    Matcher m = sample.matcher(body);
                    if (m.find()) {
                        assertTrue(m.group(1).contains("\"volume\":\"vol\"") && m.group(1).contains("\"cache\":\"5\""), body);
                        assertTrue(m.group(1).contains("\"job\":\"writeboost\""), body);
                        assertEquals(10.0, Double.parseDouble(m.group(2)), body);
                        return;
                    }
                } catch (IOException notYet) {
                    body = notYet.toString();
                }
                assertTrue(prometheus.isAlive(), "prometheus runs: " + Files.readString(out));
                Thread.sleep(200);
            }
            throw new AssertionError("no series for " + query + " within 60 s; last answer: " + body + "\nprometheus:\n"
                    + Files.readString(out));
        } finally {
            prometheus.destroy();
            if (!prometheus.waitFor(30, TimeUnit.SECONDS)) {
                prometheus.destroyForcibly();
                prometheus.waitFor(30, TimeUnit.SECONDS);
            }
        }
    }
}
