package io.writeboost.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --metrics-listen and the config key: loopback unless an address is named, and bad forms refused with a message. */
class MetricsListenTest {
    @TempDir
    Path dir;

    @Test
    void aPortAloneOrAnEmptyAddressMeansLoopback() throws Exception {
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 9500);
        assertEquals(loopback, MountOptions.parseListen("9500"));
        assertEquals(loopback, MountOptions.parseListen(":9500"));
        assertTrue(MountOptions.parseListen("9500").getAddress().isLoopbackAddress());
    }

    @Test
    void aNamedAddressIsTakenAsGiven() throws Exception {
        assertEquals(new InetSocketAddress(InetAddress.getByName("0.0.0.0"), 9500), MountOptions.parseListen("0.0.0.0:9500"));
        assertEquals(new InetSocketAddress(InetAddress.getByName("10.1.2.3"), 1), MountOptions.parseListen("10.1.2.3:1"));
        assertEquals(new InetSocketAddress(InetAddress.getByName("::1"), 65535), MountOptions.parseListen("[::1]:65535"));
        assertEquals(new InetSocketAddress(InetAddress.getByName("::"), 9500), MountOptions.parseListen("[::]:9500"));
    }

    @Test
    void badFormsAreRefused() {
        for (String bad : new String[] {"", "x", "0", "65536", "-1", "127.0.0.1", "127.0.0.1:", "::1:9500", "127.0.0.1:port"}) {
            UsageException e = assertThrows(UsageException.class, () -> MountOptions.parseListen(bad), bad);
            assertTrue(e.getMessage().startsWith("--metrics-listen " + bad + ": "), e.getMessage());
        }
    }

    @Test
    void theConfigKeySetsItAndTheListenerIsOffWithoutIt() throws Exception {
        Path f = dir.resolve("wb.conf");
        Files.writeString(f, "metrics-listen = 9501\n");
        MountOptions o = new MountOptions();
        ConfigFile.apply(f, o);
        assertEquals(new InetSocketAddress(InetAddress.getLoopbackAddress(), 9501), o.metricsListen);
        assertNull(new MountOptions().metricsListen);
    }
}
