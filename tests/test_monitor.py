"""The monitor loop driven by a fake clock, prober and deliverer: no sockets, no sleeping.

Everything the loop does with time goes through the clock and the waker it is handed, so a whole
evening of outages and reports runs here in milliseconds, with exact instants.
"""
import os
import json

import pytest

from pyNetConnMon import (Announcer, Console, DeliveryError, EventLog, Monitor, PendingReports,
                          ProbeResult, ReportBackoff, Reporter, Settings, StateFile, parse_target)

TARGET = parse_target("198.18.0.2:53", 53)
WALL_OFFSET = 1_795_000_000.0     # wall clock = monotonic + this


class FakeClock:
    def __init__(self, wall_offset=WALL_OFFSET):
        self.now = 0.0
        self.wall_offset = wall_offset

    def __call__(self):
        return self.now

    def monotonic(self):
        return self.now

    def wall(self):
        return self.now + self.wall_offset


class FakeWaker:
    """wait() moves the clock; the run ends when the clock reaches `stop_at`."""

    def __init__(self, clock, stop_at):
        self.clock = clock
        self.stop_at = stop_at
        self.reopen_requested = False

    @property
    def stop_signal(self):
        return "SIGTERM" if self.clock.now >= self.stop_at else None

    def wait(self, seconds):
        self.clock.now = min(self.clock.now + seconds, self.stop_at)

    def wake(self):
        pass


class ScriptedProber:
    """The network is down during the given [start, end) spans; a round takes `round_time`."""

    def __init__(self, clock, outages, round_time=0.01, connect_time=0.001):
        self.clock = clock
        self.outages = outages
        self.round_time = round_time
        self.connect_time = connect_time
        self.rounds = []
        self.waits = []         # each round's `wait`: None while up, the time to the next round while down

    def probe_round(self, targets, interrupted=lambda: False, wait=None):
        now = self.clock.now
        self.rounds.append(now)
        self.waits.append(wait)
        down = any(start <= now < end for start, end in self.outages)
        self.clock.now += self.round_time
        return [ProbeResult(target, not down, "refused" if down else None,
                            None if down else self.connect_time) for target in targets]

    def close(self):
        pass


class RecordingDeliverer:
    name = "mail"

    def __init__(self, clock, fail_during=()):
        self.clock = clock
        self.fail_during = fail_during
        self.sent = []        # (instant, subject, body)
        self.attempts = []

    def problem(self):
        return None

    def deliver(self, subject, body):
        self.attempts.append(self.clock.now)
        if any(start <= self.clock.now < end for start, end in self.fail_during):
            raise DeliveryError("SMTP server answered 451 4.3.0 Try again later")
        self.sent.append((self.clock.now, subject, body))


def settings(**overrides):
    values = dict(interval=1.0, timeout=1.0, min_interruption=5.0, backoff_min=60.0,
                  backoff_max=3600.0, backoff_step=300.0, heartbeat=60.0)
    values.update(overrides)
    return Settings(targets=[TARGET], **values)


class Run:
    def __init__(self, tmp_path, outages, stop_at, fail_during=(), state=True,
                 wall_offset=WALL_OFFSET, **overrides):
        self.clock = FakeClock(wall_offset)
        self.prober = ScriptedProber(self.clock, outages)
        self.deliverer = RecordingDeliverer(self.clock, fail_during)
        self.log_path = tmp_path / "events.jsonl"
        self.state = StateFile(str(tmp_path / "state.json")) if state else None
        self.waker = FakeWaker(self.clock, stop_at)
        self.log = EventLog(str(self.log_path))
        config = settings(**overrides)
        backoff = ReportBackoff(config.backoff_min, config.backoff_max, config.backoff_step)
        reporter = Reporter(PendingReports(backoff), self.deliverer, "pi", self.waker.wake,
                            spawn=lambda function: function())
        self.monitor = Monitor(config, Announcer(Console(quiet=True), self.log, config),
                               self.waker, self.prober, clock=self.clock, reporter=reporter,
                               state=self.state)

    def run(self):
        result = self.monitor.run()
        self.log.close()
        return result

    def events(self, name=None):
        events = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [e for e in events if name is None or e["event"] == name]

    def sent_at(self):
        return [round(instant, 2) for instant, _, _ in self.deliverer.sent]


def test_rounds_start_every_interval(tmp_path):
    run = Run(tmp_path, outages=[], stop_at=5.5)
    assert run.run() == "SIGTERM"
    assert run.prober.rounds == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_an_outage_is_one_down_one_up_and_one_report(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=30)
    run.run()
    down, = run.events("down")
    up, = run.events("up")
    assert down["reason"] == "refused" and down["targets"] == {"198.18.0.2:53": "refused"}
    # it began between the answer at 10.001 and the failed round at 11 (taken in the middle);
    # from 11 on rounds come every 0.1 s, and the one at 20.5 connected after 1 ms
    assert up["duration"] == 10.001
    assert up["ignored"] is False
    assert up["start"] == down["start"]
    assert run.sent_at() == [20.51]     # right after the first good round
    _, subject, body = run.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 interruption, 10.0 s of downtime"
    assert "refused" in body
    sent, = run.events("report_sent")
    assert (sent["interruptions"], sent["next_wait"]) == (1, 60.0)


def test_a_blip_is_logged_ignored_and_never_reported(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 13.5)], stop_at=30)
    run.run()
    up, = run.events("up")
    assert (up["duration"], up["ignored"]) == (3.001, True)     # 13.501 - 10.5005
    assert run.deliverer.attempts == []


def test_outages_during_the_wait_are_batched_into_the_next_report(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 20.5), (30.5, 40.5), (50.5, 60.5), (100.5, 110.5)],
              stop_at=500)
    run.run()
    # 1st at once; the next may go 60 s later (81), with two outages; then 360 s later (441)
    assert run.sent_at() == [20.51, 81.01, 441.01]
    assert [e["interruptions"] for e in run.events("report_sent")] == [1, 2, 1]
    assert [e["next_wait"] for e in run.events("report_sent")] == [60.0, 360.0, 660.0]


def test_no_report_goes_out_while_the_network_is_down(tmp_path):
    # outage 2 starts before the wait after report 1 is over, and lasts past it
    run = Run(tmp_path, outages=[(10.5, 20.5), (30.5, 40.5), (70.5, 100.5)], stop_at=200)
    run.run()
    assert run.sent_at() == [20.51, 100.51]
    assert [e["interruptions"] for e in run.events("report_sent")] == [1, 2]


def test_a_failed_delivery_is_retried_every_bmin_and_sent_once(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=300, fail_during=[(0, 150)])
    run.run()
    assert [round(t, 2) for t in run.deliverer.attempts] == [20.51, 81.01, 141.01, 201.01]
    assert run.sent_at() == [201.01]
    assert len(run.events("report_failed")) == 3
    assert run.events("report_failed")[0]["reason"] == "SMTP server answered 451 4.3.0 Try again later"
    sent, = run.events("report_sent")
    assert sent["next_wait"] == 60.0     # the failures did not advance the backoff


def test_heartbeat_is_written_every_heartbeat_seconds_even_while_rounds_overrun(tmp_path):
    run = Run(tmp_path, outages=[], stop_at=130, heartbeat=60.0)
    run.prober.round_time = 1.5          # every round overruns the 1 s interval
    beats = []
    original = run.state.save

    def save(data):
        beats.append(round(run.clock.now, 1))
        original(data)

    run.state.save = save
    run.run()
    assert beats[0] == 0.0              # at start
    assert [b for b in beats[1:-1]] == [60.0, 120.0]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["clean_stop"] is True and saved["pending"] == []


def test_stopping_while_down_keeps_the_outage_as_cut_short(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 1000)], stop_at=30)
    run.run()
    stop, = run.events("stop")
    assert stop["down_since"] == run.events("down")[0]["start"]
    saved = json.loads((tmp_path / "state.json").read_text())
    pending, = saved["pending"]
    # from the middle of 10.001 (the last answer) and 11 (the first failed round) to the stop
    assert (pending["cut_short"], round(pending["duration"], 4), pending["reason"]) == (
        True, 19.4995, "refused")


def test_a_report_pending_at_stop_goes_out_after_a_restart(tmp_path):
    first = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=40, fail_during=[(0, 1000)])
    first.run()
    assert first.sent_at() == []
    # restarted (a new boot: monotonic clock from 0) ten minutes later
    second = Run(tmp_path, outages=[], stop_at=10, wall_offset=WALL_OFFSET + 600)
    second.run()
    assert second.sent_at() == [0.01]
    assert "1 interruption" in second.deliverer.sent[0][1]
    assert second.events("gap") == []       # the first run stopped cleanly


@pytest.mark.parametrize("stopped_cleanly", [True, False])
def test_a_run_that_did_not_stop_cleanly_leaves_a_gap(tmp_path, stopped_cleanly):
    state = StateFile(str(tmp_path / "state.json"))
    state.save({"format": 1, "pending": [], "next_id": 1, "heartbeat": WALL_OFFSET - 600.0,
                "clean_stop": stopped_cleanly, "down": None,
                "backoff": {"wait": None, "last_sent": None, "last_failed": None}})
    run = Run(tmp_path, outages=[], stop_at=5)
    run.run()
    gaps = run.events("gap")
    if stopped_cleanly:
        assert gaps == [] and run.sent_at() == []
        return
    gap, = gaps
    assert (gap["duration"], gap["ignored"]) == (600.0, False)
    _, subject, body = run.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 interruption, 10 min of downtime"
    assert "gap: the monitor was not running (no clean stop)" in body


def test_a_full_disk_under_the_event_log_warns_once_and_monitoring_goes_on(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    warnings = []
    log = EventLog("/dev/full", warn=warnings.append)
    for second in range(3):
        log.write("down", WALL_OFFSET + second, start="x", reason="timeout", targets={})
    log.close()
    assert warnings == ["cannot write event log /dev/full: [Errno 28] No space left on device; "
                        "monitoring goes on, events are lost until it works again"]


def test_an_outage_ends_when_the_connect_got_through_not_when_its_round_began(tmp_path):
    """A SYN lost in the outage is resent by the kernel 1 s into the round; it gets through,
    but the network was down until then. (Rounds every second while down too: --down-interval 1.)"""
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=30, down_interval=1.0)
    original = run.prober.probe_round

    def slow_recovery(targets, interrupted=lambda: False, wait=None):
        results = original(targets, interrupted, wait=wait)
        if run.prober.rounds[-1] == 20.0:      # the round began during the outage ...
            results = [ProbeResult(r.target, True, None, 0.9) for r in results]   # ... got through
        return results

    run.prober.probe_round = slow_recovery
    run.run()
    up, = run.events("up")
    assert up["duration"] == 10.399     # from 10.5005 (the middle of 10.001 and 11) to 20 + 0.9
