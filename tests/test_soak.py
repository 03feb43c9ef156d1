"""Soak: random network faults and mail server outages for a bounded time, then check everything.

The program runs in the lab's monitor namespace and mails through the pySendMail stand-in to a
real SMTP server on the namespace's own loopback. A seeded plan (seed printed; set
PYNETCONNMON_SOAK_SEED to replay one) injects faults of random kinds, each either a blip, clearly
shorter than -m, or an outage, clearly longer (by at least two intervals either way, so what must
be reported does not depend on where the rounds fall), with random quiet times between; the SMTP
server is stopped and started at random times meanwhile. At the end the last report is let out and
the monitor is stopped with SIGTERM.

Checked: every outage is in exactly one mail (its row's start within one interval of the fault,
its duration within about one interval of the fault's; the lab's commands can take most of a
second on a loaded machine, and the fault took effect somewhere while its command ran, so that
time is allowed for too), no blip is reported, the process ran all along and stopped with status
0, and its open file descriptors and memory did not grow between the end of the warm-up and the
end.

PYNETCONNMON_SOAK_SECONDS (default 50) is how long the random faults go on; warm-up and the final
report add about 10 s.
"""
import datetime
import os
import random
import re
import threading
import time

import lab_monitor
from harness import events, wait_until
from lab_monitor import process_figures, report_rows, start_monitor, wait_for_accepts
from netlab import TARGET_IP, TARGET_PORT
from smtp_lab import SmtpServer, make_program_dir

SECONDS = float(os.environ.get("PYNETCONNMON_SOAK_SECONDS") or 50)
INTERVAL = 0.5
MIN_INTERRUPTION = 2.0
ARGS = ("-i", "0.5", "-t", "0.5", "-m", "2", "-bmin", "2", "-bstep", "1", "-bmax", "6")
# Held fault durations (s). A blip's interruption is seen as at most one interval longer than the
# fault, an outage's as at most one interval shorter: two intervals of margin either side of -m.
BLIP = (0.2, MIN_INTERRUPTION - 2 * INTERVAL - 0.4)     # a listener takes up to ~0.4 s to restart
OUTAGE = (MIN_INTERRUPTION + 2 * INTERVAL + 0.2, MIN_INTERRUPTION + 2 * INTERVAL + 2.0)
QUIET = (2.0, 3.0)      # > what a row can match (1 s, 1.5 intervals, slack): rows match one fault
BLIP_SHARE = 0.5
SMTP_UP = (2.0, 8.0)
SMTP_DOWN = (1.5, 6.0)
SLACK = 0.1             # the lab notes a change once `ip` has exited; rounds start a few ms late
FD_TOLERANCE = 2
RSS_TOLERANCE_KB = 2048

KINDS = lab_monitor.FAULTS   # name lookups stay out: the soak's target is an address


def soak_seed():
    text = os.environ.get("PYNETCONNMON_SOAK_SEED")
    return int(text) if text else random.SystemRandom().randrange(2 ** 32)


def fault_plan(rng, seconds):
    """[(quiet, kind, hold)]: faults one after another, each after a quiet time, planned to be
    over within `seconds`."""
    plan, at = [], 0.0
    for _ in range(100000):
        quiet = rng.uniform(*QUIET)
        kind = rng.choice(sorted(KINDS))
        hold = rng.uniform(*(BLIP if rng.random() < BLIP_SHARE else OUTAGE))
        at += quiet + hold
        if at > seconds:
            break
        plan.append((quiet, kind, hold))
    return plan


def smtp_plan(rng, seconds):
    """[(stop, hold)]: mail server outages within `seconds` of the start of the phase."""
    plan, at = [], 0.0
    for _ in range(100000):
        at += rng.uniform(*SMTP_UP)
        hold = rng.uniform(*SMTP_DOWN)
        if at + hold > seconds:
            break
        plan.append((at, hold))
        at += hold
    return plan


class Injected:
    """One fault as it happened: monotonic and wall-clock start, duration from the timeline.
    Each change took effect while the lab's command for it ran, so the true duration lies
    between `shortest` and `longest`; `duration` is from the ends of the two commands."""

    def __init__(self, kind, fault, undo, wall_offset):
        self.kind = kind
        (began, self.start), (undo_began, undo_ended) = fault, undo
        self.duration = undo_ended - self.start
        self.shortest = undo_began - self.start
        self.longest = undo_ended - began
        self.wall = self.start + wall_offset
        self.wall_began = began + wall_offset
        if self.longest <= MIN_INTERRUPTION - 2 * INTERVAL:
            self.klass = "blip"
        elif self.shortest >= MIN_INTERRUPTION + 2 * INTERVAL:
            self.klass = "outage"
        else:       # held much longer than planned (a very slow machine): at most one report
            self.klass = "unclear"

    def matches(self, row_start):
        """Could a report row starting at `row_start` (whole seconds) be this fault? The first
        failed round comes within one interval after the fault, and the start reported is the
        middle of the window from the last good probe to that round: up to half an interval
        before the fault."""
        return (row_start < self.wall + INTERVAL + SLACK
                and row_start + 1 > self.wall_began - INTERVAL / 2 - SLACK)

    def __repr__(self):
        return "<%s %s %.2f s (%.2f to %.2f) at %.3f>" % (
            self.klass, self.kind, self.duration, self.shortest, self.longest, self.wall)


def injected_faults(changes, wall_offset):
    """The faults the lab made, each with the next undo of its kind, in order."""
    undo_of = {KINDS[kind][2]: kind for kind in KINDS}
    found, open_faults = [], {}
    for name, began, ended in changes:
        if name in KINDS and name not in open_faults:
            open_faults[name] = (began, ended)
        elif name in undo_of and undo_of[name] in open_faults:
            fault = open_faults.pop(undo_of[name])
            found.append(Injected(undo_of[name], fault, (began, ended), wall_offset))
    return sorted(found, key=lambda fault: fault.start)


def measured(monitor, fault):
    """What the monitor's `up` events near `fault` say it measured (for a failure's message:
    a late round shows in its start window or its end)."""
    return [{key: up.get(key) for key in ("start_after", "start_before", "end", "duration")}
            for up in monitor.events("up")
            if abs(datetime.datetime.fromisoformat(up["start"]).timestamp() - fault.wall) < 3]


def hold_until(deadline, monitor):
    """Hold the current state until `deadline` (monotonic); the monitor must stay alive."""
    assert monitor.returncode is None, "the monitor died:\n" + monitor.output()
    time.sleep(max(0.0, deadline - time.monotonic()))


def run_smtp_outages(server, plan, t0, stop, log, failures):
    """The SMTP plan, in its own thread so that a slow server start never lengthens a fault."""
    try:
        for at, hold in plan:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            server.stop()
            log.append(("smtp_stop", time.monotonic()))
            stop.wait(max(0.0, t0 + at + hold - time.monotonic()))
            server.start()
            log.append(("smtp_start", time.monotonic()))
    except Exception as error:      # shown by the test once the thread is joined
        failures.append(error)


def quiet_figures(pid, samples=5):
    """(fds, VmRSS kB, threads) of a few samples 0.1 s apart: the fewest fds and threads (a
    round holds a socket for a moment, a delivery a thread), the last VmRSS."""
    figures = []
    for _ in range(samples):
        figures.append(process_figures(pid))
        time.sleep(0.1)
    fds, _rss, threads = map(min, zip(*figures))
    return fds, figures[-1][1], threads


def test_soak(netlab, tmp_path, smtp_certificate):
    seed = soak_seed()
    print("soak seed %d (PYNETCONNMON_SOAK_SEED=%d replays it), %g s of faults"
          % (seed, seed, SECONDS))
    rng = random.Random(seed)
    faults, outages_of_smtp = fault_plan(rng, SECONDS), smtp_plan(rng, SECONDS)
    cert, key = smtp_certificate
    server = SmtpServer(tmp_path, cert, key, prefix=netlab.prefix)    # on the monitor's loopback
    accepts = tmp_path / "accepts"
    netlab.start_listener(accept_log=accepts, lifetime=SECONDS + 600)
    stop_smtp, smtp_log, smtp_failures = threading.Event(), [], []
    smtp_thread = None
    try:
        server.start()
        app = make_program_dir(tmp_path / "app", smtp_port=server.port)
        with start_monitor(netlab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT), *ARGS,
                           cwd=app.root) as monitor:
            wall_offset = time.time() - time.monotonic()
            wait_for_accepts(accepts, 2, timeout=10)

            # warm-up: one outage and its report, so that mail is loaded before the baseline
            netlab.vanish()
            hold_until(time.monotonic() + OUTAGE[0] + 0.3, monitor)
            netlab.unvanish()
            monitor.wait_for_event("report_sent", timeout=10)
            before = quiet_figures(monitor.pid)

            t0 = time.monotonic()
            smtp_thread = threading.Thread(target=run_smtp_outages, daemon=True, args=(
                server, outages_of_smtp, t0, stop_smtp, smtp_log, smtp_failures))
            smtp_thread.start()
            for quiet, kind, hold in faults:
                fault, undo = KINDS[kind][:2]
                hold_until(time.monotonic() + quiet, monitor)   # from the end of the last undo
                fault(netlab)
                hold_until(time.monotonic() + hold, monitor)
                undo(netlab)
            stop_smtp.set()
            smtp_thread.join(30)
            assert not smtp_thread.is_alive() and not smtp_failures, smtp_failures
            if not server.running:
                server.start()

            # the end: the network is back, so every outage is reported once the backoff allows
            wait_for_accepts(accepts, 2, timeout=5, since=netlab.log[-1][1])
            counted = [up for up in events(monitor.log, "up") if not up["ignored"]]
            wait_until(lambda: sum(sent["interruptions"] for sent in
                                   events(monitor.log, "report_sent")) >= len(counted),
                       20, "every interruption reported")
            assert monitor.returncode is None, monitor.output()
            after = quiet_figures(monitor.pid)
            assert monitor.terminate() == 0, monitor.output()
    finally:
        stop_smtp.set()
        if smtp_thread is not None:
            smtp_thread.join(30)
        server.stop()

    injected = injected_faults(netlab.changes, wall_offset)
    messages = server.messages()
    rows = [row for message in messages for row in report_rows(message.get_content())]
    klasses = [fault.klass for fault in injected]
    print("%d faults (%d outages, %d blips, %d unclear), %d mail server outages, %d mails with "
          "%d rows, %d mail failures, %d interruptions ignored" % (
              len(injected), klasses.count("outage"), klasses.count("blip"),
              klasses.count("unclear"), [name for name, _ in smtp_log].count("smtp_stop"),
              len(messages), len(rows), len(events(monitor.log, "report_failed")),
              len([up for up in events(monitor.log, "up") if up["ignored"]])))
    print("the lab's commands took up to %.3f s" % max(
        ended - began for _, began, ended in netlab.changes))
    print("fds %d -> %d, VmRSS %d -> %d kB (%+d kB), threads %d -> %d" % (
        before[0], after[0], before[1], after[1], after[1] - before[1], before[2], after[2]))
    seen = {id(fault): 0 for fault in injected}
    for start, _end, duration, _cause, reason in rows:
        candidates = [fault for fault in injected if fault.matches(start)]
        assert len(candidates) == 1, (start, candidates, injected)
        [fault] = candidates
        assert fault.klass != "blip", "blip reported: %r" % fault
        assert reason == KINDS[fault.kind][3], (reason, fault)
        reported = float(re.match(r"^(\d+\.\d) s$", duration).group(1))
        assert fault.shortest - INTERVAL - SLACK - 0.05 <= reported <= \
            fault.longest + INTERVAL + SLACK + 0.05, (duration, fault, measured(monitor, fault))
        seen[id(fault)] += 1
    for fault in injected:
        if fault.klass == "outage":
            assert seen[id(fault)] == 1, "outage reported %d times: %r" % (seen[id(fault)], fault)
        else:
            assert seen[id(fault)] <= 1, fault
    assert after[0] <= before[0] + FD_TOLERANCE
    assert after[1] - before[1] < RSS_TOLERANCE_KB
