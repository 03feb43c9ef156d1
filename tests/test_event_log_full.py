"""An event log the disk refuses: no line is glued to a line cut short, and the monitor goes on.
The kernel refuses the writes (RLIMIT_FSIZE, as a full disk refuses them), nothing is mounted."""
import json
import os
import re
import resource
import threading
import time

import pytest

from harness import Listener, run_program, start_monitor
from pyNetConnMon import EventLog, MonitorError, human_duration

WALL = 1_795_000_000.0
TORN = b'{"time": "2026-12-07T06:18:42.083+00:00", "event": "stats", "min'


def log_lines(path):
    """The log's lines as bytes: the last one (after the final newline) must be empty."""
    *lines, last = path.read_bytes().split(b"\n")
    assert last == b"", "the log ends mid-line: %r" % last
    return lines


def test_a_line_cut_short_before_is_ended_so_the_next_event_is_a_line_of_its_own(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(TORN)                  # a kill, or a full disk, in the middle of a write
    log = EventLog(str(path))
    log.write("stop", WALL, signal="SIGTERM")
    log.close()
    torn, stop = log_lines(path)
    assert torn == TORN
    assert json.loads(stop)["event"] == "stop"


def test_a_sighup_on_a_file_that_ends_mid_line_ends_that_line_first(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path))
    log.write("stop", WALL, signal="SIGTERM")
    with open(path, "ab") as other:
        other.write(TORN)
    log.reopen()                            # the same file: logrotate did not move it
    log.write("log_reopened", WALL + 1)
    log.close()
    stop, torn, reopened = log_lines(path)
    assert (json.loads(stop)["event"], torn, json.loads(reopened)["event"]) == (
        "stop", TORN, "log_reopened")


def test_a_whole_line_is_not_ended_again(tmp_path):
    path = tmp_path / "events.jsonl"
    for second in range(2):
        log = EventLog(str(path))
        log.write("stop", WALL + second, signal="SIGTERM")
        log.close()
    assert [json.loads(line)["event"] for line in log_lines(path)] == ["stop", "stop"]


def limit_file_size(pid, size):
    """The kernel refuses the process's writes past `size` bytes of any file (EFBIG); a write
    that crosses it is cut short there, as on a disk that fills up."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, resource.getrlimit(
        resource.RLIMIT_FSIZE)[1]))


@pytest.fixture
def target():
    with Listener() as listener:
        yield listener


def test_a_full_disk_under_the_event_log_leaves_no_line_glued_to_a_torn_one(tmp_path, target):
    with start_monitor(tmp_path, "-a", target.address, "--gateway", "none", "--no-mail",
                       "-i", "0.05", "-t", "0.2", "-m", "0.1") as monitor:
        log = monitor.log
        monitor.wait_for_event("start")
        limit_file_size(monitor.pid, log.stat().st_size + 70)    # the next line is cut short
        target.stop()
        monitor.wait_for_line(r" WARNING cannot write event log %s: \[Errno 27\] File too "
                              r"large; monitoring goes on" % re.escape(str(log)))
        monitor.wait_for_line(r" DOWN ")
        time.sleep(0.3)                                 # longer than -m 0.1: not ignored
        target.start()
        said = monitor.wait_for_line(r" UP after ([0-9.]+) s ").group(1)
        limit_file_size(monitor.pid, resource.RLIM_INFINITY)        # space again
        assert monitor.terminate() == 0
        monitor.wait_for_line(r" WARNING event log %s is writable again$" % re.escape(str(log)))
    start, torn, *rest = log_lines(log)
    assert json.loads(start)["event"] == "start"
    assert len(torn) == 70 and torn.startswith(b'{"time": ') and b'"event": "down"' in torn
    events = [json.loads(line) for line in rest]       # every other line is whole
    assert [event["event"] for event in events] == ["down", "up", "stats", "stop"]
    assert events[0]["time"].encode().startswith(torn[10:30])   # the torn line written again
    duration = events[1]["duration"]
    assert abs(duration - float(said)) <= 0.051         # what the console said (to 0.1 s)

    summary = run_program("--summary", "--log-file", log)
    assert summary.returncode == 0, summary.stderr
    assert summary.stderr.endswith(" WARNING skipped 1 line of %s: 1 not JSON\n" % log)
    # the summary takes the duration from the times, each to the millisecond: 0.35 in the
    # event may be 0.351 there, "0.4 s" where the event's reads "0.3 s"
    shown = {human_duration(duration + delta) for delta in (-0.001, 0.0, 0.001)}
    assert re.search(r"^Interruptions: 1 \(longest (%s)\)" % "|".join(map(re.escape, shown)),
                     summary.stdout, re.MULTILINE), summary.stdout


def failed_pings(log, seconds):
    for second in seconds:
        log.write("ping_failed", WALL + second, url="http://127.0.0.1:%d" % second,
                  reason="refused")


def log_on_full_disk(tmp_path, warnings, **options):
    """tmp_path/events.jsonl, a link to /dev/full (every write: ENOSPC) until the test removes
    it, and an EventLog there that adds its warnings to `warnings`."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    path = tmp_path / "events.jsonl"
    path.symlink_to("/dev/full")
    return path, EventLog(str(path), warn=warnings.append, **options)


def test_events_the_log_could_not_take_are_written_in_order_when_it_can(tmp_path):
    warnings = []
    path, log = log_on_full_disk(tmp_path, warnings)
    failed_pings(log, range(3))
    path.unlink()                               # space again
    log.write("stop", WALL + 3, signal="SIGTERM")
    log.close()
    assert [json.loads(line).get("url", "stop") for line in log_lines(path)] == [
        "http://127.0.0.1:0", "http://127.0.0.1:1", "http://127.0.0.1:2", "stop"]
    assert warnings == [
        "cannot write event log %s: [Errno 28] No space left on device; monitoring goes on, and "
        "the latest 1000 events wait until it works again" % path,
        "event log %s is writable again" % path]


def test_only_the_latest_events_wait_and_the_others_missing_are_said_once(tmp_path):
    warnings = []
    path, log = log_on_full_disk(tmp_path, warnings, unwritten_kept=3)
    failed_pings(log, range(5))
    path.unlink()
    failed_pings(log, [5, 6])
    log.close()
    assert [json.loads(line)["url"][-1] for line in log_lines(path)] == list("23456")
    assert warnings[1:] == ["event log %s is writable again; the 2 oldest events of that time "
                            "could not wait and are missing from it" % path]


def test_events_still_waiting_at_the_stop_are_said_to_be_lost(tmp_path):
    warnings = []
    _, log = log_on_full_disk(tmp_path, warnings, unwritten_kept=3)
    failed_pings(log, range(5))
    log.close()
    log.close()                                 # said once
    assert warnings[1:] == ["event log %s still cannot be written: the 5 events that waited for "
                            "it are lost" % log.path]


def test_a_fifo_that_no_process_reads_as_the_event_log_is_an_error_not_a_wait(tmp_path):
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    result = run_program("-a", "127.0.0.1:1", "--gateway", "none", "--no-mail",
                         "--state-file", tmp_path / "state.json", "--log-file", fifo,
                         timeout=10)
    assert result.returncode == 1
    assert result.stderr.endswith(" ERROR cannot open event log %s: a FIFO that no process "
                                  "reads\n" % fifo), result.stderr


def test_a_fifo_put_where_the_log_was_is_refused_at_the_sighup_and_the_old_file_kept(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path))
    log.write("start", WALL)
    path.rename(tmp_path / "events.jsonl.1")
    os.mkfifo(path)                           # instead of the file logrotate would leave
    with pytest.raises(MonitorError, match="a FIFO that no process reads$"):
        log.reopen()
    log.write("stop", WALL + 1, signal="SIGTERM")
    log.close()
    assert [json.loads(line)["event"] for line in log_lines(tmp_path / "events.jsonl.1")] == [
        "start", "stop"]


class FifoReader:
    """Reads a FIFO in a thread, `chunk` bytes every `pause` s once `begin` is set."""

    def __init__(self, path, chunk, pause):
        self.descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.chunk, self.pause = chunk, pause
        self.data = bytearray()
        self.begin, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        self.begin.wait(10)
        deadline = time.monotonic() + 10
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                self.data += os.read(self.descriptor, self.chunk)
            except BlockingIOError:
                pass
            time.sleep(self.pause)

    def close(self):
        self.done.set()
        self.thread.join(5)
        while True:
            try:
                more = os.read(self.descriptor, 1 << 16)
            except BlockingIOError:
                break
            if not more:
                break
            self.data += more
        os.close(self.descriptor)


def stats_of(size):
    """A stats event's targets, about `size` bytes of them."""
    return {"198.18.%d.%d:53" % (n // 250, n % 250): {"probes": 30, "failures": 0}
            for n in range(size // 50)}


def test_a_line_longer_than_a_fifo_holds_goes_whole_to_a_reader_that_keeps_up(tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo, 16384, 0.005)
    log = EventLog(str(fifo))
    reader.begin.set()
    log.write("stats", WALL, start="2026-12-07T06:00:00.000+00:00", targets=stats_of(200000))
    log.write("stop", WALL + 1, signal="SIGTERM")
    log.close()
    reader.close()
    *lines, last = bytes(reader.data).split(b"\n")
    assert last == b"" and [json.loads(line)["event"] for line in lines] == ["stats", "stop"]


def test_a_fifo_whose_reader_stalls_gets_a_torn_line_ended_and_no_line_glued(tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo, 65536, 0.005)
    warnings = []
    log = EventLog(str(fifo), warn=warnings.append)
    for second in range(3):          # each more than the pipe's 64 KiB can take at once
        log.write("stats", WALL + second, start="2026-12-07T06:00:00.000+00:00",
                  targets=stats_of(100000))
    assert warnings[0].startswith("cannot write event log %s: [Errno 11] it takes no more for "
                                  "now (a reader behind?)" % fifo)
    reader.begin.set()                # the reader wakes up
    log.write("stop", WALL + 3, signal="SIGTERM")
    log.close()
    reader.close()
    *lines, last = bytes(reader.data).split(b"\n")
    assert last == b""
    whole = []
    for line in lines:
        try:
            whole.append(json.loads(line)["event"])
        except ValueError:
            assert line and b"}{" not in line     # cut short, never two glued together
    assert whole == ["stats", "stats", "stats", "stop"], whole


def test_a_socket_as_the_event_log_is_an_error_that_says_so(tmp_path):
    import socket
    path = tmp_path / "journal.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        with pytest.raises(MonitorError, match="cannot open event log %s: a socket, which cannot "
                           "be opened by name: give a file$" % path):
            EventLog(str(path))
