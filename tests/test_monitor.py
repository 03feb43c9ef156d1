"""The monitor loop driven by a fake clock, prober and deliverer: no sockets, no sleeping.

Everything the loop does with time goes through the clock and the waker it is handed, so a whole
evening of outages and reports runs here in milliseconds, with exact instants.
"""
import errno
import json
import os

import pytest

from fakes import FAILURE, WALL_OFFSET, CancellableDeliverer, Crash, Run
from pyNetConnMon import EventLog, ProbeResult, StateFile

# A report's rows under TZ=UTC: the round at 11 s is 11:06:51 on the wall clock (WALL_OFFSET).
HEADER = "start                end                      duration  cause     reason"


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
    assert ("UP after 3.0 s: shorter than 5 s, ignored (it lasted 2.4 s to 3.5 s)"
            in run.console_lines())
    assert run.deliverer.attempts == []
    assert not {"report_sent", "report_failed"} & {e["event"] for e in run.events()}
    assert run.saved_state()["pending"] == []


def test_outages_during_the_wait_are_batched_into_the_next_report(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 20.5), (30.5, 40.5), (50.5, 60.5), (100.5, 110.5)],
              stop_at=500)
    run.run()
    # 1st at once; the next may go 60 s later (81), with two outages; then 360 s later (441)
    assert run.sent_at() == [20.51, 81.01, 441.01]
    assert [e["interruptions"] for e in run.events("report_sent")] == [1, 2, 1]
    assert [e["next_wait"] for e in run.events("report_sent")] == [60.0, 360.0, 660.0]


def test_a_batched_report_lists_each_outage_and_their_total(tmp_path, utc):
    run = Run(tmp_path, outages=[(10.5, 20.5), (30.5, 40.5), (50.5, 60.5)], stop_at=100)
    run.run()
    _, subject, body = run.deliverer.sent[1]
    assert subject == "pyNetConnMon on pi: 2 interruptions, 20.0 s of downtime"
    assert body == (
        "pyNetConnMon on pi saw 2 interruptions (20.0 s of downtime in total).\n"
        "\n"
        "Host:    pi\n"
        "Targets: 198.18.0.2:53\n"
        "Times:   local time of pi (UTC)\n"
        "\n"
        + HEADER + "\n"
        "2026-11-18 11:07:10  2026-11-18 11:07:20        10.0 s  unknown   refused\n"
        "2026-11-18 11:07:30  2026-11-18 11:07:40        10.0 s  unknown   refused\n"
        "\n"
        "unknown: where it broke cannot be told: no router was probed (every target is on "
        "this machine, --gateway none, or none in the routing table), or it had not answered a "
        "probe since the monitor started or since it became the router, or it had stopped "
        "answering while the targets still did (see --gateway).\n"
        "\n"
        "Total: 2 interruptions, 20.0 s of downtime.\n"
        "\n"
        "What the reasons mean:\n"
        "- refused: the target's machine answered at once that nothing takes connections on that "
        "port: the way there worked, but the service was stopped (or a router answered for a "
        "target it could not reach).\n")


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
    assert run.events("report_failed")[0]["reason"] == FAILURE
    sent, = run.events("report_sent")
    assert sent["next_wait"] == 60.0     # the failures did not advance the backoff
    warnings = [line for line in run.console_lines() if line.startswith("WARNING")]
    assert warnings == ["WARNING report not delivered: %s; retrying in 1 min" % FAILURE] * 3
    assert run.saved_state()["pending"] == []


def saves_of(run):
    """The clock's instants of the run's state-file saves, as they happen."""
    saved = []
    original = run.state.save

    def save(data):
        saved.append(run.clock.now)
        original(data)

    run.state.save = save
    return saved


def test_a_failed_delivery_does_not_rewrite_the_state_file(tmp_path):
    """While mail fails, the file is written at each heartbeat, not also after every retry: on
    an SD card, a long backlog made each retry a write of up to a megabyte."""
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=300, fail_during=[(0, 150)])
    saved = saves_of(run)
    run.run()
    assert run.deliverer.attempts[1:3] == pytest.approx([81.01, 141.01])     # failed
    # the start, the down and the up, heartbeats 60 s after each save, the accepted report, the stop
    assert [round(instant, 2) for instant in saved] == \
        [0.0, 11.01, 20.51, 80.51, 140.51, 200.51, 201.01, 261.01, 300.0]


def test_heartbeat_is_written_every_heartbeat_seconds_even_while_rounds_overrun(tmp_path):
    run = Run(tmp_path, outages=[], stop_at=130, heartbeat=60.0)
    run.prober.round_time = 1.5          # every round overruns the 1 s interval
    saved = saves_of(run)
    run.run()
    beats = [round(instant, 1) for instant in saved]
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


def test_a_report_pending_at_stop_goes_out_after_a_restart(tmp_path, utc):
    first = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=40, fail_during=[(0, 1000)])
    first.run()
    assert first.sent_at() == []
    assert first.console_lines()[-1] == "stopped (SIGTERM); 1 interruption still to report"
    saved = first.saved_state()
    assert saved["clean_stop"] is True
    assert [item["reason"] for item in saved["pending"]] == ["refused"]
    # restarted (a new boot: monotonic clock from 0) ten minutes later
    second = Run(tmp_path, outages=[], stop_at=10, wall_offset=WALL_OFFSET + 600)
    second.run()
    assert "1 interruption from the previous run still to report" in second.console_lines()
    assert second.sent_at() == [0.01]
    _, subject, body = second.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 interruption, 10.0 s of downtime"
    assert "2026-11-18 11:06:50  2026-11-18 11:07:00        10.0 s  unknown   refused\n" in body
    assert len(second.events("report_sent")) == 1
    assert second.saved_state()["pending"] == []
    assert second.events("gap") == []       # the first run stopped cleanly
    assert not [line for line in second.console_lines() if "GAP" in line or "gap" in line]


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
    assert subject == "pyNetConnMon on pi: 1 gap (10 min) when the monitor was not running"
    assert "gap: the monitor was not running (no clean stop)" in body


def test_a_full_disk_under_the_event_log_warns_once_and_monitoring_goes_on(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    warnings = []
    log = EventLog("/dev/full", warn=warnings.append)
    for second in range(3):
        log.write("down", WALL_OFFSET + second, start="x", reason="timeout", targets={})
    log.close()
    assert warnings == [
        "cannot write event log /dev/full: [Errno 28] No space left on device; monitoring goes "
        "on, and the latest 1000 events wait until it works again",
        "event log /dev/full still cannot be written: the 3 events that waited for it are lost"]


def failing_saves(run, failing):
    """run.state.save raising ENOSPC while failing(instant) holds; the instants tried."""
    tried = []
    original = run.state.save

    def save(data):
        tried.append(round(run.clock.now, 1))
        if failing(run.clock.now):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(data)

    run.state.save = save
    return tried


def test_a_state_file_that_cannot_be_written_is_said_once_and_again_when_it_works(tmp_path):
    run = Run(tmp_path, outages=[], stop_at=250, heartbeat=60.0)
    tried = failing_saves(run, lambda now: 50 <= now < 190)     # a disk full for a while
    run.run()
    assert tried == [0.0, 60.0, 120.0, 180.0, 240.0, 250.0]
    path = tmp_path / "state.json"
    assert [line for line in run.console_lines() if line.startswith(("ERROR", "WARNING"))] == [
        "ERROR cannot write state file %s: [Errno 28] No space left on device; monitoring goes "
        "on, and the file is tried again at every heartbeat" % path,
        "WARNING state file %s is writable again" % path]
    assert run.saved_state()["clean_stop"] is True


def test_a_state_file_still_unwritable_at_stop_says_what_is_lost(tmp_path):
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=130, heartbeat=60.0,
              fail_during=[(0, 1000)])                          # the report waits
    failing_saves(run, lambda now: now >= 50)
    run.run()
    path = tmp_path / "state.json"
    errors = [line for line in run.console_lines() if line.startswith("ERROR")]
    assert errors == [
        "ERROR cannot write state file %s: [Errno 28] No space left on device; monitoring goes "
        "on, and the file is tried again at every heartbeat" % path,
        "ERROR cannot write state file %s: [Errno 28] No space left on device; what changed "
        "since its last save is lost" % path]
    assert run.saved_state()["clean_stop"] is False           # as last saved, at 20.5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("state.json.tmp")] == []


def test_a_failed_save_leaves_no_temporary_file_and_the_old_state_in_place(tmp_path,
                                                                          monkeypatch):
    state = StateFile(str(tmp_path / "state.json"))
    state.save({"kept": 1})

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        state.save({"kept": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert json.loads((tmp_path / "state.json").read_text()) == {"kept": 1}


def test_an_outage_ends_when_the_connect_got_through_not_when_its_round_began(tmp_path):
    """A SYN lost in the outage is resent by the kernel 1 s into the round; it gets through,
    but the network was down until then. (Rounds every second while down too: --down-interval 1.)"""
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=30, down_interval=1.0)
    original = run.prober.probe_round

    def slow_recovery(targets, interrupted=lambda: False, gateway=None, wait=None):
        results = original(targets, interrupted, gateway, wait=wait)
        if run.prober.rounds[-1] == 20.0:      # the round began during the outage ...
            # ... got through
            results.targets = [ProbeResult(r.target, True, None, 0.9) for r in results.targets]
        return results

    run.prober.probe_round = slow_recovery
    run.run()
    up, = run.events("up")
    assert up["duration"] == 10.399     # from 10.5005 (the middle of 10.001 and 11) to 20 + 0.9


def test_a_monitor_that_died_leaves_a_gap_from_its_last_heartbeat_to_the_restart(tmp_path, utc):
    """kill -9 or a power cut: no stop, so the state file still says the run is going on."""
    first = Run(tmp_path, outages=[], stop_at=1000, crash_at=100)
    with pytest.raises(Crash):
        first.run()
    assert first.saved_state()["clean_stop"] is False
    assert first.saved_state()["heartbeat"] == WALL_OFFSET + 60     # the last one before 100
    # back 540 s after that heartbeat (a new boot: monotonic clock from 0)
    second = Run(tmp_path, outages=[], stop_at=10, wall_offset=WALL_OFFSET + 600)
    second.run()
    gap, = second.events("gap")
    assert (gap["duration"], gap["ignored"]) == (540.0, False)
    assert ("GAP: the previous run did not stop cleanly; the monitor was not running for 9 min "
            "since 2026-11-18 11:07:40") in second.console_lines()
    assert second.sent_at() == [0.01]
    # the console says what the report tells of: a gap, not an interruption
    assert "report sent (1 gap) by mail; next report no sooner than in 1 min" in \
        second.console_lines()
    _, subject, body = second.deliverer.sent[0]
    assert subject == "pyNetConnMon on pi: 1 gap (9 min) when the monitor was not running"
    assert ("Total: no interruption while the monitor ran.\n"
            "Besides, 1 gap (9 min) was a time the monitor itself was not running, e.g. a "
            "crash or a power cut: the connection may or may not have been up then.\n") in body
    assert ("2026-11-18 11:07:40  2026-11-18 11:16:40         9 min  -         gap: the monitor "
            "was not running (no clean stop)\n") in body


def test_a_corrupt_state_file_is_moved_aside_and_the_monitor_runs_afresh(tmp_path):
    garbage = b'\x00\xff{"format": 1, "pending": [\xfe garbage'
    (tmp_path / "state.json").write_bytes(garbage)
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=30)
    run.run()
    aside, = tmp_path.glob("state.json.corrupt-*")
    assert aside.read_bytes() == garbage
    warning, = [line for line in run.console_lines() if line.startswith("WARNING")]
    assert warning.startswith("WARNING state file %s could not be used ("
                              % (tmp_path / "state.json"))
    assert warning.endswith("); moved it to %s and started afresh" % aside)
    assert run.saved_state()["format"] == 1
    assert run.sent_at() == [20.51]


def test_a_report_accepted_while_stopping_is_not_kept_pending(tmp_path):
    # the report goes out at 20.51 and takes 0.2 s; SIGTERM comes in between, at 20.6
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=20.6, delivery_time=0.2)
    run.run()
    assert run.sent_at() == [20.75]      # seen done at the stop's first wait past 20.71
    assert len(run.events("report_sent")) == 1
    assert run.saved_state()["pending"] == []
    assert run.console_lines()[-1] == "stopped (SIGTERM)"


def test_a_notify_command_killed_at_the_stop_says_the_report_waits_for_the_next_start(tmp_path):
    # the command starts at 20.51; SIGTERM at 20.6; killed at 21.1, it ends at 21.11
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=20.6, delivery_time=0.6,
              deliverer=CancellableDeliverer)
    run.run()
    assert run.console_lines()[-2:] == [
        "WARNING report not delivered: notify command was killed by SIGKILL; the monitor is "
        "stopping: it waits in the state file for the next start",
        "stopped (SIGTERM); 1 interruption still to report"]
    [failed] = run.events("report_failed")
    assert "retry_in" not in failed and len(run.saved_state()["pending"]) == 1


def test_a_notify_command_still_running_at_stop_is_cancelled_and_retried_after_restart(tmp_path):
    # the command starts at 20.51 and would take 1.5 s; SIGTERM comes at 20.6
    run = Run(tmp_path, outages=[(10.5, 20.5)], stop_at=20.6, delivery_time=1.5,
              deliverer=CancellableDeliverer)
    run.run()
    # waited 0.5 s for the command, cancelled it, waited 0.5 s more: did not sit it out
    assert round(run.deliverer.cancelled_at, 2) == 21.1
    assert round(run.clock.now, 2) == 21.6
    assert run.deliverer.sent == []
    assert run.console_lines()[-1] == "stopped (SIGTERM); 1 interruption still to report"
    assert len(run.saved_state()["pending"]) == 1
    again = Run(tmp_path, outages=[], stop_at=10, wall_offset=WALL_OFFSET + 600)
    again.run()
    assert again.sent_at() == [0.01]
    assert again.saved_state()["pending"] == []
