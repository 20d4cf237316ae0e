package io.writeboost.server;

import com.sun.net.httpserver.Authenticator;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpPrincipal;
import io.prometheus.metrics.config.PrometheusProperties;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.writeboost.front.EngineMetrics;

import java.io.IOException;
import java.net.InetSocketAddress;

/**
 * The optional HTTP listener for Prometheus ({@code --metrics-listen}): the official client's
 * HTTP server, answering {@code /metrics} only (every other path 404), with the engine's
 * figures from the same {@link EngineMetrics} the {@code metrics} file renders, and the JVM's
 * own (heap, GC, threads), since the heap grows with the cache. It binds in the preflight, so
 * that an address already taken refuses the start before anything is written; the engine's
 * figures join once the engine is open.
 */
public final class MetricsListener implements AutoCloseable {
    /**
     * Lets through requests for exactly {@code /metrics} and answers every other path 404. The
     * JDK's HTTP server matches a context by prefix, so the client's {@code /metrics} handler
     * would also answer {@code /metricsfoo} and its {@code /} handler every other path; an
     * authenticator is the hook the client applies to all its contexts.
     */
    private static final Authenticator ONLY_METRICS = new Authenticator() {
        private final HttpPrincipal anyone = new HttpPrincipal("scraper", "metrics");

        @Override
        public Result authenticate(HttpExchange exchange) {
            return "/metrics".equals(exchange.getRequestURI().getPath()) ? new Success(anyone) : new Failure(404);
        }
    };

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final HTTPServer server;

    private MetricsListener(InetSocketAddress address) throws IOException {
        // Properties built here, not read from the environment or system properties: the
        // client would otherwise let io.prometheus.exporter.httpServer.port move the listener
        // off the address the operator gave.
        PrometheusProperties properties = PrometheusProperties.builder().build();
        JvmMetrics.builder(properties).register(registry);
        server = HTTPServer.builder(properties).inetAddress(address.getAddress()).port(address.getPort()).registry(registry)
                .registerHealthHandler(false)
                .authenticator(ONLY_METRICS)
                .buildAndStart();
    }

    /** Binds {@code address} and serves the JVM's metrics until {@link #serve} adds the engine's. */
    public static MetricsListener bind(InetSocketAddress address) throws RequestException {
        try {
            return new MetricsListener(address);
        } catch (IOException e) {
            throw new RequestException("--metrics-listen " + address.getHostString() + ":" + address.getPort() + ": cannot listen there: "
                    + e.getMessage());
        }
    }

    public void serve(EngineMetrics metrics) {
        registry.register(metrics);
    }

    /** The port bound (the one asked for, or the one the system chose for port 0). */
    public int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.close();
    }
}
