"""Connect times: the statistics window, losses the kernel repaired, slow periods, and what the
monitor says, reports, saves and serves about them. Pure logic and the loop with a fake clock:
no sockets, no sleeping.
"""
import json
import math
import random
import tracemalloc

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

import pyNetConnMon
from pyNetConnMon import (ConnectTimes, Interruption, PendingReports, ProbeResult, ReportBackoff,
                          SlowTracker, StateFile, StatisticsWindow, check_state, format_report,
                          parse_target,
                          render_metrics, resent_syns)
from harness import run_main
from fakes import WALL_OFFSET, Run
from eventlogs import D, H, T0, Log, iso

TARGET = parse_target("198.18.0.2:53", 53)
OTHER = parse_target("198.18.0.3:53", 53)


def up(seconds, target=TARGET):
    return ProbeResult(target, True, None, seconds)


def down(target=TARGET, reason="timeout"):
    return ProbeResult(target, False, reason)


def exact_rank(values, fraction):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered) - 1e-9)) - 1]


# -- the histogram and the window: exact figures on known inputs ----------------------------------

def test_window_figures_on_known_inputs():
    window = StatisticsWindow(60)
    for number in range(20):                     # 10, 20 ... 200 ms, and two failures
        window.add([up((number + 1) / 100)], number * 2.0, WALL_OFFSET + number * 2.0)
    window.add([down()], 40.0, WALL_OFFSET + 40.0)
    window.add([down()], 42.0, WALL_OFFSET + 42.0)
    start, end, figures = window.add([up(0.01)], 60.0, WALL_OFFSET + 60.0)
    assert (start, end) == (WALL_OFFSET, WALL_OFFSET + 60.0)
    # median: the 10th of 20, 95th percentile: the 19th (each alone in its bucket: exact)
    # jitter: 19 steps of 10 ms between consecutive connects (the failures are no connect time)
    assert figures == {"198.18.0.2:53": {"probes": 22, "failures": 2, "losses": 0,
                                         "min_ms": 10.0, "median_ms": 100.0, "p95_ms": 190.0,
                                         "max_ms": 200.0, "jitter_ms": 10.0}}


def test_a_percentile_is_its_buckets_mean_within_one_percent():
    ratio = pyNetConnMon.CONNECT_TIME_RATIO
    low = ratio ** math.floor(math.log(100.0) / math.log(ratio))    # the bucket of 100 ms
    samples = [low * factor for factor in (1.001, 1.003, 1.005, 1.007, 1.009)]
    times = ConnectTimes()
    for ms in samples:
        times.add(ms / 1000)
    assert len(times.buckets) == 1
    assert times.percentile(0.2) == times.percentile(1.0) == pytest.approx(low * 1.005, rel=1e-9)
    assert all(times.percentile(0.2) == pytest.approx(ms, rel=0.01) for ms in samples)
    assert (times.minimum, times.maximum) == pytest.approx((samples[0], samples[-1]), rel=1e-12)


def test_a_constant_connect_time_reads_exactly_and_a_target_that_never_answered_has_none():
    window = StatisticsWindow(10)
    for second in range(10):
        window.add([up(0.0123), down(OTHER, "refused")], float(second), WALL_OFFSET + second)
    _, _, figures = window.close(10.0)
    assert figures == {
        "198.18.0.2:53": {"probes": 10, "failures": 0, "losses": 0, "min_ms": 12.3,
                          "median_ms": 12.3, "p95_ms": 12.3, "max_ms": 12.3, "jitter_ms": 0.0},
        "198.18.0.3:53": {"probes": 10, "failures": 10, "losses": 0, "min_ms": None,
                          "median_ms": None, "p95_ms": None, "max_ms": None, "jitter_ms": None}}


def test_windows_keep_their_grid_and_an_empty_one_is_not_written():
    window = StatisticsWindow(10)
    assert window.close(5.0) is None                 # nothing measured yet
    assert window.add([up(0.01)], 3.0, WALL_OFFSET + 3.0) is None
    start, end, _ = window.add([up(0.01)], 13.5, WALL_OFFSET + 13.5)
    assert (start - WALL_OFFSET, end - WALL_OFFSET) == (3.0, 13.0)
    start, end, figures = window.add([up(0.01)], 47.0, WALL_OFFSET + 47.0)  # 23..43 had no round
    assert (start - WALL_OFFSET, end - WALL_OFFSET, figures["198.18.0.2:53"]["probes"]) == (
        13.0, 23.0, 1)
    start, end, _ = window.close(50.0)               # a stop ends the window early
    assert (start - WALL_OFFSET, end - WALL_OFFSET) == (43.0, 50.0)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.00001, max_value=100.0), min_size=1, max_size=300),
       st.sampled_from([0.01, 0.5, 0.95, 0.99, 1.0]))
def test_any_percentile_is_within_one_percent_of_its_sample(seconds, fraction):
    times = ConnectTimes()
    for value in seconds:
        times.add(value)
    exact = exact_rank([value * 1000 for value in seconds], fraction)
    assert times.percentile(fraction) == pytest.approx(exact, rel=0.01)
    assert (times.minimum, times.maximum) == (min(seconds) * 1000, max(seconds) * 1000)


@hypothesis_settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.one_of(st.sampled_from([0.001, 0.002, 0.005, 0.01, 0.03]),
                                    st.floats(min_value=0.00001, max_value=100.0)),
                          st.integers(1, 20)), max_size=60),
       st.one_of(st.sampled_from([0.0, 0.05, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]),
                 st.floats(min_value=0.0, max_value=1.2)))
def test_a_percentile_walked_from_either_end_is_the_nearest_rank_bucket(added, fraction):
    # percentile() walks a 95th percentile from the slowest bucket down: the same bucket, and
    # the same mean of it, as walking every bucket up from the fastest
    times = ConnectTimes()
    for seconds, count in added:
        times.add(seconds, count)
    rank = max(1, math.ceil(fraction * times.count - 1e-9))
    seen, expected = 0, None
    for ms, count in times.values():
        seen += count
        if seen >= rank:
            expected = ms
            break
    assert times.percentile(fraction) == expected


def test_memory_stays_bounded_at_i_0_05_over_a_long_window():
    """An hour's window at -i 0.05 (72,000 rounds, two targets) holds no more than its buckets,
    whatever the times; with times that repeat, no more than a few minutes' window does."""
    rng = random.Random(1)
    labels = (TARGET, OTHER)
    # 1 us to 1000 s
    biggest = math.ceil(math.log(1e9) / math.log(pyNetConnMon.CONNECT_TIME_RATIO)) + 1
    assert biggest == 2084

    def rounds(window, first, last, draw):
        for number in range(first, last):
            result = up(draw(), labels[number % 2]) if number % 7 else down(labels[number % 2])
            window.add([result], number * 0.05, WALL_OFFSET + number * 0.05)

    def measured(draw):
        window = StatisticsWindow(3600)
        tracemalloc.start()
        try:
            rounds(window, 0, 7200, draw)
            six_minutes = tracemalloc.get_traced_memory()[0]
            rounds(window, 7200, 72000, draw)
            an_hour = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert [w.probes for w in window.targets.values()] == [36000, 36000]
        assert all(len(w.times.buckets) <= biggest for w in window.targets.values())
        return six_minutes, an_hour

    # anything from far below to far beyond the histogram's range: every bucket gets used
    _, an_hour = measured(lambda: 10 ** rng.uniform(-8, 4))
    assert an_hour < 2 * biggest * 250, an_hour       # bytes; 72,000 floats alone take 2.3 MB
    # a line's usual spread, in steps of 0.1 ms: the buckets are all in use after minutes
    choices = [number / 10000 for number in range(1, 30000, 150)]
    six_minutes, an_hour = measured(lambda: rng.choice(choices))
    assert an_hour - six_minutes < 2000, (six_minutes, an_hour)


# -- losses the kernel repaired -------------------------------------------------------------------

def test_a_connect_0_9_s_slower_than_usual_is_one_resent_syn_2_9_s_two():
    assert [resent_syns(extra) for extra in (0.0, 0.5, 0.89, 0.9, 1.0, 2.0, 2.89, 2.9, 3.0,
                                             6.9, 14.9, 30.9, 62.9, 500.0)] == [
        0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 4, 5, 6, 6]


def test_losses_count_against_the_windows_minimum():
    window = StatisticsWindow(60)
    times = [0.020] * 10 + [1.020, 1.015, 0.900, 3.025, 7.030]   # usual: 20 ms
    for number, value in enumerate(times):
        window.add([up(value)], float(number), WALL_OFFSET + number)
    _, _, figures = window.close(60.0)
    assert figures["198.18.0.2:53"]["losses"] == 1 + 1 + 0 + 2 + 3


def test_a_window_that_is_slow_throughout_counts_against_the_previous_median():
    window = StatisticsWindow(10)
    ended = []
    for second in range(31):
        result = window.add([up(0.020 if second < 10 else 1.025)], float(second),
                            WALL_OFFSET + second)
        if result:
            ended.append(result[2]["198.18.0.2:53"]["losses"])
    # all fast; every connect a second late (against the 20 ms before); late again, which is
    # now the usual: a line that stays this slow shows in the percentiles, not as loss
    assert ended == [0, 10, 0]


# -- slow periods, pure ---------------------------------------------------------------------------

def observe(tracker, rounds):
    """rounds: [(instant, fastest connect or None)] -> the transitions, as tuples."""
    seen = []
    for instant, fastest in rounds:
        transition = tracker.observe(fastest, instant, WALL_OFFSET + instant)
        if transition is None:
            continue
        slow = transition.period
        if transition.kind == "slow":
            seen.append(("slow", slow.start_mono))
        else:
            seen.append(("slow_end", slow.start_mono, round(transition.end - WALL_OFFSET, 6),
                         round(transition.duration, 6), transition.ignored,
                         transition.by_interruption, round(slow.times.percentile(0.5)),
                         round(slow.times.maximum)))
    return seen


def test_a_slow_stretch_starts_at_its_first_slow_round_and_ends_when_a_fast_connect_got_through():
    tracker = SlowTracker(1000, 5.0)
    rounds = [(0.0, 0.02), (1.0, 0.999)] + [(float(s), 1.2 + s / 100) for s in range(2, 12)] + [
        (12.0, 0.02), (13.0, 0.02)]
    assert observe(tracker, rounds) == [
        ("slow", 2.0), ("slow_end", 2.0, 12.02, 10.02, False, False, 1260, 1310)]
    assert not tracker.is_slow


def test_a_slow_stretch_shorter_than_min_interruption_is_ignored():
    tracker = SlowTracker(1000, 5.0)
    assert observe(tracker, [(0.0, 1.5), (1.0, 1.5), (2.0, 0.01)]) == [
        ("slow", 0.0), ("slow_end", 0.0, 2.01, 2.01, True, False, 1500, 1500)]


def test_a_slow_stretch_that_turns_into_an_interruption_ends_where_the_interruption_starts():
    tracker = SlowTracker(1000, 5.0)
    rounds = [(float(s), 1.4) for s in range(6)] + [(6.0, None), (7.0, None), (8.0, 1.4)]
    assert observe(tracker, rounds) == [
        ("slow", 0.0), ("slow_end", 0.0, 6.0, 6.0, False, True, 1400, 1400),
        ("slow", 8.0)]         # slow again after it (the monitor leaves out the recovering round)


def test_ongoing_duration_and_an_end_at_a_stop():
    tracker = SlowTracker(200, 5.0)
    assert tracker.ongoing_duration(3.0) == 0.0
    tracker.observe(0.25, 1.0, WALL_OFFSET + 1.0)
    assert tracker.ongoing_duration(3.5) == 2.5
    ended = tracker.end(9.0, WALL_OFFSET + 9.0)
    assert (ended.period.start_mono, ended.end - WALL_OFFSET, ended.duration, ended.ignored) == (
        1.0, 9.0, 8.0, False)


# -- the monitor with a fake clock ----------------------------------------------------------------

class TimedProber:
    """`script(t)` gives each round's connect time in seconds (None: timeout) at round start t;
    a round lasts as long as its connect (at most the timeout), as a real one does. A fast
    round while down (`wait`) lasts at most that long: a connect slower than that is still
    waiting at its end, and the round finds no answer."""

    def __init__(self, clock, script, timeout):
        self.clock = clock
        self.script = script
        self.timeout = timeout
        self.rounds = []

    def probe_round(self, targets, interrupted=lambda: False, gateway=None, wait=None):
        now = self.clock.now
        self.rounds.append(now)
        seconds = self.script(now)
        limit = self.timeout if wait is None else min(wait, self.timeout)
        if seconds is None or seconds >= limit:
            self.clock.now += limit
            return pyNetConnMon.RoundResults([down(target) for target in targets])
        self.clock.now += seconds
        return pyNetConnMon.RoundResults([up(seconds, target) for target in targets])

    def close(self):
        pass


def congested(*spans, slow=1.5, fast=0.02, outages=()):
    """Connect times: `slow` during the [start, end) spans, None during `outages`, else `fast`."""
    def script(now):
        if any(start <= now < end for start, end in outages):
            return None
        return slow if any(start <= now < end for start, end in spans) else fast
    return script


class LatencyRun(Run):
    """The monitor at -i 1 -t 2 -m 5 --slow 1000 by default, over `script` (see TimedProber),
    with a metrics board."""

    def __init__(self, tmp_path, script, stop_at, **overrides):
        values = dict(timeout=2.0, slow=1000.0, stats_interval=60.0)
        values.update(overrides)
        super().__init__(tmp_path, [], stop_at,
                         metrics_board=pyNetConnMon.MetricsBoard(pyNetConnMon.MetricsSnapshot()),
                         **values)
        self.settings = self.monitor.settings
        self.board = self.monitor.metrics_board
        self.prober = self.monitor.prober = TimedProber(self.clock, script, self.settings.timeout)
        self.monitor.reporter.slow_ms = self.settings.slow_ms    # as run_monitor() makes it

    def run(self):
        super().run()
        return self

    def lines(self):
        """Console lines without their timestamp, the start's lines left out."""
        return [line for line in self.console_lines()
                if not line.startswith(("started pyNetConnMon", "gateway "))]


def test_a_slow_stretch_is_one_slow_period_told_reported_and_served(tmp_path, utc):
    run = LatencyRun(tmp_path, congested((10.5, 30.5)), stop_at=40).run()
    slow, = run.events("slow")
    end, = run.events("slow_end")
    assert slow == {"time": "2026-11-18T11:06:51.000+00:00", "event": "slow",
                    "start": "2026-11-18T11:06:51.000+00:00", "connect_ms": 1500.0}
    # rounds at 11, 12.5, 14 ... (each takes 1.5 s); 30.5 is the first fast one: 20 ms
    assert end == {"time": "2026-11-18T11:07:10.520+00:00", "event": "slow_end",
                   "start": "2026-11-18T11:06:51.000+00:00",
                   "end": "2026-11-18T11:07:10.520+00:00", "duration": 19.52, "ignored": False,
                   "median_ms": 1500.0, "max_ms": 1500.0}
    assert run.events("down") == []
    assert run.lines()[:3] == [
        "SLOW the fastest connect took 1500 ms (198.18.0.2:53)",
        "SLOW ENDED after 19.5 s (slow since 2026-11-18 11:06:51, median 1500 ms, max 1500 ms)",
        "report sent (1 slow period) by mail; next report no sooner than in "
        "1 min"]
    _, subject, body = run.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 slow period, 19.5 s slow"
    assert body == (
        "pyNetConnMon on pi saw 1 slow period (19.5 s in total).\n"
        "\n"
        "Host:    pi\n"
        "Targets: 198.18.0.2:53\n"
        "Times:   local time of pi (UTC)\n"
        "\n"
        "Slow periods: the connection was up, but even the fastest target took 1000 ms or longer "
        "to connect, in every round; median and max of those connects:\n"
        "start                end                      duration     median        max\n"
        "2026-11-18 11:06:51  2026-11-18 11:07:10        19.5 s    1500 ms    1500 ms\n"
        "\n"
        "Total: 1 slow period, 19.5 s slow.\n")
    sent, = run.events("report_sent")
    assert (sent["interruptions"], sent["slow_periods"]) == (0, 1)
    snapshot = run.board.latest()
    assert (snapshot.slow, snapshot.slow_seconds) == (False, 19.52)


def test_a_short_slow_stretch_is_ignored_and_never_reported(tmp_path):
    run = LatencyRun(tmp_path, congested((10.5, 13.5)), stop_at=30).run()
    end, = run.events("slow_end")
    assert (end["duration"], end["ignored"]) == (3.02, True)     # rounds at 11, 12.5; 14 is fast
    assert run.lines()[:2] == ["SLOW the fastest connect took 1500 ms (198.18.0.2:53)",
                               "SLOW ENDED after 3.0 s: shorter than 5 s, ignored"]
    assert run.deliverer.attempts == []
    assert run.board.latest().slow_seconds == 0.0


@pytest.mark.parametrize("slow", [1000.0, None])       # --slow 1000; the default, 1000 or 4x
def test_connects_a_resent_syn_late_are_loss_not_a_slow_period(tmp_path, slow):
    # 30 s (past -m, and past the usual's first minute) of connects that each waited for a SYN
    # sent again a second after the first: usual + 1 s, as on a line losing half its packets
    run = LatencyRun(tmp_path, congested((70.5, 100.5), slow=1.02), stop_at=120,
                     slow=slow).run()
    assert run.events("slow") == run.events("slow_end") == []
    assert not any(line.startswith("SLOW") for line in run.lines())
    [lossy] = run.events("lossy_end")
    assert lossy["ignored"] is False and lossy["lost"] >= 25
    assert run.board.latest().slow_seconds == 0.0


@pytest.mark.parametrize("slow", [1000.0, None])
def test_a_connect_of_1_3_s_without_a_resent_syn_is_still_slow(tmp_path, slow):
    # 1.3 s on a 20 ms line is 1.28 s more: past a resend's answer (1.02 s, RESENT_SYN_FIT), so
    # it waited in a queue; nothing is lost
    run = LatencyRun(tmp_path, congested((70.5, 100.5), slow=1.3), stop_at=120,
                     slow=slow).run()
    [end] = run.events("slow_end")
    assert (end["ignored"], end["median_ms"], end["max_ms"]) == (False, 1300.0, 1300.0)
    assert 29 <= end["duration"] <= 31
    assert run.events("lossy") == []


def test_a_connect_counts_toward_slowness_less_the_resend_waits_the_loss_window_counts():
    first_syn_time = pyNetConnMon.first_syn_time
    schedule = pyNetConnMon.RESENT_SYN_AFTER            # 1, 3, 7 ... s
    # on a 20 ms line: one resend, two (at 1 s and 3 s), and just before the first (counted
    # lost by its margin, and never below 0)
    assert first_syn_time(1.03, 0.02, schedule) == pytest.approx(0.03)
    assert first_syn_time(3.01, 0.02, schedule) == pytest.approx(0.01)
    assert first_syn_time(0.95, 0.02, schedule) == 0.0
    # not near a resend: a queue, its whole time counts
    assert [first_syn_time(seconds, 0.02, schedule) for seconds in (0.5, 1.3, 2.52)] == [
        0.5, 1.3, 2.52]
    # a 600 ms line: 1.6 s is its usual and a resend
    assert first_syn_time(1.6, 0.6, schedule) == pytest.approx(0.6)


def test_a_slow_stretch_that_ends_in_an_interruption_is_reported_with_it(tmp_path, utc):
    run = LatencyRun(tmp_path, congested((10.5, 30.5), outages=[(20.5, 30.5)]),
                     stop_at=40).run()
    end, = run.events("slow_end")
    down_event, = run.events("down")
    assert end["end"] == down_event["start"]
    # rounds at 11, 12.5 ... 20 (each 1.5 s); the one at 21.5 times out
    assert (end["duration"], end["ignored"]) == (10.5, False)
    # told once the interruption counts, when it ends: a blip would not have ended it
    lines = run.lines()
    assert lines[lines.index("SLOW ENDED after 10.5 s, when the interruption began (slow since "
                             "2026-11-18 11:06:51, median 1500 ms, max 1500 ms)") + 1].startswith(
        "UP after 9.0 s")
    assert [event["event"] for event in run.events()
            if event["event"] in ("slow", "slow_end", "down", "up")] == [
        "slow", "down", "slow_end", "up"]
    _, subject, body = run.deliverer.sent[0]
    # down from 21.5 (the slow answer and the failed round that followed it) to the fast connect
    # in the fast round at 30.5 (rounds every 0.1 s while down)
    assert subject == ("pyNetConnMon on pi: 1 interruption, 9.0 s of downtime; 1 slow period, "
                       "10.5 s slow")
    assert body.splitlines()[0] == ("pyNetConnMon on pi saw 1 interruption (9.0 s of downtime in "
                                    "total) and 1 slow period (10.5 s in total).")
    assert ("2026-11-18 11:06:51  2026-11-18 11:07:01        10.5 s    1500 ms    1500 ms  an "
            "interruption followed\n") in body
    assert body.index("Total: 1 interruption") < body.index("Slow periods:")
    assert ("report sent (1 interruption, 1 slow period) by mail; next report no sooner than in "
            "1 min") in run.lines()


def test_a_blip_inside_a_slow_stretch_does_not_end_it(tmp_path, utc):
    # 9 s of congestion with a 2.5 s blip in it: the blip used to end the stretch, leaving two
    # of 3 s, each shorter than -m and ignored, so the congestion reached no report
    run = LatencyRun(tmp_path, congested((10.5, 19.5), outages=[(14.5, 17.0)]), stop_at=40).run()
    assert [event["ignored"] for event in run.events("up")] == [True]
    [slow] = run.events("slow")
    [end] = run.events("slow_end")
    assert (end["start"], end["ignored"]) == (slow["start"], False)
    assert 7.5 <= end["duration"] <= 10.5
    [(_, subject, _)] = run.deliverer.sent
    assert subject.startswith("pyNetConnMon on pi: 1 slow period, ")


def test_a_stop_during_an_interruption_that_counts_ends_the_slow_stretch_where_it_began(
        tmp_path, utc):
    run = LatencyRun(tmp_path, congested((10.5, 40.0), outages=[(20.5, 40.0)]), stop_at=30).run()
    [down] = run.events("down")
    [end] = run.events("slow_end")
    assert (end["end"], end["ignored"]) == (down["start"], False)
    [waiting] = run.monitor.reporter.pending.slow_items       # for the report after the restart
    assert (waiting.reason, waiting.cut_short) == ("an interruption followed", False)


def test_while_an_interruption_counts_the_metrics_are_not_slow_and_the_seconds_never_go_back(
        tmp_path, utc):
    # congestion, then 20 s down: the slow gauge stayed 1 and its seconds ran on through the
    # outage (an alert on pynetconnmon_slow fired on any long outage), then fell back at its end
    run = LatencyRun(tmp_path, congested((10.5, 50.5), outages=[(30.5, 50.5)]), stop_at=70)
    seen = []                      # (instant, network up, slow, slow seconds) of each snapshot
    publish = run.board.publish
    run.board.publish = lambda snapshot: (seen.append((
        run.clock.now, snapshot.network_up, snapshot.slow, snapshot.slow_seconds)),
        publish(snapshot))
    run.run()
    seconds = [value for _, _, _, value in seen]
    assert seconds == sorted(seconds), seen
    down = [(now, slow) for now, up, slow, _ in seen if up is False]
    assert down and not any(slow for now, slow in down if now >= 30.5 + 5.5), down
    assert any(slow for now, slow in down if now < 30.5 + 4.5), down     # may be a blip yet
    [first, *_] = run.events("slow_end")
    [outage] = [event for event in run.events("up") if not event["ignored"]]
    assert first["end"] == outage["start"] and not first["ignored"]


def test_a_crash_during_an_interruption_that_counts_reports_the_slow_period_up_to_it():
    state = dict(heartbeat=1000.0, clean_stop=False, targets=["198.18.0.2:53"],
                 down={"start": 970.0, "reason": "timeout", "cause": "lan", "duration": 30.0},
                 slow={"start": 940.0, "median_ms": 1500.0, "max_ms": 1800.0})
    assert pyNetConnMon.recover_slow_period(state, 5.0) == dict(
        start=940.0, end=970.0, duration=30.0, reason="an interruption followed",
        targets=["198.18.0.2:53"], kind="slow", cut_short=False, median_ms=1500.0, max_ms=1800.0)
    blip = dict(state, down=dict(state["down"], start=997.0))    # not an interruption yet
    assert pyNetConnMon.recover_slow_period(blip, 5.0)["end"] == 1000.0


def test_the_round_that_ends_an_interruption_does_not_start_a_slow_stretch(tmp_path):
    # rounds at 11, 13 ... 19 time out; the one at 21 got through on a SYN sent again (1.5 s),
    # the next (22.5) is fast (rounds every second while down too, as with --down-interval 1)
    script = congested((19.5, 22.0), outages=[(10.5, 19.5)])
    run = LatencyRun(tmp_path, script, stop_at=30, down_interval=1.0).run()
    assert run.events("slow") == []
    up_event, = run.events("up")
    assert up_event["duration"] == 11.99       # from 10.51, the middle of 10.02 and 11


def test_slow_periods_wait_for_a_report_across_a_restart(tmp_path, utc):
    first = LatencyRun(tmp_path, congested((10.5, 30.5)), stop_at=40,
                       fail_during=[(0, 1000)]).run()
    assert first.deliverer.sent == []
    assert first.lines()[-1] == "stopped (SIGTERM); 1 slow period still to report"
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["slow_pending"][0]["median_ms"] == 1500.0
    second = LatencyRun(tmp_path, congested(), stop_at=5, wall_offset=WALL_OFFSET + 600).run()
    assert second.lines()[0] == "1 slow period from the previous run still to report"
    _, subject, _ = second.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 slow period, 19.5 s slow"


def test_a_stop_while_slow_keeps_the_slow_period_as_cut_short(tmp_path, utc):
    run = LatencyRun(tmp_path, congested((10.5, 1000)), stop_at=30, fail_during=[(0, 1000)]).run()
    end, = run.events("slow_end")
    assert (end["duration"], end["ignored"]) == (19.5, False)     # from 11 to the stop at 30.5
    assert [event["event"] for event in run.events()][-2:] == ["slow_end", "stop"]
    saved = json.loads((tmp_path / "state.json").read_text())
    period, = saved["slow_pending"]
    assert (period["cut_short"], period["duration"], period["kind"]) == (True, 19.5, "slow")
    assert saved["slow"] is None


def test_a_slow_period_cut_short_by_a_crash_is_reported_from_the_heartbeat(tmp_path, utc):
    state = StateFile(str(tmp_path / "state.json"))
    state.save({"format": 1, "heartbeat": WALL_OFFSET - 600.0, "clean_stop": False,
                "targets": ["198.18.0.2:53"], "down": None,
                "slow": {"start": WALL_OFFSET - 660.0, "median_ms": 1480.5, "max_ms": 1720.0},
                "pending": [], "slow_pending": [], "next_id": 4,
                "backoff": {"wait": None, "last_sent": None, "last_failed": None}})
    run = LatencyRun(tmp_path, congested(), stop_at=5).run()
    _, subject, body = run.deliverer.sent[0]
    assert subject == ("pyNetConnMon on pi: 1 gap (10 min) when the monitor was not running; "
                       "1 slow period, 1 min slow")
    assert ("2026-11-18 10:55:40  2026-11-18 10:56:40         1 min    1480 ms    1720 ms  the "
            "monitor stopped while still slow\n") in body


def test_a_stats_event_at_the_end_of_each_window(tmp_path, utc):
    script = congested((12.0, 14.0), slow=1.02)
    run = LatencyRun(tmp_path, script, stop_at=25, stats_interval=10.0).run()
    stats = run.events("stats")
    # the third window is cut short by the stop: written up to then; a window ends at its `time`
    assert [(event["time"][11:23], event["start"][11:23], "end" in event) for event in stats] == [
        ("11:06:50.000", "11:06:40.000", False), ("11:07:00.000", "11:06:50.000", False),
        ("11:07:05.000", "11:07:00.000", False)]
    figures = [event["targets"]["198.18.0.2:53"] for event in stats]
    assert figures[0] == {"probes": 10, "failures": 0, "losses": 0, "min_ms": 20.0,
                          "median_ms": 20.0, "p95_ms": 20.0, "max_ms": 20.0, "jitter_ms": 0.0}
    # rounds at 10, 11, 12 (1.02 s), 13.02 (1.02 s), 14.04, 15 ... 19: two connects a second
    # late, each a resent SYN (losses); less the resend's wait each took 20 ms: no jitter
    assert figures[1] == {"probes": 10, "failures": 0, "losses": 2, "min_ms": 20.0,
                          "median_ms": 20.0, "p95_ms": 1020.0, "max_ms": 1020.0,
                          "jitter_ms": 0.0}


def test_slow_periods_are_not_watched_with_slow_0_and_only_relatively_when_1000_ms_cannot_be_seen(
        tmp_path):
    off = LatencyRun(tmp_path, congested((10.5, 30.5)), stop_at=40, slow=0.0).run()
    assert off.events("slow") == [] and off.board.latest().slow is None
    start, = off.events("start")
    assert (start["slow_ms"], start["stats_interval"]) == (0.0, 60.0)
    default = LatencyRun(tmp_path, congested(), stop_at=1, slow=None, timeout=1.0).run()
    assert ("slow periods: a connect 4x slower than usual counts as slow; the default --slow of "
            "1000 ms does not apply with -t 1, where such a connect is a timeout (give a longer "
            "-t, or --slow below 1000)") in default.console_lines()


def test_the_metrics_follow_a_slow_period_while_it_lasts(tmp_path):
    # rounds of 1.5 s from 11 on; a round still running at the stop is not counted
    run = LatencyRun(tmp_path, congested((10.5, 1000)), stop_at=14.5)
    run.monitor.run()
    snapshot = run.board.latest()         # the last round began at 12.5: slow for 1.5 s
    assert (snapshot.slow, snapshot.slow_seconds) == (True, 0.0)
    run = LatencyRun(tmp_path, congested((10.5, 1000)), stop_at=19)
    run.monitor.run()
    snapshot = run.board.latest()         # ... at 17: slow for 6 s, which counts
    assert (snapshot.slow, snapshot.slow_seconds) == (True, 6.0)
    label, probes, failures, total, cumulative = snapshot.connect[0]
    assert (label, probes, failures) == ("198.18.0.2:53", 16, 0)
    # 20 ms in the bucket up to 0.025 s, 1.5 s in the one up to 2 s
    assert cumulative == (0, 0, 0, 0, 11, 11, 11, 11, 11, 11, 16, 16, 16, 16, 16)
    assert total == pytest.approx(11 * 0.02 + 5 * 1.5)


# -- wording: metrics, reports -------------------------------------------------------------------

def test_metrics_text_for_connect_times_and_slow_periods():
    snapshot = pyNetConnMon.MetricsSnapshot(
        connect=(pyNetConnMon.ConnectRow("198.18.0.2:53", 7, 2, 1.5305,
                                         (0, 0, 0, 1, 2, 3, 3, 3, 4, 4, 5, 5, 5, 5, 5)),),
        slow=True, slow_seconds=12.5)
    text = render_metrics(snapshot)
    # the new families come last; the ones before are unchanged
    assert text[text.index("# HELP pynetconnmon_connect_duration_seconds"):] == (
        "# HELP pynetconnmon_connect_duration_seconds Time the TCP connects that got through "
        "took, per target.\n"
        "# TYPE pynetconnmon_connect_duration_seconds histogram\n"
        + "".join('pynetconnmon_connect_duration_seconds_bucket{target="198.18.0.2:53",le="%s"} '
                  "%d\n" % pair for pair in zip(
                      ("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                       "1.0", "2.0", "4.0", "8.0", "16.0", "+Inf"),
                      (0, 0, 0, 1, 2, 3, 3, 3, 4, 4, 5, 5, 5, 5, 5)))
        + 'pynetconnmon_connect_duration_seconds_sum{target="198.18.0.2:53"} 1.5305\n'
        'pynetconnmon_connect_duration_seconds_count{target="198.18.0.2:53"} 5\n'
        "# HELP pynetconnmon_probes_total TCP connects tried, per target.\n"
        "# TYPE pynetconnmon_probes_total counter\n"
        'pynetconnmon_probes_total{target="198.18.0.2:53"} 7\n'
        "# HELP pynetconnmon_probe_failures_total TCP connects that failed, per target.\n"
        "# TYPE pynetconnmon_probe_failures_total counter\n"
        'pynetconnmon_probe_failures_total{target="198.18.0.2:53"} 2\n'
        "# HELP pynetconnmon_rounds_not_started_total Rounds while down that started no connect, "
        "as too many were still waiting: they count for no probe.\n"
        "# TYPE pynetconnmon_rounds_not_started_total counter\n"
        "pynetconnmon_rounds_not_started_total 0\n"
        "# HELP pynetconnmon_slow 1 while the connection is slow: even the fastest target took "
        "--slow or longer to connect, in every round since the last faster one.\n"
        "# TYPE pynetconnmon_slow gauge\n"
        "pynetconnmon_slow 1\n"
        "# HELP pynetconnmon_slow_seconds_total Seconds in slow periods of at least "
        "--min-interruption, an ongoing one included.\n"
        "# TYPE pynetconnmon_slow_seconds_total counter\n"
        "pynetconnmon_slow_seconds_total 12.5\n")


def test_the_histogram_parses_with_prometheus_own_parser():
    from prometheus_client.parser import text_string_to_metric_families
    counters = pyNetConnMon.MetricsCounters()
    for seconds in (0.0004, 0.001, 0.003, 1.0, 1.2, 20.0):
        counters.connect.record([up(seconds)])
    counters.connect.record([down()])
    text = render_metrics(counters.snapshot([], 0.0, 5.0, 0, None, slow=False))
    families = {family.name: family for family in text_string_to_metric_families(text)}
    histogram = families["pynetconnmon_connect_duration_seconds"]
    buckets = {sample.labels["le"]: sample.value for sample in histogram.samples
               if sample.name.endswith("_bucket")}
    assert (buckets["0.001"], buckets["0.005"], buckets["1.0"], buckets["2.0"],
            buckets["16.0"], buckets["+Inf"]) == (2, 3, 4, 5, 5, 6)
    assert families["pynetconnmon_probes"].samples[0].value == 7
    assert families["pynetconnmon_slow"].samples[0].value == 0


def at(text):
    import calendar
    import time
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def slow_period(number, start, seconds, median, maximum, **extra):
    return Interruption(number, at(start), at(start) + seconds, seconds, extra.pop("reason", ""),
                        kind="slow", targets=["198.18.0.2:53"], median_ms=median,
                        max_ms=maximum, **extra)


def test_a_report_of_slow_periods_lists_each_and_folds_like_interruptions(utc):
    items = [slow_period(1, "2026-11-24 01:02:03", 192.0, 1520.0, 1710.0),
             slow_period(2, "2026-11-24 02:00:00", 600.0, None, 2400.0, count=12),
             slow_period(3, "2026-11-24 03:00:00", 7.5, 45.25, 80.0, cut_short=True)]
    subject, body = format_report(items, "pi", 40.0)
    assert subject == "pyNetConnMon on pi: 14 slow periods, 13 min 20 s slow"
    assert body == (
        "pyNetConnMon on pi saw 14 slow periods (13 min 20 s in total).\n"
        "\n"
        "Host:    pi\n"
        "Targets: 198.18.0.2:53\n"
        "Times:   local time of pi (UTC)\n"
        "\n"
        "Slow periods: the connection was up, but even the fastest target took 40.0 ms or longer "
        "to connect, in every round; median and max of those connects:\n"
        "start                end                      duration     median        max\n"
        "2026-11-24 01:02:03  2026-11-24 01:05:15    3 min 12 s    1520 ms    1710 ms\n"
        "2026-11-24 02:00:00  2026-11-24 02:10:00        10 min          -    2400 ms  12 slow "
        "periods between these times, added up here (the event log has each)\n"
        "2026-11-24 03:00:00  2026-11-24 03:00:07         7.5 s    45.2 ms    80.0 ms  the "
        "monitor stopped while still slow\n"
        "\n"
        "Total: 14 slow periods, 13 min 20 s slow.\n")


def test_the_pending_slow_periods_stay_bounded_and_fold_apart_from_interruptions():
    pending = PendingReports(ReportBackoff(60, 3600, 300), limit=10)
    for number in range(100):
        pending.add(WALL_OFFSET + 100 * number, WALL_OFFSET + 100 * number + 7, 7.0, "",
                    ["198.18.0.2:53"], kind="slow", median_ms=1500.0, max_ms=1000.0 + number)
        pending.add(WALL_OFFSET + 100 * number + 50, WALL_OFFSET + 100 * number + 57, 7.0,
                    "timeout", ["198.18.0.2:53"])
    assert (len(pending.items), pending.count) == (10, 100)
    assert (len(pending.slow_items), pending.slow_count) == (10, 100)
    folded = pending.slow_items[5]
    assert (folded.kind, folded.count, folded.median_ms, folded.max_ms) == (
        "slow", 91, None, 1095.0)
    assert [item.kind for item in pending.items] == ["outage"] * 5 + ["many"] + ["outage"] * 4


# -- the state file: slow periods are checked as strictly as interruptions ------------------------

VALID = {"format": 1, "heartbeat": WALL_OFFSET, "clean_stop": False, "targets": ["198.18.0.2:53"],
         "down": None, "slow": {"start": WALL_OFFSET - 30, "median_ms": 1500.0, "max_ms": None},
         "pending": [], "next_id": 3,
         "slow_pending": [{"id": 2, "start": WALL_OFFSET - 100, "end": WALL_OFFSET - 90,
                           "duration": 10.0, "reason": "", "kind": "slow", "cut_short": False,
                           "targets": ["198.18.0.2:53"], "count": 1, "median_ms": 1500.0,
                           "max_ms": 1700.0}],
         "backoff": {"wait": None, "last_sent": None, "last_failed": None}}


@pytest.mark.parametrize("path, value, reason", [
    (("slow",), [], "slow is not an object"),
    (("slow", "start"), None, "slow start is not a number"),
    (("slow", "median_ms"), -1, "slow median_ms is out of range"),
    (("slow", "max_ms"), "1", "slow max_ms is not a number"),
    (("slow_pending",), {}, "slow_pending is not a list of at most 100000 entries"),
    (("slow_pending", 0, "kind"), "outage", "slow_pending entry 1 is not a slow period"),
    (("slow_pending", 0, "median_ms"), 1e12, "slow_pending entry 1 median_ms is out of range"),
    (("slow_pending", 0, "max_ms"), True, "slow_pending entry 1 max_ms is not a number"),
    (("slow_pending", 0, "duration"), -5, "slow_pending entry 1 duration is out of range"),
])
def test_a_bad_slow_field_makes_the_state_unusable_with_a_reason(path, value, reason):
    data = json.loads(json.dumps(VALID))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError) as error:
        check_state(data)
    assert str(error.value) == reason


def test_a_checked_state_restores_its_slow_periods_and_the_one_ongoing_at_the_crash():
    state = check_state(json.loads(json.dumps(VALID)))
    pending = PendingReports(ReportBackoff(60, 3600, 300))
    pending.restore(state, 100.0, WALL_OFFSET + 60)
    assert [(item.id, item.kind, item.median_ms) for item in pending.slow_items] == [
        (2, "slow", 1500.0)]
    assert pyNetConnMon.recover_slow_period(state, 5.0) == dict(
        start=WALL_OFFSET - 30, end=WALL_OFFSET, duration=30.0, reason="",
        targets=["198.18.0.2:53"], kind="slow", cut_short=True, median_ms=1500.0, max_ms=None)
    assert pyNetConnMon.recover_slow_period(dict(state, clean_stop=True), 5.0) is None
    assert pyNetConnMon.recover_slow_period(state, 60.0) is None     # shorter than -m


# -- the command line: a --slow that -t cannot show is refused -------------------------------------

BAD_INPUT = [
    (["-t", "1", "--slow", "1000"], "--slow: 1000 ms cannot be seen with -t 1: a connect that "
     "takes 1000 ms or longer is a failure, not slow; give a longer -t or a lower --slow"),
    (["--slow", "2500"], "--slow: 2500 ms cannot be seen with -t 2: a connect that takes 2000 ms "
     "or longer is a failure, not slow; give a longer -t or a lower --slow"),
    (["--slow", "-1"], "argument --slow: -1 must be >= 0"),
    (["--slow", "fast"], "argument --slow: 'fast' is not a number"),
    (["--stats-interval", "nan"], "argument --stats-interval: 'nan' is not a finite number"),
    (["--stats-interval", "0.5"], "--stats-interval: 0.5 s is too short: give 0 (no stats "
     "events) or 1 to 86400 s"),
    (["--slow", "500", "--once"], "--slow has no effect with --once"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_slow_options_are_refused_with_one_line_and_status_2(tmp_path, args, message):
    # (a state file of its own, in case the monitor were started after all)
    own_state = [] if "--once" in args else ["--state-file", str(tmp_path / "state.json")]
    assert run_main("-a", "127.0.0.1", *args, *own_state) == (
        2, "", "pyNetConnMon.py: error: %s\n" % message)


@pytest.mark.parametrize("args, slow_ms, stats_interval", [
    (["-t", "1", "--slow", "0"], 0.0, 300.0), (["-t", "1", "--slow", "999"], 999.0, 300.0),
    (["-t", "1"], 0.0, 300.0), ([], 1000.0, 300.0), (["--stats-interval", "0"], 1000.0, 0.0),
    (["-t", "10", "--slow", "3000", "--stats-interval", "60"], 3000.0, 60.0)])
def test_slow_options_that_can_work_are_taken(args, slow_ms, stats_interval):
    settings = pyNetConnMon.parse_arguments(["-a", "127.0.0.1", *args])
    assert (settings.slow_ms, settings.stats_interval) == (slow_ms, stats_interval)


# -- --summary: slow time and connect times, per day and overall ----------------------------------

def stats(log, began, end, medians_and_p95s, connects=60):
    """A stats event for [began, end): one target per (median, p95) pair."""
    targets = {"192.0.2.%d:53" % (number + 1): {
        "probes": connects, "failures": 0, "losses": 0, "min_ms": median, "median_ms": median,
        "p95_ms": p95, "max_ms": p95} for number, (median, p95) in enumerate(medians_and_p95s)}
    return log.add(end, "stats", start=iso(began), end=iso(end), targets=targets)


def slow_stretch(log, began, ended, ignored=False):
    log.add(began, "slow", start=iso(began), connect_ms=1500.0)
    return log.add(ended, "slow_end", start=iso(began), end=iso(ended),
                   duration=round(ended - began, 3), ignored=ignored, median_ms=1500.0,
                   max_ms=1700.0)


def two_days():
    """Hourly stats windows over two days: the fastest target at 20 ms (p95 30 ms) on the 1st,
    one congested hour (1500/1700 ms), 25 ms (p95 40 ms) on the 2nd; a slow period of 20 min on
    the 1st, one across midnight, and a shorter one ignored."""
    log = Log().start(T0)
    for hour in range(48):
        began = T0 + hour * H
        if hour == 10:
            stats(log, began, began + H, [(1500.0, 1700.0), (1600.0, 1800.0)])
        elif hour < 24:
            stats(log, began, began + H, [(50.0, 70.0), (20.0, 30.0)])
        else:
            stats(log, began, began + H, [(25.0, 40.0)])
        if hour == 10:
            slow_stretch(log, began + 5, began + 1205)
            slow_stretch(log, began + 1300, began + 1303, ignored=True)
        if hour == 23:
            slow_stretch(log, began + 50 * 60, began + 70 * 60)
    return log.stop(T0 + 2 * D)


def test_the_summary_tells_slow_time_and_connect_times_per_day_and_overall(utc):
    summary = pyNetConnMon.summarize_events(two_days().events)
    text = pyNetConnMon.format_summary(summary, "events.jsonl")
    lines = text.splitlines()
    assert lines[lines.index("Downtime:      0.0 s") + 1:][:2] == [
        "Slow:          40 min in 2 slow periods (longest 20 min), 1 shorter one ignored",
        "Connect time:  median 25.0 ms, 95th percentile 40.0 ms (48 stats windows)"]
    assert text.endswith(
        "\n"
        "day                 slow      median         p95\n"
        "2026-11-01        30 min     20.0 ms     30.0 ms\n"
        "2026-11-02        10 min     25.0 ms     40.0 ms\n"
        "\n"
        "slow: time in slow periods of at least --min-interruption. median, p95: the connect "
        "time of the fastest target (the one with the lowest median in each stats window): the "
        "median of the windows' medians and the 95th percentile of their 95th percentiles, each "
        "window weighted by its connects that got through.\n")


def test_a_summary_of_one_day_counts_only_its_share_of_a_slow_period_across_midnight(utc):
    summary = pyNetConnMon.summarize_events(two_days().events, since=T0 + D, until=T0 + 2 * D)
    assert (summary.slow, summary.slow_periods, summary.windows) == (600.0, 1, 24)
    assert [(row.date, slow) for row, slow, _ in pyNetConnMon.latency_rows(summary)] == [
        ("2026-11-02", 600.0)]


def test_a_slow_period_of_centuries_costs_no_more_than_a_short_one(utc):
    log = Log().start(T0 - 300 * 365 * D)
    slow_stretch(log, T0 - 300 * 365 * D + 10, T0)
    summary = pyNetConnMon.summarize_events(log.stop(T0 + H).events)
    rows = pyNetConnMon.latency_rows(summary)
    assert len(rows) <= 3
    assert sum(slow for _, slow, _ in rows) == pytest.approx(summary.slow)


def test_a_log_without_slow_periods_or_stats_has_no_such_lines(utc):
    text = pyNetConnMon.format_summary(pyNetConnMon.summarize_events(
        Log().start(T0).outage(T0 + H, T0 + H + 60).stop(T0 + 2 * H).events), "events.jsonl")
    assert "Slow:" not in text and "median" not in text


def test_a_slow_stretch_cut_off_by_a_crash_counts_until_the_runs_last_sign_of_life(utc):
    log = Log().start(T0)
    log.add(T0 + 100, "slow", start=iso(T0 + 100), connect_ms=1400.0)
    stats(log, T0, T0 + 160, [(1400.0, 1500.0)])
    log.start(T0 + 1000).gap(T0 + 160, T0 + 1000, T0 + 1000).stop(T0 + 1100)
    summary = pyNetConnMon.summarize_events(log.events)
    assert (summary.slow, summary.slow_periods) == (60.0, 1)


def test_the_summary_of_a_log_written_by_the_monitor(tmp_path, utc):
    run = LatencyRun(tmp_path, congested((10.5, 30.5)), stop_at=200, stats_interval=60.0).run()
    summary = pyNetConnMon.summarize_events(run.events())
    # three windows of 60 s and the one the stop cut short (20 s)
    assert (summary.slow, summary.slow_periods, summary.windows) == (pytest.approx(19.52), 1, 4)
    (row, slow, times), = pyNetConnMon.latency_rows(summary)
    assert (row.date, slow, times.medians.percentile(0.5), times.p95s.percentile(0.95)) == (
        "2026-11-18", pytest.approx(19.52), 20.0, 1500.0)


def test_slow_periods_sit_between_interruptions_and_partial_outages_in_a_report(utc):
    outage = Interruption(1, at("2026-11-24 01:00:00"), at("2026-11-24 01:00:09"), 9.0,
                          "timeout", targets=["198.18.0.2:53"], cause="provider")
    partial = Interruption(3, at("2026-11-24 03:00:00"), at("2026-11-24 03:00:30"), 30.0,
                           "refused", kind="partial", targets=["198.18.0.2:53"],
                           part="target 198.18.0.2:53")
    period = slow_period(2, "2026-11-24 02:00:00", 12.0, 1400.0, 1500.0)
    subject, body = format_report([outage, partial, period], "pi", 1000.0)
    assert subject == ("pyNetConnMon on pi: 1 interruption, 9.0 s of downtime; 1 slow period, "
                       "12.0 s slow; 1 partial outage")
    assert body.splitlines()[0] == ("pyNetConnMon on pi saw 1 interruption (9.0 s of downtime in "
                                    "total), 1 slow period (12.0 s in total) and 1 partial "
                                    "outage.")
    assert body.index("Total: 1 interruption") < body.index("Slow periods:") < body.index(
        "Partial outages:")
    subject, body = format_report([partial, period], "pi", 1000.0)
    assert subject == "pyNetConnMon on pi: 1 slow period, 12.0 s slow; 1 partial outage"
    assert body.splitlines()[0] == ("pyNetConnMon on pi saw 1 slow period (12.0 s in total) and "
                                    "1 partial outage.")


def test_what_waits_is_named_in_one_phrase():
    assert [pyNetConnMon.pending_text(*counts) for counts in (
        (2, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 2), (1, 2, 1), (0, 2, 1))] == [
        "2 interruptions", "1 partial outage", "1 slow period",
        "1 interruption and 2 slow periods", "1 interruption, 1 slow period and 2 partial outages",
        "1 slow period and 2 partial outages"]
    # a gap is an interruption to the pending list, and told as a gap
    assert [pyNetConnMon.pending_text(count, 0, 0, 0, gaps) for count, gaps in (
        (1, 1), (3, 1), (2, 2))] == ["1 gap", "2 interruptions and 1 gap", "2 gaps"]
