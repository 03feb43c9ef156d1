"""--summary against hostile input: a log spanning the whole calendar, huge lines, files that are
not files, a full disk, dates the system cannot show, and fuzzing of the event-log reader.

The program runs as a subprocess under a memory limit (RLIMIT_AS) and a timeout, so that a
regression fails here instead of eating the machine. Local time is UTC unless a test says.
"""
import io
import json
import os
import resource
import subprocess
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

import pyNetConnMon as pnm
from eventlogs import (FUZZ, H, T0, ZONES, Log, iso, json_values, local_zone, near_times,
                       records)
from harness import python_command
MEMORY_LIMIT = 100 * 1024 * 1024     # address space of the child; the summary needs about 40 MB
LIMIT = pnm.EVENT_LINE_LIMIT          # bytes: the line limit the warning names (in KiB)


def record(time_text, name, **fields):
    return json.dumps(dict(time=time_text, event=name, **fields))


def write_log(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run(*args, stdout=subprocess.PIPE, timeout=30, zone="UTC"):
    """The program under MEMORY_LIMIT, TZ=zone; a hang fails as subprocess.TimeoutExpired."""
    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    return subprocess.run(python_command() + [str(arg) for arg in args],
                          env=dict(os.environ, TZ=zone), stdin=subprocess.DEVNULL,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=timeout,
                          preexec_fn=limit_memory, universal_newlines=True, encoding="utf-8")


# ---- time and memory grow with the events, not with the time they span ----------------------

def test_a_log_spanning_the_calendar_is_summarized_in_a_few_rows(tmp_path):
    path = write_log(tmp_path / "events.jsonl", [
        record("0001-01-05T00:00:00+00:00", "start"),
        record("5000-06-15T12:00:00+00:00", "down", start="5000-06-15T12:00:00+00:00"),
        record("5000-06-16T12:00:00+00:00", "up", start="5000-06-15T12:00:00+00:00",
               end="5000-06-16T12:00:00+00:00", duration=86400.0, ignored=False),
        record("9999-12-25T00:00:00+00:00", "stop"),
    ])
    result = run("--summary", "--log-file", path)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert "Monitored:     3652048 d" in lines
    assert "Interruptions: 1 (longest 1 d), 0 blips ignored" in lines
    assert [line for line in lines if line[:1].isdigit()] == [
        "0001-01-05  100.00%     0             0.0 s  |························|",
        "0001-01-06  100.00%     0             0.0 s  |························|"
        " .. 5000-06-14 (1826007 days)",
        "5000-06-15   50.00%     1              12 h  |············████████████|",
        "5000-06-16   50.00%     0              12 h  |████████████············|",
        "5000-06-17  100.00%     0             0.0 s  |························|"
        " .. 9999-12-24 (1826038 days)",
    ]


def test_a_huge_line_is_skipped_without_being_held(tmp_path):
    path = tmp_path / "events.jsonl"
    with open(path, "wb") as stream:
        stream.write(record(iso(T0), "start").encode() + b"\n")
        stream.write(b'{"time": "%s", "event": "report_sent", "via": "' % iso(T0 + 1).encode())
        for _ in range(64):
            stream.write(b"x" * (1024 * 1024))        # 64 MB of one line, valid JSON at its end
        stream.write(b'"}\n')
        stream.write(record(iso(T0 + 2), "ping_ok", url="x" * LIMIT).encode() + b"\n")
        stream.write(b"garbage\n")
        stream.write(record(iso(T0 + H), "stop").encode() + b"\n")
    result = run("--summary", "--log-file", path)
    assert result.returncode == 0
    assert "Monitored:     1 h" in result.stdout.splitlines()
    [warning] = result.stderr.splitlines()
    assert warning.endswith("WARNING skipped 3 lines of %s: 2 longer than %d KiB, 1 not JSON"
                            % (path, LIMIT // 1024))


def test_a_file_that_is_no_event_log_is_an_error(tmp_path):
    # --summary --log-file README.md: "Nothing to summarize" and exit status 0, as for a new log
    path = tmp_path / "README.md"
    path.write_text("# pyNetConnMon\n\nWatch a connection.\n")
    result = run("--summary", "--log-file", path)
    assert result.returncode == 1
    assert "Nothing to summarize: no monitored time in the log." in result.stdout
    assert result.stderr.splitlines()[-1].endswith(
        " ERROR %s is not an event log of pyNetConnMon: none of its lines is an event it writes"
        % path)
    path.write_text("")
    assert run("--summary", "--log-file", path).returncode == 0     # a log nothing was written to
    # an event log with a damaged line, of which the period asked for holds nothing
    path.write_text(record(iso(T0), "start") + "\n" + record(iso(T0 + H), "stop") + "\n{\"ti\n")
    assert run("--summary", "--log-file", path, "--since", "2030-01-01").returncode == 0


@pytest.mark.parametrize("length, kept", [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)])
def test_the_line_limit_counts_the_bytes_before_the_newline(length, kept):
    data = b"a" * length + b"\nnext\n"
    assert list(pnm.read_lines(io.BytesIO(data))) == [data[:length + 1] if kept else None,
                                                      b"next\n"]


class RecordingStream(io.BytesIO):
    """Notes the largest read that read_lines() asks for."""
    largest = 0

    def _note(self, size):
        self.largest = max(self.largest, size if size is not None and size >= 0
                           else len(self.getvalue()))

    def read(self, size=-1):
        self._note(size)
        return super().read(size)

    def read1(self, size=-1):
        self._note(size)
        return super().read1(size)

    def readline(self, size=-1):
        self._note(size)
        return super().readline(size)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(lines=st.lists(st.binary(max_size=30).map(lambda line: line.replace(b"\n", b" ")),
                      max_size=8),
       limit=st.integers(1, 20), last_newline=st.booleans())
def test_read_lines_keeps_short_lines_whole_and_never_reads_more_than_the_limit(
        lines, limit, last_newline):
    data = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    stream = RecordingStream(data)
    expected = [line + b"\n" for line in lines]
    if lines and not last_newline:
        expected[-1] = lines[-1]
    expected = [line if len(line.rstrip(b"\n")) <= limit else None
                for line in expected if line]
    assert list(pnm.read_lines(stream, limit)) == expected
    assert 0 < stream.largest <= limit + 1



def block_lines(blocks):
    """The lines of read_blocks()' blocks, one at a time as read_lines() gives them."""
    for block in blocks:
        if block is None:
            yield None
            continue
        assert block                             # never an empty block
        pieces = block.split(b"\n")
        last = pieces.pop()
        yield from (piece + b"\n" for piece in pieces)
        if last:
            yield last


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(lines=st.lists(st.binary(max_size=40).map(lambda line: line.replace(b"\n", b" ")),
                      max_size=10),
       limit=st.integers(1, 30), size=st.integers(1, 12), last_newline=st.booleans())
def test_blocks_smaller_than_a_line_give_the_same_lines(lines, limit, size, last_newline):
    # the log is read 64 KB at a time and a line may be 1 MB: a line spans blocks, and is
    # gathered whole (or counted as too long) as when a block holds it all
    data = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    stream = RecordingStream(data)
    assert list(block_lines(pnm.read_blocks(stream, limit, size))) == \
        list(pnm.read_lines(io.BytesIO(data), limit))
    assert 0 < stream.largest <= min(size, limit + 1)


@pytest.mark.parametrize("line", [b"[" + b"1," * 31, b'{"a":', b"[", b'{"time": "x"} {}'])
def test_lines_that_are_not_one_value_cost_at_most_a_block_more_than_read_alone(
        monkeypatch, line):
    # the scanner, handed a block's text at a line that opens a value and never closes it,
    # reads on through the lines after it: past the first such line of a block the block is
    # read a line at a time, so a log of such lines is not scanned a thousand times over
    handed = []
    decoder = json.JSONDecoder

    class Counting(decoder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            scan = self.scan_once

            def counting_scan(text, start):
                handed.append(len(text) - start)      # the most it can read from there
                return scan(text, start)
            self.scan_once = counting_scan

    monkeypatch.setattr(pnm.json, "JSONDecoder", Counting)
    data = (line + b"\n") * (512 * 1024 // (len(line) + 1))
    values = pnm.EventLines(pnm.read_blocks(io.BytesIO(data)))
    assert list(values) == []
    assert (values.not_json, values.seen) == (data.count(b"\n"),) * 2
    # each line alone is handed over at most twice (decode() again after a failed scan), as
    # it was before blocks were scanned; each block's text, at most once more
    assert sum(handed) <= 3 * len(data)


def test_a_line_read_alone_may_nest_as_deep_as_one_read_in_its_block():
    # the JSON scanner's nesting counts against Python's recursion limit: a line read alone
    # (after one in its block that is not simply a value) is read at the depth of one read in
    # the block, as every line was read before blocks, so both take the same nesting
    import sys
    for depth in range(1, sys.getrecursionlimit() + 50):
        line = b"[" * depth + b"]" * depth + b"\n"
        in_block, alone = pnm.EventLines([line]), pnm.EventLines([b"x\n" + line])
        assert (list(alone), alone.not_json - 1) == (list(in_block), in_block.not_json), depth

# ---- only regular files, and the output ------------------------------------------------------

def not_regular_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    yield fifo, "a FIFO"
    yield tmp_path, "a directory"
    if os.path.exists("/dev/zero"):
        yield "/dev/zero", "a device"


def test_only_a_regular_file_is_read(tmp_path):
    for path, kind in not_regular_files(tmp_path):
        result = run("--summary", "--log-file", path, timeout=20)
        assert (result.returncode, result.stdout) == (1, "")
        [error] = result.stderr.splitlines()
        assert error.endswith("ERROR cannot read event log %s: it is %s, not a regular file"
                              % (path, kind))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_summary_into_a_full_device_is_one_error_line(tmp_path):
    path = write_log(tmp_path / "events.jsonl",
                     [record(iso(T0), "start"), record(iso(T0 + H), "stop")])
    with open("/dev/full", "w") as full:
        result = run("--summary", "--log-file", path, stdout=full)
    assert result.returncode == 1
    [error] = result.stderr.splitlines()
    assert error.endswith("ERROR cannot write the summary: No space left on device")


# ---- dates the calendar cannot show ----------------------------------------------------------

@pytest.mark.parametrize("start, stop", [
    ("0001-01-01T00:00:00+14:00", "0001-01-01T10:00:00+14:00"),     # before the year 1 in UTC
    ("9999-12-31T13:00:00-12:00", "9999-12-31T14:00:00-12:00"),     # after the year 9999 in UTC
    ("0001-01-01T00:00:00", "0001-01-01T01:00:00"),                 # the first day of all
])
def test_times_beyond_the_calendar_are_invalid_lines(utc, start, stop):
    summary = pnm.summarize_events([{"time": start, "event": "start"},
                                    {"time": stop, "event": "stop"}])
    assert (summary.invalid, summary.start, summary.days) == (2, None, [])
    assert pnm.format_summary(summary, "x").endswith("no monitored time in the log.\n")


@pytest.mark.skipif(not os.path.exists("/usr/share/zoneinfo/right/UTC"),
                    reason="needs the tz database's leap-second zones")
def test_an_hour_with_a_leap_second_in_it(tmp_path):
    """Under TZ=right/UTC the hour before 2017-01-01 ends with 23:59:60."""
    path = write_log(tmp_path / "events.jsonl", [record("2016-12-31T22:30:00+00:00", "start"),
                                                 record("2017-01-01T01:30:00+00:00", "stop")])
    result = run("--summary", "--log-file", path, zone="right/UTC", timeout=20)
    assert (result.returncode, result.stderr) == (0, "")
    assert "Monitored:     3 h" in result.stdout.splitlines()
    assert [line[:10] for line in result.stdout.splitlines() if line[:2] == "20"] == [
        "2016-12-31", "2017-01-01"]


def test_since_beyond_the_calendar_is_a_usage_error(tmp_path):
    result = run("--summary", "--log-file", tmp_path / "x", "--since", "0001-01-02")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("pyNetConnMon.py: error: --since: '0001-01-02' is outside the "
                             "dates this system can show\n")


def test_unknown_event_names_are_counted_in_bounded_memory(utc):
    events = [{"time": iso(T0 + number), "event": "new_%d" % number} for number in range(1000)]
    summary = pnm.summarize_events(events)
    assert len(summary.unknown) == pnm.UNKNOWN_NAMES_KEPT
    assert summary.unknown_others == 1000 - pnm.UNKNOWN_NAMES_KEPT
    assert pnm.describe_skipped(0, summary, "x") == (
        "skipped 1000 lines of x: 1000 unknown events (new_0, new_1, new_10, new_11, new_12, ...)")


# ---- fuzzing: any records, any lines ---------------------------------------------------------

@FUZZ
@given(events=st.lists(records | json_values, max_size=40), zone=st.sampled_from(ZONES),
       window=st.none() | st.tuples(near_times, near_times))
def test_fuzz_any_records_give_a_consistent_summary(events, zone, window):
    since = until = None
    if window is not None:
        since, until = sorted(pnm.parse_log_time(text) for text in window)
    with local_zone(zone):
        summary = pnm.summarize_events(events, since, until)
        text = pnm.format_summary(summary, "x")
    assert isinstance(summary, pnm.History) and text.endswith("\n")
    days = summary.days
    assert len(days) <= 12 * len(events) + 2
    assert all(day.end == following.start for day, following in zip(days, days[1:]))
    assert sum(day.monitored for day in days) == pytest.approx(summary.monitored, abs=0.01)
    assert sum(day.downtime for day in days) == pytest.approx(summary.downtime, abs=0.01)
    assert sum(day.interruptions for day in days) == summary.interruptions
    skipped = summary.invalid + sum(summary.unknown.values()) + summary.unknown_others
    assert skipped <= len(events)
    assert summary.availability is None or 0 <= summary.availability <= 100


line_texts = st.one_of(records.map(json.dumps), st.text(max_size=60).map(str.encode),
                       st.binary(max_size=60), st.integers(-2, 2).map(lambda n: b"y" * (LIMIT + n)))


@FUZZ
@given(lines=st.lists(line_texts.map(lambda line: line if isinstance(line, bytes)
                                     else line.encode()), max_size=20))
def test_fuzz_any_lines_give_a_summary_and_at_most_one_warning(lines):
    lines = [line.replace(b"\n", b" ") for line in lines]
    with tempfile.TemporaryDirectory() as folder, local_zone("UTC"):
        path = os.path.join(folder, "events.jsonl")
        with open(path, "wb") as stream:
            stream.write(b"".join(line + b"\n" for line in lines))
        out, err = io.StringIO(), io.StringIO()
        status = pnm.run_summary(pnm.Settings(summary=True, log_file=path), out,
                                 pnm.Console(out=io.StringIO(), err=err))
    assert out.getvalue().startswith("pyNetConnMon summary of %s\n" % path)
    warnings = err.getvalue().splitlines()
    # lines of which none is an event: a summary, a warning and one error line, status 1
    not_a_log = [line for line in warnings if line.endswith(
        " ERROR %s is not an event log of pyNetConnMon: none of its lines is an event it writes"
        % path)]
    assert (status, len(not_a_log)) in ((0, 0), (1, 1))
    if not_a_log:
        assert "Nothing to summarize: no monitored time" in out.getvalue()
        warnings.remove(not_a_log[0])
    too_long = sum(len(line) > LIMIT for line in lines)
    assert len(warnings) <= 1
    if too_long:
        assert "%d longer than %d KiB" % (too_long, LIMIT // 1024) in warnings[0]


# pieces that are not JSON alone but would be across lines: each line must be read alone
line_pieces = st.sampled_from([b'{"a":', b'1}', b'[1', b'2]', b'{"a": [{}', b'{}]}', b'{}, {}',
                               b'{"b": "}', b'"x"}', b' {"c": 1}', b'{"d": 2} ', b'{"e": 3}\r',
                               b'', b' ', b'\t', b'\x0b', b'\xe2\x82', b'{"f": "\xff"}', b'3 4',
                               b'[[[[', b']]]]', b'NaN', b'"s"'])


@FUZZ
@given(lines=st.lists(line_pieces | records.map(lambda record: json.dumps(record).encode())
                      | st.binary(max_size=12).map(lambda line: line.replace(b"\n", b" ")),
                      max_size=30),
       last_newline=st.booleans())
def test_each_line_gives_what_json_loads_gives_it_alone(lines, last_newline):
    # json.loads() of each line by itself, a blank line skipped: what the summary promises
    data = b"\n".join(lines) + (b"\n" if last_newline else b"")
    expected, not_json = [], 0
    for line in data.split(b"\n"):
        text = line.decode("utf-8", "replace")
        if not text.strip():
            continue
        try:
            expected.append(json.loads(text))
        except (ValueError, RecursionError):
            not_json += 1
    lines = list(pnm.read_lines(io.BytesIO(data)))
    assert b"".join(lines) == data
    values = pnm.EventLines(lines)
    assert json.dumps(list(values)) == json.dumps(expected)
    assert (values.not_json, values.too_long) == (not_json, 0)


def test_the_longest_lines_the_monitor_writes_are_read_back(tmp_path):
    # the most targets the monitor takes, each with the longest name: its start, down, stats
    # and up lines are hundreds of KB, and the summary reads them all
    labels = ["%s%04d.example:65535" % ("n" * 233, number) for number in range(pnm.MAX_TARGETS)]
    window = {"probes": 123456, "failures": 123456, "losses": 123456, "min_ms": 1234.567,
              "median_ms": 1234.567, "p95_ms": 1234.567, "max_ms": 1234.567}
    lines = [record(iso(T0), "start", version="2.0.0", targets=labels, interval=1.0),
             record(iso(T0 + 60), "stats", start=iso(T0), end=iso(T0 + 60),
                    targets={label: window for label in labels}),
             record(iso(T0 + 100), "down", start=iso(T0 + 100), start_after=iso(T0 + 99),
                    start_before=iso(T0 + 100), reason="timeout",
                    targets={label: "timeout" for label in labels}, cause="provider"),
             record(iso(T0 + 200), "up", start=iso(T0 + 100), start_after=iso(T0 + 99),
                    start_before=iso(T0 + 100), end=iso(T0 + 200), duration=100.0,
                    duration_min=99.0, duration_max=101.0, ignored=False, reason="timeout",
                    targets=labels, cause="provider"),
             record(iso(T0 + H), "stop", signal="SIGTERM")]
    assert max(map(len, lines)) > 300 * 1024
    result = run("--summary", "--log-file", write_log(tmp_path / "events.jsonl", lines))
    assert (result.returncode, result.stderr) == (0, "")
    assert ["Interruptions: 1 (longest 1 min 40 s), 0 blips ignored",
            "Downtime:      1 min 40 s"] == [
        line for line in result.stdout.splitlines() if line.startswith(("Interr", "Downtime:"))]
    assert "Per target:    - (1000 targets; shown for at most 100)" in result.stdout.splitlines()


def test_an_interruption_dated_before_downtime_already_counted_is_said_to_be_left_out(utc):
    # a Raspberry Pi restarted after a power cut, its clock not set: the second run is dated an
    # hour before the first one's interruption, and its own was left out without a word
    log = Log().start(T0)
    log.outage(T0 + 110 * 60, T0 + 112 * 60)
    log.start(T0 + H)
    log.outage(T0 + 80 * 60, T0 + 85 * 60)
    log.stop(T0 + 100 * 60)
    summary = pnm.summarize_events(log.events)
    assert (summary.interruptions, summary.overlapped) == (1, [1, 300.0])
    assert "\nLeft out:      1 interruption (5 min) dated before downtime already counted (a " \
           "clock behind at a start, or lines written twice)\n" in pnm.format_summary(summary, "x")
    assert '<th>Left out</th><td id="left_out">1 interruption (5 min) dated before' in \
        pnm.render_report(summary, "x", made=T0)
    assert "Left out" not in pnm.format_summary(pnm.summarize_events(
        Log().start(T0).outage(T0 + 60, T0 + 70).stop(T0 + H).events), "x")


@pytest.mark.parametrize("ending", ["crash", "log ends"])
def test_a_slow_stretch_open_when_a_counted_interruption_began_ends_where_it_began(utc, ending):
    # the monitor logs slow_end once the interruption counts (-m): a crash or the log's end may
    # come first, and the summary counted the slow stretch on through the downtime
    log = Log().start(T0)
    log.add(T0 + 10, "slow", start=iso(T0 + 10), connect_ms=1500.0)
    log.down(T0 + 40)
    log.add(T0 + 100, "report_failed", interruptions=1, via="mail", reason="refused")
    if ending == "crash":
        log.start(T0 + 200).gap(T0 + 100, T0 + 200, T0 + 200).stop(T0 + 300)
    summary = pnm.summarize_events(log.events)
    assert (summary.slow, summary.slow_periods) == (30.0, 1)
    blip = Log().start(T0).add(T0 + 10, "slow", start=iso(T0 + 10), connect_ms=1500.0)
    blip.down(T0 + 40).add(T0 + 43, "report_sent", interruptions=1, via="mail", next_wait=60.0)
    assert pnm.summarize_events(blip.events).slow == 33.0       # a blip so far: slow on
