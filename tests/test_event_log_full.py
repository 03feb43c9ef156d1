"""An event log the disk refuses: no line is glued to a line cut short, and the monitor goes on.
The kernel refuses the writes (RLIMIT_FSIZE, as a full disk refuses them), nothing is mounted."""
import json
import re
import resource

import pytest

from harness import Listener, start_monitor
from pyNetConnMon import EventLog

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
                       "-i", "0.05", "-t", "0.2", "-m", "0.1", state_file=False) as monitor:
        log = monitor.log
        monitor.wait_for_event("start")
        limit_file_size(monitor.pid, log.stat().st_size + 70)    # the next line is cut short
        target.stop()
        monitor.wait_for_line(r" WARNING cannot write event log %s: \[Errno 27\] File too "
                              r"large; monitoring goes on" % re.escape(str(log)))
        monitor.wait_for_line(r" DOWN ")
        target.start()
        monitor.wait_for_line(r" UP after ")
        limit_file_size(monitor.pid, resource.RLIM_INFINITY)        # space again
        assert monitor.terminate() == 0
        monitor.wait_for_line(r" WARNING event log %s is writable again" % re.escape(str(log)))
    start, torn, *rest = log_lines(log)
    assert json.loads(start)["event"] == "start"
    assert len(torn) == 70 and torn.startswith(b'{"time": ') and b'"event": "down"' in torn
    assert [json.loads(line)["event"] for line in rest][-2:] == ["stats", "stop"]
