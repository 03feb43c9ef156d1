"""Fakes for driving the monitor loop without sockets, threads or sleeping, and `Run`, which
builds a Monitor from them.

Everything the loop does with time goes through the FakeClock and the FakeWaker it is handed, so
a whole evening of outages and reports runs in milliseconds, with exact instants. Jobs the
monitor hands to the background (report deliveries) run in line, or, with `delivery_time`,
that many fake seconds later while the loop waits, as a delivery thread would; pings are
answered that way too (FakePingSender).
"""
import io
import json
import select

from pyNetConnMon import (Announcer, Console, DeliveryError, EventLog, Gateway, MetricsBoard,
                          MetricsSnapshot, Monitor, PendingReports, Pinger, PingSchedule,
                          PingSender, ProbeResult, Prober, ReportBackoff, Reporter,
                          ROUTES_RECHECK, RoundInterpreter, RoundResults, Settings, StateFile,
                          parse_target)

TARGET = parse_target("198.18.0.2:53", 53)
WALL_OFFSET = 1_795_000_000.0     # wall clock = monotonic + this
FAILURE = "SMTP server answered 451 4.3.0 Try again later"


class FakeClock:
    """The monotonic clock (call it) and the wall clock (wall()), moved by hand or by waits."""

    def __init__(self, wall_offset=WALL_OFFSET, steps=(), boot=None):
        self.now = 0.0
        self.wall_offset = wall_offset
        self.steps = sorted(steps)  # (monotonic instant, s): the wall clock set forward by s then
        self.boot_at_start = boot   # (boot id, seconds since the boot at 0), or None: not told

    def boot(self):
        if self.boot_at_start is None:
            return None
        boot_id, seconds = self.boot_at_start
        return boot_id, seconds + self.now

    def __call__(self):
        return self.now

    monotonic = __call__

    def wall(self):
        return self.now + self.wall_offset + sum(step for at, step in self.steps if self.now >= at)


class FakeWaker:
    """wait() moves the clock, never past `stop_at` until the stop has come; from `stop_at` on,
    stop_signal is "SIGTERM". After each wait the callables in `background` run (jobs that
    finish while the loop waits)."""

    def __init__(self, clock, stop_at):
        self.clock = clock
        self.stop_at = stop_at
        self.reopen_requested = False
        self.background = []

    @property
    def stop_signal(self):
        return "SIGTERM" if self.clock.now >= self.stop_at else None

    def wait(self, seconds):
        later = self.clock.now + seconds
        self.clock.now = later if self.clock.now >= self.stop_at else min(later, self.stop_at)
        for job in self.background:
            job()

    def wake(self):
        pass


class Crash(Exception):
    """The monitor process died here (kill -9, power cut): it never got to its stop."""


class ScriptedProber:
    """The network is down during the given [start, end) spans; a round takes `round_time`, and
    a connect that gets through `connect_time`. From `crash_at` on, a round raises Crash.
    `waits` keeps each round's `wait` (None while up; while down, the time to the next round)."""

    def __init__(self, clock, outages, round_time=0.01, crash_at=None, connect_time=0.001):
        self.clock = clock
        self.outages = outages
        self.round_time = round_time
        self.crash_at = crash_at
        self.connect_time = connect_time
        self.rounds = []
        self.waits = []

    def probe_round(self, targets, interrupted=lambda: False, gateway=None, wait=None):
        now = self.clock.now
        if self.crash_at is not None and now >= self.crash_at:
            raise Crash(now)
        self.rounds.append(now)
        self.waits.append(wait)
        down = any(start <= now < end for start, end in self.outages)
        self.clock.now += self.round_time
        return RoundResults([ProbeResult(target, not down, "refused" if down else None,
                                         None if down else self.connect_time)
                             for target in targets])

    def close(self):
        pass


class RecordingDeliverer:
    """Accepts every report, except during the `fail_during` spans, where it fails with FAILURE."""

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
            raise DeliveryError(FAILURE)
        self.sent.append((self.clock.now, subject, body))


class CancellableDeliverer(RecordingDeliverer):
    """A notify command: the monitor may cancel() it at a stop; a cancelled one never delivers."""

    name = "notify command"

    def __init__(self, clock, fail_during=()):
        super().__init__(clock, fail_during)
        self.cancelled_at = None

    def cancel(self):
        self.cancelled_at = self.clock.now

    def deliver(self, subject, body):
        if self.cancelled_at is not None:
            raise DeliveryError("notify command was killed by SIGKILL")
        super().deliver(subject, body)


class LaterSpawn:
    """Monitor's `spawn`: a job runs `delay` fake seconds after it was handed over, at the first
    wait that reaches that instant (call run_due from FakeWaker.background)."""

    def __init__(self, clock, delay):
        self.clock = clock
        self.delay = delay
        self.jobs = []         # (due instant, function)

    def __call__(self, function):
        self.jobs.append((self.clock.now + self.delay, function))

    def run_due(self):
        due = [job for job in self.jobs if job[0] <= self.clock.now]
        self.jobs = [job for job in self.jobs if job[0] > self.clock.now]
        for _, function in due:
            function()


class FakePingSender(PingSender):
    """The ping URL's requests on the fake clock: a ping is answered `answer_time` fake seconds
    after it was sent (see LaterSpawn), and `failure(sent)` is what it fails with (an exception,
    as urllib raises it), or None: it worked. `sent` keeps the instants the pings went out."""

    def __init__(self, clock, failure=lambda sent: None, answer_time=0.05,
                 url="http://192.0.2.7:8080/ping/0000-secret"):
        super().__init__(url, timeout=1.0, on_done=lambda: None)
        self.clock = clock
        self.failure = failure
        self.later = LaterSpawn(clock, answer_time)
        self.jobs.spawn = self.later
        self.sent = []

    def submit(self):
        self.sent.append(self.clock.now)
        super().submit()

    def _request(self):
        error = self.failure(self.sent[-1])
        if error is not None:
            raise error


def settings(**overrides):
    values = dict(targets=[TARGET], interval=1.0, timeout=1.0, min_interruption=5.0,
                  backoff_min=60.0, backoff_max=3600.0, backoff_step=300.0, heartbeat=60.0)
    values.update(overrides)
    return Settings(**values)


class Run:
    """One monitor run on the fakes, with its event log and state file in tmp_path. Console
    lines (info and warnings) are kept for console_lines(); `deliverer` is the deliverer's
    class; `delivery_time` makes deliveries take that long (see LaterSpawn). `network`, called
    with the clock, makes the prober that is also the monitor's surroundings (routing table,
    links, gateway) in place of a ScriptedProber of `outages` and no surroundings. `ping`,
    called with the clock, makes the FakePingSender (kept as `ping`) that the monitor pings
    every `ping_interval` (a setting) while the network is up. `clock_steps`: (monotonic
    instant, s) at which the wall clock is set forward by s (back if negative); `boot`: (boot
    id, seconds since the boot) at the start, as SystemClock.boot() tells them."""

    def __init__(self, tmp_path, outages, stop_at, fail_during=(), state=True,
                 wall_offset=WALL_OFFSET, metrics_board=None, deliverer=RecordingDeliverer,
                 delivery_time=None, crash_at=None, network=None, ping=None, clock_steps=(),
                 boot=None, **overrides):
        self.clock = FakeClock(wall_offset, clock_steps, boot)
        self.prober = (ScriptedProber(self.clock, outages, crash_at=crash_at) if network is None
                       else network(self.clock))
        self.deliverer = deliverer(self.clock, fail_during)
        self.log_path = tmp_path / "events.jsonl"
        self.state = StateFile(str(tmp_path / "state.json")) if state else None
        self.waker = FakeWaker(self.clock, stop_at)
        self.spawn = lambda function: function()
        if delivery_time is not None:
            self.spawn = LaterSpawn(self.clock, delivery_time)
            self.waker.background.append(self.spawn.run_due)
        self.log = EventLog(str(self.log_path))
        self.console_text = io.StringIO()
        console = Console(out=self.console_text, err=self.console_text)
        if metrics_board is not None:        # as run_monitor(): a board only with --metrics-port
            overrides.setdefault("metrics_port", 9100)
        config = settings(**overrides)
        backoff = ReportBackoff(config.backoff_min, config.backoff_max, config.backoff_step)
        reporter = Reporter(PendingReports(backoff), self.deliverer, "pi", self.waker.wake,
                            spawn=self.spawn)
        announcer = Announcer(console, self.log, config)
        self.rounds = RoundInterpreter(config, announcer, reporter.pending.add,
                                       surroundings=None if network is None else self.prober)
        self.ping = pinger = None
        if ping is not None:
            self.ping = ping(self.clock)
            self.waker.background.append(self.ping.later.run_due)
            pinger = Pinger(self.ping, PingSchedule(config.ping_interval))
        self.monitor = Monitor(config, announcer, self.waker, self.prober, self.rounds,
                               clock=self.clock, reporter=reporter, state=self.state,
                               pinger=pinger, metrics_board=metrics_board)

    def run(self):
        try:
            return self.monitor.run()
        finally:
            self.log.close()

    def events(self, name=None):
        events = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [e for e in events if name is None or e["event"] == name]

    def sent_at(self):
        return [round(instant, 2) for instant, _, _ in self.deliverer.sent]

    def console_lines(self):
        """The console lines without their timestamps ("YYYY-MM-DD HH:MM:SS ")."""
        return [line[20:] for line in self.console_text.getvalue().splitlines()]

    def saved_state(self):
        with open(self.state.path, encoding="utf-8") as stream:
            return json.load(stream)


# -- a scripted network: causes and partial outages ----------------------------------------

ROUTER = Gateway("198.18.0.1", 53, found=True)
NO_OUTCOME = "no outcome"       # a round with no outcome of the gateway: its connect still waits
ALWAYS = (0.0, 1e9)


def result(target, reason=None, connect_time=0.001):
    return ProbeResult(target, reason is None, reason, connect_time if reason is None else None)


class ScriptedNetwork:
    """Prober and surroundings at once. `fails`: {label or "gateway": [(start, end, reason)]}
    ("gateway": any gateway not given by its label),
    where the gateway's reason NO_OUTCOME makes a round with no outcome of it; `local`:
    [(start, end)] while this machine shows no way out; `router`: the gateway found in the
    routing table (None: none), or [(since, gateway or None)] as DHCP changes it, read as
    Surroundings does (at most every ROUTES_RECHECK seconds, unless `fresh`). With
    `router_needed` False it leaves the router out, as the Prober does while every target's
    address is on this machine."""

    beyond_loopback = True
    router_needed = True

    def __init__(self, clock, fails, local=(), router=ROUTER):
        self.clock = clock
        self.fails = fails
        self.local = local
        self.table = router if isinstance(router, list) else [(0.0, router)]
        self.router, self.looked = None, None
        self.rounds = []

    def gateway(self, fresh=False):
        now = self.clock.now
        if fresh or self.looked is None or now - self.looked >= ROUTES_RECHECK:
            self.looked = now
            self.router = [router for since, router in self.table if since <= now][-1]
        return self.router

    def local_trouble(self):
        now = self.clock.now
        return ("this machine has no default route"
                if any(start <= now < end for start, end in self.local) else None)

    def probe_round(self, targets, interrupted=lambda: False, gateway=None, wait=None):
        now = self.clock.now
        self.rounds.append((now, gateway))
        self.clock.now += 0.01
        router = None if gateway is None else self._failure(gateway, now)
        return RoundResults([result(target, self._failure(target, now)) for target in targets],
                            None if gateway is None or router == NO_OUTCOME or
                            not self.router_needed else result(gateway, router),
                            router_needed=self.router_needed)

    def _failure(self, target, now):
        spans = self.fails.get(target.label, ())
        if isinstance(target, Gateway):
            spans = spans or self.fails.get("gateway", ())     # any gateway, unless by label
        return next((reason for start, end, reason in spans if start <= now < end), None)

    def close(self):
        pass


class ScriptedRun(Run):
    """Run on a ScriptedNetwork, with a metrics board; report() is the one report sent."""

    def __init__(self, tmp_path, targets, fails, stop_at=40.0, local=(), router=ROUTER,
                 **overrides):
        super().__init__(tmp_path, (), stop_at, metrics_board=MetricsBoard(MetricsSnapshot()),
                         network=lambda clock: ScriptedNetwork(clock, fails, local, router),
                         targets=targets, **overrides)
        self.network, self.board = self.prober, self.monitor.metrics_board
        self.state_path = tmp_path / "state.json"

    def run(self):
        super().run()
        return self

    def events(self, *names):
        return [event for event in super().events() if event["event"] in names]

    def lines(self, *starts):
        """Console lines without their timestamp, those starting with one of `starts`."""
        return [line for line in self.console_lines() if line.startswith(starts)]

    def report(self):
        [(_, subject, body)] = self.deliverer.sent
        return subject, body


def outage(label, reason="timeout", start=10.5, end=20.5):
    return {label: [(start, end, reason)]}


# -- the Prober with a scripted poll(): connects that outlive a fast round -------------------

class TickingClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakePoller:
    """The Prober's poll(), scripted: poll(ms) moves the clock on by that long, or to the instant
    a connect is told to get through (`through[socket] = instant`, or `answers[target] = seconds`
    after each of its connects began), and returns it. The sockets are real (connects to a
    loopback listener); only their readiness is scripted."""

    def __init__(self, clock, prober):
        self.clock = clock
        self.prober = prober
        self.registered = set()
        self.through = {}
        self.answers = {}

    def _through(self, sock):
        if sock in self.through:
            return self.through[sock]
        target, began, _ = self.prober.in_flight[sock]
        delay = self.answers.get(target)
        return None if delay is None else began + delay

    def register(self, fd, events):
        self.registered.add(fd if isinstance(fd, int) else fd.fileno())

    def unregister(self, fd):
        self.registered.remove(fd if isinstance(fd, int) else fd.fileno())

    def poll(self, milliseconds):
        until = self.clock.now + milliseconds / 1000.0
        due = [(self._through(self.prober.sockets[fd]), fd) for fd in self.registered]
        due = [(instant, fd) for instant, fd in due if instant is not None and instant <= until]
        if not due:
            self.clock.now = until
            return []
        first = min(instant for instant, _ in due)
        self.clock.now = max(self.clock.now, first)
        return [(fd, select.POLLOUT) for instant, fd in due if instant == first]


def scripted_prober(limit=3, timeout=1.0):
    clock = TickingClock()
    prober = Prober(timeout, clock=clock, limit=limit)
    prober.poller = FakePoller(clock, prober)
    return prober, clock
