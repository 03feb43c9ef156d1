"""--summary: availability from the event log. Pure functions with hand-made events, then the CLI.

Needs no network. Local time is pinned: in-process tests run under TZ=UTC (or a POSIX TZ string
where a test is about local time), and subprocesses get TZ=UTC in their environment.
Hostile input (huge spans, huge lines, odd files, fuzzing) is in test_summary_hostile.py.
"""
from datetime import datetime, timezone

import pytest

import pyNetConnMon as pnm
from eventlogs import D, H, T0, Log, iso, set_tz
from harness import run_main, run_program

# every test here runs with local time = UTC unless it switches zone itself
pytestmark = pytest.mark.usefixtures("utc")


def summarize(log, since=None, until=None):
    return pnm.summarize_events(iter(log.events), since, until)


def percent(monitored, downtime):
    return 100.0 * (monitored - downtime) / monitored


# ---- a generated log with known answers -------------------------------------------------------

def three_days():
    """Day 1 all monitored; day 2 stopped 03:00-05:00; day 3 a power cut, then a stop while down.

    outages: 43.2 s at 08:00 and 50 min at 20:00 on day 1, 23:30-01:00 across midnight into
    day 3; a 2 s blip; the power cut 10:00-12:00 on day 3 (a gap); down 18:00 on day 3 until
    the stop at 18:10. The log ends with a run started on day 4 at 00:00, last event 02:00.
    """
    log = Log().start(T0)
    log.outage(T0 + 8 * H, T0 + 8 * H + 43.2)
    log.outage(T0 + 20 * H, T0 + 20 * H + 50 * 60)
    log.outage(T0 + 21 * H + 10, T0 + 21 * H + 12)                      # a blip
    log.add(T0 + 21 * H + 100, "mail_sent", interruptions=2, via="mail", next_wait=60.0)
    log.stop(T0 + D + 3 * H)
    log.start(T0 + D + 5 * H)
    log.outage(T0 + D + 23.5 * H, T0 + 2 * D + 1 * H)
    log.start(T0 + 2 * D + 12 * H)                                      # no stop before: power cut
    log.gap(T0 + 2 * D + 10 * H, T0 + 2 * D + 12 * H, T0 + 2 * D + 12 * H + 0.5)
    log.down(T0 + 2 * D + 18 * H)
    log.stop(T0 + 2 * D + 18 * H + 600, down_since=T0 + 2 * D + 18 * H)
    log.start(T0 + 3 * D)
    log.add(T0 + 3 * D + 2 * H, "mail_failed", interruptions=1, via="mail", reason="x", retry_in=60)
    return log


def test_known_answers_overall():
    summary = summarize(three_days())
    downtime = 43.2 + 50 * 60 + 1.5 * H + 2 * H + 600
    not_running = 2 * H + (6 * H - 600)           # day 2 03:00-05:00, day 3 18:10-24:00
    assert summary.start == T0
    assert summary.end == T0 + 3 * D + 2 * H
    assert summary.period == pytest.approx(3 * D + 2 * H)
    assert summary.not_running == pytest.approx(not_running)
    assert summary.monitored == pytest.approx(3 * D + 2 * H - not_running)
    assert summary.downtime == pytest.approx(downtime)
    assert summary.availability == pytest.approx(percent(summary.monitored, downtime), abs=0.01)
    assert summary.availability == pytest.approx(93.18, abs=0.01)
    assert summary.interruptions == 5
    assert summary.longest == pytest.approx(2 * H)
    assert summary.blips == 1
    assert (summary.gaps, summary.gap_downtime) == (1, pytest.approx(2 * H))
    assert summary.still_running and not summary.still_down


def test_known_answers_per_day():
    days = summarize(three_days()).days
    assert [day.date for day in days] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    assert [day.interruptions for day in days] == [2, 1, 2, 0]
    assert [day.downtime for day in days] == pytest.approx([3043.2, 1800, 3 * H + 600, 0])
    assert [day.monitored for day in days] == pytest.approx([D, 22 * H, 18 * H + 600, 2 * H])
    assert days[0].availability == pytest.approx(96.48, abs=0.01)
    assert days[1].availability == pytest.approx(97.73, abs=0.01)


def test_known_answers_text():
    text = pnm.format_summary(summarize(three_days()), "events.jsonl")
    lines = text.splitlines()
    assert lines[:8] == [
        "pyNetConnMon summary of events.jsonl",
        "Period:        2026-11-01 00:00:00 to 2026-11-04 02:00:00 (3 d 2 h)",
        "               (the log ends while the monitor runs: counted until its last event)",
        "Monitored:     2 d 18 h 10 min",
        "Not running:   7 h 50 min (neither up nor down)",
        "Availability:  93.181 %",
        "Interruptions: 5 (longest 2 h), 1 blip ignored",
        "Downtime:      4 h 30 min 43 s (of which 2 h in 1 gap)",
    ]
    assert lines[9:14] == [
        "day           avail   int          downtime   00    06    12    18",
        "2026-11-01   96.48%     2       50 min 43 s  |········░···········█···|",
        "2026-11-02   97.73%     1            30 min  |···  ··················▓|",
        "2026-11-03   82.57%     2        3 h 10 min  |█·········██······░     |",
        "2026-11-04  100.00%     0             0.0 s  |··                      |",
    ]


# ---- the hour bar ------------------------------------------------------------------------------

def test_bar_of_a_hand_made_day():
    day0 = T0
    log = Log().start(day0 + 1 * H)                  # 00:00-01:00 not running
    log.outage(day0 + 2 * H, day0 + 2 * H + 10)      # 10 s: under 25 %
    log.outage(day0 + 3 * H, day0 + 3 * H + 15 * 60)  # exactly 25 %
    log.outage(day0 + 4 * H, day0 + 4 * H + 30 * 60)  # exactly 50 %
    log.outage(day0 + 5 * H, day0 + 5 * H + 45 * 60)  # exactly 75 %
    log.outage(day0 + 6 * H + 1800, day0 + 8 * H + 1800)  # 06:30-08:30: half, full, half
    log.outage(day0 + 9 * H + 1, day0 + 9 * H + 3)   # a blip: no downtime
    log.stop(day0 + 12 * H)
    log.start(day0 + 18 * H + 1800)
    log.outage(day0 + 20 * H, day0 + 21 * H)         # 20:00-21:00 all down: a bad evening
    log.stop(day0 + 23 * H)
    [day] = summarize(log).days
    assert pnm.hour_bar(day) == " ·░▒▓█▓█▓···      ··█·· "
    assert pnm.hour_bar(day, pnm.HOUR_SHADES_ASCII) == " .-+*#*#*...      ..#.. "


def test_bar_of_a_day_without_monitoring_is_blank():
    log = Log().start(T0).stop(T0 + H).start(T0 + 2 * D).stop(T0 + 2 * D + H)
    days = summarize(log).days
    assert [day.date for day in days] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert pnm.hour_bar(days[1]) == " " * 24
    assert days[1].availability is None
    text = pnm.format_summary(summarize(log), "x")
    assert "2026-11-02        -     -                 -  |                        |" in text


def test_day_rows_split_at_local_midnight():
    set_tz("IST-5:30")                                # UTC+05:30: local midnight is 18:30 UTC
    log = Log().start(T0).outage(T0 + 18 * H, T0 + 19 * H).stop(T0 + D)
    days = summarize(log).days
    assert [day.date for day in days] == ["2026-11-01", "2026-11-02"]
    assert [day.downtime for day in days] == pytest.approx([1800, 1800])
    assert [day.interruptions for day in days] == [1, 0]
    assert days[0].hour_down[23] == pytest.approx(1800)   # 23:30-24:00 local
    assert days[1].hour_down[0] == pytest.approx(1800)


def test_a_day_of_25_hours_at_the_end_of_summer_time():
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3")              # 2026-10-25 has 25 hours in Berlin
    midnight = datetime(2026, 10, 24, 22, tzinfo=timezone.utc).timestamp()
    log = Log().start(midnight).stop(midnight + 25 * H)
    [day] = summarize(log).days
    assert day.date == "2026-10-25"
    assert day.monitored == pytest.approx(25 * H)
    assert pnm.hour_bar(day) == "·" * 24


# ---- days without any change share one row ---------------------------------------------------

def day_rows(summary):
    return [line for line in pnm.format_summary(summary, "x").splitlines() if line[:2] == "20"]


def test_days_without_a_change_share_one_row():
    log = Log().start(T0).outage(T0 + D + 10 * H, T0 + D + 10 * H + 60)
    log.stop(T0 + 30 * D + 12 * H)
    summary = summarize(log)
    assert day_rows(summary) == [
        "2026-11-01  100.00%     0             0.0 s  |························|",
        "2026-11-02   99.93%     1             1 min  |··········░·············|",
        "2026-11-03  100.00%     0             0.0 s  |························|"
        " .. 2026-11-30 (28 days)",
        "2026-12-01  100.00%     0             0.0 s  |············            |",
    ]
    alike = summary.days[2]
    assert (alike.date, alike.last_date, alike.days, alike.monitored) == (
        "2026-11-03", "2026-11-30", 28, 28 * D)
    assert pnm.format_summary(summary, "x").endswith(
        "\n'.. DATE (N days)': N days in a row alike in every hour, with their totals.\n")


def test_days_not_monitored_share_one_row():
    log = Log().start(T0).stop(T0 + H).start(T0 + 20 * D).stop(T0 + 20 * D + H)
    assert day_rows(summarize(log)) == [
        "2026-11-01  100.00%     0             0.0 s  |·                       |",
        "2026-11-02        -     -                 -  |                        |"
        " .. 2026-11-20 (19 days)",
        "2026-11-21  100.00%     0             0.0 s  |·                       |",
    ]


def test_the_whole_days_of_a_long_outage_share_one_row():
    log = Log().start(T0).outage(T0 + 12 * H, T0 + 10 * D + 12 * H).stop(T0 + 11 * D)
    summary = summarize(log)
    assert day_rows(summary) == [
        "2026-11-01   50.00%     1              12 h  |············████████████|",
        "2026-11-02    0.00%     0               9 d  |████████████████████████|"
        " .. 2026-11-10 (9 days)",
        "2026-11-11   50.00%     0              12 h  |████████████············|",
    ]
    assert (summary.downtime, summary.longest) == (10 * D, 10 * D)


def test_days_alike_around_the_end_of_summer_time_add_up():
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3")              # 2026-10-25 has 25 hours in Berlin
    start = datetime(2026, 10, 19, 22, tzinfo=timezone.utc).timestamp()   # 10-20 00:00 local
    stop = datetime(2026, 10, 30, 11, tzinfo=timezone.utc).timestamp()    # 10-30 12:00 local
    summary = summarize(Log().start(start).stop(stop))
    assert [(day.date, day.last_date, day.days) for day in summary.days] == [
        ("2026-10-20", "2026-10-20", 1), ("2026-10-21", "2026-10-29", 9),
        ("2026-10-30", "2026-10-30", 1)]
    assert [day.monitored for day in summary.days] == [D, 9 * D + H, 12 * H]
    assert summary.monitored == stop - start


# ---- the rules ---------------------------------------------------------------------------------

def test_blip_counts_as_neither_interruption_nor_downtime():
    summary = summarize(Log().start(T0).outage(T0 + 60, T0 + 63).stop(T0 + H))
    assert (summary.blips, summary.interruptions, summary.downtime) == (1, 0, 0)
    assert summary.availability == 100.0


def test_stop_while_down_counts_until_the_stop():
    summary = summarize(Log().start(T0).down(T0 + 600).stop(T0 + 900, down_since=T0 + 600))
    assert (summary.interruptions, summary.downtime, summary.blips) == (1, 300, 0)


def test_stop_while_down_for_less_than_the_runs_min_interruption_is_a_blip():
    log = Log().start(T0, min_interruption=30).down(T0 + 600).stop(T0 + 620, down_since=T0 + 600)
    summary = summarize(log)
    assert (summary.interruptions, summary.downtime, summary.blips) == (0, 0, 1)


def windowed_outage(log, after, before, ended, min_interruption=5.0):
    """A down and an up as the monitor writes them since the start window: the outage began
    between `after` (the last answer) and `before` (the first failed round), taken in the middle."""
    window = dict(start=iso((after + before) / 2), start_after=iso(after), start_before=iso(before))
    log.add(before, "down", **window, reason="timeout", targets={"192.0.2.1:53": "timeout"})
    if ended is not None:
        began = (after + before) / 2
        log.add(ended, "up", **window, end=iso(ended), duration=round(ended - began, 3),
                ignored=ended - began < min_interruption)
    return log


def test_an_outage_counts_from_the_middle_of_its_start_window():
    summary = summarize(windowed_outage(Log().start(T0), T0 + 600, T0 + 602, T0 + 700).stop(T0 + H))
    assert (summary.interruptions, summary.downtime, summary.longest) == (1, 99, 99)


def test_stop_while_down_counts_from_the_middle_of_the_start_window():
    log = windowed_outage(Log().start(T0), T0 + 600, T0 + 602, None)
    summary = summarize(log.stop(T0 + 900, down_since=T0 + 601))
    assert (summary.interruptions, summary.downtime) == (1, 299)


def test_a_rotated_log_that_begins_with_a_down_counts_from_its_start():
    summary = summarize(windowed_outage(Log(), T0 + 600, T0 + 602, T0 + 700).stop(T0 + H))
    assert (summary.start, summary.downtime) == (T0 + 601, 99)


def test_stop_with_down_since_but_no_down_event_in_the_log():
    summary = summarize(Log().start(T0).stop(T0 + 900, down_since=T0 + 600))
    assert (summary.interruptions, summary.downtime) == (1, 300)


def test_not_running_between_stop_and_start_is_neither_up_nor_down():
    summary = summarize(Log().start(T0).stop(T0 + H).start(T0 + 3 * H).stop(T0 + 4 * H))
    assert summary.period == 4 * H
    assert summary.monitored == 2 * H
    assert summary.not_running == 2 * H
    assert summary.availability == 100.0


def test_gap_is_monitored_downtime_shown_apart():
    log = Log().start(T0).stop(T0 + H)
    log.start(T0 + 2 * H).gap(T0 + H, T0 + 2 * H, T0 + 2 * H + 0.2).stop(T0 + 4 * H)
    summary = summarize(log)
    assert summary.monitored == pytest.approx(4 * H)
    assert summary.not_running == pytest.approx(0)
    assert (summary.gaps, summary.gap_downtime, summary.downtime) == (1, H, H)
    assert summary.availability == pytest.approx(75.0)
    assert "Downtime:      1 h (of which 1 h in 1 gap)" in pnm.format_summary(summary, "x")


def test_ignored_gap_counts_as_neither():
    log = Log().start(T0).stop(T0 + H)
    log.start(T0 + H + 3).gap(T0 + H, T0 + H + 3, T0 + H + 3.1, ignored=True).stop(T0 + 2 * H)
    summary = summarize(log)
    assert (summary.gaps, summary.downtime, summary.blips) == (0, 0, 0)
    assert summary.not_running == pytest.approx(3)


def test_crashed_run_lasts_until_the_gap_start_its_last_heartbeat():
    log = Log().start(T0).outage(T0 + 60, T0 + 120)        # last event at 00:02, then quiet
    log.start(T0 + 6 * H).gap(T0 + 5 * H, T0 + 6 * H, T0 + 6 * H + 0.3).stop(T0 + 7 * H)
    summary = summarize(log)
    assert summary.not_running == pytest.approx(0)
    assert summary.downtime == pytest.approx(60 + H)
    assert summary.interruptions == 2


def test_crashed_run_while_down_is_downtime_until_the_gap():
    log = Log().start(T0).down(T0 + H)
    log.start(T0 + 3 * H).gap(T0 + 2 * H, T0 + 3 * H, T0 + 3 * H + 0.3).stop(T0 + 4 * H)
    summary = summarize(log)
    assert summary.downtime == pytest.approx(2 * H)           # 01:00-02:00 down, then the gap
    assert (summary.interruptions, summary.gaps) == (2, 1)
    assert summary.availability == pytest.approx(50.0)


def test_crashed_run_without_a_gap_ends_at_its_last_event():
    log = Log().start(T0).outage(T0 + 60, T0 + 120).start(T0 + H).stop(T0 + 2 * H)
    summary = summarize(log)
    assert summary.monitored == pytest.approx(120 + H)
    assert summary.not_running == pytest.approx(H - 120)


def test_log_ending_while_down_counts_until_the_last_event():
    log = Log().start(T0).down(T0 + H).add(T0 + H + 600, "mail_failed", reason="x")
    summary = summarize(log)
    assert summary.end == T0 + H + 600
    assert (summary.downtime, summary.interruptions) == (600, 1)
    assert summary.still_running and summary.still_down
    assert ("               (the log ends while the monitor runs and the network is down: "
            "counted until its last event)") in pnm.format_summary(summary, "x").splitlines()


def test_log_that_begins_mid_run_as_after_logrotate():
    log = Log().up(T0 + 10, T0 + 70).outage(T0 + H, T0 + H + 60).stop(T0 + 2 * H)
    summary = summarize(log)
    assert summary.start == T0 + 10
    assert summary.monitored == pytest.approx(2 * H - 10)
    assert (summary.interruptions, summary.downtime) == (2, 120)


def test_rotated_log_counts_from_its_log_reopened_line():
    """The first line of a log rotated by SIGHUP is the monitor's own `log_reopened`."""
    log = Log().add(T0, "log_reopened").outage(T0 + H, T0 + H + 60).stop(T0 + 2 * H)
    summary = summarize(log)
    assert (summary.start, summary.end) == (T0, T0 + 2 * H)
    assert summary.monitored == 2 * H
    assert (summary.interruptions, summary.downtime) == (1, 60)
    assert (summary.unknown, summary.invalid) == ({}, 0)


def test_outage_across_the_rotation_counts_from_log_reopened():
    log = Log().add(T0, "log_reopened").up(T0 - 600, T0 + 300).stop(T0 + H)
    summary = summarize(log)
    assert (summary.start, summary.monitored) == (T0, H)
    assert (summary.interruptions, summary.downtime) == (1, 300)


def test_every_event_the_monitor_writes_is_read_without_a_warning(tmp_path):
    path = tmp_path / "events.jsonl"
    event_log = pnm.EventLog(str(path))
    for number, (name, kind) in enumerate(sorted(pnm.EVENTS.items())):
        event_log.write(name, T0 + number, **{field: None for field in kind.fields})
    event_log.close()
    lines = pnm.EventLines(path.read_text(encoding="utf-8").splitlines())
    summary = pnm.summarize_events(lines)
    assert (lines.not_json, summary.invalid, summary.unknown) == (0, 0, {})
    assert pnm.describe_skipped(lines.not_json, summary, str(path)) is None
    assert summary.start == T0


def test_the_old_names_of_the_report_events_are_read():
    log = Log().start(T0).add(T0 + 60, "mail_sent", interruptions=1, via="mail", next_wait=60.0)
    log.add(T0 + H, "mail_failed", interruptions=1, via="mail", reason="x", retry_in=60)
    summary = summarize(log)
    assert (summary.unknown, summary.end, summary.monitored) == ({}, T0 + H, H)


def test_every_event_that_counts_for_availability_has_a_handler():
    handlers = {name[3:] for name in vars(pnm.Replay) if name.startswith("on_")}
    counting = {name for name, kind in pnm.EVENTS.items() if kind.availability}
    assert counting <= handlers
    assert handlers - set(pnm.EVENTS) == {"sign_of_life"}    # the one for all other events


def test_the_event_log_has_one_reading():
    """The summary, the report, the CSV and the status page render one replay: no class
    extends the replay or the timeline to read the log a second way."""
    for name, value in vars(pnm).items():
        if isinstance(value, type) and value not in (pnm.Replay, pnm.Timeline):
            assert not issubclass(value, (pnm.Replay, pnm.Timeline)), name


def test_fields_no_handler_reads_are_ignored():
    plain = three_days()
    extended = three_days()
    for record in extended.events:
        record.update(verdict="dns", start_after=record["time"], start_before=None, rtt=[1, 2])
    assert (pnm.format_summary(summarize(extended), "x")
            == pnm.format_summary(summarize(plain), "x"))


def test_nothing_to_summarize():
    summary = summarize(Log())
    assert summary.start is None and summary.days == []
    assert pnm.format_summary(summary, "x") == (
        "pyNetConnMon summary of x\nNothing to summarize: no monitored time in the log.\n")


def test_percent_short_of_100_never_reads_100():
    assert pnm._percent(99.99999, 3) == "99.999"
    assert pnm._percent(100.0, 2) == "100.00"
    assert pnm._percent(None, 2) == "-"


# ---- bad lines ---------------------------------------------------------------------------------

def test_malformed_lines_and_unknown_events_are_counted_and_skipped():
    log = Log().start(T0).outage(T0 + H, T0 + H + 60).stop(T0 + 2 * H)
    lines = log.lines()
    lines[2:2] = ['{"time": "2026-11-01T01:00:30.000+00:00", "event": "up", "sta',   # cut off
                  "not json at all", "", "   ",
                  '[1, 2]', '{"event": "down"}', '{"time": "yesterday", "event": "down"}',
                  '{"time": "2026-11-01T01:00:40.000+00:00", "event": "reboot"}',
                  '{"time": "2026-11-01T01:00:41.000+00:00", "event": "reboot"}',
                  '{"time": "2026-11-01T01:00:42.000+00:00", "event": "frobnicate"}']
    parsed = pnm.EventLines(lines)
    summary = pnm.summarize_events(parsed)
    assert (summary.interruptions, summary.downtime, summary.monitored) == (1, 60, 2 * H)
    assert parsed.not_json == 2
    assert summary.invalid == 3
    assert summary.unknown == {"reboot": 2, "frobnicate": 1}
    assert pnm.describe_skipped(parsed.not_json, summary, "ev.jsonl") == (
        "skipped 8 lines of ev.jsonl: 2 not JSON, 3 without a valid time and event, "
        "3 unknown events (reboot, frobnicate)")


def test_no_warning_when_nothing_was_skipped():
    summary = summarize(Log().start(T0).stop(T0 + H))
    assert pnm.describe_skipped(0, summary, "x") is None


def test_odd_field_values_do_not_stop_the_summary():
    odd = [None, 7, "x", [], {}, True, float("nan"), -1e300, 1e300, 10 ** 400,
           "2026-13-45T99:00:00+00:00"]
    log = Log().start(T0)
    for number, value in enumerate(odd):
        wall = T0 + (number + 1) * 60
        for name in ("down", "up", "gap", "stop", "start"):
            log.add(wall, name, start=value, end=value, duration=value, ignored=value,
                    down_since=value, min_interruption=value)
    log.stop(T0 + H)
    summary = summarize(log)
    assert 0 <= summary.downtime <= summary.monitored <= summary.period == H
    pnm.format_summary(summary, "x")


def test_time_in_utc_with_z_and_without_offset():
    assert pnm.parse_log_time("2026-11-01T00:00:00Z") == T0
    assert pnm.parse_log_time("2026-11-01T01:00:00.000+01:00") == T0
    assert pnm.parse_log_time("2026-11-01T00:00:00") == T0       # local time, here UTC
    assert pnm.parse_log_time(12) is None and pnm.parse_log_time("") is None


# ---- --since / --until --------------------------------------------------------------------------

def test_since_and_until_clip_everything():
    log = Log().start(T0)
    log.outage(T0 + 10 * H, T0 + 10 * H + 60)                  # before the window
    log.outage(T0 + 10 * H + 120, T0 + 10 * H + 122)           # a blip before the window
    log.outage(T0 + D - 600, T0 + D + 600)                     # straddles the window's start
    log.outage(T0 + D + 5 * H, T0 + D + 5 * H + 2)             # a blip inside
    log.outage(T0 + 2 * D - 300, T0 + 2 * D + 300)             # straddles the window's end
    log.stop(T0 + 3 * D)
    since = pnm.parse_summary_date("2026-11-02", "--since")
    until = pnm.parse_summary_date("2026-11-02", "--until", end_of_day=True)
    assert (since, until) == (T0 + D, T0 + 2 * D)
    summary = summarize(log, since, until)
    assert (summary.start, summary.end, summary.monitored) == (T0 + D, T0 + 2 * D, D)
    assert (summary.downtime, summary.interruptions, summary.blips) == (900, 2, 1)
    assert summary.longest == 600
    assert summary.availability == pytest.approx(100 * (1 - 900 / D))
    assert [day.date for day in summary.days] == ["2026-11-02"]
    assert not summary.still_running
    text = pnm.format_summary(summary, "x")
    assert "Selected:      2026-11-02 00:00:00 to 2026-11-03 00:00:00" in text


def test_window_beyond_the_log_is_clipped_to_the_log():
    log = Log().start(T0 + H).stop(T0 + 2 * H)
    summary = summarize(log, T0, T0 + D)
    assert (summary.start, summary.end) == (T0 + H, T0 + 2 * H)


def test_window_without_monitoring():
    summary = summarize(Log().start(T0).stop(T0 + H), T0 + D, T0 + 2 * D)
    assert summary.start is None
    assert "no monitored time in the selected time" in pnm.format_summary(summary, "x")


@pytest.mark.parametrize("text, end_of_day, expected", [
    ("2026-11-01", False, T0),
    ("2026-11-01", True, T0 + D),
    ("2026-11-01 06:30", True, T0 + 6.5 * H),
    ("2026-11-01 06:30:15", False, T0 + 6.5 * H + 15),
    ("2026-11-01T06:30", False, T0 + 6.5 * H),
    ("2026-12-31", True, T0 + 61 * D),
])
def test_summary_dates(text, end_of_day, expected):
    assert pnm.parse_summary_date(text, "--until", end_of_day) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-11", "2026-02-30", "2026-11-01 25:00",
                                  "2026-11-01 6:30", "01.11.2026", ""])
def test_malformed_summary_dates(text):
    with pytest.raises(pnm.UsageError):
        pnm.parse_summary_date(text, "--since")


# ---- a year of logs ----------------------------------------------------------------------------

def year_log():
    """365 days, one 30 s interruption every hour at half past: about 17,500 lines."""
    log = Log().start(T0)
    for hour in range(365 * 24):
        began = T0 + hour * H + 1800
        log.outage(began, began + 30)
    return log.stop(T0 + 365 * D)


def test_a_year_at_one_interruption_an_hour():
    log = year_log()
    summary = pnm.summarize_events(pnm.EventLines(log.lines()))
    assert summary.interruptions == 8760
    assert summary.downtime == pytest.approx(8760 * 30)
    assert summary.availability == pytest.approx(100 * (1 - 30 / H), abs=0.01)
    assert len(summary.days) == 365
    assert all(day.interruptions == 24 for day in summary.days)
    assert pnm.hour_bar(summary.days[100]) == "░" * 24


# ---- the command line --------------------------------------------------------------------------

def run(*args):
    return run_program(*args, env={"TZ": "UTC"}, timeout=60)


def test_cli_summary(tmp_path):
    path = three_days().write(tmp_path / "events.jsonl")
    result = run("--summary", "--log-file", str(path))
    assert result.returncode == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "pyNetConnMon summary of %s" % path
    assert "Availability:  93.181 %" in lines
    assert "Interruptions: 5 (longest 2 h), 1 blip ignored" in lines
    assert "2026-11-01   96.48%     2       50 min 43 s  |········░···········█···|" in lines


def test_cli_since_until(tmp_path):
    path = three_days().write(tmp_path / "events.jsonl")
    result = run("--summary", "--log-file", str(path), "--since", "2026-11-02",
                 "--until", "2026-11-02")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "Period:        2026-11-02 00:00:00 to 2026-11-03 00:00:00 (1 d)" in lines
    assert "Availability:  97.727 %" in lines
    assert [line[:10] for line in lines if line.startswith("2026-")] == ["2026-11-02"]


def test_cli_one_warning_line_for_bad_lines(tmp_path):
    path = three_days().write(tmp_path / "events.jsonl",
                              ["garbage", '{"time": "2026-11-04T03:00:00+00:00", "event": "x"}'])
    result = run("--summary", "--log-file", str(path))
    assert result.returncode == 0
    [warning] = result.stderr.splitlines()
    assert warning.endswith("WARNING skipped 2 lines of %s: 1 not JSON, 1 unknown event (x)" % path)
    assert "Availability:  93.181 %" in result.stdout.splitlines()


def test_a_summary_in_this_process_leaves_the_cycle_collector_as_it_found_it(tmp_path):
    # --summary runs the collector less often and without the program's own objects; a caller
    # in the same process (a test, the status page's replays) gets it back as it was
    import gc
    path = three_days().write(tmp_path / "events.jsonl")
    before = gc.get_threshold()
    for garbage in ("", "garbage"):                  # a log, then a file that is not one
        if garbage:
            path.write_text(garbage)
        status, out, _ = run_main("--summary", "--log-file", path, "--html", tmp_path / "r.html")
        assert (status, out.startswith("pyNetConnMon summary of ")) == (1 if garbage else 0, True)
        assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


def test_cli_missing_log_file_option_is_a_usage_error():
    assert run_main("--summary") == (
        2, "", "pyNetConnMon.py: error: --summary needs --log-file PATH, the event log to read\n")


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_cli_malformed_date_is_a_usage_error(tmp_path, option):
    status, out, err = run_main("--summary", "--log-file", tmp_path / "x", option, "24.11.2026")
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "%s: '24.11.2026' is not a date" % option in err


def test_cli_since_after_until_and_since_without_summary(tmp_path):
    assert run_main("--summary", "--log-file", "x", "--since", "2026-11-03", "--until",
                    "2026-11-02") == (2, "", "pyNetConnMon.py: error: --since must be before "
                                             "--until\n")
    assert run_main("--since", "2026-11-03") == (
        2, "", "pyNetConnMon.py: error: --since and --until only go with --summary\n")


def test_cli_unreadable_log_is_one_error_line(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = run("--summary", "--log-file", str(missing))
    assert result.returncode == 1
    assert result.stdout == ""
    [error] = result.stderr.splitlines()
    assert error.endswith("ERROR cannot read event log %s: No such file or directory" % missing)
    result = run("--summary", "--log-file", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_cli_help_documents_the_dates():
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--summary" in text
    assert "DATE is local time: YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]'" in text
    assert "a bare date includes all of that day" in text


def test_ascii_terminal_gets_ascii_bars(tmp_path):
    import io
    path = Log().start(T0).outage(T0 + H, T0 + 2 * H).stop(T0 + 3 * H).write(tmp_path / "e.jsonl")
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    args = pnm.parse_arguments(["--summary", "--log-file", str(path)])
    assert pnm.run_summary(args, out, pnm.Console()) == 0
    out.seek(0)
    text = out.read()
    assert "|.#.                     |" in text
    assert ". no downtime, - down under 25 % of the hour" in text
