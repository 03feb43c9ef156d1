"""A tiny TCP target for the network lab: accept every connection and close it at once.

    python3 listener.py HOST PORT [PORT ...] [--also HOST] [--accept-log PATH]
                        [--lifetime SECONDS]

Listens on every PORT of the address HOST (and of each --also HOST; IPv4 or IPv6), prints ``READY``
(flushed) once all of them listen, and exits on SIGTERM or SIGINT. As a safety net for a test run
that dies without cleaning up, it also exits by itself after --lifetime seconds (default 900).
With --accept-log it appends one line per accepted connection, ``<time> <address> <port>`` (the
address and port connected to), flushed at once. The time is when the kernel last heard from the
client (its handshake or its close, a moment apart), on time.monotonic()'s clock, the one the
tests read: so the lines show from outside when the monitor's connects got through, however late
a busy machine lets this process accept them. Standard library only, one thread, one selector.
"""
import argparse
import selectors
import signal
import socket
import struct
import sys
import time

DEFAULT_LIFETIME = 900.0
TICK = 0.5  # longest single select(): how late the lifetime deadline may be noticed


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Accept TCP connections and close them at once.")
    parser.add_argument("host", help="IPv4 or IPv6 address to listen on")
    parser.add_argument("ports", nargs="+", type=int, metavar="PORT", help="port(s) to listen on")
    parser.add_argument("--also", action="append", default=[], metavar="HOST",
                        help="another address to listen on (the same ports)")
    parser.add_argument("--accept-log", metavar="PATH",
                        help="append '<monotonic time> <address> <port>' per accepted connection")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME,
                        help="exit after this many seconds (default %(default)s)")
    return parser.parse_args(argv)


def open_listeners(host, ports):
    listeners = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_STREAM)
            listeners.append(sock)
            # Closing first leaves TIME_WAIT on our side: a restarted listener must still bind.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
            sock.setblocking(False)
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


# struct tcp_info (linux/tcp.h): 8 bytes of u8, then u32s; tcpi_last_ack_recv is the 13th u32,
# milliseconds since the last ACK from the peer
_TCP_INFO = struct.Struct("8B13I")


def got_through_at(conn):
    """The monotonic time the kernel last heard from *conn*'s client: its handshake, or the
    close that follows it at once; now if the kernel cannot say."""
    now = time.monotonic()
    try:
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
        last_ack_recv_ms = _TCP_INFO.unpack(info[:_TCP_INFO.size])[-1]
    except (OSError, AttributeError, struct.error):
        return now
    return now - last_ack_recv_ms / 1000.0


def accept_and_close(sock, accept_log=None):
    """Accept every pending connection on the non-blocking *sock* and close each at once;
    note each in *accept_log* (a text stream) when one is given."""
    for _ in range(1000):  # bounded: the rest waits for the next select()
        try:
            conn, _addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. ECONNABORTED: the client gave up already
            return
        if accept_log is not None:
            address, port = conn.getsockname()[:2]
            accept_log.write("%.6f %s %d\n" % (got_through_at(conn), address, port))
            accept_log.flush()
        conn.close()


class Stop(Exception):
    """Raised by the signal handler so that SIGTERM ends select() at once."""


def _raise_stop(_signum, _frame):
    raise Stop()


def serve(listeners, lifetime, accept_log=None):
    deadline = time.monotonic() + lifetime
    with selectors.DefaultSelector() as selector:
        for sock in listeners:
            selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            for key, _events in selector.select(TICK):
                accept_and_close(key.fileobj, accept_log)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    listeners = []
    accept_log = None
    try:
        for host in [args.host, *args.also]:
            listeners.extend(open_listeners(host, args.ports))
        if args.accept_log:
            accept_log = open(args.accept_log, "a")
        print("READY", flush=True)
        serve(listeners, args.lifetime, accept_log)
    except Stop:
        pass
    finally:
        for sock in listeners:
            sock.close()
        if accept_log is not None:
            accept_log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
