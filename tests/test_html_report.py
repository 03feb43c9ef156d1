"""--summary --html FILE and --csv FILE: the evidence the replay keeps, the CSV, the page's
structure (self-contained, SVG that parses as XML), and the done-when figures for a year.

Needs no network and no browser (test_browser.py looks at the pages in Chromium). Local time
is UTC here, as in test_summary.py.
"""
import csv
import io
import json
import os
import pathlib
import re
import shutil
import socket
import stat
import subprocess
import time
import xml.etree.ElementTree as ElementTree

import pytest

import pyNetConnMon as pnm
from harness import child_env, python_command, run_main, run_program
from reportlog import TARGETS, make_log
from eventlogs import (D, FIELDS, FUZZ, H, NAMES, T0, ZONES, Log, iso, json_values, local_zone,
                       near_times, times)


pytestmark = pytest.mark.usefixtures("utc")    # local time is UTC unless a test says

def evidence_of(records, since=None, until=None):
    """The History of the records, and every row handed out as it was found."""
    rows = []
    return pnm.summarize_events(records, since, until, rows.append), rows


def spans(rows, kind):
    return [(iso(row.start), iso(row.end)) for row in rows if row.kind == kind]


def isos(pairs):
    return [(iso(start), iso(end)) for start, end in pairs]


def svgs(page):
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


# -- the replay: the same figures as --summary, and every row ------------------------------------

def test_the_rows_handed_out_are_the_rows_kept():
    made = make_log(days=60, seed=3)
    summary, rows = evidence_of(made.events)
    assert rows == list(summary.rows) and len(rows) == sum(summary.row_counts.values())


def test_every_interruption_gap_slow_period_and_partial_outage_is_a_row():
    made = make_log(days=40, seed=5)
    summary, rows = evidence_of(made.events)
    assert spans(rows, "interruption") == isos(made.interruptions)
    assert spans(rows, "gap") == isos(made.gaps)
    assert spans(rows, "slow") == isos(made.slow)
    assert [(iso(row.start), iso(row.end), row.targets) for row in rows if row.kind == "partial"] \
        == [(iso(a), iso(b), [target]) for a, b, target in made.partial]
    assert summary.row_counts == {"interruption": len(made.interruptions), "gap": len(made.gaps),
                               "slow": len(made.slow), "partial": len(made.partial), "lossy": 0}
    assert summary.hosts == ["pi.example"] and summary.all_targets == TARGETS
    assert summary.has_latency


def test_a_row_tells_the_downs_reason_and_the_ups_cause():
    log = Log().start(T0)
    log.add(T0 + 10, "down", start=iso(T0 + 10), reason="timeout", cause="lan",
            targets={"192.0.2.1:53": "timeout"})
    log.add(T0 + 70, "up", start=iso(T0 + 10), end=iso(T0 + 70), duration=60.0, ignored=False,
            cause="provider")
    log.outage(T0 + 100, T0 + 130)                 # a log without causes
    _, rows = evidence_of(log.events)
    assert [(row.kind, row.cause, row.reason, row.targets, row.note) for row in rows] == [
        ("interruption", "provider", "timeout", ["192.0.2.1:53"], ""),
        ("interruption", "not recorded", "timeout", ["192.0.2.1:53"], "")]


@pytest.mark.parametrize("ending, note", [
    ("stop", "the monitor stopped while still down"),
    ("crash", "the monitor ended without a stop line (crash, power cut): counted to its last "
              "sign of life"),
    ("end", "still down where the log ends")])
def test_an_outage_not_ended_by_an_up_says_how_it_ended(ending, note):
    log = Log().start(T0).down(T0 + 10)
    log.add(T0 + 60, "report_failed", interruptions=1, via="mail", reason="x", retry_in=60.0)
    if ending == "stop":
        log.stop(T0 + 100)
    elif ending == "crash":
        log.start(T0 + 200)
    _, rows = evidence_of(log.events)
    end = T0 + 100 if ending == "stop" else T0 + 60
    assert [(row.start, row.end, row.note) for row in rows] == [(T0 + 10, end, note)]


def test_a_gap_is_a_row_counted_down_for_every_target():
    log = Log().start(T0).add(T0 + 50, "report_sent", interruptions=0, via="mail", next_wait=1.0)
    log.start(T0 + 3600).gap(T0 + 50, T0 + 3600, T0 + 3600).stop(T0 + 7200)
    summary, rows = evidence_of(log.events)
    assert [(row.kind, row.start, row.end, row.targets) for row in rows] == [
        ("gap", T0 + 50, T0 + 3600, ["192.0.2.1:53"])]
    assert summary.availability == pytest.approx(100 * 3650 / 7200)


def test_since_and_until_clip_the_rows_as_they_clip_the_summary():
    log = Log().start(T0).outage(T0 + 100, T0 + 400).outage(T0 + 1000, T0 + 1100).stop(T0 + 2000)
    summary, rows = evidence_of(log.events, since=T0 + 300, until=T0 + 1050)
    assert [(row.start, row.end) for row in rows] == [(T0 + 300, T0 + 400), (T0 + 1000, T0 + 1050)]
    assert summary.downtime == 150.0


def test_a_partial_outage_is_a_row_and_the_target_table_is_the_summarys():
    log = Log()
    log.add(T0, "start", targets=["a:1", "b:1"], min_interruption=5.0)
    log.add(T0 + 100, "target_down", target="b:1", reason="timeout")
    log.outage(T0 + 200, T0 + 300)                          # inside b's partial outage
    log.add(T0 + 400, "target_up", target="b:1", start=iso(T0 + 100), end=iso(T0 + 400),
            duration=300.0, ignored=False)
    log.stop(T0 + 1000)
    summary, rows = evidence_of(log.events)
    assert [(row.kind, row.start, row.end, row.reason, row.targets) for row in rows
            if row.kind == "partial"] == [("partial", T0 + 100, T0 + 400, "timeout", ["b:1"])]
    assert summary.partial_only == {"b:1": 200.0}
    table = pnm._target_table(summary)
    assert "<td>a:1</td><td class=\"n\">90.000 %</td>" in table
    assert "<td>b:1</td><td class=\"n\">70.000 %</td><td class=\"n\">3 min 20 s</td>" in table


def test_a_slow_period_still_open_at_the_stop_ends_there():
    log = Log().start(T0)
    log.add(T0 + 10, "slow", start=iso(T0 + 10), connect_ms=1500.0)
    log.stop(T0 + 70)
    summary, rows = evidence_of(log.events)
    assert [(row.kind, row.start, row.end, row.note) for row in rows] == [
        ("slow", T0 + 10, T0 + 70, "still slow: the monitor stopped")]
    assert summary.slow == 60.0


def test_connect_time_per_hour_weights_each_window_by_its_connects():
    log = Log().start(T0)
    for minute, (median, p95, probes) in enumerate([(10.0, 20.0, 10), (30.0, 90.0, 30),
                                                    (20.0, 40.0, 10)]):
        moment = T0 + 60 * (minute + 1)
        log.add(moment, "stats", start=iso(moment - 60), end=iso(moment), targets={
            "192.0.2.1:53": {"probes": probes, "failures": 0, "median_ms": median,
                             "p95_ms": p95}})
    log.add(T0 + 3600 + 60, "stats", start=iso(T0 + 3600), end=iso(T0 + 3660), targets={
        "192.0.2.1:53": {"probes": 5, "failures": 5, "median_ms": None}})   # no connect: skipped
    log.stop(T0 + 7200)
    summary, _ = evidence_of(log.events)
    # medians 10 (w 10), 30 (w 30), 20 (w 10): half the weight (25) is reached at 30;
    # 95 % of it (47.5) at 90
    assert summary.hourly.hours == {"192.0.2.1:53": [(T0 + 1800, 30.0, 90.0)]}
    assert summary.hourly.windows == {"192.0.2.1:53": [
        (T0 + 30, 10.0, 20.0), (T0 + 90, 30.0, 90.0), (T0 + 150, 20.0, 40.0)]}
    page = pnm.render_report(summary, "x", made=T0)
    assert "<h2>Connect time per statistics window (1 min)</h2>" in page


@pytest.mark.parametrize("median, p95, axis", [(0.0, 5e-324, "0.01 ms"),
                                                (0.002, 0.003, "0.01 ms"),
                                                (0.03, 0.04, "0.05 ms"),
                                                (5.0, 1.7e308, "1000000 ms")])
def test_a_connect_time_chart_of_any_figures_has_an_axis_it_can_label(median, p95, axis):
    """A damaged log may give a window any finite figures: the chart's axis stays within what
    its labels show (0.01 ms to CONNECT_TIME_RANGE) and every point is drawn inside it."""
    log = Log().start(T0)
    for minute in range(3):
        moment = T0 + 60 * (minute + 1)
        log.add(moment, "stats", start=iso(moment - 60), targets={
            "192.0.2.1:53": {"probes": 3, "failures": 0, "median_ms": median, "p95_ms": p95}})
    log.stop(T0 + 600)
    page = pnm.render_report(evidence_of(log.events)[0], "x", made=T0)
    chart = [svg for svg in svgs(page) if "0 ms</text>" in svg][0]
    assert ">%s</text>" % axis in chart
    coordinates = [float(number) for path in re.findall(r' d="([^"]*)"', chart)
                   for number in re.findall(r"[-\d.e+]+|nan|inf", path)]
    assert coordinates and all(0 <= number <= 720 for number in coordinates)


def test_a_log_from_before_causes_and_statistics_shows_neither():
    made = make_log(days=20, seed=2, later_fields=False)
    summary, rows = evidence_of(made.events)
    assert {row.cause for row in rows if row.kind == "interruption"} == {"not recorded"}
    assert not summary.has_latency and not summary.hourly.hours
    page = pnm.render_report(summary, "old.jsonl", made=T0)
    assert "Connect time per hour" not in page and 'id="slow"' not in page
    assert "This log has neither" in page


def test_rows_beyond_the_bound_are_left_out_of_the_page_but_counted(monkeypatch):
    monkeypatch.setattr(pnm, "REPORT_ROWS_KEPT", 10)
    log = Log().start(T0)
    for number in range(25):
        log.outage(T0 + 100 * number + 10, T0 + 100 * number + 20)
    log.stop(T0 + 3000)
    summary, rows = evidence_of(log.events)
    assert len(rows) == 25 and len(summary.rows) == 10 and summary.rows.left_out == 15
    page = pnm.render_report(summary, "x", made=T0)
    assert "... 15 rows left out here; the CSV (--csv) and the event log have every one ..." in page
    numbers = re.findall(r'<tr class="interruption"><td class="n">(\d+)</td>', page)
    assert numbers == [str(n) for n in list(range(1, 6)) + list(range(21, 26))]


# -- the page ------------------------------------------------------------------------------------

def test_the_page_is_self_contained_and_its_svg_parses_as_xml():
    made = make_log(days=30, seed=4)
    summary, rows = evidence_of(made.events)
    page = pnm.render_report(summary, "a <log>.jsonl", made=T0)
    assert "<script" not in page.lower()
    # nothing outside the file: no src, no link but the empty icon, no url() in the style
    assert re.findall(r'\b(?:src|href)="([^"]*)"', page) == ["data:,"]
    assert "url(" not in page and "@import" not in page
    assert set(re.findall(r"https?://[^\"' ]*", page)) == {"http://www.w3.org/2000/svg"}
    for picture in svgs(page):
        ElementTree.fromstring(picture)
    assert "a &lt;log&gt;.jsonl" in page
    assert "@media print{@page{size:A4" in page


def test_the_page_shows_the_text_summarys_figures_and_every_row():
    made = make_log(days=15, seed=6)
    summary, rows = evidence_of(made.events)
    page = pnm.render_report(summary, "x", made=T0)
    for key, text in pnm.summary_figures(summary).items():
        assert '<td id="%s">%s</td>' % (key, text.replace("&", "&amp;")) in page
    table = page.split('id="interruptions-table"')[1]
    for row in rows:
        assert "<td class=\"t\">%s</td><td class=\"t\">%s</td>" % (
            pnm.local_time(row.start), pnm.local_time(row.end)) in table
    for day in summary.days:
        assert ">%s</td>" % (pnm._percent(day.availability, 2) + "%") in page


def test_every_cause_has_a_colour():
    for cause in getattr(pnm, "CAUSES", ()) + ("unknown",):
        assert cause in pnm.CAUSE_COLOURS
    assert pnm._cause_class("something new") == "c-unknown"


def test_a_decade_with_few_events_makes_a_small_page_quickly():
    log = Log()
    for year in range(10):
        start = T0 + year * 365 * D
        log.start(start).outage(start + 100, start + 200).stop(start + 40 * D)
    summary, _ = evidence_of(log.events)
    began = time.perf_counter()
    page = pnm.render_report(summary, "x", made=T0)
    assert time.perf_counter() - began < 1.0
    assert len(page) < 150000


# -- the CSV ---------------------------------------------------------------------------------------

def test_csv_fields_are_iso_times_seconds_and_words():
    row = pnm.EvidenceRow("interruption", T0, T0 + 61.5, "lan", "timeout", ["a:1", "b:2"],
                          "the monitor stopped while still down")
    assert pnm.csv_fields(row) == [
        "2026-11-01T00:00:00.000+00:00", "2026-11-01T00:01:01.500+00:00", "61.500",
        "interruption", "lan", "timeout (the monitor stopped while still down)", "a:1 b:2"]


def test_a_csv_cell_never_starts_a_formula():
    row = pnm.EvidenceRow("partial", T0, T0 + 1, "", "=HYPERLINK(\"x\")", ["@a", "-b"])
    assert pnm.csv_fields(row)[4:] == ["", "'=HYPERLINK(\"x\")", "'@a -b"]


# -- the command line ---------------------------------------------------------------------------

def write_log(path, events):
    path.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return path


def test_cli_writes_the_page_the_csv_and_the_text_summary(tmp_path):
    made = make_log(days=10, seed=8)
    log = write_log(tmp_path / "events.jsonl", made.events)
    html, table = tmp_path / "report.html", tmp_path / "rows.csv"
    result = run_program("--summary", "--log-file", log, "--html", html, "--csv", table,
                         env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    plain = run_program("--summary", "--log-file", log, env={"TZ": "UTC"})
    assert result.stdout == plain.stdout
    data = table.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfstart,end,duration_s,kind,cause,reason,targets\r\n")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert parsed[0] == list(pnm.CSV_COLUMNS)
    assert len(parsed) - 1 == (len(made.interruptions) + len(made.gaps) + len(made.slow)
                               + len(made.partial))
    assert sorted(row[0] for row in parsed[1:]) == sorted(
        iso(span[0]) for span in made.interruptions + made.gaps + made.slow + made.partial)
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["events.jsonl", "report.html",
                                                                "rows.csv"]


def test_cli_since_until_apply_to_the_csv(tmp_path):
    log = Log().start(T0).outage(T0 + H, T0 + H + 60).outage(T0 + D + H, T0 + D + H + 60)
    path = write_log(tmp_path / "events.jsonl", log.stop(T0 + 2 * D).events)
    table = tmp_path / "rows.csv"
    result = run_program("--summary", "--log-file", path, "--csv", table, "--since",
                         "2026-11-02", env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    assert table.read_text(encoding="utf-8-sig").splitlines()[1:] == [
        "2026-11-02T01:00:00.000+00:00,2026-11-02T01:01:00.000+00:00,60.000,interruption,"
        "not recorded,timeout,192.0.2.1:53"]


@pytest.mark.parametrize("args, message", [
    (["-a", "127.0.0.1", "--html", "r.html"], "--html has no effect with the monitor"),
    (["--summary", "--log-file", "{log}", "--html", "{log}"],
     "--html: {log} is the event log itself"),
    (["--summary", "--log-file", "{log}", "--csv", "{log}"],
     "--csv: {log} is the event log itself"),
    (["--summary", "--log-file", "{log}", "--html", "x", "--csv", "x"],
     "--html and --csv name the same file"),
    (["--summary", "--log-file", "{log}", "--html", ""], "--html: empty path"),
])
def test_cli_refuses_what_makes_no_sense(tmp_path, args, message):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    result = run_program(*[arg.format(log=log) for arg in args], cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "pyNetConnMon.py: error: %s\n" % message.format(log=log)


def test_cli_a_file_that_cannot_be_written_is_one_error_line_and_nothing_left(tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    result = run_program("--summary", "--log-file", log, "--html",
                         tmp_path / "missing" / "r.html", "--csv", tmp_path / "rows.csv")
    assert result.returncode == 1
    assert re.fullmatch(r"\S+ \S+ ERROR cannot write HTML report .*missing/r\.html: No such file "
                        r"or directory\n", result.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["events.jsonl"]


# -- where the files go: a link is followed, a pipe or device is written in place ----------------

CSV_HEAD = b"\xef\xbb\xbfstart,end,duration_s,kind,cause,reason,targets\r\n"


def test_cli_a_report_file_named_by_a_link_is_written_where_it_points_and_the_link_stays(
        tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    (tmp_path / "www").mkdir()
    for name in ("report.html", "rows.csv"):
        (tmp_path / "www" / name).write_text("old")
        (tmp_path / name).symlink_to(os.path.join("www", name))
    result = run_program("--summary", "--log-file", log, "--html", tmp_path / "report.html",
                         "--csv", tmp_path / "rows.csv")
    assert result.returncode == 0, result.stderr
    assert os.readlink(tmp_path / "report.html") == os.path.join("www", "report.html")
    assert os.readlink(tmp_path / "rows.csv") == os.path.join("www", "rows.csv")
    assert (tmp_path / "www" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "www" / "rows.csv").read_bytes().startswith(CSV_HEAD)
    assert sorted(path.name for path in (tmp_path / "www").iterdir()) == ["report.html",
                                                                          "rows.csv"]


def test_cli_a_fifo_given_as_csv_gets_the_rows_and_stays_a_fifo(tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).outage(T0 + H, T0 + H + 60)
                    .stop(T0 + D).events)
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    # the reader is there before the writer comes (the pipe holds the few rows): no thread
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        status, _, err = run_main("--summary", "--log-file", log, "--csv", fifo)
        data = os.read(reader, 65536)
    finally:
        os.close(reader)
    assert (status, err) == (0, "")
    assert data.startswith(CSV_HEAD) and b",interruption," in data
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)



def test_cli_a_fifo_that_no_process_reads_is_one_error_line_not_a_wait(tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    os.mkfifo(tmp_path / "rows.csv")
    result = run_program("--summary", "--log-file", log, "--csv", tmp_path / "rows.csv")
    assert (result.returncode, result.stdout) == (1, "")
    assert re.fullmatch(r"\S+ \S+ ERROR cannot write CSV .*/rows\.csv: a FIFO that no process "
                        r"reads\n", result.stderr)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "rows.csv").st_mode)

def test_cli_csv_to_a_link_to_standard_output_prints_the_rows_before_the_summary(tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")       # as /dev/stdout is made
    result = subprocess.run([*python_command(), "--summary", "--log-file", log, "--csv", link],
                            capture_output=True, env=child_env({"TZ": "UTC"}),
                            stdin=subprocess.DEVNULL, timeout=15)
    assert result.returncode == 0, result.stderr
    plain = run_program("--summary", "--log-file", log, env={"TZ": "UTC"})
    assert result.stdout == CSV_HEAD + plain.stdout.encode("utf-8")
    assert os.readlink(link) == "/proc/self/fd/1"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare for a /dev of its own")
def test_cli_csv_dev_stdout_prints_the_rows_and_leaves_dev_stdout_a_link(tmp_path):
    # in a mount namespace with /dev a tmpfs of its own: a /dev/stdout replaced by a file (as
    # root can) would stay replaced until the next boot
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    script = ('mount -t tmpfs tmpfs /dev && ln -s /proc/self/fd/1 /dev/stdout || exit 77; '
              '"$@"; status=$?; '
              'test -L /dev/stdout || echo "/dev/stdout is no longer a link" >&2; exit $status')
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                             "sh", *python_command(), "--summary", "--log-file", log,
                             "--csv", "/dev/stdout"],
                            capture_output=True, env=child_env({"TZ": "UTC"}),
                            stdin=subprocess.DEVNULL, timeout=15)
    if result.returncode == 77 or result.stderr.startswith(b"unshare: "):
        pytest.skip("no mount namespace with a /dev of its own here: %r" % result.stderr)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.startswith(CSV_HEAD + b"pyNetConnMon summary of ")


def test_cli_a_folder_or_socket_as_report_file_is_one_error_line(tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    (tmp_path / "folder").mkdir()
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(os.fspath(tmp_path / "socket"))
        for option, name, kind in (("--csv", "folder", "folder"), ("--html", "socket", "socket")):
            result = run_program("--summary", "--log-file", log, option, tmp_path / name)
            what = "CSV" if option == "--csv" else "HTML report"
            assert (result.returncode, result.stdout) == (1, "")
            assert re.fullmatch(r"\S+ \S+ ERROR cannot write %s .*/%s: it is a %s, not a file\n"
                                % (what, name, kind), result.stderr)
    assert stat.S_ISSOCK(os.lstat(tmp_path / "socket").st_mode)


def test_cli_help_tells_of_the_report_files():
    text = run_program("--help").stdout
    assert "--html FILE" in text and "--csv FILE" in text and "RFC 4180" in text


# -- done when: a year of a few thousand events in under 2 s and under 2 MB ---------------------

def test_a_year_of_a_few_thousand_events_makes_a_page_under_2_mb(tmp_path):
    # how long it takes is the benchmark's to measure (tests/tools/bench.py), not a test's
    made = make_log(days=365, seed=1)
    assert 3000 <= len(made.events) <= 9000
    log = write_log(tmp_path / "year.jsonl", made.events)
    html = tmp_path / "year.html"
    result = run_program("--summary", "--log-file", log, "--html", html, "--csv",
                         tmp_path / "year.csv", env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    assert html.stat().st_size < 2 * 1024 * 1024


def test_the_readme_shows_both_pictures_and_how_to_make_a_pdf():
    from harness import REPO
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("report.png", "status-page.png", "report-year.png"):
        assert "](docs/%s)" % name in readme
        assert (REPO / "docs" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "chromium --headless --no-pdf-header-footer --print-to-pdf=report.pdf report.html" \
        in readme


def test_a_log_with_nothing_monitored_makes_a_page_that_says_so(tmp_path):
    log = write_log(tmp_path / "events.jsonl", Log().start(T0).stop(T0 + 60).events)
    html = tmp_path / "r.html"
    result = run_program("--summary", "--log-file", log, "--html", html, "--since", "2027-01-01",
                         env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    page = html.read_text(encoding="utf-8")
    assert '<p id="nothing">Nothing to report: no monitored time in the selected time.</p>' in page


# -- hostile logs ----------------------------------------------------------------------------

def test_text_from_the_log_cannot_break_out_of_the_page():
    log = Log()
    log.add(T0, "start", targets=['"><script>x</script>', "a:1"], host="<b>host</b>",
            min_interruption=5.0)
    log.add(T0 + 10, "down", start=iso(T0 + 10), reason="<img src=http://x/>",
            cause="</svg><script>", targets={"a:1": "t"})
    log.add(T0 + 70, "up", start=iso(T0 + 10), end=iso(T0 + 70), duration=60.0, ignored=False)
    log.add(T0 + 80, "stats", start=iso(T0 + 20), end=iso(T0 + 80),
            targets={"<x>": {"probes": 3, "failures": 0, "median_ms": 1.0, "p95_ms": 2.0}})
    log.stop(T0 + 100)
    summary, rows = evidence_of(log.events)
    page = pnm.render_report(summary, "x", made=T0)
    assert "<script" not in page and "<img" not in page and "<b>host" not in page
    assert re.findall(r'\b(?:src|href)="([^"]*)"', page) == ["data:,"]
    for picture in svgs(page):
        ElementTree.fromstring(picture)


def _fuzz_records():
    from hypothesis import strategies as st
    names = NAMES + ["slow", "slow_end", "stats", "target_down", "target_up"]
    fields = FIELDS + ["host", "connect_ms", "median_ms", "max_ms"]
    stats = st.dictionaries(st.text(max_size=6), st.dictionaries(
        st.sampled_from(["probes", "failures", "median_ms", "p95_ms"]),
        json_values | st.floats(-10, 1e4), max_size=4), max_size=3)
    return st.builds(lambda moment, name, values: dict(values, time=moment, event=name),
                     times, st.sampled_from(names) | st.text(max_size=8),
                     st.dictionaries(st.sampled_from(fields), times | json_values | stats,
                                     max_size=5))


def test_fuzz_any_records_give_the_summarys_figures_a_page_and_rows():
    from hypothesis import given, strategies as st

    @FUZZ
    @given(events=st.lists(_fuzz_records() | json_values, max_size=40),
           zone=st.sampled_from(ZONES), window=st.none() | st.tuples(near_times, near_times))
    def check(events, zone, window):
        since = until = None
        if window is not None:
            since, until = sorted(pnm.parse_log_time(text) for text in window)
        with local_zone(zone):
            summary, rows = evidence_of(events, since, until)
            pnm.format_summary(summary, "x")
            page = pnm.render_report(summary, "x", made=T0)
            for row in rows:
                pnm.csv_fields(row)
                assert row.kind in pnm.ROW_KINDS and row.start < row.end
                assert (since is None or since <= row.start) and (until is None or
                                                                  row.end <= until)
        assert "<script" not in page
        for picture in svgs(page):
            ElementTree.fromstring(picture)

    check()


def test_fuzz_runs_of_stats_windows_of_any_figures_give_a_page():
    """The monitor's `stats` lines in a run, every few minutes, their figures anywhere a float
    or a count can be (a damaged log): the summary, the page and its charts are made."""
    from hypothesis import given, strategies as st

    figure = st.floats(0, 5000) | st.sampled_from([0.0, 5e-324, 0.004, 1e6, 1e300, 1.7e308])
    count = st.integers(0, 40) | st.sampled_from([10 ** 9, 2 ** 53 + 1])
    windows = st.lists(st.dictionaries(st.sampled_from(["a:53", "b:53", "[::1]:53"]),
                                       st.fixed_dictionaries({
                                           "probes": count, "failures": count,
                                           "median_ms": figure, "p95_ms": figure}),
                                       max_size=3), min_size=1, max_size=30)

    @FUZZ
    @given(windows=windows, step=st.sampled_from([60.0, 300.0, 3600.0]),
           zone=st.sampled_from(ZONES))
    def check(windows, step, zone):
        log = Log().start(T0)
        for number, targets in enumerate(windows, 1):
            log.add(T0 + number * step, "stats", start=iso(T0 + (number - 1) * step),
                    targets=targets)
        log.stop(T0 + (len(windows) + 1) * step)
        with local_zone(zone):
            summary, _ = evidence_of(log.events)
            pnm.format_summary(summary, "x")
            page = pnm.render_report(summary, "x", made=T0)
        for picture in svgs(page):
            ElementTree.fromstring(picture)
            assert "nan" not in picture and "inf" not in picture

    check()


def test_a_start_window_is_shown_below_the_start():
    log = Log().start(T0)
    log.add(T0 + 10, "down", start=iso(T0 + 10), start_after=iso(T0 + 9.25),
            start_before=iso(T0 + 10.25), reason="timeout", targets={"192.0.2.1:53": "timeout"})
    log.add(T0 + 70, "up", start=iso(T0 + 10), end=iso(T0 + 70), duration=60.0, ignored=False)
    summary, rows = evidence_of(log.stop(T0 + 100).events)
    assert [row.window for row in rows] == [(T0 + 9.25, T0 + 10.25)]
    page = pnm.render_report(summary, "x", made=T0)
    assert ('<td class="t">2026-11-01 00:00:10<br><span class="small muted w">began '
            '00:00:09.250 to 00:00:10.250</span></td>') in page
    # the explanation says the same: not "begins with the first round in which none answered"
    assert ("An <b>interruption</b> began between the last round in which a target answered and "
            "the first in which none did: its start is the middle of that window, shown below "
            "it (&ldquo;began ... to ...&rdquo;). It ends when a connect got through "
            "again.") in page


def test_the_explanation_says_what_each_reason_word_means():
    summary, _ = evidence_of(Log().start(T0).stop(T0 + 100).events)
    page = pnm.render_report(summary, "x", made=T0)
    legend = re.search(r"<li>The <b>reason</b> says what the connects saw:<ul>(.*?)</ul></li>",
                       page).group(1)
    assert re.findall(r"<li>(\w+): ", legend) == ["timeout", "refused", "unreachable", "dns"]
    assert "<li>refused: the target&#x27;s machine answered at once that nothing takes " in legend


def test_lossy_periods_are_rows_in_the_report_and_a_line_of_the_summary():
    log = Log().start(T0)
    log.add(T0 + 100, "lossy", start=iso(T0 + 90), loss_percent=31.0, sent=40, lost=12,
            targets={})
    log.add(T0 + 200, "lossy_end", start=iso(T0 + 90), end=iso(T0 + 180), duration=90.0,
            ignored=False, loss_percent=29.5, sent=200, lost=59, targets={})
    log.add(T0 + 300, "lossy", start=iso(T0 + 300), loss_percent=12.0, sent=25, lost=3,
            targets={})
    log.add(T0 + 302, "lossy_end", start=iso(T0 + 300), end=iso(T0 + 302), duration=2.0,
            ignored=True, loss_percent=12.0, sent=25, lost=3, targets={})
    log.add(T0 + 400, "lossy", start=iso(T0 + 395), loss_percent=40.0, sent=30, lost=12,
            targets={})
    log.stop(T0 + 500)
    summary, rows = evidence_of(log.events)
    lossy = [(row.start - T0, row.end - T0, row.why) for row in rows if row.kind == "lossy"]
    assert lossy == [(90.0, 180.0, "59 of 200 connect attempts lost (29.5 %)"),
                     (395.0, 500.0, "still lossy: the monitor stopped")]
    assert "Lossy:         3 min 15 s in 2 lossy periods (longest 1 min 45 s), 1 shorter one " \
           "ignored" in pnm.format_summary(summary, "x")
    page = pnm.render_report(summary, "x", made=T0)
    assert "Every interruption, partial outage, slow and lossy period" in page
    assert "<li>A <b>lossy period</b>: the connection stayed up, but lost the monitor's " in page
    assert page.count('<tr class="lossy">') == 2
    assert [pnm.csv_fields(row)[3:6] for row in rows if row.kind == "lossy"][0] == [
        "lossy", "", "59 of 200 connect attempts lost (29.5 %)"]


def test_the_page_names_the_time_zones_of_its_period_not_of_when_it_was_made():
    # made in winter, the report of a week across the end of summer time said "CET, UTC+0100"
    # alone, although most of its times were CEST
    start = 1761300000.0                                    # 2025-10-24, summer time in Berlin
    log = Log().start(start).stop(start + 5 * D)
    with local_zone("Europe/Berlin"):
        summary, _ = evidence_of(log.events)
        page = pnm.render_report(summary, "x", made=start + 60 * D)
    assert "made this report (CEST, UTC+02:00 and CET, UTC+01:00)." in page
    with local_zone("Europe/Berlin"):       # from 12:00 on the day summer time began: CEST only
        spring = 1774778400.0                               # 2026-03-29 12:00 CEST
        summary, _ = evidence_of(Log().start(spring - 12 * H).stop(spring + H).events,
                                 since=spring)
        assert "made this report (CEST, UTC+02:00)." in pnm.render_report(summary, "x")
    assert "Every interruption<" in page and "lossy period" not in page


@pytest.mark.parametrize("page", sorted(
    (pathlib.Path(__file__).parent / "golden").glob("*.html")), ids=lambda path: path.name)
def test_no_id_is_given_twice_in_a_page(page):
    # the table of each target's availability and the Targets line both had id="targets"
    ids = re.findall(r'\sid="([^"]*)"', page.read_text(encoding="utf-8"))
    assert ids and sorted(set(ids)) == sorted(ids)


def test_the_hosts_past_the_sixteenth_are_counted(utc):
    # 20 hosts' logs read together: the report named 16 of them, and said nothing of the others
    events = []
    for number in range(20):
        start = T0 + 100 * number
        events += [{"time": iso(start), "event": "start", "host": "site%02d" % number,
                    "targets": ["198.18.0.2:53"]},
                   {"time": iso(start + 50), "event": "stop", "signal": "SIGTERM"}]
    page = pnm.render_report(pnm.summarize_events(events), "sites.jsonl", made=T0)
    hosts = ", ".join("site%02d" % number for number in range(16)) + " and 4 more"
    assert '<td id="host">%s</td>' % hosts in page
    assert "<h1>Internet connection report: %s</h1>" % hosts in page


def test_a_chart_with_more_points_than_pixels_draws_each_columns_middle_and_highest():
    """A year's hours are more points than the chart's 670 pixel columns: each column shows the
    mean time, the middle median (the upper of two) and the highest 95th percentile of its
    points; drawn as if those were the points given."""
    import random
    rng = random.Random(7)
    start, step = T0, 600.0
    points = sorted((start + number * step + rng.uniform(0, 300), rng.uniform(5, 50),
                     rng.uniform(50, 400)) for number in range(3000))
    end = start + 3000 * step
    columns = {}
    for point in points:
        columns.setdefault(int((point[0] - start) / (end - start) * 670), []).append(point)
    middles = []
    for _, group in sorted(columns.items()):
        middles.append((sum(point[0] for point in group) / len(group),
                        sorted(point[1] for point in group)[len(group) // 2],
                        max(point[2] for point in group)))
    assert 600 < len(middles) <= 670
    chart = pnm._connect_chart("a:53", points, step, start, end)
    assert chart.count(" L") > 1000
    assert chart == pnm._connect_chart("a:53", middles, step, start, end)
