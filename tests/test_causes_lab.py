"""Where it broke, in the home lab: the program in the monitor's namespace, its default route via
the lab's router, each fault made by the kernel (tests/lab/homelab.py).

Each case holds a fault for HOLD seconds and undoes it; the monitor must give the fault's cause in
the event log and in the report it delivers (a notify command appends it to a file), and a
duration within one interval of the one injected (the lab's timeline, from the fault to its
undo). A partial outage must be no interruption at all. Every address is in the lab
(198.18.0.0/15, 2001:db8::/32); the one name is a lab name only the lab's DNS server answers.
"""
import time

import pytest

from harness import events, wait_for_event
from homelab import NAME, ROUTER_IP, TARGET_IP, TARGET_IP2, TARGET_IP6, TARGET_PORT
from lab_monitor import report_rows, start_monitor

INTERVAL = 0.5
FAST = ("-i", "0.5", "-t", "0.3", "-m", "1")
HOLD = 2.5          # seconds each fault is held: well above -m 1, not a whole number of rounds
SLACK = 0.1         # the lab notes a change once `ip` has exited; a round may start a few ms late
V4 = "%s:%d" % (TARGET_IP, TARGET_PORT)
V4_2 = "%s:%d" % (TARGET_IP2, TARGET_PORT)
V6 = "[%s]:%d" % (TARGET_IP6, TARGET_PORT)
BY_NAME = "%s:%d" % (NAME, TARGET_PORT)

# cause: (targets, fault, undo, the fault's and the undo's names on the lab's timeline)
INTERRUPTIONS = {
    "local": ([V4], lambda lab: lab.own_link_down(), lambda lab: lab.own_link_up(),
              "own_link_down", "own_link_up"),
    "lan": ([V4], lambda lab: lab.router_gone(), lambda lab: lab.router_back(),
            "router_gone", "router_back"),
    "provider": ([V4], lambda lab: lab.uplink_down(), lambda lab: lab.uplink_up(),
                 "uplink_down", "uplink_up"),
    "dns": ([BY_NAME], lambda lab: lab.dns_down(), lambda lab: lab.dns_up(),
            "dns_down", "dns_up"),
}


def monitor_in(lab, tmp_path, targets):
    """The program in the lab's monitor namespace, each report appended to tmp_path/reports."""
    lab.start_listener()
    lab.dns_up()
    reports = tmp_path / "reports"
    args = [arg for target in targets for arg in ("-a", target)]
    monitor = start_monitor(lab, tmp_path, *args, *FAST, "--notify-command",
                            "cat >> '%s' && echo ==== >> '%s'" % (reports, reports))
    monitor.reports = reports
    return monitor


def running(monitor):
    """Waits until the monitor has found the router and done a few rounds with it."""
    changed = wait_for_event(monitor.log, "gateway_changed", timeout=15)
    assert changed["gateway"] == "%s:53" % ROUTER_IP
    time.sleep(3 * INTERVAL)


def hold(lab, fault, undo):
    fault(lab)
    time.sleep(HOLD)            # holding the fault for a known time
    undo(lab)


def delivered(monitor):
    """The reports delivered, once there has been one."""
    wait_for_event(monitor.log, "report_sent", timeout=10)
    return monitor.reports.read_text().split("====\n")[:-1]


def check_duration(lab, fault_name, undo_name, reported):
    [injected] = lab.durations(fault_name, undo_name)
    print("%s: injected %.3f s, reported %.3f s, error %+.3f s" % (
        fault_name, injected, reported, reported - injected))
    assert abs(reported - injected) <= INTERVAL + SLACK


def one_interruption(lab, tmp_path, targets, fault, undo):
    """(down, up, the report) of the one interruption a fault held for HOLD seconds makes."""
    with monitor_in(lab, tmp_path, targets) as monitor:
        running(monitor)
        hold(lab, fault, undo)
        [report] = delivered(monitor)
        assert monitor.terminate() == 0
    [down] = events(monitor.log, "down")
    [up] = events(monitor.log, "up")
    print("down %s %s, up %s; report:\n%s" % (down["cause"], down["targets"], up["cause"], report))
    return down, up, report


@pytest.mark.parametrize("cause", list(INTERRUPTIONS))
def test_each_fault_gives_its_cause_in_the_event_log_and_the_report(homelab, tmp_path, cause):
    targets, fault, undo, fault_name, undo_name = INTERRUPTIONS[cause]
    down, up, report = one_interruption(homelab, tmp_path, targets, fault, undo)
    assert (down["cause"], up["cause"], up["ignored"]) == (cause, cause, False)
    [(_, _, _, row_cause, _)] = report_rows(report)
    assert row_cause == cause
    assert len([line for line in report.splitlines() if line.startswith(cause + ": ")]) == 1
    check_duration(homelab, fault_name, undo_name, up["duration"])


def test_a_router_that_drops_connects_to_itself_gives_unknown_never_lan(homelab, tmp_path):
    homelab.router_drops_own_connects()         # before the start: it never answers
    down, up, report = one_interruption(homelab, tmp_path, [V4], lambda lab: lab.uplink_down(),
                                        lambda lab: lab.uplink_up())
    assert (down["cause"], up["cause"]) == ("unknown", "unknown")
    [(_, _, _, row_cause, _)] = report_rows(report)
    assert row_cause == "unknown"
    check_duration(homelab, "uplink_down", "uplink_up", up["duration"])


def test_a_dual_stack_machine_without_its_ipv4_route_is_local_for_ipv4_targets(homelab,
                                                                               tmp_path):
    # a DHCPv4 lease lost: the IPv6 route and router are still there, and answer
    down, up, report = one_interruption(homelab, tmp_path, [V4], lambda lab: lab.ipv4_route_gone(),
                                        lambda lab: lab.ipv4_route_back())
    assert (down["cause"], up["cause"]) == ("local", "local")
    check_duration(homelab, "ipv4_route_gone", "ipv4_route_back", up["duration"])


def one_partial_outage(lab, tmp_path, targets, fault, undo, kind):
    """The `kind`_up event and the report of a partial outage a fault held for HOLD seconds."""
    with monitor_in(lab, tmp_path, targets) as monitor:
        running(monitor)
        hold(lab, fault, undo)
        [report] = delivered(monitor)
        assert monitor.terminate() == 0
    assert events(monitor.log, "down") == [] and events(monitor.log, "up") == []
    [ended] = events(monitor.log, kind + "_up")
    assert ended["ignored"] is False
    print("%s; report:\n%s" % (ended, report))
    assert report.startswith("pyNetConnMon on ")
    assert " saw 1 partial outage and no interruption: the connection stayed up.\n" in report
    return [event for event in events(monitor.log, kind + "_down")], ended, report


def test_one_target_of_two_gone_is_a_partial_outage_and_no_interruption(homelab, tmp_path):
    [down], up, report = one_partial_outage(
        homelab, tmp_path, [V4, V4_2], lambda lab: lab.target_vanish(TARGET_IP),
        lambda lab: lab.target_back(TARGET_IP), "target")
    assert (down["target"], down["reason"], up["target"]) == (V4, "timeout", V4)
    assert "  target %s (timeout)\n" % V4 in report
    check_duration(homelab, "target_vanish", "target_back", up["duration"])


def test_the_ipv6_target_gone_while_ipv4_answers_is_an_ipv6_outage(homelab, tmp_path):
    [down], up, report = one_partial_outage(
        homelab, tmp_path, [V4, V6], lambda lab: lab.family_down("ipv6"),
        lambda lab: lab.family_up("ipv6"), "family")
    assert (down["family"], down["reason"], up["family"]) == ("ipv6", "timeout", "ipv6")
    assert "  every IPv6 target (timeout)\n" in report
    check_duration(homelab, "family_down", "family_up", up["duration"])


def test_names_failing_while_an_address_answers_is_a_dns_partial_outage(homelab, tmp_path):
    [down], up, report = one_partial_outage(
        homelab, tmp_path, [BY_NAME, V4_2], lambda lab: lab.dns_down(),
        lambda lab: lab.dns_up(), "dns")
    assert (down["targets"], down["reason"]) == ([BY_NAME], "dns")
    assert "  every target given by name (dns)\n" in report
    check_duration(homelab, "dns_down", "dns_up", up["duration"])
