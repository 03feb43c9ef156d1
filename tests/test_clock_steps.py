"""The wall clock set while the monitor runs: NTP at boot on a Raspberry Pi (no real-time clock,
so it boots on the time fake-hwclock saved), an administrator, a resume from suspend. Durations
come from the monotonic clock; these tests check that the times around them follow the step, so
that an event's start and end are on one clock, and that --summary counts neither the step nor
any second twice. Driven by a fake clock: no sockets, no sleeping."""
import json

import pytest

from fakes import WALL_OFFSET, Crash, Run
from pyNetConnMon import (HELD_UP_MIN, ProbeResult, WallClockSteps, local_time,
                          parse_log_time, summarize_events)

DAY, HOUR = 86400.0, 3600.0


def summary(run):
    return summarize_events(json.loads(line) for line in run.log_path.read_text().splitlines())


def test_a_step_is_a_change_of_a_second_or_more_against_the_monotonic_clock():
    steps = WallClockSteps()
    readings = [(0.0, 1000.0), (2.0, 1002.4), (4.0, 1004.8), (6.0, 1007.2),     # slewed: 0.4 s
                (8.0, 1014.2), (10.0, 1013.2), (12.0, 1015.2)]
    assert [steps.observe(mono, wall) for mono, wall in readings] == \
        [None, None, None, None, pytest.approx(5.0), pytest.approx(-3.0), None]


def test_an_outage_across_a_clock_set_forward_ends_on_the_clock_it_is_said_to_begin_on(tmp_path,
                                                                                      utc):
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=40, clock_steps=[(15.0, 2 * DAY)])
    run.run()
    down, = run.events("down")
    up, = run.events("up")
    step, = run.events("clock_step")
    assert step["step"] == 2 * DAY
    assert parse_log_time(up["start"]) - parse_log_time(down["start"]) == 2 * DAY
    assert parse_log_time(up["end"]) - parse_log_time(up["start"]) == pytest.approx(
        up["duration"], abs=1e-3)
    assert "clock set forward by 2 d (NTP, by hand or a resume from suspend); what is still " \
        "open moved with it" in run.console_lines()
    _, subject, body = run.deliverer.sent[0]
    assert "2026-11-20 11:06:50  2026-11-20 11:07:00        10.0 s  unknown   refused" in body
    history = summary(run)
    assert (history.interruptions, history.downtime) == (1, pytest.approx(10.0, abs=0.01))
    assert history.monitored == pytest.approx(40.0, abs=1.0)       # not two days


def test_a_step_between_the_last_good_connect_and_the_first_failed_round(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 30.5)], stop_at=40, clock_steps=[(10.5, 3 * DAY)],
              stats_interval=0)
    run.run()
    down, = run.events("down")
    assert 0 < parse_log_time(down["start_before"]) - parse_log_time(down["start"]) < 1
    assert summary(run).downtime == pytest.approx(20.0, abs=1.0)


def test_a_slow_period_across_a_step_lasts_as_long_as_it_did(tmp_path):
    run = Run(tmp_path, outages=[], stop_at=60, clock_steps=[(25.0, 2 * DAY)], slow=300.0,
              timeout=2.0, stats_interval=0)
    probe = run.prober.probe_round

    def slow_from_10_to_30(targets, interrupted=lambda: False, gateway=None, wait=None):
        results = probe(targets, interrupted, gateway, wait)
        if 10 <= run.clock.now < 30:
            results.targets = [ProbeResult(r.target, True, None, 0.5) for r in results.targets]
        return results

    run.prober.probe_round = slow_from_10_to_30
    run.run()
    end, = run.events("slow_end")
    assert parse_log_time(end["end"]) - parse_log_time(end["start"]) == pytest.approx(
        end["duration"], abs=1e-3)
    assert summary(run).slow == pytest.approx(20.0, abs=1.0)


def test_statistics_windows_follow_the_clock(tmp_path, utc):
    run = Run(tmp_path, outages=[], stop_at=3600, clock_steps=[(20.0, 3 * DAY)])
    run.run()
    stop, = run.events("stop")
    windows = run.events("stats")
    assert parse_log_time(windows[-1]["time"]) == pytest.approx(parse_log_time(stop["time"]),
                                                                abs=1.0)
    assert [day.date for day in summary(run).latency_days.values()] == ["2026-11-21"]


def test_a_pi_booted_on_a_stale_clock_does_not_count_the_days_it_was_off(tmp_path):
    first = Run(tmp_path, outages=[], stop_at=1000, stats_interval=0)
    first.run()                                       # a clean shutdown, then 3 days off
    # the monitor starts 30 s into the boot, on the time fake-hwclock saved at the shutdown;
    # NTP sets the clock 20 s later
    boot, real = WALL_OFFSET + 1030, WALL_OFFSET + 1000 + 3 * DAY + 30
    second = Run(tmp_path, outages=[(0, 12)], stop_at=2000, wall_offset=boot,
                 clock_steps=[(20.0, real - boot)], stats_interval=0)
    second.run()
    history = summary(second)
    assert history.monitored == pytest.approx(3000.0, abs=2.0)
    assert history.interruptions == 1                 # the 12 s at boot, on the stale clock


def test_a_clock_set_back_counts_no_second_twice_and_keeps_the_interruption(tmp_path):
    run = Run(tmp_path, outages=[(1000, 1060)], stop_at=2000, clock_steps=[(600.0, -HOUR)],
              stats_interval=0)
    run.run()
    assert len(run.deliverer.sent) == 1
    history = summary(run)
    # the 1400 s after the step fall within the hour already counted before it
    assert history.monitored == pytest.approx(600.0, abs=1.0)
    assert (history.interruptions, history.downtime) == (1, pytest.approx(60.0, abs=1.0))


# -- after a power cut or a crash: the time the monitor was not running ----------------------

def crashed_run(tmp_path, crash_at, **options):
    run = Run(tmp_path, outages=[], stop_at=1e9, crash_at=crash_at, **options)
    with pytest.raises(Crash):
        run.run()
    run.log.close()
    return run


def test_a_pi_power_cut_is_a_gap_once_ntp_sets_the_clock_it_booted_behind(tmp_path, utc):
    crashed_run(tmp_path, crash_at=3000)            # the last heartbeat at 3000 s
    # power back 5 h later; fake-hwclock saved the time at 2000 s, so the monitor starts 30 s
    # into the boot on a clock at 2030 s; NTP sets the clock 25 s later
    boot, real = WALL_OFFSET + 2030, WALL_OFFSET + 3000 + 5 * HOUR + 30
    again = Run(tmp_path, outages=[], stop_at=200, wall_offset=boot,
                clock_steps=[(25.0, real - boot)])
    again.run()
    assert "WARNING the previous run did not stop cleanly, but this machine's clock is behind " \
        "its last heartbeat (2026-11-18 11:56:40): the time it was not running is reported " \
        "as a gap once the clock is set" in again.console_lines()
    gap, = again.events("gap")
    assert (parse_log_time(gap["start"]), parse_log_time(gap["end"]), gap["duration"]) == \
        (WALL_OFFSET + 3000, real, 5 * HOUR + 30)
    _, subject, _ = again.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 gap (5 h 30 s) when the monitor was not running"
    history = summary(again)
    assert (history.gaps, history.gap_downtime) == (1, 5 * HOUR + 30)


def test_a_gap_the_clock_never_allowed_to_measure_is_said_at_the_stop(tmp_path):
    crashed_run(tmp_path, crash_at=3000)
    again = Run(tmp_path, outages=[], stop_at=200, wall_offset=WALL_OFFSET + 2030)
    again.run()
    assert again.events("gap") == []
    assert [line for line in again.console_lines() if line.startswith("WARNING the clock")] == [
        "WARNING the clock was never set past the previous run's last heartbeat (%s): the time "
        "it was not running could not be measured" % "2026-11-18 11:56:40"]


def test_a_restart_in_the_same_boot_measures_its_gap_on_the_boot_clock(tmp_path):
    # the monitor dies at 90 s (last heartbeat at 60 s) on a clock 3 days behind; systemd starts
    # it again 10 s later, after NTP set the clock
    first = crashed_run(tmp_path, crash_at=90, boot=("boot-1", 100.0))
    assert first.saved_state()["boot"] == {"id": "boot-1", "seconds": 160.0}
    restart = WALL_OFFSET + 3 * DAY + 100
    again = Run(tmp_path, outages=[], stop_at=20, wall_offset=restart, boot=("boot-1", 200.0))
    again.run()
    gap, = again.events("gap")
    assert (parse_log_time(gap["start"]), parse_log_time(gap["end"]), gap["duration"]) == \
        (restart - 40, restart, 40.0)


def test_a_restart_after_a_reboot_measures_its_gap_on_the_wall_clock(tmp_path):
    crashed_run(tmp_path, crash_at=90, boot=("boot-1", 100.0))
    again = Run(tmp_path, outages=[], stop_at=20, wall_offset=WALL_OFFSET + 600,
                boot=("boot-2", 30.0))
    again.run()
    gap, = again.events("gap")
    assert gap["duration"] == 540.0                   # from the heartbeat at 60 s to 600 s


# -- the process held up (Ctrl-Z, SIGSTOP, starved): the monotonic clock runs on ---------------

def freeze(run, at, seconds):
    """The monitor's process does not run for `seconds` from its first wait past `at`."""
    wait, frozen = run.waker.wait, []

    def waiting(time):
        wait(time)
        if not frozen and run.clock.now >= at:
            frozen.append(run.clock.now)
            run.clock.now += seconds
    run.waker.wait = waiting
    return frozen


def test_a_process_stopped_for_a_minute_says_so_when_it_runs_again(tmp_path, utc):
    run = Run(tmp_path, outages=[], stop_at=100)
    frozen = freeze(run, 30.0, 60.0)
    run.run()
    [held] = run.events("held_up")
    assert held["duration"] == pytest.approx(60.0, abs=0.02)
    assert parse_log_time(held["start"]) == pytest.approx(WALL_OFFSET + frozen[0], abs=0.02)
    warnings = [line for line in run.console_lines() if "held up" in line]
    assert warnings == ["WARNING the monitor was held up for 1 min (its process was stopped, "
                        "or the machine too busy to run it): nothing was watched since %s"
                        % local_time(WALL_OFFSET + frozen[0])], warnings


def test_rounds_that_wait_for_timeouts_or_a_slow_heartbeat_are_not_held_up(tmp_path):
    # rounds of 2 s at -i 1 (a target that times out), an outage, a slow save: all late, but
    # the process ran the whole time
    run = Run(tmp_path, outages=[(10.0, 30.0)], stop_at=100, interval=1.0)
    run.prober.round_time = 2.0
    freeze(run, 50.0, HELD_UP_MIN - 0.1)
    run.run()
    assert run.events("held_up") == []
    assert not [line for line in run.console_lines() if "held up" in line]
