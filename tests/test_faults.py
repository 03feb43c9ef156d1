"""Real network faults: the program in the lab's monitor namespace, each fault made by the kernel.

Each fault kind of the lab (tests/lab/netlab.py) is held for a known time and undone; the monitor
must see exactly one interruption with the fault's reason and a duration within one interval of the
one injected (the lab's timeline, from the fault to its undo). The listener notes when each of
the monitor's connects arrives, so the round rate is checked from outside. Every address is in
the lab (198.18.0.0/24) or the monitor namespace's own loopback.
"""
import time

import pytest

import lab_monitor
from harness import events, read_events, wait_until, wall_time
from lab_monitor import report_rows, start_monitor, wait_for_accepts
from netlab import TARGET_IP, TARGET_IP2, TARGET_PORT, read_accepts
from smtp_lab import SmtpServer, make_program_dir

INTERVAL = 0.5
FAST = ("-i", "0.5", "-t", "0.5", "-m", "1")   # the timeout takes a whole interval: the worst case
CLOCK_GRAIN = 0.01    # s: the kernel times a connect that got through in jiffies (4 ms at HZ=250)
HOLD = 2.3          # seconds each fault is held: well above -m 1, not a whole number of rounds
SLACK = 0.1         # the lab notes a change once `ip` has exited; a round may start a few ms late
NAME = "target.lab.test"    # .test: reserved, never a public name; only in the lab's hosts file

# the lab's faults, plus a name that stops resolving (the target is given by name here)
FAULTS = dict(lab_monitor.FAULTS, name_gone=(
    lambda lab: lab.name_gone(NAME), lambda lab: lab.name_back(NAME), "name_back", "dns"))


def last_record(netlab, name):
    return [when for record, when in netlab.log if record == name][-1]


@pytest.mark.parametrize("kind", list(FAULTS))
def test_fault_is_one_interruption_with_its_reason_and_duration(netlab, tmp_path, kind):
    fault, undo, undo_name, reason = FAULTS[kind]
    netlab.set_hosts({NAME: TARGET_IP})
    accepts = tmp_path / "accepts"
    netlab.start_listener(accept_log=accepts)
    host = NAME if kind == "name_gone" else TARGET_IP
    with start_monitor(netlab, tmp_path, "-a", "%s:%d" % (host, TARGET_PORT), *FAST,
                       "--no-mail") as monitor:
        wait_for_accepts(accepts, 2, timeout=10)
        fault(netlab)
        time.sleep(HOLD)        # holding the fault for a known time
        undo(netlab)
        monitor.wait_for_event("up", timeout=5)
        # two more good rounds: nothing else may follow the interruption
        wait_for_accepts(accepts, 2, timeout=5, since=last_record(netlab, undo_name))
        assert monitor.terminate() == 0
    [down] = events(monitor.log, "down")
    [up] = events(monitor.log, "up")
    assert (down["reason"], down["targets"]) == (reason, {"%s:%d" % (host, TARGET_PORT): reason})
    assert up["ignored"] is False and up["start"] == down["start"]
    [injected] = netlab.durations(kind, undo_name)
    error = up["duration"] - injected
    print("%s: injected %.3f s, reported %.3f s, error %+.3f s" % (
        kind, injected, up["duration"], error))
    assert abs(error) <= INTERVAL + SLACK


def test_one_target_vanishing_among_two_is_no_interruption_and_rounds_keep_their_rate(
        netlab, tmp_path):
    netlab.add_target_address()
    accepts = tmp_path / "accepts"
    netlab.start_listener(accept_log=accepts)
    with start_monitor(netlab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT),
                       "-a", "%s:%d" % (TARGET_IP2, TARGET_PORT), *FAST, "--no-mail") as monitor:
        wait_for_accepts(accepts, 3, timeout=10, address=TARGET_IP2)
        netlab.vanish()
        time.sleep(3.0)         # holding the fault: every round to TARGET_IP times out in it
        netlab.unvanish()
        wait_for_accepts(accepts, 2, timeout=5, since=last_record(netlab, "unvanish"),
                         address=TARGET_IP)
        assert monitor.terminate() == 0
    assert events(monitor.log, "down") == [] and events(monitor.log, "up") == []
    vanished, back = last_record(netlab, "vanish"), last_record(netlab, "unvanish")
    during = [(when, address) for when, address, _port in read_accepts(accepts)
              if vanished + CLOCK_GRAIN < when < back]
    assert {address for _when, address in during} == {TARGET_IP2}    # nothing got through
    healthy = [when for when, address, _port in read_accepts(accepts) if address == TARGET_IP2]
    gaps = [later - earlier for earlier, later in zip(healthy, healthy[1:])]
    print("rounds to %s: %d, gaps %.3f .. %.3f s, during the fault %d in %.3f s" % (
        TARGET_IP2, len(healthy), min(gaps), max(gaps), len(during), back - vanished))
    assert 0.5 * INTERVAL < min(gaps) and max(gaps) < 1.5 * INTERVAL    # no pause, no burst
    assert len(during) >= int((back - vanished) / INTERVAL) - 1


def connects_in_flight(pid):
    """How many TCP connects of process `pid` (in its namespace) wait for an answer: SYN_SENT."""
    with open("/proc/%d/net/tcp" % pid) as table:
        return sum(1 for line in list(table)[1:] if line.split()[3] == "02")


def test_sigterm_while_a_connect_waits_for_its_timeout_stops_at_once(netlab, tmp_path):
    netlab.start_listener()
    netlab.vanish()             # from the first round on, the connect waits for the whole timeout
    with start_monitor(netlab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT),
                       "-i", "60", "-t", "30", "--no-mail") as monitor:
        wait_until(lambda: connects_in_flight(monitor.pid), 10, "the first round's connect")
        started = time.monotonic()
        code = monitor.terminate(timeout=5)
        elapsed = time.monotonic() - started
    print("stopped %.3f s after SIGTERM" % elapsed)
    assert code == 0 and elapsed < 1.0
    assert [event["event"] for event in read_events(monitor.log)] == ["start", "stop"]


def test_mail_server_down_when_the_network_returns_gets_the_report_out_once(
        netlab, tmp_path, smtp_certificate):
    cert, key = smtp_certificate
    server = SmtpServer(tmp_path, cert, key, prefix=netlab.prefix)    # on the monitor's loopback
    accepts = tmp_path / "accepts"
    netlab.start_listener(accept_log=accepts)
    try:
        server.start()
        app = make_program_dir(tmp_path / "app", smtp_port=server.port)
        with start_monitor(netlab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT), *FAST,
                           "-bmin", "1", "-bstep", "1", "-bmax", "5", cwd=app.root) as monitor:
            wait_for_accepts(accepts, 2, timeout=10)
            netlab.link_down()
            time.sleep(HOLD)    # holding the fault
            server.stop()
            netlab.link_up()
            monitor.wait_for_event("report_failed", timeout=5)
            [failed] = events(monitor.log, "report_failed")
            assert failed["reason"] == ("mail server 127.0.0.1:%d refused the connection"
                                        % server.port)
            server.start()
            monitor.wait_for_event("report_sent", timeout=10)
            time.sleep(2.0)     # twice -bmin: a second copy would have been sent by now
            assert monitor.terminate() == 0
        [message] = server.messages()
        [up] = events(monitor.log, "up")
        [(start, end, _duration, _cause, reason)] = report_rows(message.get_content())
        assert reason == "unreachable"
        assert start == int(wall_time(up["start"])) and end == int(wall_time(up["end"]))
        assert len(events(monitor.log, "report_sent")) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["vanish", "link_down"])
def test_the_end_of_an_outage_is_known_within_the_down_interval(netlab, tmp_path, kind):
    """At -i 2 the end of an outage would be known only within 2 s; with rounds every 0.2 s
    while down it is known within 0.2 s. When packets vanish every connect waits for its
    timeout (1 s), so several wait at once: -t / --down-interval, one more for a moment."""
    fault, undo, undo_name, _reason = FAULTS[kind]
    accepts = tmp_path / "accepts"
    netlab.start_listener(accept_log=accepts)
    with start_monitor(netlab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT), "-i", "2",
                       "-t", "1", "--down-interval", "0.2", "-m", "1", "--no-mail") as monitor:
        wait_for_accepts(accepts, 2, timeout=10)
        fault(netlab)
        in_flight = []
        # holding the fault 4.5 s: the first failed round begins within 2 s and lasts up to
        # 1 s; fast rounds follow for at least 1.5 s
        for _ in range(45):
            in_flight.append(connects_in_flight(monitor.pid))
            time.sleep(0.1)
        undo(netlab)
        up = monitor.wait_for_event("up", timeout=5)
        offset = time.time() - time.monotonic()
        assert monitor.terminate() == 0
    back = last_record(netlab, undo_name)
    late = wall_time(up["end"]) - offset - back
    [injected] = netlab.durations(kind, undo_name)
    print("%s: end known %.3f s after the undo; duration error %+.3f s; connects in flight "
          "while down: at most %d" % (kind, late, up["duration"] - injected, max(in_flight)))
    assert -0.01 <= late <= 0.2 + SLACK
    assert abs(up["duration"] - injected) <= 1.0 + 0.2 + SLACK   # half an interval at the start
    if kind == "vanish":
        assert 3 <= max(in_flight) <= 6
    else:
        assert max(in_flight) == 0      # unreachable at once: nothing waits
