"""The network lab itself: each fault really happens, as seen by a connect from the monitor's host.

Every connect here goes from the monitor namespace to the target namespace (198.18.0.0/24) or
to names in the lab's own hosts file; nothing is addressed outside the lab.
"""
import errno
import os
import socket
import subprocess
import sys
import time

import pytest

from netlab import (NetLab, NetLabError, MONITOR_IP, TARGET_IP, TARGET_IP2, TARGET_PORT,
                    lab_support, read_accepts, sweep_stale_labs)

TIMEOUT_NAMES = {"TimeoutError", "timeout"}   # socket.timeout is named "timeout" before 3.10
NAME = "target.lab.test"                      # .test: reserved, never a public name


def test_monitor_namespace_has_no_default_route(netlab):
    assert not netlab.has_default_route()
    for family in ("-4", "-6"):
        routes = subprocess.run(["ip", family, "-n", netlab.monitor_ns, "route", "show"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        assert "default" not in routes
    assert netlab.routes().split() == [
        "198.18.0.0/24", "dev", netlab.monitor_if, "proto", "kernel", "scope", "link",
        "src", MONITOR_IP]


def test_connect_to_listener_succeeds(netlab):
    netlab.start_listener()
    result, err, took = netlab.probe()
    assert (result, err) == ("ok", None)
    assert took < 0.5


def test_listener_serves_every_port_given(netlab):
    netlab.start_listener(5353, 2525)
    assert netlab.probe(port=5353)[0] == "ok"
    assert netlab.probe(port=2525)[0] == "ok"
    assert netlab.probe(port=2526)[0] == "ConnectionRefusedError"


def test_listener_that_cannot_start_is_an_error_with_its_reason(netlab):
    with pytest.raises(NetLabError, match="OverflowError"):
        netlab.start_listener(70000)


def test_stopped_listener_refuses_and_restarts(netlab):
    netlab.start_listener()
    netlab.stop_listener()
    result, err, took = netlab.probe()
    assert (result, err) == ("ConnectionRefusedError", errno.ECONNREFUSED)
    assert took < 0.5
    netlab.start_listener()
    assert netlab.probe()[0] == "ok"


def test_vanish_times_out_until_unvanish(netlab):
    netlab.start_listener()
    assert netlab.probe()[0] == "ok"          # the real neighbour entry is learnt first
    netlab.vanish()
    result, _err, took = netlab.probe(timeout=1.0)
    assert result in TIMEOUT_NAMES
    assert 0.9 < took < 2.0
    netlab.unvanish()
    assert netlab.probe()[0] == "ok"


def test_second_address_stays_reachable_while_the_first_vanishes(netlab, tmp_path):
    netlab.add_target_address()
    log = tmp_path / "accepts"
    netlab.start_listener(accept_log=log)
    before = time.monotonic()
    assert netlab.probe()[0] == "ok"
    assert netlab.probe(TARGET_IP2)[0] == "ok"
    netlab.vanish()
    assert netlab.probe(timeout=0.5)[0] in TIMEOUT_NAMES
    assert netlab.probe(TARGET_IP2)[0] == "ok"
    netlab.unvanish()
    # A connect returns before the listener gets round to accept() it: poll, bounded.
    deadline = time.monotonic() + 5
    while len(read_accepts(log)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    accepts = read_accepts(log)
    assert [(address, port) for _when, address, port in accepts] == [
        (TARGET_IP, TARGET_PORT), (TARGET_IP2, TARGET_PORT), (TARGET_IP2, TARGET_PORT)]
    [(_, vanished), (_, back)] = netlab.log[-2:]
    assert before < accepts[0][0] < accepts[1][0] < vanished < accepts[2][0] < back


def test_far_end_down_times_out_then_no_route_once_arp_fails(netlab):
    netlab.start_listener()
    assert netlab.probe()[0] == "ok"
    netlab.far_end_down()
    result, _err, _took = netlab.probe(timeout=1.0)
    assert result in TIMEOUT_NAMES
    # Once the kernel gives up on ARP for the target (about 3 s after the first packet),
    # connects fail early with "No route to host": only short timeouts see a timeout here.
    result, err, _took = netlab.probe(timeout=5.0)
    assert (result, err) == ("OSError", errno.EHOSTUNREACH)
    netlab.far_end_up()
    assert netlab.probe()[0] == "ok"


def test_link_down_is_unreachable_at_once(netlab):
    netlab.start_listener()
    netlab.link_down()
    result, err, took = netlab.probe(timeout=5.0)
    assert (result, err) == ("OSError", errno.ENETUNREACH)
    assert took < 0.5
    netlab.link_up()
    assert netlab.probe()[0] == "ok"


def test_hosts_edit_in_place_is_seen_by_a_running_process(netlab):
    netlab.start_listener()
    inode = os.stat(netlab.hosts_path).st_ino
    with netlab.prober() as prober:           # started before any of the changes below
        assert prober.connect(NAME)[0] == "gaierror"
        netlab.set_hosts({NAME: TARGET_IP})
        assert prober.connect(NAME)[:2] == ("ok", None)
        netlab.name_gone(NAME)
        result, err, took = prober.connect(NAME)
        # EAI_NONAME, not EAI_AGAIN: the lookup was answered by the hosts file, no DNS tried.
        assert (result, err) == ("gaierror", socket.EAI_NONAME)
        assert took < 0.5
        netlab.name_back(NAME)
        assert prober.connect(NAME)[0] == "ok"
    assert os.stat(netlab.hosts_path).st_ino == inode
    assert netlab.probe(NAME)[0] == "ok"      # and a process started afterwards too


def test_every_fault_and_undo_is_on_the_timeline(netlab):
    netlab.start_listener()
    netlab.vanish()
    netlab.unvanish()
    netlab.link_down()
    netlab.link_up()
    netlab.stop_listener()
    netlab.start_listener()
    netlab.far_end_down()
    netlab.far_end_up()
    netlab.set_hosts({NAME: TARGET_IP})
    netlab.name_gone(NAME)
    netlab.name_back(NAME)
    names = [name for name, _when in netlab.log]
    assert names == ["start_listener", "vanish", "unvanish", "link_down", "link_up",
                     "stop_listener", "start_listener", "far_end_down", "far_end_up",
                     "set_hosts", "name_gone", "name_back"]
    times = [when for _name, when in netlab.log]
    assert times == sorted(times)
    [span] = netlab.durations("vanish", "unvanish")
    assert span == times[2] - times[1]


def test_destroy_removes_namespaces_files_and_processes():
    ok, reason = lab_support()
    if not ok:
        pytest.skip(reason)
    lab = NetLab()
    try:
        lab.start_listener()
        sleeper = lab.popen([sys.executable, "-c", "import time; time.sleep(60)"])
        # Started by someone else, not through popen(): destroy() still finds it.
        stranger = subprocess.Popen(lab.prefix + [sys.executable, "-c",
                                                  "import time; time.sleep(60)"])
        wanted = {lab.listener.pid, sleeper.pid, stranger.pid}
        # Popen returns before `ip netns exec` has entered the namespace: poll, bounded.
        deadline = time.monotonic() + 5
        while not wanted <= set(lab.pids()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert wanted <= set(lab.pids())
    finally:
        lab.destroy()
    assert stranger.wait(5) is not None
    assert sleeper.poll() is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=10).stdout
    assert lab.monitor_ns not in listed and lab.target_ns not in listed
    assert not os.path.exists(lab.etc_dir)
    lab.destroy()                              # idempotent


def test_labs_of_dead_test_processes_are_swept():
    ok, reason = lab_support()
    if not ok:
        pytest.skip(reason)
    dead = subprocess.Popen(["true"])
    dead.wait(5)
    lab = NetLab(sfx="%dn1" % dead.pid)       # as if left by a run killed before teardown
    try:
        lab.start_listener()
        assert sweep_stale_labs() == sorted([lab.monitor_ns, lab.target_ns])
        assert not os.path.exists(lab.etc_dir)
        assert lab.listener.wait(5) is not None
    finally:
        lab.destroy()
