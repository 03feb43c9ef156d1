"""InterruptionTracker: from round results to DOWN and UP, with durations from the monotonic
clock."""
from pyNetConnMon import InterruptionTracker


def test_up_rounds_report_nothing():
    tracker = InterruptionTracker(min_interruption=5.0)
    assert tracker.observe(True, mono=0.0, wall=1000.0) is None
    assert tracker.observe(True, mono=2.0, wall=1002.0) is None
    assert not tracker.is_down


def test_interruption_starts_at_first_failed_round_and_ends_at_first_good_one():
    tracker = InterruptionTracker(min_interruption=5.0)
    down = tracker.observe(False, mono=10.0, wall=1010.0, reason="timeout",
                           target_reasons={"a:53": "timeout"})
    outage = down.outage
    assert down.kind == "down"
    assert (outage.start_mono, outage.start_wall, outage.reason) == (10.0, 1010.0, "timeout")
    assert outage.targets == {"a:53": "timeout"}
    # further failed rounds are the same interruption
    assert tracker.observe(False, mono=12.0, wall=1012.0, reason="refused") is None
    up = tracker.observe(True, mono=18.0, wall=1018.0)
    assert up.kind == "up"
    assert up.outage is outage
    assert up.duration == 8.0
    assert up.ignored is False
    assert not tracker.is_down


def test_interruption_shorter_than_minimum_is_ignored():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(False, mono=0.0, wall=0.0, reason="refused")
    up = tracker.observe(True, mono=4.0, wall=4.0)
    duration, ignored = up.duration, up.ignored
    assert (duration, ignored) == (4.0, True)


def test_interruption_exactly_the_minimum_counts():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(False, mono=0.0, wall=0.0, reason="refused")
    up = tracker.observe(True, mono=5.0, wall=5.0)
    duration, ignored = up.duration, up.ignored
    assert (duration, ignored) == (5.0, False)


def test_wall_clock_jumps_do_not_distort_the_duration():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(False, mono=100.0, wall=1_000_000.0, reason="timeout")
    # NTP stepped the wall clock back an hour during the outage
    up = tracker.observe(True, mono=130.0, wall=1_000_000.0 - 3600 + 30)
    outage, duration = up.outage, up.duration
    assert duration == 30.0
    assert outage.start_wall == 1_000_000.0


def test_an_outage_begins_in_the_middle_between_the_last_answer_and_the_first_failed_round():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(True, mono=9.0, wall=1009.0)
    tracker.observe(True, mono=10.0, wall=1010.0)       # the last connect that got through
    outage = tracker.observe(False, mono=11.0, wall=1011.0, reason="timeout").outage
    assert (outage.after, outage.before) == ((10.0, 1010.0), (11.0, 1011.0))
    assert (outage.start_mono, outage.start_wall) == (10.5, 1010.5)
    assert tracker.ongoing_duration(12.0) == 1.5
    up = tracker.observe(True, mono=20.25, wall=1020.25)
    duration, ignored = up.duration, up.ignored
    assert (duration, ignored) == (9.75, False)


def test_an_outage_found_by_the_very_first_round_begins_at_that_round():
    tracker = InterruptionTracker(min_interruption=5.0)
    outage = tracker.observe(False, mono=0.0, wall=1000.0, reason="refused").outage
    assert (outage.after, outage.start_mono, outage.start_wall) == (None, 0.0, 1000.0)
    assert outage.duration_bounds(2.5) == (0.0, None)    # no bound: it may have begun long before


def test_how_long_it_lasted_at_least_and_at_most():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(True, mono=10.0, wall=1010.0)
    tracker.observe(False, mono=11.0, wall=1011.0, reason="timeout")
    for mono in (11.25, 11.5, 11.75, 12.0):              # still down in these rounds
        assert tracker.observe(False, mono=mono, wall=1000.0 + mono) is None
    up = tracker.observe(True, mono=12.25, wall=1012.25)
    outage, duration, ignored = up.outage, up.duration, up.ignored
    # down from the first failed round to the last one at least, from the last answer to the
    # first answer again at most
    assert (duration, ignored) == (1.75, True)
    assert outage.duration_bounds(12.25) == (1.0, 2.25)
