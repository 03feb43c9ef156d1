"""SIGHUP reopens --log-file, the logrotate way: rename the file, send SIGHUP, lose nothing."""
import gzip
import json
import os
import re
import shutil
import signal

import pytest

from harness import Listener, hold_outage, read_events, start_monitor


@pytest.fixture
def target():
    with Listener() as listener:
        yield listener


def monitor_of(tmp_path, target, log_file=True):
    return start_monitor(tmp_path, "-a", target.address, "-i", "0.05", "-t", "0.2", "-m", "0.1",
                         "--no-mail", log_file=log_file)


def outage(monitor, target, number, path=None):
    """Causes the `number`-th outage (at least 0.15 s, longer than -m 0.1) and waits for its end."""
    hold_outage(monitor, target, count=number, path=path, timeout=10)
    return monitor.wait_for_event("up", count=number, path=path)


def test_rotated_log_keeps_every_event_exactly_once(tmp_path, target):
    with monitor_of(tmp_path, target) as monitor:
        log = str(monitor.log)
        monitor.wait_for_event("start")
        outage(monitor, target, 1)
        os.rename(log, log + ".1")                  # what logrotate does first
        monitor.send_signal(signal.SIGHUP)                # postrotate: kill -HUP
        monitor.wait_for_line("event log reopened")
        outage(monitor, target, 1, path=log)
        assert monitor.terminate() == 0

    rotated, current = read_events(log + ".1"), read_events(log)
    assert [event["event"] for event in rotated] == ["start", "down", "up"]
    assert [event["event"] for event in current] == ["log_reopened", "down", "up", "stats", "stop"]
    every = rotated + current
    assert len({(event["time"], event["event"]) for event in every}) == len(every)
    assert all(event["ignored"] is False for event in every if event["event"] == "up")
    assert sum("event log reopened" in line for line in monitor.stdout_lines) == 1
    assert monitor.stderr_lines == []


def test_a_log_rotated_without_sighup_is_reopened_at_the_next_event(tmp_path, target):
    """A postrotate that signals no monitor (another user, another name): the events still go
    to the path, not to the rotated file that logrotate compresses and deletes next time."""
    with monitor_of(tmp_path, target) as monitor:
        log = str(monitor.log)
        monitor.wait_for_event("start")
        outage(monitor, target, 1)
        os.rename(log, log + ".1")
        with open(log + ".1", "rb") as rotated, gzip.open(log + ".1.gz", "wb") as packed:
            shutil.copyfileobj(rotated, packed)
        os.unlink(log + ".1")                          # compress, as without delaycompress
        outage(monitor, target, 1, path=log)
        monitor.wait_for_line(r" WARNING event log %s was moved away without a SIGHUP; "
                              r"writing to a new one there$" % re.escape(log))
        outage(monitor, target, 2, path=log)
        assert monitor.terminate() == 0
    with gzip.open(log + ".1.gz", "rt") as packed:
        rotated = [json.loads(line)["event"] for line in packed]
    assert rotated == ["start", "down", "up"]
    assert [event["event"] for event in read_events(log)] == [
        "log_reopened", "down", "up", "down", "up", "stats", "stop"]
    assert len(monitor.stderr_lines) == 1


def test_sighup_without_rotation_appends_to_the_same_file(tmp_path, target):
    with monitor_of(tmp_path, target) as monitor:
        monitor.wait_for_event("start")
        monitor.send_signal(signal.SIGHUP)
        monitor.wait_for_event("log_reopened")
        monitor.send_signal(signal.SIGHUP)
        monitor.wait_for_event("log_reopened", count=2)
        outage(monitor, target, 1)
        assert monitor.terminate() == 0
    assert [event["event"] for event in monitor.events()] == [
        "start", "log_reopened", "log_reopened", "down", "up", "stats", "stop"]


def test_a_log_that_cannot_be_reopened_warns_and_the_old_file_stays_in_use(tmp_path, target):
    with monitor_of(tmp_path, target) as monitor:
        log = str(monitor.log)
        monitor.wait_for_event("start")
        os.rename(log, log + ".1")
        os.mkdir(log)                               # the new file cannot be created
        monitor.send_signal(signal.SIGHUP)
        # the SIGHUP first: an event written before it would find the log moved away and warn
        # on its own (seen once in CI under load)
        monitor.wait_for_line(r" WARNING cannot open event log ")
        outage(monitor, target, 1, path=log + ".1")
        assert monitor.terminate() == 0
    assert [event["event"] for event in read_events(log + ".1")] == [
        "start", "down", "up", "stats", "stop"]
    warnings = monitor.stderr_lines
    assert len(warnings) == 1
    assert "WARNING cannot open event log %s: " % log in warnings[0]
    assert warnings[0].endswith("; still writing to the old file")


def test_sighup_without_a_log_file_is_harmless(tmp_path, target):
    with monitor_of(tmp_path, target, log_file=False) as monitor:
        monitor.wait_for_line("started pyNetConnMon")
        monitor.send_signal(signal.SIGHUP)
        target.stop()
        monitor.wait_for_line("DOWN ")            # still running, still probing
        assert monitor.terminate() == 0
    assert not any("reopened" in line for line in monitor.stdout_lines)
    assert monitor.stderr_lines == []
