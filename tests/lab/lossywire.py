#!/usr/bin/env python3
"""A lossy, slow wire between two network namespaces, in user space (this kernel has no netem).

    lossywire.py NS_A ADDR_A NS_B ADDR_B [--loss PCT] [--loss-ab PCT] [--loss-ba PCT] [--delay MS]
                 [--jitter MS] [--seed N] [--control PATH] [--syn-log PATH] [--duration S]

It makes a TUN device `lw0` in each namespace (point to point: ADDR_A <-> ADDR_B, /32 each), and
carries every IP packet between them, dropping PCT % at random (each direction on its own) and
holding each for DELAY ms plus a uniform random 0..JITTER ms (packets keep their order). Both
namespaces must exist; the devices go away when it exits (SIGTERM, SIGINT, or after --duration).

--loss-ab / --loss-ba PCT: the loss of one direction only (A to B, B to A); --loss sets both.

--control PATH: a file it re-reads every 0.2 s while running; a line such as
`loss=30 delay=200 jitter=50` changes the wire's behaviour from then on (missing keys keep their
value), so a test can make a line go bad and recover without restarting the wire. `loss_ab=30` and
`loss_ba=30` change one direction; `loss=` sets both (keys apply from left to right).

--syn-log PATH: append one JSON line per connect attempt the wire takes (a TCP SYN without ACK):
{"t": unix time, "dir": "ab" or "ba", "dst": address, "dport": port, "dropped": true/false}, and
one per change read from --control: {"t", "control": {"loss_ab", "loss_ba", "delay", "jitter"}},
so a test can count the SYNs lost in any stretch of time, per port, and knows when a change took
hold.

Prints `lossywire ready` once both ends are up. Route more than the peer's address over the wire
with `ip -n NS route add SUBNET dev lw0`. Linux only; needs root (it is run as root here).
Standard library only; ctypes for setns(2) where os.setns is missing (Python < 3.12).

(A copy of the lab machines' shared tool, kept here so that a clean clone runs the lab tests
that use it: tests/test_loss_lab.py.)
"""
import argparse
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):
            os.setns(fd, CLONE_NEWNET)
        elif ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


def open_tun(ns, name="lw0"):
    """A TUN device made inside namespace ns; returns its fd (which keeps working from anywhere)."""
    here = "/proc/self/ns/net"
    home = os.open(here, os.O_RDONLY)
    try:
        setns("/var/run/netns/" + ns)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        return fd
    finally:
        if hasattr(os, "setns"):
            os.setns(home, CLONE_NEWNET)
        else:
            ctypes.CDLL(None, use_errno=True).setns(home, CLONE_NEWNET)
        os.close(home)


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True)


def configure(ns, mine, peer):
    six = ":" in mine
    ip("-n", ns, "link", "set", "lw0", "up")
    if six:
        ip("-n", ns, "-6", "addr", "add", mine + "/128", "dev", "lw0", "nodad")
        ip("-n", ns, "-6", "route", "add", peer + "/128", "dev", "lw0")
    else:
        ip("-n", ns, "addr", "add", mine + "/32", "peer", peer + "/32", "dev", "lw0")


def syn_of(packet):
    """(destination address, port) of a TCP SYN without ACK (a connect attempt), else None."""
    version = packet[0] >> 4 if packet else 0
    if version == 4 and len(packet) >= 20 and packet[9] == 6:
        off, dst = (packet[0] & 0x0F) * 4, socket.inet_ntop(socket.AF_INET, packet[16:20])
    elif version == 6 and len(packet) >= 40 and packet[6] == 6:
        off, dst = 40, socket.inet_ntop(socket.AF_INET6, packet[24:40])
    else:
        return None
    if len(packet) < off + 14 or packet[off + 13] & 0x12 != 0x02:
        return None
    return dst, struct.unpack("!H", packet[off + 2:off + 4])[0]


class Wire:
    def __init__(self, loss, delay, jitter, seed, loss_ab=None, loss_ba=None, syn_log=None):
        self.loss_ab = loss if loss_ab is None else loss_ab      # A to B
        self.loss_ba = loss if loss_ba is None else loss_ba      # B to A
        self.delay, self.jitter = delay, jitter
        self.random = random.Random(seed)
        self.queue = []        # (due, seq, fd_out, packet)
        self.seq = 0
        self.last_due = {}     # fd_out -> latest due time, so that packets keep their order
        self.carried = self.dropped = 0
        self.syn_log = syn_log  # a file opened for appending, or None

    def log(self, **fields):
        if self.syn_log is not None:
            self.syn_log.write(json.dumps(dict(t=round(time.time(), 4), **fields)) + "\n")
            self.syn_log.flush()

    def take(self, packet, fd_out, now, direction="ab"):
        lost = self.random.random() * 100 < (self.loss_ab if direction == "ab" else self.loss_ba)
        if self.syn_log is not None:
            syn = syn_of(packet)
            if syn:
                self.log(dir=direction, dst=syn[0], dport=syn[1], dropped=lost)
        if lost:
            self.dropped += 1
            return
        due = now + (self.delay + self.random.uniform(0, self.jitter)) / 1000.0
        due = max(due, self.last_due.get(fd_out, 0.0))
        self.last_due[fd_out] = due
        self.seq += 1
        heapq.heappush(self.queue, (due, self.seq, fd_out, packet))

    def release(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, _, fd_out, packet = heapq.heappop(self.queue)
            try:
                os.write(fd_out, packet)
                self.carried += 1
            except OSError:
                self.dropped += 1

    def control(self, text):
        for word in text.split():
            key, _, value = word.partition("=")
            if key == "loss" and value:
                self.loss_ab = self.loss_ba = float(value)
            elif key in ("loss_ab", "loss_ba", "delay", "jitter") and value:
                setattr(self, key, float(value))
        self.log(control=dict(loss_ab=self.loss_ab, loss_ba=self.loss_ba, delay=self.delay,
                              jitter=self.jitter))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("ns_a", "addr_a", "ns_b", "addr_b"):
        p.add_argument(name)
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--loss-ab", type=float, default=None)
    p.add_argument("--loss-ba", type=float, default=None)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--control")
    p.add_argument("--syn-log")
    p.add_argument("--duration", type=float, default=3600.0)
    a = p.parse_args()
    fd_a, fd_b = open_tun(a.ns_a), open_tun(a.ns_b)
    configure(a.ns_a, a.addr_a, a.addr_b)
    configure(a.ns_b, a.addr_b, a.addr_a)
    syn_log = open(a.syn_log, "a") if a.syn_log else None
    wire = Wire(a.loss, a.delay, a.jitter, a.seed, a.loss_ab, a.loss_ba, syn_log)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("lossywire ready", flush=True)
    end = time.monotonic() + a.duration
    next_control, control_text = 0.0, None
    other = {fd_a: fd_b, fd_b: fd_a}
    while not stop and time.monotonic() < end:
        now = time.monotonic()
        if a.control and now >= next_control:
            next_control = now + 0.2
            try:
                with open(a.control) as f:
                    text = f.read()
            except OSError:
                text = None
            if text is not None and text != control_text:
                control_text = text
                wire.control(text)
        wait = 0.2 if not wire.queue else max(0.0, min(0.2, wire.queue[0][0] - now))
        try:
            ready, _, _ = select.select([fd_a, fd_b], [], [], wait)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            for _ in range(64):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                wire.take(packet, other[fd], now, "ab" if fd == fd_a else "ba")
        wire.release(time.monotonic())
    print("lossywire carried %d, dropped %d" % (wire.carried, wire.dropped), flush=True)


if __name__ == "__main__":
    sys.exit(main())
