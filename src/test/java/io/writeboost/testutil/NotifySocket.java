package io.writeboost.testutil;

import io.writeboost.server.SystemdNotify;
import jnr.ffi.LibraryLoader;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** A datagram socket in the abstract namespace standing in for systemd's NOTIFY_SOCKET. */
public final class NotifySocket implements AutoCloseable {
    public interface LibC {
        int socket(int domain, int type, int protocol);

        int bind(int fd, byte[] addr, int len);

        long recv(int fd, byte[] buf, long len, int flags);

        int close(int fd);
    }

    private static final int MSG_DONTWAIT = 0x40;
    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    public final String address;
    private final int fd;

    public NotifySocket(String name) throws IOException {
        address = "@" + name;
        fd = LIBC.socket(1, 2, 0);
        byte[] addr = SystemdNotify.sockaddr(address);
        if (fd < 0 || LIBC.bind(fd, addr, addr.length) != 0) {
            throw new IOException("cannot bind notify socket " + address);
        }
    }

    /** Messages received within {@code millis}, until one contains {@code until}. */
    public List<String> receiveUntil(String until, long millis) throws InterruptedException {
        List<String> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + millis;
        byte[] buf = new byte[4096];
        while (System.currentTimeMillis() < deadline) {
            long n = LIBC.recv(fd, buf, buf.length, MSG_DONTWAIT);
            if (n > 0) {
                String msg = new String(buf, 0, (int) n, StandardCharsets.UTF_8);
                got.add(msg);
                if (msg.contains(until)) {
                    return got;
                }
            } else {
                Thread.sleep(20);
            }
        }
        return got;
    }

    @Override
    public void close() {
        LIBC.close(fd);
    }
}
