"""Faster probing while the network is down, and an outage's start taken from its window.

The monitor with a fake clock, prober and deliverer (tests/fakes.py): which rounds start when,
and what the `down` and `up` events and the console say. The Prober with a fake clock and a fake
poll() around real sockets: how many connects a fast round leaves in flight, and what happens
to them. No sleeping; every instant is exact.
"""

from fakes import WALL_OFFSET, Run, scripted_prober
from harness import listening_socket
from pyNetConnMon import Gateway, Prober, Settings, iso_time, local_time, parse_target


def wall(mono):
    """The event log's time of a monotonic instant of the fake clock."""
    return iso_time(WALL_OFFSET + mono)


def local(mono):
    """The console's and the report's time of it."""
    return local_time(WALL_OFFSET + mono)


def fast_run(tmp_path, outages, stop_at, **overrides):
    """A monitor at -i 1 with rounds every 0.25 s while down; connects answer at once."""
    values = dict(down_interval=0.25, min_interruption=1.0)
    values.update(overrides)
    run = Run(tmp_path, outages, stop_at, **values)
    run.prober.connect_time = 0.0
    return run


# -- the monitor: when rounds start ---------------------------------------------------------------

def test_the_down_interval_is_a_tenth_of_the_interval_at_least_0_05_s_and_at_most_the_interval():
    assert [Settings(interval=interval).down_probe_interval
            for interval in (60.0, 2.0, 0.4, 0.03)] == [6.0, 0.2, 0.05, 0.03]
    assert Settings(interval=2.0, down_interval=0.5).down_probe_interval == 0.5


def test_rounds_come_every_down_interval_while_down_and_on_the_interval_once_up(tmp_path):
    run = fast_run(tmp_path, outages=[(3.5, 5.25)], stop_at=7.5)
    run.run()
    # the round at 4 finds it down; from then on a round every 0.25 s, each one told to last
    # until the next is due; the one at 5.25 finds it up, and the next is at 6
    assert run.prober.rounds == [0.0, 1.0, 2.0, 3.0, 4.0, 4.25, 4.5, 4.75, 5.0, 5.25, 6.0, 7.0]
    assert run.prober.waits == [None] * 5 + [0.25] * 5 + [None] * 2


def test_no_extra_round_while_everything_answers(tmp_path):
    run = fast_run(tmp_path, outages=[], stop_at=100.5)
    run.run()
    assert run.prober.rounds == [float(second) for second in range(101)]
    assert set(run.prober.waits) == {None}


# -- the monitor: where an outage begins, and how long it lasted ----------------------------------

def test_down_and_up_carry_the_start_window_and_the_duration_runs_from_its_middle(tmp_path):
    run = fast_run(tmp_path, outages=[(10.5, 12.75)], stop_at=15)
    run.run()
    down, = run.events("down")
    up, = run.events("up")
    # the last answer came at 10, the first failed round began at 11: it began in between
    window = {"start": wall(10.5), "start_after": wall(10.0), "start_before": wall(11.0)}
    assert {key: down[key] for key in window} == window
    assert down["time"] == wall(11.0)
    assert {key: up[key] for key in window} == window
    assert (up["end"], up["duration"], up["ignored"]) == (wall(12.75), 2.25, False)
    # at least from the first failed round (11) to the last (12.5), at most from the last
    # answer (10) to the first answer again (12.75)
    assert (up["duration_min"], up["duration_max"]) == (1.5, 2.75)
    assert [line for line in run.console_lines() if line.startswith(("DOWN", "UP"))] == [
        "DOWN 198.18.0.2:53 refused (unknown: no router known to check)",
        "UP after 2.2 s (down since %s, refused; unknown: no router probed that answered, so no "
        "telling where)" % local(10.5)]


def test_the_report_and_the_pending_list_use_the_middle_of_the_window(tmp_path):
    run = fast_run(tmp_path, outages=[(10.5, 12.75)], stop_at=15)
    run.run()
    _, _, body = run.deliverer.sent[0]
    assert "\n%s  %s         2.2 s  unknown   refused\n" % (local(10.5), local(12.75)) in body


def test_an_outage_found_by_the_very_first_round_begins_there(tmp_path):
    run = fast_run(tmp_path, outages=[(0.0, 2.25)], stop_at=3.5, min_interruption=5.0)
    run.run()
    down, = run.events("down")
    up, = run.events("up")
    assert (down["start"], down["start_after"], down["start_before"]) == (wall(0), None, wall(0))
    assert (up["duration"], up["duration_min"], up["duration_max"]) == (2.25, 2.0, None)
    assert run.console_lines()[-2] == "UP after 2.2 s: probably shorter than 5 s, ignored"


def test_a_blip_says_how_long_it_lasted_at_least_and_at_most(tmp_path):
    run = fast_run(tmp_path, outages=[(10.5, 12.75)], stop_at=15, min_interruption=5.0)
    run.run()
    up, = run.events("up")
    assert (up["duration"], up["duration_min"], up["duration_max"], up["ignored"]) == (
        2.25, 1.5, 2.75, True)
    assert run.console_lines()[-2] == (
        "UP after 2.2 s: shorter than 5 s, ignored (it lasted 1.5 s to 2.8 s)")
    assert run.deliverer.attempts == []


def test_a_blip_that_may_have_lasted_min_interruption_says_probably(tmp_path):
    run = fast_run(tmp_path, outages=[(10.5, 12.75)], stop_at=15, min_interruption=2.5)
    run.run()
    up, = run.events("up")
    assert (up["duration"], up["ignored"]) == (2.25, True)   # the rule: the middle's duration
    assert run.console_lines()[-2] == (
        "UP after 2.2 s: probably shorter than 2.5 s, ignored (it lasted 1.5 s to 2.8 s)")


# -- the Prober: connects that outlive a fast round ----------------------------------------------

def test_fast_rounds_keep_at_most_limit_connects_in_flight():
    with listening_socket() as port:
        target = parse_target("127.0.0.1:%d" % port, 53)
        prober, clock = scripted_prober(limit=3, timeout=1.0)
        started, in_flight, reasons = [], [], []
        for _ in range(12):         # a round every 0.25 s; no connect ever gets through
            before = set(prober.in_flight)
            [result] = prober.probe_round([target], wait=0.25).targets
            started.append(len(set(prober.in_flight) - before))
            in_flight.append(len(prober.in_flight))
            reasons.append(result.reason)
        prober.close()
    assert clock.now == 3.0
    # three rounds start a connect each; the fourth finds three waiting and starts none; from
    # 1.0 on, each round starts one when one has timed out at its start (each waits 1 s)
    assert started == [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0]
    assert max(in_flight) == 3
    assert set(reasons) == {"timeout"}
    assert prober.in_flight == {}


def test_a_connect_from_an_earlier_round_that_gets_through_counts_then_and_the_rest_close():
    with listening_socket() as port:
        target = parse_target("127.0.0.1:%d" % port, 53)
        prober, clock = scripted_prober(limit=10)
        for _ in range(3):
            assert not prober.probe_round([target], wait=0.25).targets[0].up
        first, second, third = prober.in_flight
        prober.poller.through[first] = 0.8       # its resent SYN gets through at 0.8
        [result] = prober.probe_round([target], wait=0.25).targets    # from 0.75 to 1.0
        assert (result.up, result.answered, result.connect_time) == (True, 0.8, 0.8)
        assert prober.in_flight == {}
        assert [sock.fileno() for sock in (first, second, third)] == [-1, -1, -1]
        prober.close()


def test_a_round_while_up_closes_what_fast_rounds_left_and_leaves_nothing_behind():
    with listening_socket() as port:
        target = parse_target("127.0.0.1:%d" % port, 53)
        prober, clock = scripted_prober(limit=10, timeout=1.0)
        for _ in range(2):
            prober.probe_round([target], wait=0.25)
        left = list(prober.in_flight)
        [result] = prober.probe_round([target]).targets    # its own connect never answers: 1 s
        assert (result.up, result.reason, clock.now) == (False, "timeout", 1.5)
        assert [sock.fileno() for sock in left] == [-1, -1]
        assert prober.in_flight == {}
        prober.close()


def test_the_gateway_keeps_its_latest_outcome_while_its_connect_waits():
    """A router's connect that still waits at the end of a fast round has not shown whether the
    router answers: the round reports its latest outcome until one of its connects ends. And
    the router answering shows nothing about the targets: their connects stay in flight."""
    with listening_socket() as port:
        target = parse_target("127.0.0.1:%d" % port, 53)
        router = Gateway("127.0.0.1", port)       # given with --gateway: probed in every round
        prober, clock = scripted_prober(limit=10, timeout=1.0)
        prober.poller.answers[router] = 0.01
        results = prober.probe_round([target], gateway=router)   # from 0 to 1.0
        [down], answered = results.targets, results.gateway
        assert (down.reason, answered.up, clock.now) == ("timeout", True, 1.0)
        del prober.poller.answers[router]       # from now on the router does not answer
        seen = []
        for _ in range(5):                         # fast rounds from 1.0 to 2.25
            results = prober.probe_round([target], gateway=router, wait=0.25)
            [down], gateway = results.targets, results.gateway
            seen.append((down.reason, gateway.up or gateway.reason, len(prober.in_flight)))
        prober.close()
    # the router's first unanswered connect (begun at 1.0) times out at 2.0
    assert seen == [("timeout", True, 2), ("timeout", True, 4), ("timeout", True, 6),
                    ("timeout", True, 8), ("timeout", "timeout", 8)]


def test_a_fast_round_that_starts_no_connect_still_has_an_outcome_of_the_gateway():
    """A round over the in-flight limit starts no connect, but one of the router's from an
    earlier round may end in it: that is the router's outcome, not "no router"."""
    with listening_socket() as port:
        target = parse_target("127.0.0.1:%d" % port, 53)
        router = Gateway("127.0.0.1", port)
        prober, clock = scripted_prober(limit=4, timeout=1.0)
        outcomes = []
        for _ in range(6):          # a round every 0.3 s, from 0.6 on over the limit; the
            results = prober.probe_round([target], gateway=router, wait=0.3)    # round at 0.9
            outcomes.append(results.gateway and results.gateway.reason)   # sees 0's time out
        prober.close()
    assert outcomes == ["timeout"] * 6


def test_a_router_is_left_out_while_every_address_of_the_targets_is_on_this_machine():
    # localhost is a name: only its addresses tell that no router is on its way
    with listening_socket() as port:
        prober = Prober(1.0)
        router = Gateway("127.0.0.9", port, found=True)      # as the routing table gives it
        results = prober.probe_round([parse_target("localhost:%d" % port, 53)], gateway=router)
        prober.close()
    assert (results.gateway, results.router_needed) == (None, False)
    assert results.targets[0].up, results.targets[0].reason
