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


def rounds(schedule, down_during, until, probe_time=0.01):
    """Round starts up to `until` when rounds starting in [down_during) find the network down
    (each one known at its end, `probe_time` after its start)."""
    starts, now, down = [], schedule.origin, False
    while True:
        now += schedule.seconds_until_due(now, down)
        if now >= until:
            return starts
        starts.append(now)
        schedule.round_started(now)
        now += probe_time
        down = down_during[0] <= starts[-1] < down_during[1]


def test_while_down_rounds_come_every_down_interval_and_back_on_the_grid_once_up():
    schedule = RoundSchedule(1.0, first_round=0.0, down_interval=0.25)
    # the round at 1 finds it down: the next comes 0.25 s later, not at 2; the one at 2.5
    # finds it up: the next is at 3, on the interval's grid again
    assert rounds(schedule, (1.0, 2.5), until=5.0) == [
        0.0, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 4.0]


def test_a_first_failed_round_that_waited_out_its_timeout_is_followed_by_a_fast_one_at_once():
    schedule = RoundSchedule(1.0, first_round=0.0, down_interval=0.25)
    # the round at 1 took 1.1 s (a timeout): the fast round due at 1.25 starts at once (2.1),
    # the one after it on the fast grid (2.25)
    schedule.round_started(0.0)
    schedule.round_started(1.0)
    assert schedule.seconds_until_due(2.1, down=True) == 0.0
    schedule.round_started(2.1)
    assert (schedule.next_due_down, schedule.next_due) == (2.25, 3.0)


def test_a_fast_grid_that_is_not_exact_in_binary_never_starts_a_round_twice():
    schedule = RoundSchedule(1.0, first_round=1234.5678, down_interval=0.1)
    starts = rounds(schedule, (1234.5678, 2000.0), until=1234.5678 + 100.0, probe_time=0.0)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert len(starts) == 1000
    assert 0.0999 < min(gaps) and max(gaps) < 0.1001


def test_a_down_interval_longer_than_the_interval_is_the_interval():
    assert RoundSchedule(1.0, 0.0, down_interval=5.0).down_interval == 1.0
    assert RoundSchedule(1.0, 0.0).down_interval == 1.0
