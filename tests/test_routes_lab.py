"""A router-sized routing table in the fault lab: the monitor's namespace holds thousands of
routes, as a machine that is itself a router or runs a VPN with many prefixes does. While the
connection is down every round asks what this machine's own routes say; the table is read at
most once a second all the same, and the IPv6 default route is found at the end of a large one."""
import subprocess

import pytest

from lab_monitor import start_monitor
from netlab import TARGET_IP, TARGET_PORT

ROUND_SHARE = 0.9        # of the rounds due in a statistics window, at least this many are made


def add_routes(netlab, count):
    """`count` IPv4 and `count` IPv6 routes through the target host, then the default routes,
    added in one `ip -batch` (the IPv6 default route ends up last in /proc/net/ipv6_route)."""
    ns, dev, via = netlab.monitor_ns, netlab.monitor_if, TARGET_IP
    subprocess.run(["ip", "-n", ns, "-6", "addr", "add", "2001:db8:0:1::10/64", "dev", dev,
                    "nodad"], check=True)
    lines = []
    for number in range(count):
        lines.append("route add 10.%d.%d.0/24 via %s dev %s" % (
            number >> 8 & 255, number & 255, via, dev))
        lines.append("route add 2001:db8:1:%x::/64 via 2001:db8:0:1::2 dev %s" % (number, dev))
    lines.append("route add default via %s dev %s" % (via, dev))
    lines.append("route add default via 2001:db8:0:1::2 dev %s" % dev)
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                   check=True, timeout=60)
    table = subprocess.run(netlab.prefix + ["cat", "/proc/net/route", "/proc/net/ipv6_route"],
                           capture_output=True, text=True, check=True).stdout
    assert table.count("\n") > 2 * count


@pytest.mark.parametrize("count", [2000, 20000])
def test_while_down_with_a_big_routing_table_the_rounds_keep_their_pace(netlab, tmp_path, count):
    # -i 1: while down a round every 0.1 s, 50 in a 5 s statistics window
    add_routes(netlab, count)
    netlab.start_listener()
    netlab.vanish()
    monitor = start_monitor(netlab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT),
                            "-i", "1", "-t", "1", "-m", "1", "--no-mail", "--stats-interval", "5")
    monitor.wait_for_event("down", timeout=15)
    windows = [monitor.wait_for_event("stats", timeout=15, count=number) for number in (2, 3)]
    probes = [window["targets"]["%s:%d" % (TARGET_IP, TARGET_PORT)]["probes"]
              for window in windows]
    assert all(probe >= ROUND_SHARE * 50 for probe in probes), probes
    assert monitor.terminate() == 0


def test_the_ipv6_default_route_after_a_table_of_many_megabytes_is_found(netlab, tmp_path):
    # 20,000 IPv6 routes are 3 MB of /proc/net/ipv6_route; the default route comes last.
    # With an IPv6 target, the gateway probed is the IPv6 default route's (nothing answers
    # there: the lab has no such host, and no way out)
    add_routes(netlab, 20000)
    monitor = start_monitor(netlab, tmp_path, "-a", "[2001:db8:0:2::2]:%d" % TARGET_PORT,
                            "-i", "1", "-t", "1", "--no-mail")
    monitor.wait_for_line(r" gateway now \[2001:db8:0:1::2\]:53$", timeout=15)
    assert monitor.terminate() == 0
