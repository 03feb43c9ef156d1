"""The live status page (GET / on the metrics server): what the monitor keeps for it (bounded,
published as an immutable snapshot), what it shows, and how fast a running monitor answers.

Loopback only: the monitor watches a local listener that the tests stop to cause an outage.
"""
import re
import socket
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree

import pytest

import pyNetConnMon as pnm
from fakes import TARGET, WALL_OFFSET, Run
from harness import Listener, closed_port, start_monitor, wait_until

NOW = WALL_OFFSET + 100000.0


class Settings:
    target_labels = [TARGET.label]
    interval = 2.0


def board_with(events, metrics=None, pending=None, now=NOW):
    recent = pnm.RecentEvents()
    for name, wall, fields in events:
        recent.record(name, wall, fields)
    board = pnm.StatusBoard(metrics or pnm.MetricsSnapshot(network_up=True, targets=(
        (TARGET.label, True, 0.0123),)), recent, Settings(), pending, clock=lambda: now)
    return board


def start(wall):
    return ("start", wall, {"targets": [TARGET.label]})


def down(wall, **extra):
    return ("down", wall, dict(start=pnm.iso_time(wall), reason="timeout",
                               targets={TARGET.label: "timeout"}, **extra))


def up(began, wall, ignored=False):
    return ("up", wall, dict(start=pnm.iso_time(began), end=pnm.iso_time(wall),
                             duration=wall - began, ignored=ignored))


def text_of(page, element_id):
    found = re.search(r'<(\w+) id="%s"[^>]*>(.*?)</\1>' % element_id, page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(2)) if found else None


# -- what is kept, and how much -----------------------------------------------------------------

def test_the_history_keeps_at_most_its_limit_and_only_24_hours():
    recent = pnm.RecentEvents(limit=5)
    for number in range(8):
        recent.record("gap", NOW - 30 * 3600 + number, {})
    assert len(recent.entries) == 5
    assert recent.snapshot(NOW) == ()
    recent.record("up", NOW - 10, {"start": pnm.iso_time(NOW - 20)})
    history = recent.snapshot(NOW)
    assert [(entry.name, entry.wall) for entry in history] == [("up", NOW - 10)]
    assert recent.snapshot(NOW) is history          # not made anew without a change


def test_blips_leave_no_trace_that_could_push_out_an_interruption():
    """On a lossy line, thousands of one-target blips a day: ignored, shown nowhere, they must
    not fill the history and push out an interruption of a few hours before."""
    recent = pnm.RecentEvents(limit=10)
    recent.record(*down(NOW - 3 * 3600))
    recent.record(*up(NOW - 3 * 3600, NOW - 3 * 3600 + 600))
    for number in range(50):
        wall = NOW - 3000 + 10 * number
        recent.record("target_down", wall, {"target": "b:53", "reason": "timeout"})
        recent.record("target_up", wall + 2, {"target": "b:53", "ignored": True})
        recent.record(*down(wall + 4))
        recent.record(*up(wall + 4, wall + 5, ignored=True))
    assert [entry.name for entry in recent.snapshot(NOW)] == ["down", "up"]
    assert recent.open == {}


def test_other_events_keep_only_their_latest():
    recent = pnm.RecentEvents()
    for number in range(100):
        recent.record("report_sent", NOW + number, {"interruptions": 1})
    assert [(entry.name, entry.wall) for entry in recent.snapshot(NOW)] == [
        ("report_sent", NOW + 99)]


def test_an_outage_stays_open_however_old():
    recent = pnm.RecentEvents()
    recent.record("down", NOW - 3 * 86400, {"reason": "timeout"})
    assert [entry.wall for entry in recent.snapshot(NOW)] == [NOW - 3 * 86400]
    recent.record("up", NOW, {"start": pnm.iso_time(NOW - 3 * 86400)})
    assert recent.down is None and [entry.name for entry in recent.snapshot(NOW)] == ["up"]


def test_the_snapshot_is_published_with_the_metrics_and_never_changes_after():
    board = board_with([start(NOW - 600)])
    first = board.status()
    board.recent.record(*down(NOW - 5))
    assert board.status() is first and first.history(NOW).down_since is None
    board.publish(pnm.MetricsSnapshot(network_up=False))
    assert board.status().history(NOW).down_since == NOW - 5
    assert board.latest().network_up is False
    assert first.events == tuple(first.events) and len(first.events) == 1


def test_the_monitor_publishes_the_status_with_each_round(tmp_path):
    recent = pnm.RecentEvents()
    seen = []

    class Watching(pnm.StatusBoard):
        def publish(self, snapshot):
            super().publish(snapshot)
            seen.append(self.status())

    run = Run(tmp_path, outages=[(10.0, 20.0)], stop_at=30.0)
    run.log.listener = recent.record
    monitor = run.monitor
    monitor.metrics_board = Watching(pnm.MetricsSnapshot(), recent, monitor.settings,
                                     monitor.reporter.pending, clock=run.clock.wall)
    run.run()
    down_now = [status for status in seen if status.history(status.made).down_since is not None]
    assert down_now and all(status.metrics.network_up is False for status in down_now)
    last = seen[-1]
    assert [entry.name for entry in last.events if entry.name in pnm.STATUS_TRANSITIONS] == [
        "start", "down", "up"]
    waiting = [status.pending for status in seen if any(status.pending_count)]
    assert [len(pending) for pending in waiting] == [1] and last.pending_count == (0, 0, 0)


# -- what the page says ---------------------------------------------------------------------------

def test_down_now_says_since_when_why_and_the_cause():
    board = board_with([start(NOW - 3600), down(NOW - 125, cause="provider")],
                       pnm.MetricsSnapshot(network_up=False,
                                           targets=((TARGET.label, False, None),)))
    board.publish(board.latest())
    page = pnm.render_status(board.status())
    assert text_of(page, "state") == "DOWN"
    assert text_of(page, "since") == (
        "Down since %s (for 2 min 5 s): timeout. Cause: provider (%s)."
        % (pnm.local_time(NOW - 125), pnm.CAUSE_WORDS["provider"]))
    assert "<title>DOWN: " in page and '<meta http-equiv="refresh" content="5">' in page
    # the outage still going on has no end time in the table, only its length so far
    row = re.search(r'<table id="recent">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    assert re.sub(r"<[^>]+>", "|", row).split("|")[1:-1] == [
        "", "1", "", pnm.local_time(NOW - 125), "", "going on", "", "2 min 5 s so far", "",
        "interruption", "", "provider", "", "timeout (still down)", "", "all", ""]


def test_up_says_since_the_last_interruption_ended_and_lists_it():
    board = board_with([start(NOW - 3600), down(NOW - 600), up(NOW - 600, NOW - 540)])
    page = pnm.render_status(board.status())
    assert text_of(page, "state") == "UP"
    assert text_of(page, "since") == ("Up since %s, when the last interruption ended (9 min ago)."
                                      % pnm.local_time(NOW - 540))
    assert "<td class=\"t\">%s</td><td class=\"t\">%s</td><td class=\"n\">1 min</td>" % (
        pnm.local_time(NOW - 600), pnm.local_time(NOW - 540)) in page
    assert ">12.3 ms<" in page and '<a href="/metrics">' in page


def test_slow_now_and_before_the_first_round():
    board = board_with([start(NOW - 60), ("slow", NOW - 30, {"start": pnm.iso_time(NOW - 30),
                                                             "connect_ms": 1500.0})])
    assert text_of(pnm.render_status(board.status()), "state") == "SLOW"
    starting = board_with([start(NOW)], pnm.MetricsSnapshot())
    assert text_of(pnm.render_status(starting.status()), "state") == "STARTING"


def test_reports_waiting_are_listed_newest_first_and_counted():
    pending = pnm.PendingReports(pnm.ReportBackoff(60, 3600, 300))
    for number in range(12):
        pending.add(NOW - 1000 + 60 * number, NOW - 990 + 60 * number, 10.0, "timeout",
                    [TARGET.label])
    page = pnm.render_status(board_with([start(NOW - 2000)], pending=pending).status())
    assert text_of(page, "pending") == "12 interruptions wait for a report."
    # a gap waiting was "13 interruptions" here, where the console named it a gap
    pending.add(NOW - 100, NOW - 50, 50.0, "monitor not running", [TARGET.label], kind="gap")
    gap = pnm.render_status(board_with([start(NOW - 2000)], pending=pending).status())
    assert text_of(gap, "pending") == "12 interruptions and 1 gap wait for a report."
    assert page.count("<td>-</td><td>timeout</td>") == 10
    assert page.index(pnm.local_time(NOW - 1000 + 60 * 11)) < page.index(
        pnm.local_time(NOW - 1000 + 60 * 2))
    off = pnm.render_status(board_with([start(NOW)]).status())
    assert text_of(off, "pending") == "Reports are off (--no-mail)."


def test_the_page_is_self_contained_and_its_svg_parses():
    events = [start(NOW - 20 * 3600)]
    for number in range(300):         # a flapping day
        events += [down(NOW - 19 * 3600 + 200 * number),
                   up(NOW - 19 * 3600 + 200 * number, NOW - 19 * 3600 + 200 * number + 30)]
    page = pnm.render_status(board_with(events).status())
    assert "<script" not in page and re.findall(r'\b(?:src|href)="([^"]*)"', page) == [
        "data:,", "/metrics"]
    for picture in re.findall(r"<svg\b.*?</svg>", page, re.S):
        ElementTree.fromstring(picture)
    assert page.count('<tr class="interruption">') == pnm.STATUS_ROWS_SHOWN


# -- a running monitor -------------------------------------------------------------------------

def get(url, timeout=3.0):
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read().decode("utf-8")


def test_a_monitor_at_0_05_s_answers_in_under_50_ms_and_shows_an_outage(tmp_path):
    port = closed_port()
    url = "http://127.0.0.1:%d/" % port
    with Listener() as target, start_monitor(
            tmp_path, "-a", target.address, "-i", "0.05", "-t", "0.5", "-m", "0.2",
            "--no-mail", "--metrics-port", str(port)) as monitor:
        monitor.wait_for_line(r"serving metrics at http://127\.0\.0\.1:%d/metrics and a status "
                              r"page at http://127\.0\.0\.1:%d/$" % (port, port))
        wait_until(lambda: ">UP<" in get(url)[2], 10, "the page says UP")
        target.stop()
        wait_until(lambda: ">DOWN<" in get(url)[2], 10, "the page says DOWN")
        times = []
        for _ in range(100):
            began = time.perf_counter()
            status, kind, page = get(url)
            times.append(time.perf_counter() - began)
        assert (status, kind) == (200, "text/html; charset=utf-8")
        times.sort()
        assert times[49] < 0.05 and times[94] < 0.05, "median %.1f ms, 95th %.1f ms" % (
            times[49] * 1000, times[94] * 1000)
        wait_until(lambda: "pynetconnmon_interruptions_total 1\n" in get(url + "metrics")[2], 10,
                   "the outage lasts -m, so it counts")
        target.start()
        wait_until(lambda: "Up since" in get(url)[2], 10, "the page says up again")
        page = get(url)[2]
        # the first failed connect meets the stopped listener's reset or its closed port
        assert re.search(r"<td>interruption</td><td>unknown</td><td>(refused|ECONNRESET)</td>",
                         page), page
        assert monitor.terminate() == 0
    assert monitor.stderr_lines == []


def test_the_page_is_served_while_the_metrics_slots_are_held_by_silent_clients(tmp_path):
    port = closed_port()
    clients = []
    with Listener() as target, start_monitor(tmp_path, "-a", target.address, "--no-mail",
                                             "--metrics-port", str(port)) as monitor:
        monitor.wait_for_line("serving metrics")
        try:
            for _ in range(pnm.METRICS_MAX_CONNECTIONS):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=3))
            wait_until(lambda: get("http://127.0.0.1:%d/" % port, timeout=1)[0] == 200, 5,
                       "the page while 8 clients stay silent")
            assert clients[0].recv(100).startswith(b"HTTP/1.0 503 ")     # it made room
        finally:
            for client in clients:
                client.close()
        assert monitor.terminate() == 0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_a_partial_outage_says_what_failed():
    events = [start(NOW - 600),
              ("family_down", NOW - 300, {"family": "ipv6", "reason": "timeout"}),
              ("family_up", NOW - 200, {"family": "ipv6", "start": pnm.iso_time(NOW - 300),
                                        "end": pnm.iso_time(NOW - 200), "duration": 100.0,
                                        "ignored": False}),
              ("target_down", NOW - 50, {"target": TARGET.label, "reason": "refused"})]
    page = pnm.render_status(board_with(events).status())
    assert "<td>every IPv6 target failed: timeout</td>" in page
    assert '<td>refused (still down)</td><td class="small">%s</td>' % TARGET.label in page
    assert ('<td class="t">%s</td><td class="t">going on</td><td class="n">50.0 s so far</td>'
            % pnm.local_time(NOW - 50)) in page


def test_the_last_statistics_window_is_shown_per_target():
    events = [start(NOW - 600),
              ("stats", NOW - 10, {"start": pnm.iso_time(NOW - 70), "end": pnm.iso_time(NOW - 10),
                                   "targets": {TARGET.label: {"median_ms": 12.5, "p95_ms": 48.0,
                                                              "probes": 30, "failures": 0}}})]
    page = pnm.render_status(board_with(events).status())
    assert ('<th class="n">median, 95th percentile (%s to %s)</th>'
            % (pnm.local_time(NOW - 70)[11:], pnm.local_time(NOW - 10)[11:])) in page
    assert '<td class="n">12.3 ms</td><td class="n">12.5 ms, 48.0 ms</td>' in page


def test_lossy_now_says_since_when_and_how_much_was_lost():
    board = board_with([start(NOW - 600),
                        ("lossy", NOW - 90, {"start": pnm.iso_time(NOW - 120),
                                             "loss_percent": 33.3, "sent": 30, "lost": 10})])
    page = pnm.render_status(board.status())
    assert text_of(page, "state") == "LOSSY"
    assert text_of(page, "since") == (
        "Lossy since %s (for 2 min): 33.3 %% of the connect attempts were lost when it began."
        % pnm.local_time(NOW - 120))
    assert '<tr class="lossy">' in page and "still lossy" in page


def test_lossy_now_also_says_how_the_loss_goes_in_the_latest_rounds():
    # the period stays lossy until 30 calm rounds in a row: the figure it began with alone
    # (84.6 %) read as if the line still lost that much
    events = [start(NOW - 600), ("lossy", NOW - 90, {"start": pnm.iso_time(NOW - 120),
                                                     "loss_percent": 84.6, "sent": 13, "lost": 11})]
    metrics = pnm.MetricsSnapshot(network_up=True, targets=((TARGET.label, True, 0.0123),),
                                  lossy=True, loss_ratio=0.02)
    page = pnm.render_status(board_with(events, metrics).status())
    assert text_of(page, "since") == (
        "Lossy since %s (for 2 min): 84.6 %% of the connect attempts were lost when it began; "
        "2.0 %% in the last 30 rounds." % pnm.local_time(NOW - 120))
