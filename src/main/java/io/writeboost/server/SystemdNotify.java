package io.writeboost.server;

import jnr.ffi.LibraryLoader;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.nio.charset.StandardCharsets;

/**
 * The sd_notify protocol, spoken directly: one datagram per message to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a leading '@' means the abstract namespace). Done with libc through
 * jnr-ffi, because the JDK has no Unix datagram sockets and libsystemd may be absent; without
 * $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
 */
public final class SystemdNotify {
    private static final Logger log = LogManager.getLogger(SystemdNotify.class);
    static final int AF_UNIX = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000;

    public interface LibC {
        int socket(int domain, int type, int protocol);

        long sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrlen);

        int close(int fd);
    }

    private final String socketPath;
    private final LibC libc;

    private SystemdNotify(String socketPath, LibC libc) {
        this.socketPath = socketPath;
        this.libc = libc;
    }

    public static SystemdNotify fromEnvironment() {
        String path = System.getenv("NOTIFY_SOCKET");
        if (path == null || path.isEmpty()) {
            return new SystemdNotify(null, null);
        }
        return new SystemdNotify(path, LibraryLoader.create(LibC.class).load("c"));
    }

    public boolean enabled() {
        return socketPath != null;
    }

    /** Sends one notification (lines such as READY=1, STATUS=...); failures are logged, never thrown. */
    public void send(String message) {
        if (socketPath == null) {
            return;
        }
        byte[] addr = sockaddr(socketPath);
        byte[] msg = message.getBytes(StandardCharsets.UTF_8);
        int fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            log.warn("sd_notify: socket() failed; '{}' not sent", message);
            return;
        }
        try {
            if (libc.sendto(fd, msg, msg.length, 0, addr, addr.length) != msg.length) {
                log.warn("sd_notify: sending '{}' to {} failed", message, socketPath);
            }
        } finally {
            libc.close(fd);
        }
    }

    /** struct sockaddr_un for {@code path}: family, then the path (abstract when it starts with '@'). */
    public static byte[] sockaddr(String path) {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        boolean abstractName = p.length > 0 && p[0] == '@';
        int len = 2 + p.length + (abstractName ? 0 : 1);
        byte[] addr = new byte[len];
        addr[0] = (byte) AF_UNIX;
        addr[1] = 0;
        System.arraycopy(p, 0, addr, 2, p.length);
        if (abstractName) {
            addr[2] = 0;
        }
        return addr;
    }
}
