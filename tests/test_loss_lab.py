"""Lossy and slow, not down: the program in the home lab while the line loses SYNs or is slow.

The fault sits between the home lab's router and the Internet (tests/homelab.py): a lossy, slow
wire in user space (tests/lab/lossywire.py, this kernel has no netem) carries the traffic between
the router and the two targets, so the router itself still answers and causes still work. Its
loss is set towards the targets only (`loss_ab`): what it drops are the SYNs (and the ACKs after
them), which its --syn-log records with their times, so the loss in any stretch is measured
independently of the program. Each change of the wire is on that log too, with the instant it
took hold.

Six scenarios run at once, each in a home lab and with a wire of its own, so that the whole
takes about two and a half minutes of lab time: 30 % and 60 % SYN loss for 75 s; a clean line at
20 ms +- 5 ms for two minutes; 20 ms -> 200 ms for a minute; 600 ms from the start; a 12 s
outage inside a lossy stretch. The monitor runs at the defaults (--slow 1000 or 4x, --loss 10,
-m 5, -t 2) but -i 0.5, which makes its loss window (30 rounds) 15 s.
"""
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import events, start_monitor, wait_until, wall_time
from homelab import LAN, TARGET_IP, TARGET_IP2, TARGET_PORT, HomeLab, homelab_support
from netlab import READY_TIMEOUT, _ip, _stop_process, _wait_for_line

import pytest

WIRE = Path(__file__).resolve().parent / "lab" / "lossywire.py"
WIRE_ENDS = ("198.18.7.1", "198.18.7.2")       # the wire's own addresses (router, Internet)
TARGETS = ["%s:%d" % (address, TARGET_PORT) for address in (TARGET_IP, TARGET_IP2)]
ARGS = ("-a", TARGETS[0], "-a", TARGETS[1], "-i", "0.5", "--no-mail")
SLACK = 20.0        # s: a lossy period starts and ends within this of the fault
POINTS = 12.0       # its loss_percent is within this of the loss measured on the wire


class LossyUplink:
    """lossywire between the router and the Internet of `lab`, carrying the traffic to and from
    the targets; `set()` changes it while it runs and returns the instant the change took hold
    (wall clock, from the wire's own log)."""

    def __init__(self, lab, folder, seed, **line):
        self.control = folder / "wire.ctl"
        self.syn_log = folder / "syns.jsonl"
        self.control.write_text("")
        self.changes = 0
        self.errors = open(folder / "wire.err", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(WIRE), lab.router_ns, WIRE_ENDS[0], lab.target_ns, WIRE_ENDS[1],
             "--seed", str(seed), "--control", str(self.control), "--syn-log", str(self.syn_log),
             "--duration", "600"] + ["--%s=%g" % item for item in line.items()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        if not _wait_for_line(self.process.stdout, "lossywire ready", READY_TIMEOUT):
            self.stop()
            raise AssertionError("lossywire did not start: %s" % (folder / "wire.err").read_text())
        # it reads its (empty) control file once it runs, and logs that as its first change
        wait_until(self._controls, READY_TIMEOUT, "the wire reading its control file")
        self.changes = 1
        for target in (TARGET_IP, TARGET_IP2):
            _ip("-n", lab.router_ns, "route", "replace", target + "/32", "dev", "lw0")
        _ip("-n", lab.target_ns, "route", "replace", LAN, "dev", "lw0")

    def _entries(self):
        if not self.syn_log.exists():
            return []
        return [json.loads(line) for line in self.syn_log.read_text().splitlines()
                if line.endswith("}")]

    def _controls(self):
        return [entry for entry in self._entries() if "control" in entry]

    def set(self, **values):
        self.changes += 1
        self.control.write_text(" ".join("%s=%g" % item for item in values.items())
                                + " step=%d\n" % self.changes)
        return wait_until(lambda: len(self._controls()) > self.changes - 1
                          and self._controls()[self.changes - 1]["t"], 5, "the wire's change")

    def loss_between(self, start, end):
        """% of the SYNs towards the targets in [start, end) (wall clock) that it dropped, and
        how many it took."""
        syns = [entry["dropped"] for entry in self._entries()
                if entry.get("dir") == "ab" and start <= entry["t"] < end]
        return (100.0 * sum(syns) / len(syns) if syns else None), len(syns)

    def stop(self):
        _stop_process(self.process)
        self.errors.close()


class Scenario(threading.Thread):
    """One home lab, its wire and its monitor, driven by `steps(wire, monitor, timeline)` in a
    thread of its own; `timeline` gets the instants the faults took hold. Everything is torn
    down at its end, whatever happened; an exception is kept for the test to raise."""

    def __init__(self, name, tmp_path, seed, steps, **line):
        super().__init__(name=name, daemon=True)
        self.folder = tmp_path / name
        self.folder.mkdir()
        self.seed, self.steps, self.line = seed, steps, line
        self.timeline, self.error, self.log, self.lines = {}, None, None, []
        self.wire_loss = None

    def run(self):
        lab = wire = None
        try:
            lab = HomeLab()
            lab.start_listener()
            wire = LossyUplink(lab, self.folder, self.seed, **self.line)
            with start_monitor(self.folder, *ARGS, prefix=lab.prefix) as monitor:
                self.log = monitor.log
                self.steps(wire, monitor, self.timeline)
                assert monitor.terminate() == 0
                self.lines = monitor.stdout_lines
            self.wire_loss = wire.loss_between
        except BaseException as error:       # kept for the test: a thread cannot raise it
            self.error = error
        finally:
            if wire is not None:
                wire.stop()
            if lab is not None:
                lab.destroy()

    def events(self, name):
        return events(self.log, name)


def hold(seconds):
    time.sleep(seconds)              # holding the line as it is for a known time


def lossy_stretch(percent):
    def steps(wire, monitor, timeline):
        hold(15)
        timeline["fault"] = wire.set(loss_ab=percent)
        hold(75)
        timeline["undo"] = wire.set(loss_ab=0)
        monitor.wait_for_event("lossy_end", timeout=45)
    return steps


def clean_for(seconds):
    def steps(wire, monitor, timeline):
        hold(seconds)
    return steps


def jump_to_200_ms(wire, monitor, timeline):
    hold(65)                         # the usual is known after a minute (USUAL_SLOT)
    timeline["fault"] = wire.set(delay=100)
    hold(60)
    timeline["undo"] = wire.set(delay=10)
    monitor.wait_for_event("slow_end", timeout=10)
    hold(3)


def outage_inside_lossy_stretch(wire, monitor, timeline):
    hold(10)
    timeline["fault"] = wire.set(loss_ab=30)
    hold(25)
    timeline["outage"] = wire.set(loss_ab=100)
    hold(12)
    timeline["outage_end"] = wire.set(loss_ab=30)
    hold(25)
    timeline["undo"] = wire.set(loss_ab=0)
    wait_until(lambda: len(events(monitor.log, "lossy_end")) >= 2
               and wall_time(events(monitor.log, "lossy_end")[-1]["start"])
               > timeline["outage_end"] and events(monitor.log, "lossy_end"), 45,
               "the lossy period after the outage to end")


def check_lossy_period(scenario, percent):
    """One lossy period of the fault's length and loss; returns its figures for the print."""
    [began] = scenario.events("lossy")
    [ended] = scenario.events("lossy_end")
    start, end = wall_time(ended["start"]), wall_time(ended["end"])
    truth, syns = scenario.wire_loss(start, end)
    fault, undo = scenario.timeline["fault"], scenario.timeline["undo"]
    print("%d %% SYN loss for %.1f s: lossy from %+.1f s to %+.1f s of the fault, %s %% of %d "
          "SYNs lost (%d per target: %s); on the wire %.1f %% of %d" % (
              percent, undo - fault, start - fault, end - undo, ended["loss_percent"],
              ended["sent"], len(ended["targets"]), ended["targets"], truth, syns))
    assert began["start"] == ended["start"] and ended["ignored"] is False
    assert abs(start - fault) <= SLACK and abs(end - undo) <= SLACK
    assert abs(ended["loss_percent"] - truth) <= POINTS
    assert sorted(ended["targets"]) == sorted(TARGETS)
    assert [event for event in scenario.events("up") if not event["ignored"]] == []


def test_lossy_and_slow_periods_in_the_home_lab(tmp_path):
    ok, reason = homelab_support()
    if not ok:
        pytest.skip(reason)
    scenarios = [
        Scenario("loss30", tmp_path, 1, lossy_stretch(30)),
        Scenario("loss60", tmp_path, 2, lossy_stretch(60)),
        Scenario("jitter", tmp_path, 3, clean_for(120), delay=7.5, jitter=5),
        Scenario("jump", tmp_path, 4, jump_to_200_ms, delay=10),
        Scenario("satellite", tmp_path, 5, clean_for(120), delay=300),
        Scenario("outage", tmp_path, 6, outage_inside_lossy_stretch),
    ]
    for scenario in scenarios:
        scenario.start()
    for scenario in scenarios:
        scenario.join(300)
        assert not scenario.is_alive(), scenario.name
    for scenario in scenarios:
        if scenario.error is not None:
            raise AssertionError("%s: %r" % (scenario.name, scenario.error)) from scenario.error
    by_name = {scenario.name: scenario for scenario in scenarios}

    check_lossy_period(by_name["loss30"], 30)
    check_lossy_period(by_name["loss60"], 60)

    jitter = by_name["jitter"]
    stats = jitter.events("stats")
    print("20 ms +- 5 ms: stats windows (median, jitter): %s" % [
        [(figures["median_ms"], figures["jitter_ms"]) for figures in event["targets"].values()]
        for event in stats])
    assert jitter.events("lossy") == jitter.events("slow") == jitter.events("down") == []
    assert stats and all(15 <= figures["median_ms"] <= 30 and 0 < figures["jitter_ms"] <= 10
                         for event in stats for figures in event["targets"].values())

    jump = by_name["jump"]
    [slow] = jump.events("slow")
    [end] = jump.events("slow_end")
    fault, undo = jump.timeline["fault"], jump.timeline["undo"]
    print("20 -> 200 ms for %.1f s: slow from %+.1f s to %+.1f s of it, median %s ms" % (
        undo - fault, wall_time(slow["start"]) - fault, wall_time(end["end"]) - undo,
        end["median_ms"]))
    assert end["ignored"] is False and 150 <= end["median_ms"] <= 300
    assert abs(wall_time(slow["start"]) - fault) <= 2 and abs(wall_time(end["end"]) - undo) <= 2
    assert jump.events("lossy") == []

    satellite = by_name["satellite"]
    [first_stats] = satellite.events("stats")[:1] or [None]
    print("600 ms from the start: stats %s" % (first_stats and first_stats["targets"]))
    assert satellite.events("slow") == satellite.events("lossy") == []
    assert first_stats and all(550 <= figures["median_ms"] <= 700
                               for figures in first_stats["targets"].values())

    outage = by_name["outage"]
    [up] = [event for event in outage.events("up") if not event["ignored"]]
    down_start, down_end = wall_time(up["start"]), wall_time(up["end"])
    periods = [event for event in outage.events("lossy_end") if not event["ignored"]]
    print("12 s outage in a lossy stretch: interruption %+.1f s to %+.1f s of it (%s), lossy "
          "periods %s" % (down_start - outage.timeline["outage"],
                          down_end - outage.timeline["outage_end"], up["cause"],
                          [(round(wall_time(e["start"]) - outage.timeline["fault"], 1),
                            round(wall_time(e["end"]) - outage.timeline["fault"], 1),
                            e["loss_percent"], outage.wire_loss(wall_time(e["start"]),
                                                                wall_time(e["end"]))[0])
                           for e in periods]))
    assert abs(up["duration"] - 12) <= 3 and up["cause"] == "provider"
    assert len(periods) == 2
    before, after = periods
    assert before["end"] == up["start"] and wall_time(after["start"]) >= down_end
    for period in periods:
        truth, _ = outage.wire_loss(wall_time(period["start"]), wall_time(period["end"]))
        assert abs(period["loss_percent"] - truth) <= POINTS


def heavy_loss(seconds):
    def steps(wire, monitor, timeline):
        hold(5)
        timeline["fault"] = wire.set(loss=50)
        hold(seconds)                # stopped while lossy, before the usual's first minute ends
    return steps


def test_heavy_loss_alone_is_a_lossy_period_and_no_slow_one(tmp_path):
    """Half the packets lost both ways, 20 ms +- 10 ms each way: most connects wait a second
    (or two) for a SYN sent again. That is loss, not slowness: a lossy period, no slow period,
    and a jitter of the line's, not of the resends."""
    ok, reason = homelab_support()
    if not ok:
        pytest.skip(reason)
    scenario = Scenario("loss50", tmp_path, 8, heavy_loss(45), delay=20, jitter=10)
    scenario.start()
    scenario.join(150)
    assert not scenario.is_alive()
    if scenario.error is not None:
        raise AssertionError(repr(scenario.error)) from scenario.error
    [began] = scenario.events("lossy")
    [ended] = scenario.events("lossy_end")
    stats = scenario.events("stats")[-1]["targets"]
    truth, syns = scenario.wire_loss(wall_time(ended["start"]), wall_time(ended["end"]))
    print("50 %% loss both ways for 45 s: lossy from %+.1f s of it, %s %% of %d SYNs lost (the "
          "wire dropped %.1f %% of %d towards the targets); slow events %d; stats %s" % (
              wall_time(began["start"]) - scenario.timeline["fault"], ended["loss_percent"],
              ended["sent"], truth, syns, len(scenario.events("slow")), stats))
    assert scenario.events("slow") == scenario.events("slow_end") == []
    assert not any(" SLOW " in line for line in scenario.lines)
    assert ended["ignored"] is False and ended["loss_percent"] >= 30
    # connects that waited a second for a resent SYN were there, and are not jitter
    assert all(figures["max_ms"] >= 1000 and figures["jitter_ms"] < 50
               for figures in stats.values())
