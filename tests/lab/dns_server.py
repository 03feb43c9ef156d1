"""A tiny DNS server for the home lab: A and AAAA answers for the names it is given.

    python3 dns_server.py HOST [--port PORT] [--name NAME=ADDRESS ...] [--lifetime SECONDS]

Listens on UDP port PORT (default 53) of the address HOST (IPv4 or IPv6) and prints ``READY``
(flushed) once it does. A query for a NAME given with --name gets that name's addresses of the
type asked for (A: its IPv4 addresses, AAAA: its IPv6 ones; none of that type: an empty answer),
a query for any other name NXDOMAIN. Answers have TTL 0, so nothing caches them. UDP only: the
answers are small. Exits on SIGTERM or SIGINT and, as a safety net for a test run that dies
without cleaning up, after --lifetime seconds (default 900). dnslib (a test-only dependency)
reads and writes the messages; one thread, one selector, like listener.py.
"""
import argparse
import ipaddress
import selectors
import signal
import socket
import sys
import time

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSError, DNSRecord

from listener import DEFAULT_LIFETIME, TICK, Stop, _raise_stop

MAX_QUERY = 4096      # bytes read per datagram; a query is far smaller


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Answer A and AAAA queries for a few names.")
    parser.add_argument("host", help="IPv4 or IPv6 address to listen on")
    parser.add_argument("--port", type=int, default=53, help="UDP port (default %(default)s)")
    parser.add_argument("--name", action="append", default=[], metavar="NAME=ADDRESS",
                        help="answer NAME with ADDRESS (repeat for more addresses or names)")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME,
                        help="exit after this many seconds (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.names = parse_names(args.name)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def parse_names(pairs):
    """["name=address", ...] -> {name (lower case, no final dot): [ip_address, ...]}."""
    names = {}
    for pair in pairs:
        name, sep, address = pair.partition("=")
        if not sep or not name:
            raise ValueError("--name wants NAME=ADDRESS, not %r" % pair)
        names.setdefault(name.rstrip(".").lower(), []).append(ipaddress.ip_address(address))
    return names


def answer(query, names):
    """The reply (bytes) to the DNS message *query*, or None if it is not one."""
    try:
        request = DNSRecord.parse(query)
    except DNSError:
        return None
    reply = request.reply()
    qname = request.q.qname
    addresses = names.get(str(qname).rstrip(".").lower())
    if addresses is None:
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
    wanted = {QTYPE.A: (4, A), QTYPE.AAAA: (6, AAAA)}.get(request.q.qtype)
    if wanted is not None:
        version, rdata = wanted
        for address in addresses:
            if address.version == version:
                reply.add_answer(RR(qname, request.q.qtype, rdata=rdata(str(address)), ttl=0))
    return reply.pack()


def serve(sock, names, lifetime):
    deadline = time.monotonic() + lifetime
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(TICK):
                continue
            for _ in range(1000):  # bounded: the rest waits for the next select()
                try:
                    query, client = sock.recvfrom(MAX_QUERY)
                except (BlockingIOError, InterruptedError):
                    break
                reply = answer(query, names)
                if reply is not None:
                    try:
                        sock.sendto(reply, client)
                    except OSError:  # the client is gone or unreachable: its loss
                        pass


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((args.host, args.port))
            sock.setblocking(False)
            print("READY", flush=True)
            serve(sock, args.names, args.lifetime)
        except Stop:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
