"""The routing table as Linux shows it: default routes and the gateway from the text of
/proc/net/route and /proc/net/ipv6_route, interface state from /sys/class/net, and `local`.

Every text here was read from a real file (a lab namespace, or this machine), byte for byte.
"""
from pathlib import Path

import pytest

from pyNetConnMon import (GATEWAY_PORT, Route, Surroundings, choose_gateway, link_is_up,
                          local_trouble, parse_ipv4_routes, parse_ipv6_routes, parse_target,
                          route_families)

ROUTES = Path(__file__).resolve().parent / "data" / "routes"


def _routes(name):
    """A routing table's text as read, byte for byte, from a real /proc/net file."""
    return (ROUTES / name).read_text(encoding="ascii")


# A namespace with the lab's home network: default routes via 198.18.0.1 and 2001:db8:0:1::1.
HOME_IPV4 = _routes('home-ipv4')
HOME_IPV6 = _routes('home-ipv6')
# The same with a second IPv4 default route (metric 600) and an IPv6 one learnt from a router
# advertisement: a link-local gateway, flags with RTF_EXPIRES.
TWO_IPV4 = _routes('two-ipv4')
RA_IPV6 = _routes('ra-ipv6')
# `ip link set vca down`: the routes through it are gone; only the unreachable ones on lo stay.
DOWN_IPV4 = _routes('down-ipv4')
DOWN_IPV6 = _routes('down-ipv6')
# A container on this machine: gateway 192.0.2.1, IPv6 gateway fd00::1.
HOST_IPV4 = _routes('host-ipv4')
HOST_IPV6 = _routes('host-ipv6')


# -- parsing ---------------------------------------------------------------------------------------

def test_the_default_routes_of_a_home_network():
    assert parse_ipv4_routes(HOME_IPV4, "little") == [Route(4, "198.18.0.1", "vca", 0)]
    assert parse_ipv6_routes(HOME_IPV6) == [Route(6, "2001:db8:0:1::1", "vca", 1024)]


def test_this_machines_own_routing_table():
    assert parse_ipv4_routes(HOST_IPV4, "little") == [Route(4, "192.0.2.1", "eth0", 0)]
    assert parse_ipv6_routes(HOST_IPV6) == [Route(6, "fd00::1", "eth0", 1024)]


def test_two_default_routes_and_a_link_local_gateway_with_its_interface_as_scope():
    assert parse_ipv4_routes(TWO_IPV4, "little") == [Route(4, "198.18.0.1", "vca", 0),
                                                     Route(4, "198.18.0.254", "vca", 600)]
    assert parse_ipv6_routes(RA_IPV6) == [Route(6, "fe80::1%vca", "vca", 1024)]


def test_a_link_that_went_down_leaves_no_default_route_and_unreachable_routes_are_none():
    assert parse_ipv4_routes(DOWN_IPV4, "little") == []
    assert parse_ipv6_routes(DOWN_IPV6) == []


def test_a_big_endian_machine_writes_the_address_the_other_way_round():
    text = HOME_IPV4.replace("010012C6", "C6120001")
    assert parse_ipv4_routes(text, "big") == [Route(4, "198.18.0.1", "vca", 0)]


def test_a_default_route_without_gateway_is_a_route_with_nothing_to_probe():
    # `ip route add default dev wg0` (a VPN): RTF_UP only
    text = (HOME_IPV4.splitlines(True)[0]
            + "wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert parse_ipv4_routes(text, "little") == [Route(4, None, "wg0", 0)]
    assert choose_gateway(parse_ipv4_routes(text, "little")) is None


@pytest.mark.parametrize("text", ["", "garbage\n", "Iface\tDestination\nvca\tZZ\n",
                                  "x y z\n" * 3, "\x00\xff\n"])
def test_text_that_is_not_a_routing_table_gives_no_routes(text):
    assert parse_ipv4_routes(text) == [] and parse_ipv6_routes(text) == []


# -- choosing the gateway --------------------------------------------------------------------------

def test_the_gateway_is_the_ipv4_default_route_with_the_lowest_metric():
    routes = parse_ipv4_routes(TWO_IPV4, "little") + parse_ipv6_routes(RA_IPV6)
    assert choose_gateway(routes) == "198.18.0.1"
    assert choose_gateway(list(reversed(routes))) == "198.18.0.1"


def test_without_an_ipv4_default_route_the_ipv6_gateway_is_probed():
    assert choose_gateway(parse_ipv6_routes(RA_IPV6)) == "fe80::1%vca"
    assert choose_gateway([]) is None


# -- link state and `local` ------------------------------------------------------------------------

@pytest.mark.parametrize("operstate, carrier, up", [
    ("up\n", "1\n", True),
    ("down\n", "0\n", False),               # a veth whose peer went down; a cable pulled out
    ("down\n", None, False),                # admin down: carrier cannot be read (EINVAL)
    ("dormant\n", "1\n", False),            # Wi-Fi not associated
    ("lowerlayerdown\n", None, False),
    ("unknown\n", "1\n", True),             # lo, many VPN and PPP interfaces
    ("unknown\n", "0\n", False),
    ("unknown\n", None, True),              # the kernel cannot tell: not counted as down
    (None, None, False),                    # the interface is gone (a USB stick pulled out)
])
def test_link_state_from_operstate_and_carrier(operstate, carrier, up):
    assert link_is_up(operstate, carrier) is up


def test_local_when_the_default_routes_seen_before_are_gone():
    assert local_trouble([], had_routes=True, down_interfaces=set()) == \
        "this machine has no default route"


def test_never_local_for_a_machine_that_never_had_a_default_route():
    # a monitor of its own LAN: its targets are on a directly connected network
    assert local_trouble([], had_routes=False, down_interfaces=set()) is None


def test_local_when_every_default_routes_interface_has_no_link():
    routes = parse_ipv4_routes(TWO_IPV4, "little") + [Route(6, "fe80::1%wlan0", "wlan0", 1024)]
    assert local_trouble(routes, True, {"vca", "wlan0"}) == "vca and wlan0 have no link"
    assert local_trouble(routes, True, {"vca"}) is None          # Wi-Fi still has a link
    assert local_trouble(routes[:1], True, {"vca"}) == "vca has no link"


# -- the files read by Surroundings ----------------------------------------------------------------

class Files:
    """A routing table and /sys/class/net in tmp_path, changed between reads."""

    def __init__(self, tmp_path):
        self.ipv4, self.ipv6 = tmp_path / "route", tmp_path / "ipv6_route"
        self.sys_net = tmp_path / "net"
        self.set(HOME_IPV4, HOME_IPV6)
        self.link("vca", "up\n", "1\n")

    def set(self, ipv4, ipv6):
        self.ipv4.write_text(ipv4)
        self.ipv6.write_text(ipv6)

    def link(self, name, operstate, carrier):
        folder = self.sys_net / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "operstate").write_text(operstate)
        (folder / "carrier").write_text(carrier)

    def surroundings(self, gateway="auto", loopback_only=False, families=(4, 6)):
        self.now = 0.0
        return Surroundings(gateway, (str(self.ipv4), str(self.ipv6)), str(self.sys_net),
                            clock=lambda: self.now, loopback_only=loopback_only,
                            families=families)


def test_the_gateway_follows_the_routing_table_while_running(tmp_path):
    files = Files(tmp_path)
    surroundings = files.surroundings()
    first = surroundings.gateway()
    assert (first.label, first.found) == ("198.18.0.1:%d" % GATEWAY_PORT, True)
    files.now += 1.0
    assert surroundings.gateway() is first          # the same router: the same object
    files.set(HOME_IPV4.replace("010012C6", "FE0012C6"), HOME_IPV6)     # DHCP: a new router
    files.now += 1.0
    assert surroundings.gateway().label == "198.18.0.254:53"
    files.set(DOWN_IPV4, HOME_IPV6)
    files.now += 1.0
    assert surroundings.gateway().label == "[2001:db8:0:1::1]:53"
    files.set(DOWN_IPV4, DOWN_IPV6)
    files.now += 1.0
    assert surroundings.gateway() is None


def test_the_routing_table_is_read_for_the_gateway_at_most_once_a_second(tmp_path):
    files = Files(tmp_path)
    surroundings = files.surroundings()
    first = surroundings.gateway()
    files.set(HOME_IPV4.replace("010012C6", "FE0012C6"), HOME_IPV6)     # DHCP: a new router
    files.now += 0.99                               # rounds at -i 0.05 in between: not read
    assert surroundings.gateway() is first
    files.now += 0.01
    assert surroundings.gateway().label == "198.18.0.254:53"


def test_a_fresh_read_of_the_routing_table_follows_dhcp_at_once(tmp_path):
    # the first failed round asks for one: a new router may not wait for the next second
    files = Files(tmp_path)
    surroundings = files.surroundings()
    first = surroundings.gateway()
    files.set(HOME_IPV4.replace("010012C6", "FE0012C6"), HOME_IPV6)     # DHCP: a new router
    files.now += 0.5
    assert surroundings.gateway() is first
    assert surroundings.gateway(fresh=True).label == "198.18.0.254:53"


def test_local_trouble_from_the_files(tmp_path):
    files = Files(tmp_path)
    surroundings = files.surroundings()
    assert surroundings.local_trouble() is None
    files.link("vca", "down\n", "0\n")                 # the cable: routes stay, no link
    assert surroundings.local_trouble() == "vca has no link"      # seen at once
    files.set(DOWN_IPV4, DOWN_IPV6)                    # the link down: no route at all
    files.now += 1.0                                   # the table is read once a second
    assert surroundings.local_trouble() == "this machine has no default route"


@pytest.mark.parametrize("targets, families", [
    (["198.18.1.2:80"], (4,)), (["[2001:db8:0:2::2]:80"], (6,)),
    (["198.18.1.2:80", "[2001:db8:0:2::2]:80"], (4, 6)),
    (["target.lab.test:80"], (4, 6)),                   # a name may resolve to either
    (["127.0.0.1:80", "[2001:db8:0:2::2]:80"], (6,)),   # loopback needs no route
    (["127.0.0.1:80"], (4, 6)),
    (["[::ffff:198.18.1.2]:80"], (4,)),                 # an IPv4 address, on the IPv4 routes
])
def test_the_route_families_the_targets_need(targets, families):
    assert route_families([parse_target(value, 53) for value in targets]) == families


def test_a_dual_stack_machine_without_its_ipv4_route_has_no_way_to_ipv4_targets(tmp_path):
    # the DHCPv4 lease lost: the IPv4 default route is gone, the IPv6 one (from router
    # advertisements) stays; the kernel says "Network is unreachable" to IPv4 connects
    files = Files(tmp_path)
    ipv4_targets, both = files.surroundings(families=(4,)), files.surroundings()
    assert ipv4_targets.local_trouble() is None and both.local_trouble() is None
    files.set(DOWN_IPV4, HOME_IPV6)
    files.now += 1.0
    assert ipv4_targets.local_trouble() == "this machine has no IPv4 default route"
    assert ipv4_targets.gateway() is None           # not the IPv6 router: not on their way
    assert both.local_trouble() is None             # IPv6 targets still have a way
    assert both.gateway().label == "[2001:db8:0:1::1]:53"


def test_the_gateway_probed_is_the_one_on_the_way_to_the_targets(tmp_path):
    files = Files(tmp_path)
    assert files.surroundings(families=(6,)).gateway().label == "[2001:db8:0:1::1]:53"
    assert files.surroundings(families=(4,)).gateway().label == "198.18.0.1:53"
    # targets of both families (or names): IPv4's, as the one most routers answer on
    assert files.surroundings(families=(4, 6)).gateway().label == "198.18.0.1:53"


def test_with_only_loopback_targets_no_router_is_looked_for_and_no_link_blamed(tmp_path):
    from pyNetConnMon import parse_gateway
    files = Files(tmp_path)
    surroundings = files.surroundings(loopback_only=True)
    beyond = files.surroundings()                   # the same machine, with targets beyond it
    assert surroundings.gateway() is None           # though the table has one
    given = parse_gateway("198.18.0.254:80")
    assert files.surroundings(given, loopback_only=True).gateway() is given
    assert surroundings.local_trouble() is None and beyond.local_trouble() is None
    # nor is this machine's link or route ever the cause: the targets do not go through them
    files.link("vca", "down\n", "0\n")
    assert (surroundings.local_trouble(), beyond.local_trouble()) == (None, "vca has no link")
    files.set(DOWN_IPV4, DOWN_IPV6)
    files.now += 1.0
    assert (surroundings.local_trouble(), beyond.local_trouble()) == (
        None, "this machine has no default route")


def test_with_only_loopback_targets_no_trouble_of_the_link_is_blamed(tmp_path):
    # a loopback target needs neither a link nor a route: its outage is not this machine's link
    files = Files(tmp_path)
    surroundings = files.surroundings(loopback_only=True)
    files.link("vca", "down\n", "0\n")
    assert surroundings.local_trouble() is None
    files.set(DOWN_IPV4, DOWN_IPV6)
    files.now += 1.0
    assert surroundings.local_trouble() is None
    files.set(HOME_IPV4, HOME_IPV6)
    assert files.surroundings(loopback_only=False).local_trouble() == "vca has no link"


def test_without_the_files_nothing_is_found_and_nothing_is_local(tmp_path):
    surroundings = Surroundings("auto", (str(tmp_path / "no"), str(tmp_path / "none")),
                                str(tmp_path / "net"))
    assert surroundings.gateway() is None and surroundings.local_trouble() is None


def test_a_gateway_given_or_turned_off_is_kept_whatever_the_table_says(tmp_path):
    from pyNetConnMon import parse_gateway
    files = Files(tmp_path)
    given = parse_gateway("198.18.0.254:80")
    assert (given.label, given.found) == ("198.18.0.254:80", False)
    assert files.surroundings(given).gateway() is given
    off = files.surroundings(parse_gateway("none"))
    assert off.gateway() is None
    files.set(DOWN_IPV4, DOWN_IPV6)
    files.now += 1.0
    assert off.local_trouble() == "this machine has no default route"   # still seen


def many_routes(count, default_last=True):
    """/proc/net/route and /proc/net/ipv6_route text of a router's table: `count` routes each,
    the default route (via 198.18.0.1 and 2001:db8:0:1::1) last, as the kernel lists IPv6's."""
    ipv4 = [HOME_IPV4.splitlines()[0]]
    ipv6 = []
    for number in range(count):
        destination = bytes((10, number >> 8 & 255, number & 255, 0))[::-1].hex().upper()
        ipv4.append("vca\t%s\t010012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0" % destination)
        ipv6.append("2001db8%025x 40 00000000000000000000000000000000 00 "
                    "20010db8000000010000000000000001 00000400 00000001 00000000 00000003     vca"
                    % (number << 64))
    default4 = [line for line in HOME_IPV4.splitlines()[1:] if "\t00000000\t" in line]
    default6 = [line for line in HOME_IPV6.splitlines() if line.startswith("0" * 32 + " 00 ")]
    return "\n".join(ipv4 + default4) + "\n", "\n".join(ipv6 + default6) + "\n"


@pytest.mark.parametrize("count", [2000, 20000])
def test_while_down_a_big_routing_table_is_read_at_most_once_a_second(tmp_path, count):
    # every round while down asks for local trouble (at --down-interval 0.05: 20 a second)
    files = Files(tmp_path)
    files.set(*many_routes(count))
    surroundings = files.surroundings()
    assert surroundings.gateway().label == "198.18.0.1:%d" % GATEWAY_PORT
    assert surroundings.local_trouble() is None
    files.set(DOWN_IPV4, DOWN_IPV6)                 # the routes gone, as when the link is down
    for _ in range(19):
        files.now += 0.05
        assert surroundings.local_trouble() is None      # not read again within the second
    files.now += 0.05
    assert surroundings.local_trouble() == "this machine has no default route"


def test_the_default_route_is_found_at_the_end_of_a_table_of_many_megabytes(tmp_path):
    files = Files(tmp_path)
    files.set(DOWN_IPV4, many_routes(40000)[1])      # 6 MB of IPv6 routes, the default last
    assert files.ipv6.stat().st_size > 5 * 1024 * 1024
    assert files.surroundings().gateway().label == "[2001:db8:0:1::1]:53"
