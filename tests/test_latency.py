"""Connect times: the statistics window, losses the kernel repaired, slow periods. Pure logic:
no sockets, no sleeping.
"""
import math
import random
import tracemalloc

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

import pyNetConnMon
from pyNetConnMon import (ConnectTimes, ProbeResult, SlowTracker, StatisticsWindow, parse_target,
                          resent_syns)
from test_monitor import WALL_OFFSET

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
    assert figures == {"198.18.0.2:53": {"probes": 22, "failures": 2, "losses": 0,
                                         "min_ms": 10.0, "median_ms": 100.0, "p95_ms": 190.0,
                                         "max_ms": 200.0}}


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
                          "median_ms": 12.3, "p95_ms": 12.3, "max_ms": 12.3},
        "198.18.0.3:53": {"probes": 10, "failures": 10, "losses": 0, "min_ms": None,
                          "median_ms": None, "p95_ms": None, "max_ms": None}}


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


def test_memory_stays_bounded_at_i_0_05_over_a_long_window():
    """An hour's window at -i 0.05 (72,000 rounds, two targets) holds no more than its buckets,
    whatever the times; with times that repeat, no more than a few minutes' window does."""
    rng = random.Random(1)
    labels = (TARGET, OTHER)
    biggest = math.ceil(math.log(1e9) / math.log(pyNetConnMon.CONNECT_TIME_RATIO)) + 1  # 1 us-1000 s
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
        kind, detail = transition
        if kind == "slow":
            seen.append(("slow", detail.start_mono))
        else:
            slow, end, duration, ignored, by_interruption = detail
            seen.append(("slow_end", slow.start_mono, round(end - WALL_OFFSET, 6),
                         round(duration, 6), ignored, by_interruption,
                         round(slow.times.percentile(0.5)), round(slow.times.maximum)))
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
    slow, end, duration, ignored = tracker.end(9.0, WALL_OFFSET + 9.0)
    assert (slow.start_mono, end - WALL_OFFSET, duration, ignored) == (1.0, 9.0, 8.0, False)
