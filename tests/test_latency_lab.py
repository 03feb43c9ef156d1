"""Slow, not down: the program in the home lab's monitor namespace while the line is congested.

The home lab (tests/lab/homelab.py) congests the Internet side with a token bucket and a bounded
stream of datagrams: every connect waits 1.3 to 1.7 s behind the queue, none is lost. Its
timeline says when the queue was full ("congestion") and when it was removed
("congestion_end"). Its other faults make a SYN vanish behind the router (target_vanish), so a
connect times out, or, undone within a second, gets through on the SYN the kernel sends again.
Every address is in the lab (198.18.0.0/15).
"""
import os
import shlex
import time

from harness import events, start_monitor, wait_until, wall_time
from homelab import TARGET_IP, TARGET_PORT

INTERVAL = 0.5
WINDOW = 2.0        # --stats-interval: short windows, so that a few seconds show in the figures
LAB = ("-a", "%s:%d" % (TARGET_IP, TARGET_PORT), "-i", str(INTERVAL), "-t", "3",
       "--slow", "1000", "--stats-interval", str(WINDOW), "-bmin", "0")
# The slow period begins at the first round after the queue filled (at most an interval late);
# it ends at the first fast connect after the queue was removed: at most an interval late, and a
# connect under way then lost its SYN-ACK with the queue, so it got through only on the SYN sent
# again a second after its start. Slack for a loaded machine on top.
EARLY, LATE = INTERVAL + 0.2, INTERVAL + 1.0 + 0.3


def monitor_in(homelab, tmp_path, *args):
    """The monitor with LAB's options and ARGS; its reports go to tmp_path/report.txt (the body)
    and tmp_path/subject.txt."""
    notify = "cat > %s; printf %%s \"$PYNETCONNMON_SUBJECT\" > %s" % (
        shlex.quote(str(tmp_path / "report.txt")), shlex.quote(str(tmp_path / "subject.txt")))
    return start_monitor(tmp_path, *LAB, *args, "--notify-command", notify,
                         prefix=homelab.prefix)


def windows_after(monitor, count, since=None):
    """Waits for `count` stats events that began after the wall-clock instant `since`."""
    def found():
        return [event for event in events(monitor.log, "stats")
                if since is None or wall_time(event["start"]) >= since]
    return wait_until(lambda: len(found()) >= count and found(), 10 + count * WINDOW,
                      "%d stats windows" % count)


def figures(event):
    [(label, target)] = event["targets"].items()
    assert label == "%s:%d" % (TARGET_IP, TARGET_PORT)
    return target


def test_a_congested_stretch_is_one_slow_period_of_its_length_and_no_interruption(homelab,
                                                                                 tmp_path):
    homelab.start_listener()
    with monitor_in(homelab, tmp_path, "-m", "3") as monitor:
        windows_after(monitor, 2)                       # a few seconds of the usual first
        homelab.congestion(8.0)
        homelab.congestion_end()                        # waits for the stream's end
        ended = time.time()
        monitor.wait_for_event("slow_end", timeout=10)
        windows_after(monitor, 1, since=ended)
        assert monitor.terminate() == 0
    [slow] = events(monitor.log, "slow")
    [end] = events(monitor.log, "slow_end")
    [injected] = homelab.durations("congestion", "congestion_end")
    error = end["duration"] - injected
    print("congestion %.3f s, slow period %.3f s (error %+.3f s), median %s ms, max %s ms"
          % (injected, end["duration"], error, end["median_ms"], end["max_ms"]))
    assert events(monitor.log, "down") == []
    assert (end["start"], end["ignored"]) == (slow["start"], False)
    assert -EARLY <= error <= LATE
    assert 1000 <= slow["connect_ms"] < 3000 and 1000 <= end["median_ms"] <= end["max_ms"] < 3000
    # the statistics: the usual before, then the queue in the percentiles, and, as the
    # connects came about a second later than the window before, counted as losses (a connect
    # time cannot tell a queue from a SYN sent again)
    stats = [figures(event) for event in events(monitor.log, "stats")]
    print("stats windows: %s" % [(f["probes"], f["failures"], f["losses"], f["median_ms"],
                                  f["p95_ms"]) for f in stats])
    assert stats[0]["p95_ms"] < 100 and stats[0]["losses"] == 0
    assert all(window["failures"] == 0 for window in stats)
    assert max(window["p95_ms"] for window in stats) >= 1000
    assert sum(window["losses"] for window in stats) >= 1
    subject = (tmp_path / "subject.txt").read_text()
    body = (tmp_path / "report.txt").read_text()
    assert subject.endswith(": 1 slow period, %s slow" % ("%.1f s" % end["duration"]))
    assert "Slow periods: the connection was up, but even the fastest target took 1000 ms or " \
           "longer to connect" in body


def test_a_short_congestion_below_min_interruption_is_ignored(homelab, tmp_path):
    # 3 s: a connect or two wait 1.3 to 1.7 s in the queue (slow). One still queued when the
    # queue is removed loses its SYN-ACK and gets through on a resent SYN: loss, not slow. With
    # 1.5 s that was often the only connect of the congestion, and no slow stretch was seen.
    homelab.start_listener()
    with monitor_in(homelab, tmp_path, "-m", "8") as monitor:
        windows_after(monitor, 1)
        homelab.congestion(3.0)
        homelab.congestion_end()
        end = monitor.wait_for_event("slow_end", timeout=10)
        windows_after(monitor, 1, since=time.time())
        assert monitor.terminate() == 0
    [injected] = homelab.durations("congestion", "congestion_end")
    print("congestion %.3f s, slow stretch %.3f s" % (injected, end["duration"]))
    assert end["ignored"] is True and end["duration"] < 8
    assert len(events(monitor.log, "slow_end")) == 1 and events(monitor.log, "down") == []
    assert not os.path.exists(tmp_path / "report.txt")
    assert monitor.stdout_lines[-1].endswith("stopped (SIGTERM)")     # nothing still to report


def test_congestion_that_ends_in_a_blackhole_is_a_slow_period_then_an_interruption(homelab,
                                                                                    tmp_path):
    homelab.start_listener()
    with monitor_in(homelab, tmp_path, "-m", "2") as monitor:
        windows_after(monitor, 1)
        homelab.congestion(20.0)
        slow = monitor.wait_for_event("slow", timeout=5)
        windows_after(monitor, 2, since=wall_time(slow["start"]))     # slow for 4 s and more
        homelab.target_vanish()                         # now every connect times out
        down = monitor.wait_for_event("down", timeout=10)
        homelab.congestion_end()
        homelab.target_back()
        monitor.wait_for_event("up", timeout=10)
        wait_until(lambda: os.path.exists(tmp_path / "subject.txt"), 10, "the report")
        assert monitor.terminate() == 0
    [end] = events(monitor.log, "slow_end")
    [up] = events(monitor.log, "up")
    print("slow period %.3f s, then down %.3f s (%s)" % (end["duration"], up["duration"],
                                                          down["reason"]))
    assert (end["ignored"], end["end"], down["reason"]) == (False, down["start"], "timeout")
    assert wall_time(end["end"]) - wall_time(end["start"]) >= 4
    subject = (tmp_path / "subject.txt").read_text()
    assert ": 1 interruption, " in subject and "; 1 slow period, " in subject
    body = (tmp_path / "report.txt").read_text()
    assert body.index("Total: 1 interruption") < body.index("Slow periods:")
    assert "  an interruption followed\n" in body


def test_a_syn_lost_and_sent_again_is_a_loss_not_a_failure(homelab, tmp_path):
    """Packets to the target vanish for 0.6 s, four times: a round begun then lost its SYN, and
    the kernel's second SYN a second later got through."""
    homelab.start_listener()
    with monitor_in(homelab, tmp_path, "-m", "3") as monitor:
        windows_after(monitor, 1)
        for _ in range(4):
            homelab.target_vanish()
            time.sleep(0.6)                     # holding the fault for a known time
            homelab.target_back()
            time.sleep(2.4)
        windows_after(monitor, 1, since=time.time())
        assert monitor.terminate() == 0
    stats = [figures(event) for event in events(monitor.log, "stats")]
    losses = sum(window["losses"] for window in stats)
    print("stats windows: %s" % [(f["probes"], f["failures"], f["losses"], f["max_ms"])
                                 for f in stats])
    # each 0.6 s caught one or two round starts (rounds every 0.5 s)
    assert 4 <= losses <= 8
    assert all(window["failures"] == 0 for window in stats)
    assert events(monitor.log, "down") == []
    assert events(monitor.log, "slow") == []            # a resent SYN is loss, not slowness
