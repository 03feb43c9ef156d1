"""InterruptionTracker: from round results to DOWN and UP, with durations from the monotonic clock."""
from pyNetConnMon import InterruptionTracker


def test_up_rounds_report_nothing():
    tracker = InterruptionTracker(min_interruption=5.0)
    assert tracker.observe(True, mono=0.0, wall=1000.0) is None
    assert tracker.observe(True, mono=2.0, wall=1002.0) is None
    assert not tracker.is_down


def test_interruption_starts_at_first_failed_round_and_ends_at_first_good_one():
    tracker = InterruptionTracker(min_interruption=5.0)
    kind, outage = tracker.observe(False, mono=10.0, wall=1010.0, reason="timeout",
                                   target_reasons={"a:53": "timeout"})
    assert kind == "down"
    assert (outage.start_mono, outage.start_wall, outage.reason) == (10.0, 1010.0, "timeout")
    assert outage.targets == {"a:53": "timeout"}
    # further failed rounds are the same interruption
    assert tracker.observe(False, mono=12.0, wall=1012.0, reason="refused") is None
    kind, (ended, duration, ignored) = tracker.observe(True, mono=18.0, wall=1018.0)
    assert kind == "up"
    assert ended is outage
    assert duration == 8.0
    assert ignored is False
    assert not tracker.is_down


def test_interruption_shorter_than_minimum_is_ignored():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(False, mono=0.0, wall=0.0, reason="refused")
    _, (_, duration, ignored) = tracker.observe(True, mono=4.0, wall=4.0)
    assert (duration, ignored) == (4.0, True)


def test_interruption_exactly_the_minimum_counts():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(False, mono=0.0, wall=0.0, reason="refused")
    _, (_, duration, ignored) = tracker.observe(True, mono=5.0, wall=5.0)
    assert (duration, ignored) == (5.0, False)


def test_wall_clock_jumps_do_not_distort_the_duration():
    tracker = InterruptionTracker(min_interruption=5.0)
    tracker.observe(False, mono=100.0, wall=1_000_000.0, reason="timeout")
    # NTP stepped the wall clock back an hour during the outage
    _, (outage, duration, _) = tracker.observe(True, mono=130.0, wall=1_000_000.0 - 3600 + 30)
    assert duration == 30.0
    assert outage.start_wall == 1_000_000.0
