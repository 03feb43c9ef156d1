#!/usr/bin/env python3
"""A fixed delay on the way to some addresses, inside one network namespace (this kernel has no
netem), for the home lab: it puts "the Internet" a few milliseconds beyond the router, as a real
line does.

    ip netns exec NS python3 delayline.py DEV MS [--duration S]

Makes the TUN device DEV in the namespace it runs in and prints READY once it exists. Every
packet routed into DEV is written back into DEV after MS milliseconds (order kept): it enters the
namespace again, from DEV, and goes on its way by a policy rule for packets from DEV (see
HomeLab.delay_uplink). Exits on SIGTERM or SIGINT, or after --duration seconds (default 300), and
the device goes with it. Standard library only; Linux; needs root.
"""
import argparse
import collections
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
QUEUE_LIMIT = 10000          # packets held at most; beyond that they are dropped, like a full line


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    parser.add_argument("ms", type=float)
    parser.add_argument("--duration", type=float, default=300.0)
    args = parser.parse_args(argv)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    fd = open_tun(args.dev)
    print("READY", flush=True)
    delay, end = args.ms / 1000.0, time.monotonic() + args.duration
    held = collections.deque()           # (when due, packet), due times in order
    while not stop and time.monotonic() < end:
        now = time.monotonic()
        while held and held[0][0] <= now:
            try:
                os.write(fd, held.popleft()[1])
            except OSError:
                pass
        wait = min(0.2, max(0.0, held[0][0] - now)) if held else 0.2
        try:
            ready, _, _ = select.select([fd], [], [], wait)
        except InterruptedError:
            continue
        if ready:
            while True:
                try:
                    packet = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                if len(held) < QUEUE_LIMIT:
                    held.append((time.monotonic() + delay, packet))
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
