"""The home network lab itself: each fault really happens, as a connect from the monitor's
namespace sees it.

Every connect goes from the monitor's namespace to the lab's router or Internet (198.18.0.0/15,
2001:db8::/32), every name looked up is a lab name that only the lab's DNS server answers; nothing
is addressed outside the lab. Each connect prints what it saw: `pytest -rP` shows the figures
quoted in homelab.py.
"""
import errno
import os
import socket
import statistics
import subprocess
import sys
import time

import pytest

from homelab import (CLOSED_PORT, DNS_IP, DNS_NAMES, NAME, RESOLV_CONF, ROUTER_IP, ROUTER_IP6,
                     TARGET_IP, TARGET_IP2, TARGET_IP6, TARGET_IP6_2, TARGET_IPS, TARGET_PORT,
                     UPLINK_IP, HomeLab, homelab_support, sweep_stale_homelabs)
from netlab import LOCALHOST_LINES, NetLabError, read_accepts

TIMEOUT_NAMES = {"TimeoutError", "timeout"}   # socket.timeout is named "timeout" before 3.10
ROUTER = (ROUTER_IP, ROUTER_IP6)
TARGETS_V4, TARGETS_V6 = (TARGET_IP, TARGET_IP2), (TARGET_IP6, TARGET_IP6_2)

# getaddrinfo in the monitor's namespace: argv name -> its addresses, or "gaierror ERRNO".
LOOKUP = r"""
import socket, sys, time
start = time.monotonic()
try:
    found = sorted({ai[4][0] for ai in socket.getaddrinfo(sys.argv[1], 1, proto=6)})
except socket.gaierror as exc:
    found = ["gaierror", str(exc.errno)]
print("%.3f" % (time.monotonic() - start), *found)
"""


def see(lab, host, port=TARGET_PORT, timeout=1.0):
    """One connect from the monitor's namespace, printed: (result, errno, seconds)."""
    result, err, took = lab.probe(host, port, timeout)
    print("%-16s port %-5d %-24s errno %-4s %.4f s" % (host, port, result, err, took))
    return result, err, took


def assert_answers(lab, *hosts):
    for host in hosts:
        result, err, took = see(lab, host)
        assert (result, err) == ("ok", None), host
        assert took < 0.5


def assert_times_out(lab, *hosts, port=TARGET_PORT):
    for host in hosts:
        result, _err, took = see(lab, host, port, timeout=1.0)
        assert result in TIMEOUT_NAMES, host
        assert 0.9 < took < 2.0


def assert_fails_at_once(lab, expected_errno, *hosts, port=TARGET_PORT):
    for host in hosts:
        result, err, took = see(lab, host, port, timeout=3.0)
        assert (result, err) == ("OSError", expected_errno), host
        assert took < 0.5


def assert_router_refuses(lab):
    for host in ROUTER:
        result, err, took = see(lab, host, CLOSED_PORT)
        assert (result, err) == ("ConnectionRefusedError", errno.ECONNREFUSED), host
        assert took < 0.5


def lookup(lab, name):
    """getaddrinfo(name) in the monitor's namespace: (sorted addresses or ["gaierror", errno],
    seconds)."""
    out = lab.run([sys.executable, "-c", LOOKUP, name], capture_output=True, text=True,
                  check=True, timeout=30).stdout.split()
    print("lookup %-16s %-40s %s s" % (name, " ".join(out[1:]), out[0]))
    return out[1:], float(out[0])


def read_in(lab, path):
    return lab.run(["cat", path], capture_output=True, text=True, check=True).stdout


def default_routes(lab):
    """The monitor's default routes as its own /proc shows them: ([IPv4 gateway, little-endian
    hex], [IPv6 next hop]), on its LAN interface."""
    v4 = [row.split() for row in read_in(lab, "/proc/net/route").splitlines()[1:]]
    v6 = [row.split() for row in read_in(lab, "/proc/net/ipv6_route").splitlines()]
    return ([r[2] for r in v4 if r[0] == lab.monitor_if and r[1] == "00000000"],
            [r[4] for r in v6 if r[9] == lab.monitor_if and r[0] == "0" * 32 and r[1] == "00"])


VIA_ROUTER = (["010012C6"], ["20010db8000000010000000000000001"])  # 198.18.0.1, 2001:db8:0:1::1


def test_monitor_routes_go_via_the_router_and_nothing_else_leaves(homelab):
    assert default_routes(homelab) == VIA_ROUTER
    homelab.check_confined()
    for ns in (homelab.router_ns, homelab.target_ns):
        for family in ("-4", "-6"):
            routes = subprocess.run(["ip", family, "-n", ns, "route", "show", "table", "all"],
                                    capture_output=True, text=True, timeout=10,
                                    check=True).stdout
            assert "default" not in routes


@pytest.mark.parametrize("ns, route", [
    ("target_ns", ["192.0.2.0/24", "via", UPLINK_IP]),     # beyond the lab (TEST-NET-1)
    ("router_ns", ["default", "via", TARGET_IP]),          # a default route for the router
])
def test_a_route_out_of_the_lab_is_refused(homelab, ns, route):
    subprocess.run(["ip", "-n", getattr(homelab, ns), "route", "add", *route],
                   check=True, timeout=10)
    with pytest.raises(NetLabError, match="not confined: %s: route .*'%s'"
                       % (getattr(homelab, ns), route[0])):
        homelab.check_confined()


def test_targets_answer_on_both_families_and_the_router_refuses(homelab, tmp_path):
    log = tmp_path / "accepts"
    homelab.start_listener(accept_log=log)
    assert_answers(homelab, *TARGET_IPS)
    assert_router_refuses(homelab)
    deadline = time.monotonic() + 5    # a connect returns before the listener accepts it
    while len(read_accepts(log)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(address, port) for _when, address, port in read_accepts(log)] == [
        (address, TARGET_PORT) for address in TARGET_IPS]


def test_own_link_down_is_unreachable_at_once_without_a_default_route(homelab):
    homelab.start_listener()
    assert_answers(homelab, TARGET_IP, TARGET_IP6)
    homelab.own_link_down()
    assert_fails_at_once(homelab, errno.ENETUNREACH, TARGET_IP, TARGET_IP6)
    assert_fails_at_once(homelab, errno.ENETUNREACH, *ROUTER, port=CLOSED_PORT)
    assert default_routes(homelab) == ([], [])
    homelab.own_link_up()
    assert default_routes(homelab) == VIA_ROUTER
    assert_answers(homelab, TARGET_IP, TARGET_IP6)


def test_router_gone_times_out_the_router_and_everything_behind_it(homelab):
    homelab.start_listener()
    assert_answers(homelab, TARGET_IP, TARGET_IP6)    # the real neighbour entries first
    homelab.router_gone()
    assert_times_out(homelab, TARGET_IP, TARGET_IP6)
    assert_times_out(homelab, *ROUTER, port=CLOSED_PORT)
    assert default_routes(homelab) == VIA_ROUTER      # nothing this machine itself can see
    homelab.router_back()
    assert_answers(homelab, TARGET_IP, TARGET_IP6)
    assert_router_refuses(homelab)


def test_uplink_down_is_unreachable_from_the_router_which_still_answers(homelab):
    homelab.start_listener()
    assert_answers(homelab, TARGET_IP, TARGET_IP6)
    homelab.uplink_down()
    # The same error as the monitor's own link down, but sent by the router (ICMP).
    assert_fails_at_once(homelab, errno.ENETUNREACH, TARGET_IP)
    # IPv6: the error about the first SYN does not end the connect, the one about the SYN
    # sent again after 1 s does.
    result, err, took = see(homelab, TARGET_IP6, timeout=3.0)
    assert (result, err) == ("OSError", errno.ENETUNREACH)
    assert 0.9 < took < 2.0
    assert_router_refuses(homelab)
    assert default_routes(homelab) == VIA_ROUTER
    homelab.uplink_up()
    assert_answers(homelab, TARGET_IP, TARGET_IP6)


def test_faults_combine_and_undo_in_any_order(homelab):
    homelab.start_listener()
    homelab.own_link_down()
    homelab.uplink_down()
    homelab.router_gone()
    homelab.uplink_up()          # while the monitor's own link is still down
    assert_fails_at_once(homelab, errno.ENETUNREACH, TARGET_IP, TARGET_IP6)
    homelab.own_link_up()
    assert_times_out(homelab, TARGET_IP)
    homelab.router_back()
    assert default_routes(homelab) == VIA_ROUTER
    assert_answers(homelab, TARGET_IP, TARGET_IP6)
    homelab.check_confined()


def test_dns_down_fails_lookups_while_the_addresses_answer(homelab):
    homelab.start_listener()
    homelab.dns_up()
    # What a process in the monitor's namespace reads: the names can only come from the lab's DNS.
    assert read_in(homelab, "/etc/hosts") == LOCALHOST_LINES
    assert read_in(homelab, "/etc/resolv.conf") == RESOLV_CONF
    assert "nameserver %s\n" % DNS_IP in RESOLV_CONF
    assert [line for line in read_in(homelab, "/etc/nsswitch.conf").splitlines()
            if line.startswith("hosts:")] == ["hosts: files dns"]
    assert lookup(homelab, NAME)[0] == sorted(DNS_NAMES[NAME])
    assert lookup(homelab, "nosuch.lab.test")[0] == ["gaierror", str(socket.EAI_NONAME)]
    assert_answers(homelab, NAME)
    homelab.dns_down()
    found, took = lookup(homelab, NAME)
    assert found == ["gaierror", str(socket.EAI_AGAIN)]
    assert took < 0.5
    assert_answers(homelab, *DNS_NAMES[NAME])
    homelab.dns_up()
    assert lookup(homelab, NAME)[0] == sorted(DNS_NAMES[NAME])


@pytest.mark.parametrize("gone, stays", [(TARGET_IP, TARGET_IP2), (TARGET_IP6, TARGET_IP6_2)])
def test_target_vanish_times_out_one_address_while_another_answers(homelab, gone, stays):
    homelab.start_listener()
    assert_answers(homelab, gone, stays)
    homelab.target_vanish(gone)
    assert_times_out(homelab, gone)
    assert_answers(homelab, stays)
    homelab.target_back(gone)
    assert_answers(homelab, gone)


@pytest.mark.parametrize("family, gone, stays", [("ipv6", TARGETS_V6, TARGETS_V4),
                                                 ("ipv4", TARGETS_V4, TARGETS_V6)])
def test_family_down_times_out_one_family_while_the_other_and_dns_answer(homelab, family,
                                                                         gone, stays):
    homelab.start_listener()
    homelab.dns_up()
    assert_answers(homelab, *gone, *stays)
    homelab.family_down(family)
    assert_times_out(homelab, *gone)
    assert_answers(homelab, *stays)
    assert lookup(homelab, NAME)[0] == sorted(DNS_NAMES[NAME])
    homelab.family_up(family)
    assert_answers(homelab, *gone)


def test_family_down_wants_a_family(homelab):
    with pytest.raises(ValueError, match="'ipv5'"):
        homelab.family_down("ipv5")
    assert homelab.log == []


def test_router_dropping_its_own_connects_times_out_while_it_forwards(homelab):
    homelab.start_listener()
    assert_router_refuses(homelab)
    homelab.router_drops_own_connects()
    assert_times_out(homelab, *ROUTER, port=CLOSED_PORT)
    assert_answers(homelab, TARGET_IP, TARGET_IP6)
    homelab.router_answers_own_connects()
    assert_router_refuses(homelab)


def test_congestion_slows_connects_until_its_end(homelab):
    homelab.start_listener()
    seconds = 6.0
    with homelab.prober() as prober:
        assert prober.connect(TARGET_IP)[:2] == ("ok", None)
        homelab.congestion(seconds)
        end = time.monotonic() + seconds - 2.0     # each connect takes up to 2 s
        loaded = []
        for _ in range(20):
            if time.monotonic() > end:
                break
            loaded.append(prober.connect(TARGET_IP, timeout=3.0))
        router = prober.connect(ROUTER_IP, CLOSED_PORT)
        homelab.congestion_end()
        after = prober.connect(TARGET_IP)
    times = sorted(took for _result, _err, took in loaded)
    print("loaded: %d connects, %s; min %.3f median %.3f max %.3f s; router %s; after %s"
          % (len(loaded), sorted({r for r, _e, _t in loaded}), times[0],
             statistics.median(times), times[-1], router, after))
    assert {(result, err) for result, err, _took in loaded} == {("ok", None)}
    assert times[-1] > 1.0
    assert router[:2] == ("ConnectionRefusedError", errno.ECONNREFUSED) and router[2] < 0.1
    assert after[:2] == ("ok", None) and after[2] < 0.1
    qdiscs = subprocess.run(["tc", "-n", homelab.target_ns, "qdisc", "show", "dev",
                             homelab.target_if], capture_output=True, text=True, timeout=10,
                            check=True).stdout
    assert "tbf" not in qdiscs


def test_every_fault_and_undo_is_on_the_timeline(homelab):
    homelab.dns_up()
    steps = [
        (homelab.own_link_down, "own_link_down"), (homelab.own_link_up, "own_link_up"),
        (homelab.router_gone, "router_gone"), (homelab.router_back, "router_back"),
        (homelab.uplink_down, "uplink_down"), (homelab.uplink_up, "uplink_up"),
        (homelab.dns_down, "dns_down"), (homelab.dns_up, "dns_up"),
        (homelab.target_vanish, "target_vanish"), (homelab.target_back, "target_back"),
        (homelab.family_down, "family_down"), (homelab.family_up, "family_up"),
        (homelab.router_drops_own_connects, "router_drops_own_connects"),
        (homelab.router_answers_own_connects, "router_answers_own_connects"),
        (lambda: homelab.congestion(0.2), "congestion"),
        (homelab.congestion_end, "congestion_end"),
    ]
    for step, _name in steps:
        step()
    assert [name for name, _when in homelab.log] == ["dns_up"] + [name for _s, name in steps]
    times = [when for _name, when in homelab.log]
    assert times == sorted(times)
    [span] = homelab.durations("congestion", "congestion_end")
    assert 0 < span < 2          # the queue fills within 0.2 s; the stream lasts 0.2 s
    homelab.check_confined()


def test_destroy_removes_namespaces_files_and_processes():
    ok, reason = homelab_support()
    if not ok:
        pytest.skip(reason)
    lab = HomeLab()
    try:
        lab.start_listener()
        lab.dns_up()
        lab.congestion(60)
        sleeper = lab.popen_router([sys.executable, "-c", "import time; time.sleep(60)"])
        started = [lab.listener, lab.dns, lab.stream, sleeper]
        namespaces = lab._created[:]
        assert len(namespaces) == 3
    finally:
        lab.destroy()
    assert all(proc.poll() is not None for proc in started)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=10).stdout.split()
    assert not set(namespaces) & set(listed)
    assert not os.path.exists(lab.etc_dir)
    lab.destroy()                              # idempotent


def test_home_labs_of_dead_test_processes_are_swept():
    ok, reason = homelab_support()
    if not ok:
        pytest.skip(reason)
    dead = subprocess.Popen(["true"])
    dead.wait(5)
    lab = HomeLab(sfx="%dh1" % dead.pid)      # as if left by a run killed before teardown
    try:
        lab.start_listener()
        assert sweep_stale_homelabs() == sorted([lab.monitor_ns, lab.router_ns, lab.target_ns])
        assert not os.path.exists(lab.etc_dir)
        assert lab.listener.wait(5) is not None
    finally:
        lab.destroy()
