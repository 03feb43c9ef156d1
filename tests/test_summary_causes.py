"""--summary and causes: downtime and interruptions per cause, partial outages, and availability
per target and per IP family. Hand-made events, then the event log of a monitor run on fakes."""
from datetime import datetime, timezone

import pyNetConnMon as pnm
from fakes import ALWAYS, ROUTER, ScriptedRun, outage

A, B, V6 = "198.18.1.2:80", "198.18.1.3:80", "[2001:db8:0:2::2]:80"
T0 = datetime(2026, 11, 24, tzinfo=timezone.utc).timestamp()
H = 3600.0


def iso(offset):
    return datetime.fromtimestamp(T0 + offset, timezone.utc).isoformat(timespec="milliseconds")


def event(offset, name, **fields):
    record = {"time": iso(offset), "event": name}
    record.update(fields)
    return record


def ended(offset, name, start, ignored=False, **fields):
    """An *_up event ending what began at `start`."""
    return event(offset, name, start=iso(start), end=iso(offset), duration=offset - start,
                 ignored=ignored, **fields)


def six_hours(targets=(A, B, V6)):
    """Three interruptions (lan 30 s; provider 1 min, and 20 s inside an IPv6 outage of 20 min),
    a blip of one target and a 100 s outage of the same target, from 00:00 to 06:00."""
    return [
        event(0, "start", targets=list(targets), min_interruption=5.0),
        event(1 * H, "down", cause="provider"),
        ended(1 * H + 30, "up", 1 * H, cause="lan"),
        event(2 * H, "down", cause="provider"),
        ended(2 * H + 60, "up", 2 * H, cause="provider"),
        event(3 * H, "family_down", family="ipv6", reason="timeout"),
        event(3 * H + 600, "down", cause="provider"),
        ended(3 * H + 620, "up", 3 * H + 600, cause="provider"),
        ended(3 * H + 1200, "family_up", 3 * H, family="ipv6"),
        event(4 * H, "target_down", target=A, reason="refused"),
        ended(4 * H + 3, "target_up", 4 * H, ignored=True, target=A),
        event(5 * H, "target_down", target=A, reason="timeout"),
        ended(5 * H + 100, "target_up", 5 * H, target=A),
        event(6 * H, "stop", signal="SIGTERM"),
    ]


def summary_lines(events, **period):
    text = pnm.format_summary(pnm.summarize_events(events, **period), "events.jsonl")
    lines = text.splitlines()
    return lines[lines.index("Downtime:      1 min 50 s") + 1:lines.index("")]


def test_downtime_per_cause_partial_outages_and_each_targets_availability(utc):
    # 110 s down in 6 h: 99.491 %. A also alone 100 s; IPv6 (and V6) alone 20 min less the
    # 20 s of the interruption inside its outage
    assert summary_lines(six_hours()) == [
        "By cause:      lan           1 interruption, 30.0 s",
        "               provider      2 interruptions, 1 min 20 s",
        "Partial:       2 outages while the connection stayed up (21 min 40 s): 1 of one target, "
        "1 of one IP family",
        "Per target:    99.028 %  198.18.1.2:80",
        "               99.491 %  198.18.1.3:80",
        "               94.028 %  [2001:db8:0:2::2]:80",
        "Per family:    99.491 %  IPv4",
        "               94.028 %  IPv6",
    ]


def test_one_target_has_no_per_target_lines(utc):
    events = [record for record in six_hours(targets=(A,))
              if not record["event"].startswith(("family", "target"))]
    assert summary_lines(events) == [
        "By cause:      lan           1 interruption, 30.0 s",
        "               provider      2 interruptions, 1 min 20 s"]


def test_a_stop_while_down_counts_with_the_cause_the_stop_gives(utc):
    events = [event(0, "start", targets=[A, B], min_interruption=5.0),
              event(60, "down", cause="provider"),
              event(100, "stop", signal="SIGTERM", down_since=iso(60), cause="lan")]
    summary = pnm.summarize_events(events)
    assert summary.by_cause == {"lan": [1, 40.0]}


def test_a_partial_outage_open_at_a_stop_ends_there(utc):
    events = [event(0, "start", targets=[A, B], min_interruption=5.0),
              event(60, "target_down", target=A, reason="timeout"),
              event(100, "stop", signal="SIGTERM")]
    summary = pnm.summarize_events(events)
    assert (summary.partial, summary.partial_only[A]) == ({"target": [1, 40.0]}, 40.0)


def test_since_and_until_cut_partial_outages_too(utc):
    summary = pnm.summarize_events(six_hours(), since=T0 + 5 * H + 40, until=T0 + 5 * H + 90)
    assert (summary.partial, summary.partial_only[A]) == ({"target": [1, 50.0]}, 50.0)


def test_targets_that_changed_between_runs_have_no_per_target_figures(utc):
    events = six_hours() + [event(7 * H, "start", targets=[A], min_interruption=5.0),
                            event(8 * H, "stop", signal="SIGTERM")]
    assert summary_lines(events)[3:] == ["Per target:    - (the targets changed between runs)"]


def test_partial_outages_of_a_run_with_other_targets_are_told_with_their_targets(utc):
    # a run watched only A first: the second run's partial outages were dropped (of a target)
    # or told without their targets (of a family)
    events = [event(-120, "start", targets=[A], min_interruption=5.0),
              event(-60, "stop", signal="SIGTERM")] + six_hours()
    summary = pnm.summarize_events(events)
    assert summary.partial == {"target": [1, 100.0], "family": [1, 1200.0]}
    assert [(row.kind, row.targets) for row in summary.rows if row.kind == "partial"] == [
        ("partial", [V6]), ("partial", [A])]
    assert summary_lines(events)[2:] == [
        "Partial:       2 outages while the connection stayed up (21 min 40 s): 1 of one target, "
        "1 of one IP family", "Per target:    - (the targets changed between runs)"]


def test_a_target_of_a_run_of_many_targets_is_told_when_it_fails_alone(utc):
    # past SUMMARY_TARGETS_KEPT targets, a target's partial outage was dropped
    many = ["198.18.%d.%d:80" % divmod(number, 250) for number in range(151)]
    events = [event(0, "start", targets=many, min_interruption=5.0),
              event(60, "target_down", target=many[150], reason="timeout"),
              ended(160, "target_up", 60, target=many[150]),
              event(200, "stop", signal="SIGTERM")]
    summary = pnm.summarize_events(events)
    assert summary.partial == {"target": [1, 100.0]} and summary.partial_only == {}
    assert [row.targets for row in summary.rows] == [[many[150]]]


def test_the_targets_of_a_family_are_worked_out_once_a_run(utc, monkeypatch):
    # each family outage's end read the family of all 1000 targets: 5000 of them took 19 s
    many = ["198.18.%d.%d:80" % divmod(number, 250) for number in range(1000)]
    events = [event(0, "start", targets=many, min_interruption=5.0)]
    for number in range(300):
        events += [event(10 + 20 * number, "family_down", family="ipv4", reason="timeout"),
                   ended(20 + 20 * number, "family_up", 10 + 20 * number, family="ipv4")]
    events.append(event(7000, "stop", signal="SIGTERM"))
    read = []
    monkeypatch.setattr(pnm, "_label_family", lambda label: read.append(label) or "ipv4")
    summary = pnm.summarize_events(events)
    assert summary.partial == {"family": [300, 3000.0]}
    assert len(read) == 1000
    assert [len(row.targets) for row in summary.rows] == [pnm.REPORT_TARGETS_KEPT] * 300


def test_a_log_from_before_causes_shows_no_cause_lines(utc):
    events = [event(0, "start", targets=[A], min_interruption=5.0), event(60, "down"),
              ended(100, "up", 60), event(200, "stop", signal="SIGTERM")]
    text = pnm.format_summary(pnm.summarize_events(events), "old.jsonl")
    assert "By cause" not in text and "Partial" not in text


def test_the_summary_of_a_monitor_run_reads_its_causes_and_partial_outages(tmp_path):
    # a provider outage 10.5-20.5, then the IPv6 target alone fails 30.5-45.5
    fails = dict(outage(A, "unreachable"), **outage(B, "unreachable"),
                 **outage(V6, start=10.5, end=20.5))
    fails[V6] += [(30.5, 45.5, "timeout")]
    fails["gateway"] = [ALWAYS + ("refused",)]
    run = ScriptedRun(tmp_path, [pnm.parse_target(label, 80) for label in (A, B, V6)], fails,
                      stop_at=60, router=ROUTER).run()
    summary = pnm.summarize_events(run.events(*pnm.EVENTS))
    assert {cause: (count, round(seconds, 3)) for cause, (count, seconds)
            in summary.by_cause.items()} == {"provider": (1, 10.001)}
    assert {kind: (count, round(seconds, 3)) for kind, (count, seconds)
            in summary.partial.items()} == {"family": (1, 15.001)}
    assert round(summary.partial_only[V6], 3) == round(summary.partial_only["ipv6"], 3) == 15.001
