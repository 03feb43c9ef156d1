"""The home network lab: this machine, a router and "the Internet" in three network namespaces.

    pm-<sfx> (monitor)           pr-<sfx> (router, forwards)       pi-<sfx> (the Internet)
    vm<sfx> 198.18.0.10/24  ---  vr<sfx> 198.18.0.1/24
      2001:db8:0:1::10/64          2001:db8:0:1::1/64
                                 vu<sfx> 198.18.1.1/24        ---  vi<sfx> 198.18.1.2, .3, .53/24
                                   2001:db8:0:2::1/64                2001:db8:0:2::2, ::3/64

The monitor's default routes (IPv4 and IPv6) go via the router, exactly as at home, so
/proc/net/route and /proc/net/ipv6_route read inside pm-<sfx> show them. The router forwards (its
own namespace's ip_forward and IPv6 forwarding; the host's settings are untouched); the Internet
namespace has the way back to the LAN. Nothing can leave the lab: no namespace has a link to the
host's network, the router and the Internet have no default route, and ``check_confined()``
(run after every build) refuses any route beyond 198.18.0.0/15 and 2001:db8::/32 other than the
monitor's default via the lab's router.

The Internet holds the targets, two addresses per family (TARGET_IP, TARGET_IP2, TARGET_IP6,
TARGET_IP6_2), all served by one listener.py (``start_listener``, accept log as in NetLab), and a
DNS server (dns_server.py, dnslib) on its own address DNS_IP, port 53, so that a target fault
leaves DNS alone. The monitor's namespace has its own hosts file (localhost only; ``set_hosts``),
nsswitch.conf ("hosts: files dns") and resolv.conf naming DNS_IP, written before any process
starts there.

Faults, each with its undo, each recorded in ``HomeLab.log`` as ``(name, time.monotonic())``
taken once the change has taken effect (``durations`` as in NetLab). What the monitor's namespace
sees (measured on the shared 2-core machine; test_homelab.py checks each line and prints its
figures with ``pytest -rP tests/test_homelab.py``; counts and spreads from one longer run):

========================================  ========================================================
fault / undo                              what a connect (or lookup) from pm-<sfx> sees
========================================  ========================================================
(none)                                    target: accepted in under 1 ms, IPv4 and IPv6 (50 of
                                          50 each); the router's LAN addresses, CLOSED_PORT:
                                          refused in under 1 ms; lookup of NAME: both addresses
                                          in 4 ms; of an unknown name: EAI_NONAME
``own_link_down()`` / ``own_link_up()``   ENETUNREACH at once (under 1 ms), both families, the
                                          router's addresses too; no default route in
                                          /proc/net/route and ipv6_route; the undo re-adds them
``ipv4_route_gone()`` /                   IPv4: ENETUNREACH at once (3 of 3, under 10 ms); IPv6
``ipv4_route_back()``                     target: accepted as before; no IPv4 default route in
                                          /proc/net/route, the IPv6 one stays
``router_gone()`` / ``router_back()``     everything times out (1.004 s with a 1 s timeout), the
                                          router's addresses too; a lookup fails with EAI_AGAIN
                                          after 2.0 s (resolv.conf "timeout:2"); the routes stay
``uplink_down()`` / ``uplink_up()``       IPv4 target: ENETUNREACH at once, from the router (ICMP
                                          "network unreachable"; rate-limited, see below); IPv6
                                          target: ENETUNREACH after 1.0 s (the error about the
                                          first SYN does not end the connect, the one about the
                                          SYN sent again does: a timeout under 1 s sees a
                                          timeout); the router's CLOSED_PORT: refused at once; a
                                          lookup: EAI_AGAIN at once
``dns_down()`` / ``dns_up()``             a lookup: EAI_AGAIN in 3 ms (the stopped server's port
                                          answers "port unreachable"); the addresses answer
``target_vanish(a)``/``target_back(a)``   address *a* times out, the other addresses answer
``family_down(f)`` / ``family_up(f)``     every target address of family f ('ipv4' or 'ipv6')
                                          times out, the other family answers, lookups too
``router_drops_own_connects()`` /         the router's LAN addresses time out instead of
``router_answers_own_connects()``         refusing CLOSED_PORT; the targets answer
``congestion(s)`` / ``congestion_end()``  target: accepted in 1.3 to 1.7 s (18 of 18 in a 30 s
                                          congestion, median 1.62 s; 3 of 3 in the test's 6 s);
                                          the router: refused in under 1 ms; a lookup: answered
                                          in 1.6 s; after congestion_end(): under 1 ms at once
``delay_uplink(ms)``                      TARGET_IP: accepted in *ms* more (delayline.py on the
                                          router holds the packets towards it), as a real line
                                          puts the Internet a few ms beyond the router
``router_serves_dns()``                   the router accepts connects to its port 53 (a DNS
                                          forwarder, as nearly every home router runs)
``intercept_dns()``                       with router_serves_dns(): a connect to port 53 of ANY
                                          address is accepted by the router itself (an nftables
                                          redirect), as DNS-intercepting routers do
========================================  ========================================================

The router's "network unreachable" for IPv4 is rate-limited by the kernel's route error cost
(net.ipv4.route.error_cost and error_burst, host-wide settings the lab leaves alone): 5 at once,
then about one per second per source address. Connects back to back then see ENETUNREACH
only when their SYN is sent again after 1 s (with a 1 s timeout: timeouts and ENETUNREACH in
turn). The lab turns the router's own per-namespace ICMP rate limits off (icmp_ratelimit,
icmp.ratelimit), so IPv6 gets every error.

Congestion: ``congestion(seconds)`` puts a token bucket (tbf, 200 kbit/s, queue of 47210 bytes)
on pi-<sfx>'s uplink interface, the side that sends towards the monitor, and starts a bounded
stream of 8000-byte UDP datagrams every 10 ms to the router's uplink address, port 9, inside the
lab (the uplink has a 9000-byte MTU, so the full queue still has room for small packets: SYN-ACKs
wait, they are not dropped). It returns once the queue holds CONGESTION_BACKLOG bytes (0.09 s
after the start); ``congestion_end()`` waits for the stream to end (*seconds* after its start),
removes the qdisc (dropping what is still queued, so connects are fast at once) and records
"congestion_end". DNS answers wait in the same queue.

Building a lab takes 0.1 to 0.2 s, destroying it 0.05 s.

Links: a veth becomes operational a moment after `up` (up to about 1 s seen here), and a router
sends no IPv6 neighbour solicitation while its link-local address is still in duplicate address
detection (IPv6 did not pass for about 2 s after a build). So the lab turns that detection off
on its links (accept_dad=0, and ``nodad`` on every IPv6 address), and the build and every undo
that brings a link up wait until the links are operational (bounded): their timeline entry means
"works again".

Processes: ``prefix``/``popen``/``run``/``probe``/``prober`` as in NetLab, in the monitor's
namespace; ``router_prefix`` and ``target_prefix`` (the Internet) for the others. ``destroy()``
kills whatever runs in the three namespaces and deletes them (with the qdisc), and
/etc/netns/pm-<sfx>.

The ``homelab`` fixture (function scope) skips unless running as root with ``ip netns``; it
always destroys the lab. Labs left behind by a test process that was killed outright are swept on
the first use in a process (``sweep_stale_homelabs``), as netlab.py does for its own.
"""
import ipaddress
import itertools
import json
import os
import re
import subprocess
import sys
import time

import pytest

from netlab import (BOGUS_MAC, LISTENER, LOCALHOST_LINES, NETNS_ETC, READY_TIMEOUT, TARGET_PORT,
                    NetLab,
                    NetLabError, _close_pipes, _ip, _netns_names, _nsswitch_text, _stop_process,
                    _wait_for_line, lab_support, sweep_stale_labs)

MONITOR_IP, MONITOR_IP6 = "198.18.0.10", "2001:db8:0:1::10"
ROUTER_IP, ROUTER_IP6 = "198.18.0.1", "2001:db8:0:1::1"          # the router's LAN side
UPLINK_IP, UPLINK_IP6 = "198.18.1.1", "2001:db8:0:2::1"          # the router's uplink side
TARGET_IP, TARGET_IP6 = "198.18.1.2", "2001:db8:0:2::2"
TARGET_IP2, TARGET_IP6_2 = "198.18.1.3", "2001:db8:0:2::3"       # a target that stays up
TARGET_IPS = (TARGET_IP, TARGET_IP2, TARGET_IP6, TARGET_IP6_2)
DNS_IP = "198.18.1.53"                                           # the DNS server's own address
LAN, LAN6 = "198.18.0.0/24", "2001:db8:0:1::/64"
LAB_NETS = tuple(ipaddress.ip_network(n) for n in ("198.18.0.0/15", "2001:db8::/32"))
CLOSED_PORT = 1              # nothing listens there: the router refuses it (RST)
NAME, NAME2 = "target.lab.test", "target2.lab.test"              # .test: never a public name
DNS_NAMES = {NAME: (TARGET_IP, TARGET_IP6), NAME2: (TARGET_IP2, TARGET_IP6_2)}
FAMILIES = ("ipv4", "ipv6")

RESOLV_CONF = "nameserver %s\noptions timeout:2 attempts:1\n" % DNS_IP
OWN_CONNECTS_TABLE = "100"   # the router's policy table with a blackhole for its own replies
UP_TIMEOUT = 10.0            # seconds for a link to become operational after `up`
CONGESTION_MTU = "9000"
CONGESTION_QDISC = ("tbf", "rate", "200kbit", "burst", "10kb", "limit", "47210")
CONGESTION_BACKLOG = 32000   # bytes queued (4 datagrams, 1.3 s at 200 kbit/s): congested

HERE = os.path.dirname(os.path.abspath(__file__))
DNS_SERVER = os.path.join(HERE, "dns_server.py")
DELAYLINE = os.path.join(HERE, "delayline.py")
DELAY_DEV, DELAY_TABLE = "dl0", "200"     # the delay's device and the policy table after it

_counter = itertools.count(1)

# The congestion: argv host port seconds -> 8000-byte UDP datagrams every 10 ms, bounded.
CONGESTION_STREAM = r"""
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
payload = bytes(8000)
end = time.monotonic() + seconds
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    for _ in range(int(seconds * 100) + 1):
        if time.monotonic() >= end:
            break
        try:
            sock.sendto(payload, (host, port))
        except OSError:
            pass
        time.sleep(0.01)
"""


def _netns(ns, *cmd):
    """Run CMD inside namespace *ns* (bounded in time; NetLabError if it fails)."""
    return _ip("netns", "exec", ns, *cmd)


def _family_of(address):
    return "ipv%d" % ipaddress.ip_address(address).version


class HomeLab(NetLab):
    """Three namespaces: monitor, router, Internet, with reversible faults. See the module
    docstring.

    Attributes beyond NetLab's (whose ``target_*`` are the Internet's here): ``router_ns``,
    ``router_lan_if``, ``router_uplink_if``, ``router_prefix``, ``internet_ns`` (=
    ``target_ns``), ``dns`` (the DNS server's Popen or None), ``dns_names``.
    """

    MONITOR_IP = MONITOR_IP
    TARGET_IP = TARGET_IP

    # NetLab's two-host faults name addresses this lab does not have; it has its own below.
    vanish = unvanish = far_end_down = far_end_up = link_down = link_up = None
    add_target_address = None

    def __init__(self, sfx=None):
        self.dns = None
        self.dns_names = dict(DNS_NAMES)
        self.stream = None           # the congestion's sender
        self._stream_end = None      # when it stops by itself (monotonic)
        super().__init__(sfx)        # names the monitor's parts, then calls _build()

    @staticmethod
    def _free_suffix():
        taken = _netns_names()
        for _ in range(1000):
            sfx = "%dh%d" % (os.getpid(), next(_counter))
            if not any(ns + sfx in taken for ns in ("pm-", "pr-", "pi-")) \
                    and not os.path.exists(os.path.join(NETNS_ETC, "pm-" + sfx)):
                return sfx
        raise NetLabError("no free namespace suffix")

    def _build(self):
        sfx = self.sfx
        self.router_ns = "pr-" + sfx
        self.target_ns = self.internet_ns = "pi-" + sfx
        self.router_lan_if = "vr" + sfx
        self.router_uplink_if = "vu" + sfx
        self.target_if = "vi" + sfx
        self.router_prefix = ["ip", "netns", "exec", self.router_ns]
        self.target_prefix = ["ip", "netns", "exec", self.target_ns]
        self.target_ips = list(TARGET_IPS)
        self._write_name_service()
        for ns in (self.monitor_ns, self.router_ns, self.target_ns):
            _ip("netns", "add", ns)
            self._created.append(ns)
        _ip("link", "add", self.monitor_if, "netns", self.monitor_ns, "type", "veth",
            "peer", "name", self.router_lan_if, "netns", self.router_ns)
        _ip("link", "add", self.router_uplink_if, "netns", self.router_ns, "type", "veth",
            "peer", "name", self.target_if, "netns", self.target_ns)
        _netns(self.router_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1",
               "net.ipv6.conf.all.forwarding=1", "net.ipv4.icmp_ratelimit=0",
               "net.ipv6.icmp.ratelimit=0")
        for ns, dev in self._lan() + self._uplink():
            # keep_addr_on_down: `link set down` keeps the IPv6 addresses. accept_dad=0: the
            # link-local address is usable at once (a router sends no neighbour solicitation
            # before it is: IPv6 would not pass for about 2 s after `up`).
            _netns(ns, "sysctl", "-qw", "net.ipv6.conf.%s.keep_addr_on_down=1" % dev,
                   "net.ipv6.conf.%s.accept_dad=0" % dev)
        for ns, dev, addresses in (
                (self.monitor_ns, self.monitor_if, (MONITOR_IP + "/24", MONITOR_IP6 + "/64")),
                (self.router_ns, self.router_lan_if, (ROUTER_IP + "/24", ROUTER_IP6 + "/64")),
                (self.router_ns, self.router_uplink_if, (UPLINK_IP + "/24", UPLINK_IP6 + "/64")),
                (self.target_ns, self.target_if,
                 [a + ("/64" if ":" in a else "/24") for a in (*TARGET_IPS, DNS_IP)])):
            for address in addresses:
                # nodad: else an IPv6 address stays "tentative" for about 2 s, unusable.
                _ip("-n", ns, "addr", "add", address, "dev", dev,
                    *(("nodad",) if ":" in address else ()))
        for ns, dev in ((self.router_ns, self.router_uplink_if), (self.target_ns, self.target_if)):
            _ip("-n", ns, "link", "set", dev, "mtu", CONGESTION_MTU)
        for ns in (self.monitor_ns, self.router_ns, self.target_ns):
            _ip("-n", ns, "link", "set", "lo", "up")
        for ns, dev in self._lan() + self._uplink():
            _ip("-n", ns, "link", "set", dev, "up")
        self._wait_operational(self._lan() + self._uplink())
        self._add_monitor_routes()
        self._add_internet_routes()
        self.check_confined()

    def _write_name_service(self):
        """hosts (localhost only), nsswitch.conf (files, then DNS) and resolv.conf (the lab's
        DNS server) for the monitor's namespace. They must exist before the first process
        starts there: `ip netns exec` bind-mounts them over /etc/... only when one starts."""
        for path in ("/etc/nsswitch.conf", "/etc/resolv.conf", "/etc/hosts"):
            if not os.path.exists(path):
                raise NetLabError("%s missing: the lab cannot confine name lookups" % path)
        os.makedirs(self.etc_dir, exist_ok=False)
        self._made_etc = True
        nsswitch = _nsswitch_text()
        assert nsswitch.endswith("hosts: files\n")
        self._write_new(os.path.join(self.etc_dir, "nsswitch.conf"),
                        nsswitch[:-1] + " dns\n")
        self._write_new(os.path.join(self.etc_dir, "resolv.conf"), RESOLV_CONF)
        self._write_new(self.hosts_path, LOCALHOST_LINES)

    def _lan(self):
        return [(self.monitor_ns, self.monitor_if), (self.router_ns, self.router_lan_if)]

    def _uplink(self):
        return [(self.router_ns, self.router_uplink_if), (self.target_ns, self.target_if)]

    # The lab's static routes, added again after `up` (`link set down` removes the routes
    # through the link). The router needs none: its networks are its own links'.

    def _add_monitor_routes(self):
        _ip("-n", self.monitor_ns, "route", "replace", "default", "via", ROUTER_IP,
            "dev", self.monitor_if)
        _ip("-n", self.monitor_ns, "-6", "route", "replace", "default", "via", ROUTER_IP6,
            "dev", self.monitor_if)

    def _add_internet_routes(self):
        _ip("-n", self.target_ns, "route", "replace", LAN, "via", UPLINK_IP, "dev", self.target_if)
        _ip("-n", self.target_ns, "-6", "route", "replace", LAN6, "via", UPLINK_IP6,
            "dev", self.target_if)

    def _wait_operational(self, links):
        """Poll until every (namespace, interface) in *links* is operationally UP."""
        deadline = time.monotonic() + UP_TIMEOUT
        while True:
            down = [(ns, dev) for ns, dev in links
                    if json.loads(_ip("-j", "-n", ns, "link", "show", "dev", dev).stdout)[0]
                    ["operstate"] != "UP"]
            if not down:
                return
            if time.monotonic() > deadline:
                raise NetLabError("links not up after %.0f s: %s" % (UP_TIMEOUT, down))
            time.sleep(0.05)

    def __repr__(self):
        return "<HomeLab %s/%s/%s%s>" % (self.monitor_ns, self.router_ns, self.target_ns,
                                         " destroyed" if self._destroyed else "")

    # ---- confinement -----------------------------------------------------------------------

    def check_confined(self):
        """Raise NetLabError unless nothing can leave the lab: only lab interfaces and lo, and
        no route beyond the lab's networks but the monitor's default routes via the router."""
        lab_ifs = {self.monitor_if, self.router_lan_if, self.router_uplink_if, self.target_if,
                   "lo"}
        wrong = []
        for ns in self._created:
            for link in json.loads(_ip("-j", "-n", ns, "link", "show").stdout):
                if link["ifname"] not in lab_ifs:
                    wrong.append("%s: interface %s" % (ns, link["ifname"]))
            for family in ("-4", "-6"):
                for route in json.loads(_ip("-j", family, "-n", ns, "route", "show",
                                            "table", "all").stdout):
                    if not self._route_confined(ns, route):
                        wrong.append("%s: route %s" % (ns, route))
        if wrong:
            raise NetLabError("the lab is not confined: " + "; ".join(wrong))

    def _route_confined(self, ns, route):
        if route.get("type", "unicast") in ("blackhole", "unreachable", "prohibit"):
            return True                  # goes nowhere
        gateways = [hop["gateway"] for hop in [route, *route.get("nexthops", [])]
                    if "gateway" in hop]
        if route["dst"] == "default":
            return (ns == self.monitor_ns and route.get("table", "main") == "main"
                    and gateways in ([ROUTER_IP], [ROUTER_IP6]))
        dst = ipaddress.ip_network(route["dst"], strict=False)
        inside = any(dst.version == net.version and dst.subnet_of(net) for net in LAB_NETS)
        on_host = dst.is_loopback or dst.is_link_local or dst.is_multicast
        return (inside or on_host) and all(
            any(ipaddress.ip_address(gateway) in net for net in LAB_NETS) for gateway in gateways)

    # ---- running things --------------------------------------------------------------------

    def probe(self, host=TARGET_IP, port=TARGET_PORT, timeout=1.0):
        """One TCP connect (or name lookup and connect) from the monitor's namespace:
        (result, errno or None, seconds), as NetLab.probe."""
        return super().probe(host, port, timeout)

    def popen_router(self, cmd, **kw):
        """Popen *cmd* (argv list) inside the router's namespace."""
        return self._popen(self.router_prefix, cmd, **kw)

    def _start_ready(self, cmd, popen=None):
        """Popen *cmd* in the Internet namespace (or with *popen*) and wait for its READY line."""
        proc = (popen or self.popen_target)(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
        if not _wait_for_line(proc.stdout, "READY", READY_TIMEOUT):
            _stop_process(proc, close=False)
            err = proc.stderr.read()
            _close_pipes(proc)
            raise NetLabError("%s did not get ready: %s" % (cmd[1], err.strip()[-2000:]))
        return proc

    # ---- faults ------------------------------------------------------------------------------

    def own_link_down(self):
        """The monitor's own link goes down: no route at all, ENETUNREACH at once."""
        _ip("-n", self.monitor_ns, "link", "set", self.monitor_if, "down")
        self._record("own_link_down")

    def own_link_up(self):
        _ip("-n", self.monitor_ns, "link", "set", self.monitor_if, "up")
        self._wait_operational(self._lan())
        self._add_monitor_routes()
        self._record("own_link_up")

    def ipv4_route_gone(self):
        """The monitor's IPv4 default route goes (a DHCPv4 lease lost); its IPv6 one stays."""
        _ip("-n", self.monitor_ns, "route", "del", "default")
        self._record("ipv4_route_gone")

    def ipv4_route_back(self):
        _ip("-n", self.monitor_ns, "route", "replace", "default", "via", ROUTER_IP,
            "dev", self.monitor_if)
        self._record("ipv4_route_back")

    def router_gone(self):
        """The router vanishes from the LAN: everything through it, and it, times out."""
        for address in (ROUTER_IP, ROUTER_IP6):
            _ip("-n", self.monitor_ns, "neigh", "replace", address, "lladdr", BOGUS_MAC,
                "dev", self.monitor_if, "nud", "permanent")
        self._record("router_gone")

    def router_back(self):
        for address in (ROUTER_IP, ROUTER_IP6):
            _ip("-n", self.monitor_ns, "neigh", "del", address, "dev", self.monitor_if)
        self._record("router_back")

    def uplink_down(self):
        """The router's uplink goes down: it answers connects beyond it with ICMP "network
        unreachable" (ENETUNREACH), and connects to itself as before."""
        _ip("-n", self.router_ns, "link", "set", self.router_uplink_if, "down")
        self._record("uplink_down")

    def uplink_up(self):
        _ip("-n", self.router_ns, "link", "set", self.router_uplink_if, "up")
        self._wait_operational(self._uplink())
        self._add_internet_routes()
        self._record("uplink_up")

    def dns_up(self, names=None):
        """Start the DNS server (again), answering *names* ({name: address or addresses};
        default: the previous ones, first DNS_NAMES); wait until it listens."""
        if self.dns is not None and self.dns.poll() is None:
            raise NetLabError("the DNS server is already running")
        if names is not None:
            self.dns_names = {name: (addresses,) if isinstance(addresses, str)
                              else tuple(addresses) for name, addresses in names.items()}
        cmd = [sys.executable, DNS_SERVER, DNS_IP, "--port", "53"]
        for name, addresses in self.dns_names.items():
            cmd += ["--name=%s=%s" % (name, address) for address in addresses]
        self.dns = self._start_ready(cmd)
        self._record("dns_up")

    def dns_down(self):
        """Stop the DNS server: lookups of lab names fail at once (EAI_AGAIN)."""
        if self.dns is not None:
            _stop_process(self.dns)
            self.dns = None
        self._record("dns_down")

    def _set_neighbours(self, addresses, bogus):
        """Make the router's neighbour entries for *addresses* (on the uplink) bogus or normal."""
        for address in addresses:
            if bogus:
                _ip("-n", self.router_ns, "neigh", "replace", address, "lladdr", BOGUS_MAC,
                    "dev", self.router_uplink_if, "nud", "permanent")
            else:
                _ip("-n", self.router_ns, "neigh", "del", address, "dev", self.router_uplink_if)

    def target_vanish(self, address=TARGET_IP):
        """Packets to one target address vanish behind the router: it times out, the others
        answer."""
        self._set_neighbours([address], bogus=True)
        self._record("target_vanish")

    def target_back(self, address=TARGET_IP):
        self._set_neighbours([address], bogus=False)
        self._record("target_back")

    def family_down(self, family="ipv6"):
        """Every target address of *family* ('ipv4' or 'ipv6') vanishes behind the router;
        the other family, and DNS, keep working. family_up() also undoes a target_vanish() of
        an address of that family."""
        self._set_neighbours(self._family_targets(family), bogus=True)
        self._record("family_down")

    def family_up(self, family="ipv6"):
        self._set_neighbours(self._family_targets(family), bogus=False)
        self._record("family_up")

    def _family_targets(self, family):
        if family not in FAMILIES:
            raise ValueError("family must be one of %s, not %r" % (FAMILIES, family))
        return [a for a in self.target_ips if _family_of(a) == family]

    def router_drops_own_connects(self):
        """The router silently drops connects to itself (its replies go to a blackhole) but
        still forwards: its LAN addresses time out, the targets answer."""
        for family, address in (("-4", ROUTER_IP), ("-6", ROUTER_IP6)):
            _ip(family, "-n", self.router_ns, "route", "replace", "blackhole", "default",
                "table", OWN_CONNECTS_TABLE)
            _ip(family, "-n", self.router_ns, "rule", "add", "from", address,
                "table", OWN_CONNECTS_TABLE)
        self._record("router_drops_own_connects")

    def router_answers_own_connects(self):
        for family, address in (("-4", ROUTER_IP), ("-6", ROUTER_IP6)):
            _ip(family, "-n", self.router_ns, "rule", "del", "from", address,
                "table", OWN_CONNECTS_TABLE)
            _ip(family, "-n", self.router_ns, "route", "del", "blackhole", "default",
                "table", OWN_CONNECTS_TABLE)
        self._record("router_answers_own_connects")

    def congestion(self, seconds):
        """Congest the line towards the monitor for *seconds* (see the module docstring);
        returns at once. Connects then wait 1-2 s; congestion_end() marks the end."""
        if self.stream is not None:
            raise NetLabError("already congested")
        _netns(self.target_ns, "tc", "qdisc", "replace", "dev", self.target_if, "root",
               *CONGESTION_QDISC)
        self.stream = self.popen_target([sys.executable, "-c", CONGESTION_STREAM, UPLINK_IP,
                                         "9", str(float(seconds))], stdin=subprocess.DEVNULL)
        self._stream_end = time.monotonic() + seconds
        self._wait_backlog()
        self._record("congestion")

    def _wait_backlog(self):
        """Poll until the stream has filled the queue (connects wait behind it from then on)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            [qdisc] = json.loads(_netns(self.target_ns, "tc", "-j", "-s", "qdisc", "show", "dev",
                                        self.target_if, "root").stdout)
            if qdisc["backlog"] >= CONGESTION_BACKLOG:
                return
            if time.monotonic() > deadline or self.stream.poll() is not None:
                raise NetLabError("the congestion's queue did not fill: %s" % qdisc)
            time.sleep(0.02)

    def congestion_end(self):
        """Wait for the stream of congestion() to end, remove the queue, record the end."""
        if self.stream is None:
            raise NetLabError("not congested")
        try:
            self.stream.wait(max(0.0, self._stream_end - time.monotonic()) + READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            _stop_process(self.stream)
        self.stream = None
        _netns(self.target_ns, "tc", "qdisc", "del", "dev", self.target_if, "root")
        self._record("congestion_end")


    def delay_uplink(self, ms, address=TARGET_IP):
        """Packets from the LAN to *address* (IPv4) reach it *ms* later: the router routes them
        into delayline.py's device, which gives them back after *ms*, and a policy rule for
        packets from that device sends them on over the uplink. The answers come back as
        before. Lasts until the lab is destroyed."""
        self._start_ready([sys.executable, DELAYLINE, DELAY_DEV, "%g" % ms, "--duration", "900"],
                          popen=self.popen_router)
        # packets come back from the device with the LAN's source: no reverse-path check there
        _netns(self.router_ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
               "net.ipv4.conf.%s.rp_filter=0" % DELAY_DEV)
        _ip("-n", self.router_ns, "link", "set", DELAY_DEV, "up")
        _ip("-n", self.router_ns, "route", "add", UPLINK_IP.rsplit(".", 1)[0] + ".0/24",
            "dev", self.router_uplink_if, "table", DELAY_TABLE)
        _ip("-n", self.router_ns, "rule", "add", "iif", DELAY_DEV, "table", DELAY_TABLE)
        _ip("-n", self.router_ns, "route", "add", address + "/32", "dev", DELAY_DEV)
        self._record("delay_uplink")

    def router_serves_dns(self):
        """The router accepts TCP connects to its LAN address, port 53 (listener.py)."""
        self._start_ready([sys.executable, LISTENER, ROUTER_IP, "53", "--lifetime", "900"],
                          popen=self.popen_router)
        self._record("router_serves_dns")

    def intercept_dns(self):
        """The router redirects every TCP connect to port 53 from the LAN, whatever address it
        is for, to itself (nftables): with router_serves_dns() it accepts them all."""
        for rule in (("add", "table", "ip", "nat"),
                     ("add", "chain", "ip", "nat", "prerouting",
                      "{ type nat hook prerouting priority -100; }"),
                     ("add", "rule", "ip", "nat", "prerouting", "iifname", self.router_lan_if,
                      "tcp", "dport", "53", "redirect")):
            _netns(self.router_ns, "nft", *rule)
        self._record("intercept_dns")


_HOMELAB_NAMESPACE = re.compile(r"^p[mri]-(\d+)h\d+$")


def sweep_stale_homelabs():
    """Remove the home labs of test processes that died without teardown (pm-/pr-/pi-<pid>h<k>)."""
    return sweep_stale_labs(_HOMELAB_NAMESPACE)


_swept = False


def homelab_support():
    """(True, '') if home labs can be built here, else (False, reason); sweeps stale home labs
    once per process."""
    global _swept
    ok, reason = lab_support()
    if ok and not _swept:
        sweep_stale_homelabs()
        _swept = True
    return ok, reason


@pytest.fixture
def homelab():
    """A fresh HomeLab (nothing started in it yet); destroyed after the test, whatever happens."""
    ok, reason = homelab_support()
    if not ok:
        pytest.skip(reason)
    lab = HomeLab()
    try:
        yield lab
    finally:
        lab.destroy()


__all__ = ["HomeLab", "homelab", "homelab_support", "sweep_stale_homelabs", "MONITOR_IP",
           "MONITOR_IP6", "ROUTER_IP", "ROUTER_IP6", "UPLINK_IP", "UPLINK_IP6", "TARGET_IP",
           "TARGET_IP6", "TARGET_IP2", "TARGET_IP6_2", "TARGET_IPS", "DNS_IP", "DNS_NAMES",
           "NAME", "NAME2", "CLOSED_PORT", "TARGET_PORT", "RESOLV_CONF", "FAMILIES"]
