"""The report a person reads: subject, one line per interruption, gaps marked, totals."""
import calendar

from pyNetConnMon import Interruption, format_report, human_duration


TARGETS = ["198.18.0.2:53", "[::1]:53"]


def at(text):
    """Epoch seconds of a UTC 'YYYY-MM-DD HH:MM:SS' (tests run with TZ=UTC)."""
    import time
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def test_human_durations():
    assert human_duration(4.24) == "4.2 s"
    assert human_duration(59.94) == "59.9 s"
    assert human_duration(192) == "3 min 12 s"
    assert human_duration(3600) == "1 h"
    assert human_duration(7503) == "2 h 5 min 3 s"
    assert human_duration(90061) == "1 d 1 h 1 min 1 s"


def test_report_lists_each_interruption_with_gaps_marked(utc):
    items = [
        Interruption(1, at("2026-11-24 01:02:03") + 0.468, at("2026-11-24 01:05:15") + 0.5,
                     192.03, "timeout", targets=TARGETS, cause="provider"),
        Interruption(2, at("2026-11-24 03:00:00"), at("2026-11-24 03:20:00"), 1200.0,
                     "monitor not running", kind="gap", targets=TARGETS),
        Interruption(3, at("2026-11-24 04:00:00"), at("2026-11-24 04:00:09"), 9.0, "refused",
                     cut_short=True, targets=TARGETS, cause="lan"),
    ]
    subject, body = format_report(items, "pi")
    assert subject == ("pyNetConnMon on pi: 2 interruptions, 3 min 21 s of downtime; 1 gap "
                       "(20 min) when the monitor was not running")
    assert body == (
        "pyNetConnMon on pi saw 2 interruptions (3 min 21 s of downtime in total) and 1 gap "
        "(20 min) when the monitor was not running.\n"
        "\n"
        "Host:    pi\n"
        "Targets: 198.18.0.2:53, [::1]:53\n"
        "Times:   local time of pi (UTC)\n"
        "\n"
        "start                end                      duration  cause     reason\n"
        "2026-11-24 01:02:03  2026-11-24 01:05:15    3 min 12 s  provider  timeout\n"
        "2026-11-24 03:00:00  2026-11-24 03:20:00        20 min  -         gap: the monitor was "
        "not running (no clean stop)\n"
        "2026-11-24 04:00:00  2026-11-24 04:00:09         9.0 s  lan       refused (the monitor "
        "stopped while still down)\n"
        "\n"
        "lan: your router did not answer either: the router, the Wi-Fi or a cable of your home "
        "network failed.\n"
        "provider: your router answered throughout; the line, the modem or the provider's network "
        "failed.\n"
        "\n"
        "Total: 2 interruptions, 3 min 21 s of downtime.\n"
        "Besides, 1 gap (20 min) was a time the monitor itself was not running, e.g. a "
        "crash or a power cut: the connection may or may not have been up then.\n"
        "\n"
        "What the reasons mean:\n"
        "- timeout: no answer at all within the timeout (-t): the packets were lost on the way, or "
        "the far end was switched off or gone.\n"
        "- refused: the target's machine answered at once that nothing takes connections on that "
        "port: the way there worked, but the service was stopped (or a router answered for a "
        "target it could not reach).\n")


def test_one_interruption_is_singular(utc):
    items = [Interruption(1, at("2026-11-24 01:00:00"), at("2026-11-24 01:00:07"), 7.0, "dns",
                          targets=["router.lan:53"])]
    subject, body = format_report(items, "pi")
    assert subject == "pyNetConnMon on pi: 1 interruption, 7.0 s of downtime"
    assert "Total: 1 interruption, 7.0 s of downtime.\n" in body
    assert "gap" not in body


def test_beyond_100_interruptions_the_first_and_last_50_are_listed(utc):
    start = at("2026-11-01 00:00:00")
    items = [Interruption(n, start + 3600 * n, start + 3600 * n + 10, 10.0, "timeout",
                          targets=["198.18.0.2:53"]) for n in range(130)]
    _, body = format_report(items, "pi")
    rows = [line for line in body.splitlines() if line.startswith("2026-")]
    assert len(rows) == 100
    assert rows[0].startswith("2026-11-01 00:00:00")
    assert rows[49].startswith("2026-11-03 01:00:00")     # hour 49
    assert rows[50].startswith("2026-11-04 08:00:00")     # hour 80 = 130 - 50
    assert "... 30 interruptions left out here; the event log has all of them ...\n" in body
    assert "Total: 130 interruptions, 21 min 40 s of downtime.\n" in body   # totals cover all


def test_each_interruption_keeps_the_targets_it_was_measured_on(utc):
    """A report pending from a run with other targets does not claim today's targets."""
    items = [Interruption(1, at("2026-11-24 01:00:00"), at("2026-11-24 01:00:07"), 7.0, "timeout",
                          targets=["198.18.0.2:53"]),
             Interruption(2, at("2026-11-24 02:00:00"), at("2026-11-24 02:00:09"), 9.0, "refused",
                          targets=["198.18.0.3:80"])]
    _, body = format_report(items, "pi")
    assert ("Targets: 198.18.0.2:53, 198.18.0.3:80 (they changed between runs: each line names "
            "its own)\n") in body
    assert "2026-11-24 01:00:07         7.0 s  -         timeout; targets 198.18.0.2:53\n" in body
    assert "2026-11-24 02:00:09         9.0 s  -         refused; targets 198.18.0.3:80\n" in body


def test_a_folded_entry_counts_every_interruption_it_holds(utc):
    items = [Interruption(1, at("2026-11-24 01:00:00"), at("2026-11-24 01:00:07"), 7.0, "timeout",
                          targets=["198.18.0.2:53"]),
             Interruption(2, at("2026-11-24 02:00:00"), at("2026-11-24 05:00:00"), 600.0, "",
                          kind="many", targets=["198.18.0.2:53"], count=40)]
    subject, body = format_report(items, "pi")
    assert subject == "pyNetConnMon on pi: 41 interruptions, 10 min 7 s of downtime"
    assert ("2026-11-24 02:00:00  2026-11-24 05:00:00        10 min  -         40 interruptions "
            "between these times, added up here (the event log has each)\n") in body


def test_a_crash_alone_is_mailed_as_a_gap_and_two_gaps_agree_in_number(utc):
    gap = Interruption(1, at("2026-11-24 03:00:00"), at("2026-11-24 03:00:11"), 11.0,
                       "monitor not running", kind="gap", targets=TARGETS)
    subject, body = format_report([gap], "pi")
    assert subject == "pyNetConnMon on pi: 1 gap (11.0 s) when the monitor was not running"
    assert "interruption," not in subject + body and "of downtime" not in subject + body
    assert ("Total: no interruption while the monitor ran.\n"
            "Besides, 1 gap (11.0 s) was a time the monitor itself") in body
    second = Interruption(2, at("2026-11-24 05:00:00"), at("2026-11-24 05:01:00"), 60.0,
                          "monitor not running", kind="gap", targets=TARGETS)
    subject, body = format_report([gap, second], "pi")
    assert subject == "pyNetConnMon on pi: 2 gaps (1 min 11 s) when the monitor was not running"
    assert "Besides, 2 gaps (1 min 11 s) were times the monitor itself" in body
    assert "What the reasons mean" not in body


def test_times_carry_their_zone_and_both_zones_across_a_change(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        winter = Interruption(1, 1774738800.0, 1774738809.0, 9.0, "unreachable", targets=TARGETS)
        _, body = format_report([winter], "pi")          # 2026-03-28 23:00 UTC: CET
        assert "Times:   local time of pi (CET, UTC+01:00)\n" in body
        summer = Interruption(2, 1774749600.0, 1774749605.0, 5.0, "dns", targets=TARGETS)
        _, body = format_report([winter, summer], "pi")  # 2026-03-29 02:00 UTC: CEST
        assert "Times:   local time of pi (CET, UTC+01:00 and CEST, UTC+02:00)\n" in body
        assert body.endswith(
            "What the reasons mean:\n"
            "- unreachable: this machine or a router on the way said at once that there is no "
            "way to the target: a cable or Wi-Fi down, no route, or the line down behind the "
            "router.\n"
            "- dns: the target's name could not be looked up: the DNS server did not answer or "
            "did not know the name.\n")
    finally:
        monkeypatch.undo()
        time.tzset()
