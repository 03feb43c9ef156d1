"""RoundSchedule: rounds start at a fixed rate on the monotonic clock, however long probes take."""
from pyNetConnMon import RoundSchedule


def test_first_round_is_due_at_once():
    schedule = RoundSchedule(2.0, first_round=100.0)
    assert schedule.seconds_until_due(100.0) == 0.0


def test_rounds_keep_a_fixed_rate_whatever_the_probes_take():
    schedule = RoundSchedule(2.0, first_round=100.0)
    starts = []
    now = 100.0
    for probe_time in (0.1, 1.9, 0.0, 1.5):
        now += schedule.seconds_until_due(now)
        starts.append(now)
        schedule.round_started(now)
        now += probe_time
    assert starts == [100.0, 102.0, 104.0, 106.0]


def test_an_overrunning_round_starts_the_next_at_once_and_keeps_the_grid():
    schedule = RoundSchedule(1.0, first_round=0.0)
    schedule.round_started(0.0)
    # the round at 0.0 took 1.25 s: the next round (due at 1.0) starts at once ...
    assert schedule.seconds_until_due(1.25) == 0.0
    schedule.round_started(1.25)
    # ... and the one after it is back on the grid
    assert schedule.next_due == 2.0
    assert schedule.seconds_until_due(1.5) == 0.5


def test_rounds_missed_entirely_are_skipped_not_made_up():
    schedule = RoundSchedule(1.0, first_round=0.0)
    schedule.round_started(0.0)
    # the process was stopped (e.g. SIGSTOP, a suspended laptop) for 10.5 s
    schedule.round_started(10.5)
    assert schedule.next_due == 11.0
