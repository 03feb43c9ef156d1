#!/usr/bin/env python3
"""pyNetConnMon: watch an Internet (or network) connection and mail a report of every interruption.

Every `interval` seconds it tries a TCP connect to each target at once; the network is UP while at
least one target answers. Interruptions are logged, kept in a state file until a report about them
has been accepted by the mail server (or a notify command), and sent with a backoff so that a bad
line does not flood the inbox.

Copyright (C) the pyNetConnMon authors. License: GNU GPL v3 or later (see LICENSE).
Python 3.9+, standard library only. Mail goes through the pySendMail submodule.
"""

import argparse
import errno
import ipaddress
import json
import math
import os
import re
import selectors
import signal
import socket
import sys
import threading
import time
from datetime import datetime

# ---------------------------------------------------------------------------------------------
# Version and defaults (the seed program's options keep their names, defaults and meaning)
# ---------------------------------------------------------------------------------------------

VERSION = "2.0.0"

DEFAULT_ADDRESS = "8.8.8.8"
DEFAULT_PORT = 53
DEFAULT_INTERVAL = 2.0
DEFAULT_TIMEOUT = 2.0
DEFAULT_MIN_INTERRUPTION = 5.0
DEFAULT_BACKOFF_MIN = 60.0
DEFAULT_BACKOFF_MAX = 3600.0
DEFAULT_BACKOFF_STEP = 300.0
DEFAULT_HEARTBEAT = 60.0

NOTIFY_COMMAND_TIMEOUT = 60.0
REPORT_LIST_LIMIT = 100          # beyond this many interruptions a report lists the first and last half
PYSENDMAIL_CONFIG = "sendMailConfig.json"
PYSENDMAIL_KEYS = ("mail.from", "mail.to", "mail.smtp.server", "mail.smtp.port", "mail.smtp.user",
                   "mail.smtp.password", "mail.smtp.tls", "mail.smtp.timeout")
STATE_FORMAT = 1

# Prometheus metrics and the ping URL (dead man's switch)
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
METRICS_REQUEST_TIMEOUT = 10.0   # seconds a metrics client may take to send its request or read
DEFAULT_PING_INTERVAL = 60.0
PING_RESPONSE_LIMIT = 4096       # bytes of the ping answer read before closing (it is not used)

# ---------------------------------------------------------------------------------------------
# Exceptions: library code raises these; only main() turns them into messages and exit codes
# ---------------------------------------------------------------------------------------------


class UsageError(Exception):
    """Bad command-line input: exit status 2."""


class MonitorError(Exception):
    """The monitor cannot run (state file locked, unwritable, ...): exit status 1."""


class DeliveryError(Exception):
    """A report was not accepted; the message says why in one line."""


# ---------------------------------------------------------------------------------------------
# Settings: everything the command line decides, checked once by parse_arguments()
# ---------------------------------------------------------------------------------------------


class Settings:
    """The checked options. Tests build Settings(interval=1.0, ...) directly; every value not
    given has the program's default."""

    __slots__ = ("targets", "interval", "timeout", "min_interruption", "backoff_min",
                 "backoff_max", "backoff_step", "heartbeat", "log_file", "state_file",
                 "metrics_port", "metrics_address", "ping_url", "ping_interval", "pysendmail",
                 "notify_command", "no_mail", "test_mail", "once", "quiet", "summary", "since",
                 "until")

    DEFAULTS = dict(targets=(), interval=DEFAULT_INTERVAL, timeout=DEFAULT_TIMEOUT,
                    min_interruption=DEFAULT_MIN_INTERRUPTION, backoff_min=DEFAULT_BACKOFF_MIN,
                    backoff_max=DEFAULT_BACKOFF_MAX, backoff_step=DEFAULT_BACKOFF_STEP,
                    heartbeat=DEFAULT_HEARTBEAT, log_file=None, state_file=None,
                    metrics_port=None, metrics_address=DEFAULT_METRICS_ADDRESS, ping_url=None,
                    ping_interval=DEFAULT_PING_INTERVAL, pysendmail=None, notify_command=None,
                    no_mail=False, test_mail=False, once=False, quiet=False, summary=False,
                    since=None, until=None)

    def __init__(self, **values):
        unknown = set(values) - set(self.__slots__)
        if unknown:
            raise TypeError("unknown settings: %s" % ", ".join(sorted(unknown)))
        for name in self.__slots__:
            setattr(self, name, values.get(name, self.DEFAULTS[name]))

    @property
    def target_labels(self):
        return [target.label for target in self.targets]


# ---------------------------------------------------------------------------------------------
# The event log's vocabulary: the one list of events that the monitor writes and --summary reads
# ---------------------------------------------------------------------------------------------


class EventKind:
    __slots__ = ("fields", "availability")

    def __init__(self, fields, availability=False):
        self.fields = frozenset(fields)     # besides "time" and "event"
        self.availability = availability    # does it change what --summary counts as up or down?


EVENTS = {
    "start": EventKind(("version", "targets", "interval", "timeout", "min_interruption",
                        "backoff_min", "backoff_max", "backoff_step", "pid", "state_file"), True),
    "stop": EventKind(("signal", "down_since"), True),
    "down": EventKind(("start", "reason", "targets"), True),
    "up": EventKind(("start", "end", "duration", "ignored", "reason", "targets"), True),
    "gap": EventKind(("start", "end", "duration", "ignored"), True),
    "log_reopened": EventKind((), True),      # a rotated log begins here, with the monitor running
    "report_sent": EventKind(("interruptions", "via", "next_wait")),
    "report_failed": EventKind(("interruptions", "via", "reason", "retry_in")),
    "pending_discarded": EventKind(("interruptions",)),
    "ping_failed": EventKind(("url", "reason")),
    "ping_ok": EventKind(("url",)),
}
# names written by 2.0.0, still read by --summary
RENAMED_EVENTS = {"mail_sent": "report_sent", "mail_failed": "report_failed"}


# ---------------------------------------------------------------------------------------------
# Pure decision logic: no sockets, no clocks; every instant is handed in
# ---------------------------------------------------------------------------------------------


class RoundSchedule:
    """Fixed-rate rounds on the monotonic clock.

    A round that overruns lets the next one start at once, but the grid is kept: rounds missed
    entirely are skipped, not made up in a burst.
    """

    def __init__(self, interval, first_round):
        self.interval = interval
        self.next_due = first_round

    def seconds_until_due(self, now):
        return max(0.0, self.next_due - now)

    def round_started(self, now):
        self.next_due += self.interval
        if self.next_due <= now:
            self.next_due += (math.floor((now - self.next_due) / self.interval) + 1) * self.interval


class Interruption:
    """One stretch of downtime: wall-clock start for people, a monotonic-clock duration."""

    __slots__ = ("id", "start", "end", "duration", "reason", "kind", "cut_short")

    def __init__(self, id, start, end, duration, reason, kind="outage", cut_short=False):
        self.id = id
        self.start = start          # wall-clock epoch seconds of the first failed round
        self.end = end              # wall-clock epoch seconds of the first good round
        self.duration = duration    # seconds, from the monotonic clock
        self.reason = reason
        self.kind = kind            # "outage" or "gap" (the monitor itself was not running)
        self.cut_short = cut_short  # the monitor stopped while the network was still down

    def to_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data[name] for name in cls.__slots__ if name in data})


class OngoingOutage:
    __slots__ = ("start_mono", "start_wall", "reason", "targets")

    def __init__(self, start_mono, start_wall, reason, targets):
        self.start_mono = start_mono
        self.start_wall = start_wall
        self.reason = reason
        self.targets = targets


class InterruptionTracker:
    """Turns round results into DOWN and UP transitions.

    An interruption starts at the first failed round and ends at the first successful one.
    """

    def __init__(self, min_interruption):
        self.min_interruption = min_interruption
        self.outage = None

    @property
    def is_down(self):
        return self.outage is not None

    def observe(self, network_up, mono, wall, reason=None, target_reasons=None):
        """Returns ("down", OngoingOutage), ("up", (OngoingOutage, duration, ignored)) or None."""
        if not network_up and self.outage is None:
            self.outage = OngoingOutage(mono, wall, reason, dict(target_reasons or {}))
            return ("down", self.outage)
        if network_up and self.outage is not None:
            outage, self.outage = self.outage, None
            duration = max(0.0, mono - outage.start_mono)
            return ("up", (outage, duration, duration < self.min_interruption))
        return None


class ReportBackoff:
    """When may the next report go out? The seed program's rule, plus retries after a failure.

    The first report goes out at once. After a successful report the wait is `minimum`, and each
    further report adds `step`, never above `maximum`. Once more than `maximum` seconds pass with
    no report and nothing to report (or the network down), the wait resets, so the next report
    again goes out at once. A failed delivery does not advance the wait; it is retried `minimum`
    seconds later.
    """

    def __init__(self, minimum, maximum, step):
        self.minimum = minimum
        self.maximum = maximum
        self.step = step
        self.wait = None          # None: no recent report, the next one goes out at once
        self.last_sent = None
        self.last_failed = None

    def quiet(self, now):
        """Nothing can be reported at `now`: after `maximum` such seconds, start afresh."""
        if self.wait is not None and now - self.last_sent > self.maximum:
            self.wait = None

    def next_allowed(self):
        allowed = self.last_sent + self.wait if self.wait is not None else -math.inf
        if self.last_failed is not None:
            allowed = max(allowed, self.last_failed + self.minimum)
        return allowed

    def may_send(self, now):
        return now >= self.next_allowed()

    def record_success(self, now):
        self.wait = self.minimum if self.wait is None else min(self.wait + self.step, self.maximum)
        self.last_sent = now
        self.last_failed = None

    def record_failure(self, now):
        self.last_failed = now

    # The state file keeps instants as wall-clock time; the monotonic clock restarts at boot.
    def to_dict(self, mono_now, wall_now):
        def wall(instant):
            return None if instant is None else wall_now - (mono_now - instant)
        return {"wait": self.wait, "last_sent": wall(self.last_sent),
                "last_failed": wall(self.last_failed)}

    def restore(self, data, mono_now, wall_now):
        def mono(instant):
            # a clock that went backwards would put the instant in the future: clamp it to now
            return None if instant is None else mono_now - max(0.0, wall_now - instant)
        self.wait = data.get("wait")
        self.last_sent = mono(data.get("last_sent"))
        self.last_failed = mono(data.get("last_failed"))
        if self.wait is not None and self.last_sent is None:
            self.wait = None
        self.quiet(mono_now)    # nothing was reported while the monitor was not running


class PingSchedule:
    """When is the ping URL due? At most once every `interval` seconds, and only while UP.

    `due` is asked after each round; `started` records a request that went out. A ping is never
    due while the network is down, and is due at once when it comes back, if `interval` has passed.
    """

    def __init__(self, interval):
        self.interval = interval
        self.last_started = None

    def due(self, now, network_up):
        if not network_up:
            return False
        return self.last_started is None or now - self.last_started >= self.interval

    def started(self, now):
        self.last_started = now


class PingHealth:
    """Which ping outcomes are worth telling: the first failure of a stretch, and the recovery."""

    def __init__(self):
        self.failing = False

    def record(self, ok):
        """Returns "failed" (first failure since the last success), "recovered", or None."""
        if ok:
            recovered, self.failing = self.failing, False
            return "recovered" if recovered else None
        if self.failing:
            return None
        self.failing = True
        return "failed"


# ---------------------------------------------------------------------------------------------
# Formatting for people
# ---------------------------------------------------------------------------------------------


def local_time(wall):
    return datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(wall):
    return datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")


def human_duration(seconds):
    """3 min 12 s, 2 h 5 min 3 s, 4.2 s."""
    if seconds < 60:
        return "%.1f s" % seconds
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [("%d %s" % (value, unit)) for value, unit in parts if value]
    return " ".join(shown)


def plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def describe_interruption(item):
    reason = item.reason
    if item.kind == "gap":
        reason = "gap: the monitor was not running (no clean stop)"
    elif item.cut_short:
        reason += " (the monitor stopped while still down)"
    return "%s  %s  %12s  %s" % (local_time(item.start), local_time(item.end),
                                  human_duration(item.duration), reason)


def format_report(interruptions, hostname, targets):
    """Subject and body of one report about `interruptions` (all of them count in the totals)."""
    total = sum(item.duration for item in interruptions)
    subject = "pyNetConnMon on %s: %s, %s of downtime" % (
        hostname, plural(len(interruptions), "interruption"), human_duration(total))
    lines = [
        "pyNetConnMon on %s saw %s (%s of downtime in total)." % (
            hostname, plural(len(interruptions), "interruption"), human_duration(total)),
        "",
        "Host:    %s" % hostname,
        "Targets: %s" % ", ".join(targets),
        "",
        "%-19s  %-19s  %12s  %s" % ("start", "end", "duration", "reason"),
    ]
    if len(interruptions) > REPORT_LIST_LIMIT:
        half = REPORT_LIST_LIMIT // 2
        left_out = len(interruptions) - 2 * half
        lines += [describe_interruption(item) for item in interruptions[:half]]
        lines.append("... %s left out here; the event log has all of them ..."
                     % plural(left_out, "interruption"))
        lines += [describe_interruption(item) for item in interruptions[-half:]]
    else:
        lines += [describe_interruption(item) for item in interruptions]
    gaps = [item for item in interruptions if item.kind == "gap"]
    lines += ["", "Total: %s, %s of downtime." % (plural(len(interruptions), "interruption"),
                                                   human_duration(total))]
    if gaps:
        lines.append("Of these, %s (%s) were times the monitor itself was not running, e.g. a "
                     "power cut: the connection may or may not have been up then."
                     % (plural(len(gaps), "gap"), human_duration(sum(g.duration for g in gaps))))
    return subject, "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Prometheus metrics: a snapshot of the monitor rendered in the text exposition format 0.0.4
# ---------------------------------------------------------------------------------------------
#
# The monitor loop builds a new snapshot (a plain dict, never changed once published) after every
# round; the HTTP thread only renders the latest one. The keys:
#   version                    program version, for pynetconnmon_build_info
#   network_up                 True/False after the last round; None before the first round
#   targets                    ((label, up, connect_seconds or None), ...) from the last round
#   interruptions              interruptions that lasted at least --min-interruption; an ongoing
#                              one counts as soon as it has lasted that long
#   ignored_interruptions      interruptions shorter than --min-interruption (blips), at their end
#   downtime_seconds           downtime of the counted interruptions, an ongoing one included
#   unreported_interruptions   interruptions waiting for an accepted report
#   reports_sent, report_failures    deliveries accepted / not accepted
#   last_round                 Unix time the last round completed; None before the first round

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def empty_metrics_snapshot():
    """The snapshot before the first round: counters at zero, nothing known about the network."""
    return {"version": VERSION, "network_up": None, "targets": (), "interruptions": 0,
            "ignored_interruptions": 0, "downtime_seconds": 0.0, "unreported_interruptions": 0,
            "reports_sent": 0, "report_failures": 0, "last_round": None}


def _metric_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _label_value(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(snapshot):
    """The text a Prometheus scrape of /metrics gets for `snapshot`."""
    lines = []

    def family(name, kind, help_text, samples):
        lines.append("# HELP pynetconnmon_%s %s" % (name, help_text))
        lines.append("# TYPE pynetconnmon_%s %s" % (name, kind))
        for labels, value in samples:
            label_text = ",".join('%s="%s"' % (key, _label_value(text)) for key, text in labels)
            lines.append("pynetconnmon_%s%s %s" % (name, "{%s}" % label_text if labels else "",
                                                    _metric_value(value)))

    def single(value):
        return [((), value)] if value is not None else []

    targets = snapshot["targets"]
    family("build_info", "gauge", "Always 1; the version label says which pyNetConnMon runs.",
           [((("version", snapshot["version"]),), 1)])
    family("network_up", "gauge", "1 if at least one target answered in the last round, else 0.",
           single(snapshot["network_up"]))
    family("target_up", "gauge", "1 if the target answered in the last round, else 0.",
           [((("target", label),), up) for label, up, _ in targets])
    family("target_connect_seconds", "gauge",
           "Time the target's TCP connect took in the last round; absent while the target is down.",
           [((("target", label),), seconds) for label, up, seconds in targets
            if up and seconds is not None])
    family("interruptions_total", "counter",
           "Interruptions of at least --min-interruption; an ongoing one counts once it is that long.",
           single(snapshot["interruptions"]))
    family("ignored_interruptions_total", "counter",
           "Interruptions shorter than --min-interruption (blips), counted when they end.",
           single(snapshot["ignored_interruptions"]))
    family("downtime_seconds_total", "counter",
           "Seconds of downtime in counted interruptions, an ongoing one included.",
           single(snapshot["downtime_seconds"]))
    family("unreported_interruptions", "gauge",
           "Interruptions waiting for a report to be accepted (always 0 with --no-mail).",
           single(snapshot["unreported_interruptions"]))
    family("reports_sent_total", "counter", "Reports accepted by the mail server or notify command.",
           single(snapshot["reports_sent"]))
    family("report_failures_total", "counter", "Report deliveries that failed (each is retried).",
           single(snapshot["report_failures"]))
    family("last_round_timestamp_seconds", "gauge",
           "Unix time the last round of probes completed: the monitor's heartbeat.",
           single(snapshot["last_round"]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Targets: parsing and validation
# ---------------------------------------------------------------------------------------------

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class Target:
    __slots__ = ("host", "port", "is_literal")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.is_literal = _ip_literal(host) is not None

    @property
    def label(self):
        return "[%s]:%d" % (self.host, self.port) if ":" in self.host else "%s:%d" % (self.host, self.port)


def _ip_literal(host):
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def parse_port(text, option="-p/--port"):
    try:
        port = int(text)
    except (TypeError, ValueError):
        raise UsageError("%s: %r is not a port number (1-65535)" % (option, text))
    if not 1 <= port <= 65535:
        raise UsageError("%s: %d is outside 1-65535" % (option, port))
    return port


def _check_hostname(host, value):
    if len(host.rstrip(".")) > 253:
        raise UsageError("-a/--address: %r is longer than 253 characters" % value)
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise UsageError("-a/--address: %r is not a valid host name or IP address" % value)


def parse_target(value, default_port):
    """HOST, HOST:PORT, [IPV6]:PORT, [IPV6] or a bare IPv6 address."""
    if not value.strip():
        raise UsageError("-a/--address: empty address")
    if "[" in value or "]" in value:
        match = re.match(r"^\[([^\[\]]+)\](?::([^:]*))?$", value)
        if not match or not isinstance(_ip_literal(match.group(1)), ipaddress.IPv6Address):
            raise UsageError("-a/--address: %r is not a valid [IPv6]:PORT" % value)
        port = default_port if match.group(2) is None else parse_port(match.group(2), "-a/--address")
        return Target(match.group(1), port)
    if value.count(":") > 1:
        if not isinstance(_ip_literal(value), ipaddress.IPv6Address):
            raise UsageError("-a/--address: %r is not a valid IPv6 address" % value)
        return Target(value, default_port)
    host, _, port_text = value.partition(":")
    port = parse_port(port_text, "-a/--address") if _ else default_port
    if _ip_literal(host) is None:
        _check_hostname(host, value)
    return Target(host, port)


# ---------------------------------------------------------------------------------------------
# Probing: one round connects to every target at once (non-blocking sockets, one selector)
# ---------------------------------------------------------------------------------------------

_REASONS = {errno.ECONNREFUSED: "refused", errno.ETIMEDOUT: "timeout",
            errno.ENETUNREACH: "unreachable", errno.EHOSTUNREACH: "unreachable"}
MAX_ADDRESSES_PER_TARGET = 4


def reason_for_errno(number):
    return _REASONS.get(number) or errno.errorcode.get(number, "error %d" % number)


class ProbeResult:
    __slots__ = ("target", "up", "reason", "connect_time")

    def __init__(self, target, up, reason=None, connect_time=None):
        self.target = target
        self.up = up
        self.reason = reason
        self.connect_time = connect_time


def resolve_all(targets, deadline, clock=time.monotonic):
    """Look up every host name (again, each round) in parallel, each at most until `deadline`.

    Returns {target: [sockaddr tuples] or a failure reason string}. IP literals need no lookup.
    """
    results = {}
    threads = []

    def lookup(target):
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            seen = []
            for family, _, _, _, sockaddr in infos:
                if (family, sockaddr) not in seen:
                    seen.append((family, sockaddr))
            results[target] = seen[:MAX_ADDRESSES_PER_TARGET] or "dns"
        except (OSError, UnicodeError):
            results[target] = "dns"

    for target in targets:
        if target.is_literal:
            family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
            results[target] = [(family, (target.host, target.port))]
        else:
            thread = threading.Thread(target=lookup, args=(target,), daemon=True)
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, deadline - clock()))
    for target in targets:
        results.setdefault(target, "dns")   # the lookup outlived the deadline
    return results


class Prober:
    """Connects to all targets concurrently; a round lasts at most about `timeout`."""

    def __init__(self, timeout, wake_fd=None, clock=time.monotonic):
        self.timeout = timeout
        self.wake_fd = wake_fd
        self.clock = clock
        # one selector for the whole run: a new epoll per round would cost CPU on a small Pi
        self.selector = selectors.DefaultSelector()
        if wake_fd is not None:
            self.selector.register(wake_fd, selectors.EVENT_READ, "wake")

    def close(self):
        self.selector.close()

    def probe_round(self, targets, interrupted=lambda: False):
        started = self.clock()
        resolved = resolve_all(targets, started + self.timeout, self.clock)
        results = {}
        pending = {}            # socket -> (target, connect started)
        selector = self.selector
        try:
            for target in targets:
                addresses = resolved[target]
                if isinstance(addresses, str):
                    results[target] = ProbeResult(target, False, addresses)
                    continue
                for family, sockaddr in addresses:
                    self._start_connect(target, family, sockaddr, selector, pending, results)
            deadline = self.clock() + self.timeout
            while pending and not interrupted():
                remaining = deadline - self.clock()
                if remaining <= 0:
                    break
                for key, _ in selector.select(remaining):
                    if key.data == "wake":
                        _drain(self.wake_fd)
                        continue
                    sock = key.fileobj
                    target, began = pending.pop(sock)
                    selector.unregister(sock)
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    sock.close()
                    self._record(results, target, error, self.clock() - began)
        finally:
            for sock in pending:
                selector.unregister(sock)
                sock.close()
        for target in targets:
            results.setdefault(target, ProbeResult(target, False, "timeout"))
        return [results[target] for target in targets]

    def _start_connect(self, target, family, sockaddr, selector, pending, results):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as error:
            self._record(results, target, error.errno or errno.EIO, None)
            return
        try:
            sock.setblocking(False)
            began = self.clock()
            error = sock.connect_ex(sockaddr)
        except OSError as exc:       # e.g. an IPv6 scope that does not exist
            sock.close()
            self._record(results, target, exc.errno or errno.EINVAL, None)
            return
        if error in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            selector.register(sock, selectors.EVENT_WRITE)
            pending[sock] = (target, began)
        else:
            sock.close()
            self._record(results, target, error, self.clock() - began)

    @staticmethod
    def _record(results, target, error, elapsed):
        previous = results.get(target)
        if previous is not None and previous.up:
            return       # another address of this target already answered
        if error == 0:
            results[target] = ProbeResult(target, True, None, elapsed)
        elif previous is None:
            results[target] = ProbeResult(target, False, reason_for_errno(error))


def _drain(fd):
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


# ---------------------------------------------------------------------------------------------
# Delivery: pySendMail (the submodule) or a notify command
# ---------------------------------------------------------------------------------------------


def check_mail_setup(pysendmail_dir):
    """Returns None when pySendMail can send, else a one-line problem that names the fix."""
    if not os.path.isfile(os.path.join(pysendmail_dir, "sendMail.py")):
        return ("the pySendMail submodule in %s is empty or missing: run "
                "`git submodule update --init` in the program's folder" % pysendmail_dir)
    config_path = os.path.join(pysendmail_dir, PYSENDMAIL_CONFIG)
    if not os.path.isfile(config_path):
        return ("%s does not exist: copy sendMailConfig.json.example to sendMailConfig.json there "
                "and fill in your mail server" % config_path)
    try:
        with open(config_path, encoding="utf-8") as stream:
            config = json.load(stream)
    except (OSError, ValueError) as error:
        return "%s cannot be read: %s" % (config_path, _one_line(error))
    for key in PYSENDMAIL_KEYS:
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return "%s lacks the setting %s" % (config_path, key)
    return None


def config_permission_warning(pysendmail_dir):
    config_path = os.path.join(pysendmail_dir, PYSENDMAIL_CONFIG)
    try:
        mode = os.stat(config_path).st_mode
    except OSError:
        return None
    if mode & 0o077:
        return ("%s is accessible by group or others (mode %04o) and holds your SMTP password: "
                "run chmod 600 %s" % (config_path, mode & 0o7777, config_path))
    return None


def _one_line(error):
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def describe_send_error(error):
    if isinstance(error, DeliveryError):
        return str(error)
    code = getattr(error, "smtp_code", None)
    if code is not None:
        message = getattr(error, "smtp_error", b"")
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        return "SMTP server answered %s %s" % (code, " ".join(str(message).split()))
    if isinstance(error, socket.timeout):
        return "mail server timed out"
    if isinstance(error, ConnectionRefusedError):
        return "mail server refused the connection"
    return "%s: %s" % (type(error).__name__, _one_line(error))


class MailDeliverer:
    """Sends through pySendMail's sendInternal(), which raises instead of swallowing errors."""

    name = "mail"

    def __init__(self, pysendmail_dir):
        self.pysendmail_dir = pysendmail_dir
        self._module = None

    def problem(self):
        return check_mail_setup(self.pysendmail_dir)

    def _load(self):
        if self._module is None:
            import importlib.util
            path = os.path.join(self.pysendmail_dir, "sendMail.py")
            spec = importlib.util.spec_from_file_location("pySendMail_sendMail", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._module = module
        return self._module

    def deliver(self, subject, body):
        problem = self.problem()      # the config is checked again at every attempt
        if problem:
            raise DeliveryError("mail is not set up: " + problem)
        import contextlib
        import io
        captured = io.StringIO()      # pySendMail prints its errors; keep them off the console
        try:
            with contextlib.redirect_stdout(captured):
                mail = self._load().pySendMail()
                mail.subject = subject
                mail.content = body
                mail.sendInternal()
        except SystemExit:
            raise DeliveryError("pySendMail gave up: %s" % (_one_line(captured.getvalue()) or "exit"))
        except Exception as error:  # noqa: BLE001 - any failure of the helper is a failed delivery
            raise DeliveryError(describe_send_error(error))


class CommandDeliverer:
    """Pipes the report into a command (ntfy, Apprise, msmtp, ...); exit status 0 means delivered."""

    name = "notify command"

    def __init__(self, command, timeout=NOTIFY_COMMAND_TIMEOUT):
        self.command = command
        self.timeout = timeout
        self.process = None          # the command while it runs, for cancel()

    def problem(self):
        return None

    def cancel(self):
        """Kills a running command (at a stop), so it cannot deliver after its report was kept."""
        process = self.process
        if process is not None:
            _kill_group(process)

    def deliver(self, subject, body):
        import subprocess
        env = dict(os.environ, PYNETCONNMON_SUBJECT=subject)
        try:
            process = subprocess.Popen(self.command, shell=True, env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except OSError as error:
            raise DeliveryError("notify command could not start: %s" % _one_line(error))
        self.process = process
        try:
            _, stderr = process.communicate(body.encode("utf-8"), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise DeliveryError("notify command ran longer than %g s" % self.timeout)
        finally:
            self.process = None
        if process.returncode < 0:
            raise DeliveryError("notify command was killed by %s"
                                % signal.Signals(-process.returncode).name)
        if process.returncode != 0:
            last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise DeliveryError("notify command exited with status %d%s" % (
                process.returncode, (": " + last[0]) if last[0] else ""))


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()


class OneJobAtATime:
    """Runs one job at a time in a daemon thread, so slow I/O (a mail server, a ping endpoint)
    never stalls the rounds. The loop collects each job's (tag, failure or None)."""

    def __init__(self, name, on_done, describe_error, spawn=None):
        self.name = name
        self.on_done = on_done           # called in the job's thread; must only hand over
        self.describe_error = describe_error
        self.spawn = spawn or self._spawn_daemon_thread     # tests run jobs in line
        self.busy = False
        self.results = []
        self._lock = threading.Lock()

    def _spawn_daemon_thread(self, function):
        threading.Thread(target=function, name=self.name, daemon=True).start()

    def submit(self, job, tag=None):
        self.busy = True

        def run():
            try:
                job()
                failure = None
            except Exception as error:  # noqa: BLE001 - a failed job must never stop the monitor
                failure = self.describe_error(error)
            with self._lock:
                self.results.append((tag, failure))
            self.on_done()

        self.spawn(run)

    def take_results(self):
        with self._lock:
            results, self.results = self.results, []
        if results:
            self.busy = False
        return results


# ---------------------------------------------------------------------------------------------
# The state file: pending interruptions, backoff and heartbeat survive restarts and power cuts
# ---------------------------------------------------------------------------------------------


def default_state_path():
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "pyNetConnMon", "state.json")


class StateFile:
    def __init__(self, path):
        self.path = path
        self._lock_stream = None

    def lock(self):
        """One state file, one monitor: hold an exclusive lock while running."""
        import fcntl
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            stream = open(self.path + ".lock", "a")
        except OSError as error:
            raise MonitorError("cannot use state file %s: %s" % (self.path, _one_line(error)))
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            stream.close()
            raise MonitorError("another pyNetConnMon is already running with state file %s; "
                               "give this one its own --state-file" % self.path)
        self._lock_stream = stream

    def unlock(self):
        if self._lock_stream is not None:
            self._lock_stream.close()
            self._lock_stream = None

    def load(self):
        """Returns (state dict or None, warning or None). A bad file is moved aside, never fatal."""
        try:
            with open(self.path, encoding="utf-8") as stream:
                data = json.load(stream)
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise ValueError("not a pyNetConnMon state file of format %d" % STATE_FORMAT)
            for item in data.get("pending", []):
                Interruption.from_dict(item)
            return data, None
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            aside = "%s.corrupt-%s" % (self.path, datetime.now().strftime("%Y%m%d-%H%M%S"))
            try:
                os.replace(self.path, aside)
                where = "moved it to %s" % aside
            except OSError as move_error:
                where = "could not move it aside (%s)" % _one_line(move_error)
            return None, "state file %s was unreadable (%s); %s and started afresh" % (
                self.path, _one_line(error), where)

    def save(self, data):
        """Atomically: a temporary file, fsync, rename, fsync of the folder."""
        temporary = "%s.tmp-%d" % (self.path, os.getpid())
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.path)
        directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# ---------------------------------------------------------------------------------------------
# Event log (JSON Lines) and console
# ---------------------------------------------------------------------------------------------


class EventLog:
    """One JSON object per line, appended and flushed per event. reopen() serves logrotate."""

    def __init__(self, path, warn=None):
        self.path = path
        self.stream = None
        self.warn = warn or (lambda text: None)
        self.failing = False        # warn once per stretch of failed writes (e.g. disk full)
        if path:
            self.reopen()

    def reopen(self):
        """Opens the path afresh (logrotate renamed the file away). Every event is flushed when
        written, so all events up to now are in the old file and all after it in the new one.
        If the path cannot be opened, MonitorError says why and the old file stays in use."""
        if not self.path:
            return
        try:
            stream = open(self.path, "a", encoding="utf-8")
        except OSError as error:
            raise MonitorError("cannot open event log %s: %s" % (self.path, _one_line(error)))
        self._drop_stream()
        self.stream = stream

    def write(self, event, wall, **fields):
        kind = EVENTS[event]                 # a KeyError here is a bug: add the event to EVENTS
        if not kind.fields.issuperset(fields):
            raise ValueError("event %s has no field(s) %s" % (event, sorted(set(fields) - kind.fields)))
        if not self.path:
            return
        record = {"time": iso_time(wall), "event": event}
        record.update(fields)
        try:
            if self.stream is None:
                self.stream = open(self.path, "a", encoding="utf-8")
            self.stream.write(json.dumps(record, sort_keys=False) + "\n")
            self.stream.flush()
        except OSError as error:
            self._drop_stream()     # its buffer would only grow while the disk stays full
            if not self.failing:
                self.warn("cannot write event log %s: %s; monitoring goes on, events are lost "
                          "until it works again" % (self.path, _one_line(error)))
            self.failing = True
            return
        if self.failing:
            self.failing = False
            self.warn("event log %s is writable again" % self.path)

    def _drop_stream(self):
        if self.stream is not None:
            try:
                self.stream.close()
            except OSError:
                pass
            self.stream = None

    def close(self):
        self._drop_stream()


class Console:
    """Timestamped lines, flushed at once so nohup, tmux and journald show them immediately."""

    def __init__(self, quiet=False, out=None, err=None):
        self.quiet = quiet
        self.out = out or sys.stdout     # kept: redirect_stdout elsewhere must not swallow these
        self.err = err or sys.stderr

    def _write(self, stream, text, wall):
        try:
            stream.write("%s %s\n" % (local_time(wall if wall is not None else time.time()), text))
            stream.flush()
        except (OSError, ValueError):
            pass     # a closed terminal must not stop the monitor

    def info(self, text, wall=None):
        if not self.quiet:
            self._write(self.out, text, wall)

    def warning(self, text, wall=None):
        self._write(self.err, "WARNING " + text, wall)

    def error(self, text, wall=None):
        self._write(self.err, "ERROR " + text, wall)


# ---------------------------------------------------------------------------------------------
# Metrics endpoint: GET /metrics renders the latest snapshot; the monitor loop never waits for it
# ---------------------------------------------------------------------------------------------


class MetricsBoard:
    """Holds the latest snapshot. The loop replaces it whole; the HTTP threads only read it."""

    def __init__(self, snapshot):
        self._lock = threading.Lock()
        self._snapshot = snapshot

    def publish(self, snapshot):
        with self._lock:
            self._snapshot = snapshot

    def latest(self):
        with self._lock:
            return self._snapshot


def start_metrics_server(address, port, board, request_timeout=METRICS_REQUEST_TIMEOUT):
    """Serves the board at http://ADDRESS:PORT/metrics from a daemon thread; returns the server.

    Raises MonitorError when the port cannot be bound. Call shutdown() and server_close() to stop.
    """
    import http.server         # only when metrics are asked for: it pulls in a lot of modules
    import socketserver

    class MetricsHandler(http.server.BaseHTTPRequestHandler):
        timeout = request_timeout        # a client that sends nothing is dropped after this long
        server_version = "pyNetConnMon/" + VERSION
        sys_version = ""

        def do_GET(self):
            self._answer(with_body=True)

        def do_HEAD(self):
            self._answer(with_body=False)

        def _not_found(self):
            self.send_error(404)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_found

        def _answer(self, with_body):
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = render_metrics(board.latest()).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", METRICS_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format, *args):
            pass         # no line per request on stderr

    class MetricsServer(http.server.ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False       # stopping must not wait for a stuck client
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

        def server_bind(self):
            # HTTPServer.server_bind would look the address up in DNS (getfqdn); not needed here
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]

        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], OSError):     # a bug: show the traceback
                super().handle_error(request, client_address)
            # a client that went away mid-answer is not worth one

    try:
        server = MetricsServer((address, port), MetricsHandler)
    except OSError as error:
        raise MonitorError("cannot serve metrics on %s: %s"
                           % (Target(address, port).label, _one_line(error.strerror or error)))
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------
# Ping URL (dead man's switch for Healthchecks, Uptime Kuma push, ...): one request at a time
# ---------------------------------------------------------------------------------------------


def ping_url_problem(url):
    """None if `url` can be pinged, else why not (for a usage error)."""
    from urllib.parse import urlsplit
    if any(character.isspace() or ord(character) < 32 for character in url):
        return "%r contains spaces or control characters" % url
    try:
        parts = urlsplit(url)
        parts.port          # raises ValueError for a bad port
    except ValueError as error:
        return "%r is not a valid URL (%s)" % (url, _one_line(error))
    if parts.scheme.lower() not in ("http", "https"):
        return "%r is not an http:// or https:// URL" % url
    if not parts.hostname:
        return "%r has no host" % url
    return None


def ping_url_for_people(url):
    """scheme://host:port/... without the path: ping URLs carry secrets, keep them out of logs."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]     # drop user:password@
    return "%s://%s/..." % (parts.scheme.lower(), host)


def describe_ping_error(error):
    import urllib.error
    if isinstance(error, urllib.error.HTTPError):
        return ("HTTP %d %s" % (error.code, " ".join(str(error.reason or "").split()))).strip()
    if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, str):
        error = error.reason
    if isinstance(error, socket.timeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, urllib.error.URLError):
        return _one_line(error.reason)
    return "%s: %s" % (type(error).__name__, _one_line(error))


class PingSender:
    """Requests the ping URL in a thread, so a slow endpoint never stalls the rounds."""

    def __init__(self, url, timeout, on_done):
        import urllib.request      # here, not in the thread: the first ping must not wait for it
        self._urllib = urllib.request
        self.url = url
        self.timeout = timeout
        self.jobs = OneJobAtATime("ping", on_done, describe_ping_error)

    @property
    def busy(self):
        return self.jobs.busy

    def submit(self):
        self.jobs.submit(self._request)

    def _request(self):
        request = self._urllib.Request(self.url, headers={"User-Agent": "pyNetConnMon/" + VERSION})
        with self._urllib.urlopen(request, timeout=self.timeout) as response:
            response.read(PING_RESPONSE_LIMIT)

    def take_results(self):
        """None for each ping that worked, else the reason it failed."""
        return [failure for _, failure in self.jobs.take_results()]


# ---------------------------------------------------------------------------------------------
# Signals: a stop flag that also wakes any wait at once
# ---------------------------------------------------------------------------------------------


class Waker:
    """A self-pipe: signals and the delivery thread write to it, waits and rounds select on it."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.stop_signal = None
        self.reopen_requested = False
        self._previous = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.read_fd, selectors.EVENT_READ)

    def install(self):
        signal.set_wakeup_fd(self.write_fd)
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_stop)
        self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)

    def uninstall(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(-1)

    def _on_stop(self, signum, frame):
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name

    def _on_hangup(self, signum, frame):
        self.reopen_requested = True

    def wake(self):
        try:
            os.write(self.write_fd, b"\0")
        except (BlockingIOError, OSError):
            pass

    def wait(self, seconds):
        """Sleep up to `seconds`, returning early when woken."""
        if self._selector.select(max(0.0, seconds)):
            _drain(self.read_fd)

    def close(self):
        self._selector.close()
        os.close(self.read_fd)
        os.close(self.write_fd)


# ---------------------------------------------------------------------------------------------
# The monitor: rounds, transitions, reports, state
# ---------------------------------------------------------------------------------------------


class Monitor:
    def __init__(self, settings, targets, console, event_log, state, deliverer, waker,
                 prober=None, clock=time.monotonic, wall_clock=time.time, hostname=None,
                 spawn=None, metrics_board=None, ping_sender=None, ping_schedule=None):
        self.settings = settings
        self.targets = targets
        self.console = console
        self.log = event_log
        self.state = state
        self.deliverer = deliverer
        self.waker = waker
        self.prober = prober or Prober(settings.timeout, waker.read_fd, clock)
        self.clock = clock
        self.wall_clock = wall_clock
        self.hostname = hostname or socket.gethostname()
        self.tracker = InterruptionTracker(settings.min_interruption)
        self.backoff = ReportBackoff(settings.backoff_min, settings.backoff_max, settings.backoff_step)
        self.pending = []            # Interruption objects not yet in an accepted report
        self.next_id = 1
        self.worker = (OneJobAtATime("delivery", waker.wake, describe_send_error, spawn)
                       if deliverer else None)
        self.last_heartbeat = None
        self.mail_problem_shown = False
        # metrics (published only with a board) and the ping URL (only with a sender)
        self.metrics_board = metrics_board
        self.last_results = ()
        self.last_round_mono = None
        self.last_round_completed = None     # wall clock
        self.interruptions_ended = 0         # counted, i.e. not ignored
        self.ignored_interruptions = 0
        self.downtime_ended = 0.0
        self.reports_sent = 0
        self.report_failures = 0
        self.ping_sender = ping_sender
        self.ping_schedule = ping_schedule
        self.ping_health = PingHealth()

    # -- events ------------------------------------------------------------------------------
    def _event(self, name, wall, **fields):
        self.log.write(name, wall, **fields)

    def _target_labels(self):
        return [target.label for target in self.targets]

    # -- state -------------------------------------------------------------------------------
    def _save_state(self, clean_stop=False):
        if self.state is None:
            return
        mono, wall = self.clock(), self.wall_clock()
        outage = self.tracker.outage
        data = {
            "format": STATE_FORMAT,
            "pending": [item.to_dict() for item in self.pending],
            "next_id": self.next_id,
            "backoff": self.backoff.to_dict(mono, wall),
            "heartbeat": wall,
            "clean_stop": clean_stop,
            "down": None if outage is None else {
                "start": outage.start_wall, "reason": outage.reason,
                "duration": mono - outage.start_mono},
        }
        self.last_heartbeat = mono      # also after a failure: try again at the next heartbeat
        try:
            self.state.save(data)
        except OSError as error:
            self.console.error("cannot write state file %s: %s" % (self.state.path, _one_line(error)))

    def _restore_state(self, data):
        """Takes over what the previous run left: pending reports, backoff, and any gap."""
        mono, wall = self.clock(), self.wall_clock()
        self.pending = [Interruption.from_dict(item) for item in data.get("pending", [])]
        self.next_id = max([data.get("next_id", 1)] + [item.id + 1 for item in self.pending])
        self.backoff.restore(data.get("backoff") or {}, mono, wall)
        if self.pending:
            self.console.info("%s from the previous run still to report"
                              % plural(len(self.pending), "interruption"), wall)
        if data.get("clean_stop") or data.get("heartbeat") is None:
            return
        heartbeat = data["heartbeat"]
        down = data.get("down")
        if down and heartbeat - down["start"] >= self.settings.min_interruption:
            # the network was down when the monitor last showed a sign of life
            self._add_interruption(down["start"], heartbeat, max(0.0, heartbeat - down["start"]),
                                   down.get("reason") or "down", cut_short=True)
        duration = wall - heartbeat
        if duration <= 0:
            return       # the clock went backwards: no honest gap to report
        ignored = duration < self.settings.min_interruption
        self._event("gap", wall, start=iso_time(heartbeat), end=iso_time(wall),
                    duration=round(duration, 3), ignored=ignored)
        if ignored:
            self.console.info("the previous run did not stop cleanly; gap of %s ignored"
                              % human_duration(duration), wall)
        else:
            self.console.info("GAP: the previous run did not stop cleanly; the monitor was not "
                              "running for %s since %s" % (human_duration(duration),
                                                           local_time(heartbeat)), wall)
            self._add_interruption(heartbeat, wall, duration, "monitor not running", kind="gap")

    def _add_interruption(self, start, end, duration, reason, kind="outage", cut_short=False):
        if self.deliverer is None:
            return       # --no-mail: the event log is the only record, nothing waits for a report
        self.pending.append(Interruption(self.next_id, start, end, duration, reason, kind, cut_short))
        self.next_id += 1

    # -- rounds ------------------------------------------------------------------------------
    def _handle_round(self, results, mono, wall):
        self.last_results = results
        self.last_round_mono, self.last_round_completed = mono, self.wall_clock()
        network_up = any(result.up for result in results)
        target_reasons = {result.target.label: result.reason for result in results if not result.up}
        first_reason = next((result.reason for result in results if not result.up), None)
        if network_up and self.tracker.is_down:
            # The connect that shows the network back may have got through only on a SYN the
            # kernel resent (1 s, 3 s ... into the round): until it did, the network was down.
            back = min(result.connect_time or 0.0 for result in results if result.up)
            mono, wall = mono + back, wall + back
        transition = self.tracker.observe(network_up, mono, wall, first_reason, target_reasons)
        if transition is None:
            return
        kind, detail = transition
        if kind == "down":
            self._event("down", wall, start=iso_time(wall), reason=first_reason,
                        targets=target_reasons)
            self.console.info("DOWN " + ", ".join("%s %s" % item for item in target_reasons.items()),
                              wall)
            self._save_state()
            return
        outage, duration, ignored = detail
        self._count_interruption(duration, ignored)
        self._event("up", wall, start=iso_time(outage.start_wall), end=iso_time(wall),
                    duration=round(duration, 3), ignored=ignored)
        if ignored:
            self.console.info("UP after %s: shorter than %g s, ignored"
                              % (human_duration(duration), self.settings.min_interruption), wall)
        else:
            self.console.info("UP after %s (down since %s, %s)" % (
                human_duration(duration), local_time(outage.start_wall), outage.reason), wall)
            self._add_interruption(outage.start_wall, wall, duration, outage.reason)
        self._save_state()

    # -- reports -----------------------------------------------------------------------------
    def _maybe_send_report(self, mono):
        if not self.pending or self.tracker.is_down:
            self.backoff.quiet(mono)
            return
        if self.worker is None or self.worker.busy:
            return
        if not self.backoff.may_send(mono):
            return
        problem = self.deliverer.problem()
        if problem:
            # not set up (yet): keep the report, look again after a while without spamming
            if not self.mail_problem_shown:
                self.console.warning("report pending, but %s" % problem)
                self.mail_problem_shown = True
            self.backoff.record_failure(mono)
            return
        self.mail_problem_shown = False
        batch = list(self.pending)
        subject, body = format_report(batch, self.hostname, self._target_labels())
        self.worker.submit(lambda: self.deliverer.deliver(subject, body),
                           tag=[item.id for item in batch])

    def _collect_deliveries(self):
        if self.worker is None:
            return
        for ids, failure in self.worker.take_results():
            mono, wall = self.clock(), self.wall_clock()
            if failure is None:
                self.reports_sent += 1
                self.backoff.record_success(mono)
                sent = set(ids)
                self.pending = [item for item in self.pending if item.id not in sent]
                wait = self.backoff.wait
                self._event("report_sent", wall, interruptions=len(ids), via=self.deliverer.name,
                            next_wait=wait)
                self.console.info("report sent (%s) by %s; next report no sooner than in %s"
                                  % (plural(len(ids), "interruption"), self.deliverer.name,
                                     human_duration(wait)), wall)
            else:
                self.report_failures += 1
                self.backoff.record_failure(mono)
                self._event("report_failed", wall, interruptions=len(ids), via=self.deliverer.name,
                            reason=failure, retry_in=self.settings.backoff_min)
                self.console.warning("report not delivered: %s; retrying in %s"
                                     % (failure, human_duration(self.settings.backoff_min)), wall)
            self._save_state()
            self._publish_metrics()

    # -- metrics -----------------------------------------------------------------------------
    def _count_interruption(self, duration, ignored):
        if ignored:
            self.ignored_interruptions += 1
        else:
            self.interruptions_ended += 1
            self.downtime_ended += duration

    def _metrics_snapshot(self):
        """The numbers as of the last round; counters never go down (see render_metrics)."""
        interruptions, downtime = self.interruptions_ended, self.downtime_ended
        outage = self.tracker.outage
        if outage is not None and self.last_round_mono is not None:
            ongoing = self.last_round_mono - outage.start_mono
            if ongoing >= self.settings.min_interruption:     # it can no longer end up ignored
                interruptions += 1
                downtime += ongoing
        results = self.last_results
        return {
            "version": VERSION,
            "network_up": any(result.up for result in results) if results else None,
            "targets": tuple((result.target.label, result.up,
                              round(result.connect_time, 6) if result.connect_time is not None
                              else None) for result in results),
            "interruptions": interruptions,
            "ignored_interruptions": self.ignored_interruptions,
            "downtime_seconds": round(downtime, 3),
            "unreported_interruptions": len(self.pending),
            "reports_sent": self.reports_sent,
            "report_failures": self.report_failures,
            "last_round": (None if self.last_round_completed is None
                           else round(self.last_round_completed, 3)),
        }

    def _publish_metrics(self):
        if self.metrics_board is not None:
            self.metrics_board.publish(self._metrics_snapshot())

    # -- ping URL ----------------------------------------------------------------------------
    def _maybe_ping(self, mono):
        if self.ping_sender is None or self.ping_sender.busy:
            return
        if self.ping_schedule.due(mono, network_up=not self.tracker.is_down):
            self.ping_schedule.started(mono)
            self.ping_sender.submit()

    def _collect_pings(self):
        if self.ping_sender is None:
            return
        for failure in self.ping_sender.take_results():
            if failure is not None and self.tracker.is_down:
                continue     # the network went down during the request: not the endpoint's fault
            news = self.ping_health.record(ok=failure is None)
            wall = self.wall_clock()
            where = ping_url_for_people(self.ping_sender.url)
            if news == "failed":
                self._event("ping_failed", wall, url=where, reason=failure)
                self.console.warning("ping to %s failed: %s; trying again every %s, quietly until "
                                     "it works" % (where, failure,
                                                   human_duration(self.ping_schedule.interval)), wall)
            elif news == "recovered":
                self._event("ping_ok", wall, url=where)
                self.console.info("ping ok again (%s)" % where, wall)

    # -- event log rotation ------------------------------------------------------------------
    def _reopen_event_log(self):
        if not self.log.path:
            return
        wall = self.wall_clock()
        try:
            self.log.reopen()
        except MonitorError as error:
            self.console.warning("%s; still writing to the old file" % error, wall)
            return
        self._event("log_reopened", wall)
        self.console.info("event log reopened", wall)

    # -- the loop ----------------------------------------------------------------------------
    def start(self):
        wall = self.wall_clock()
        settings = self.settings
        self._event("start", wall, version=VERSION, targets=self._target_labels(),
                    interval=settings.interval, timeout=settings.timeout,
                    min_interruption=settings.min_interruption,
                    backoff_min=settings.backoff_min, backoff_max=settings.backoff_max,
                    backoff_step=settings.backoff_step, pid=os.getpid())
        self.console.info("started pyNetConnMon %s (pid %d): watching %s every %g s, timeout %g s, "
                          "interruptions under %g s ignored" % (
                              VERSION, os.getpid(), ", ".join(self._target_labels()),
                              settings.interval, settings.timeout, settings.min_interruption), wall)
        if self.state is not None:
            data, warning = self.state.load()
            if warning:
                self.console.warning(warning, wall)
            if data:
                self._restore_state(data)
            self._save_state()
        self._publish_metrics()

    def run(self):
        """Runs until SIGTERM or SIGINT; returns the name of the signal."""
        self.start()
        schedule = RoundSchedule(self.settings.interval, self.clock())
        heartbeat_every = self.settings.heartbeat
        while self.waker.stop_signal is None:
            if self.waker.reopen_requested:
                self.waker.reopen_requested = False
                self._reopen_event_log()
            self._collect_deliveries()
            self._collect_pings()
            now = self.clock()
            heartbeat_due = self.last_heartbeat + heartbeat_every if self.state is not None else math.inf
            if now >= heartbeat_due:
                self._save_state()
                continue
            wait = min(schedule.seconds_until_due(now), heartbeat_due - now)
            if wait > 0:
                self.waker.wait(wait)
                continue
            schedule.round_started(now)
            wall = self.wall_clock()
            results = self.prober.probe_round(self.targets, lambda: self.waker.stop_signal is not None)
            if self.waker.stop_signal is not None:
                break
            self._handle_round(results, now, wall)
            self._maybe_send_report(self.clock())
            self._maybe_ping(self.clock())
            self._publish_metrics()
        return self.stop()

    def _wait_for_delivery_in_flight(self, limit=0.5):
        """A report the server accepted just now must not stay pending and go out twice."""
        deadline = self.clock() + limit
        cancel = getattr(self.deliverer, "cancel", None)
        while self.worker is not None and self.worker.busy:
            if self.clock() >= deadline:
                if cancel is None:
                    break
                # a notify command runs in its own session and would still deliver after the
                # stop, behind the state file's back: kill it, so its report stays pending
                cancel()
                cancel, deadline = None, self.clock() + limit
            self.waker.wait(0.05)
            self._collect_deliveries()

    def stop(self):
        self._wait_for_delivery_in_flight()
        mono, wall = self.clock(), self.wall_clock()
        outage = self.tracker.outage
        fields = {"signal": self.waker.stop_signal}
        if outage is not None:
            duration = mono - outage.start_mono
            fields["down_since"] = iso_time(outage.start_wall)
            if duration >= self.settings.min_interruption:
                self._add_interruption(outage.start_wall, wall, duration, outage.reason,
                                       cut_short=True)
            self.tracker.outage = None
        self.prober.close()
        self._save_state(clean_stop=True)
        self._event("stop", wall, **fields)
        self.console.info("stopped (%s)%s" % (self.waker.stop_signal, (
            "; %s still to report" % plural(len(self.pending), "interruption")) if self.pending else ""),
            wall)
        return self.waker.stop_signal


# ---------------------------------------------------------------------------------------------
# Availability summary (--summary): reads the event log back; pure apart from run_summary()
# ---------------------------------------------------------------------------------------------

HOUR_SHADES = "\u00b7\u2591\u2592\u2593\u2588"   # ·░▒▓█: no downtime, down <25 %, <50 %, <75 %, more
HOUR_SHADES_ASCII = ".-+*#"                      # the same, for a terminal without those characters
EVENT_LINE_LIMIT = 64 * 1024     # bytes; a longer line is skipped and counted, never held in memory
UNKNOWN_NAMES_KEPT = 100         # unknown event names counted by name; any further ones in one sum
_SUMMARY_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def _calendar_can_place(moment):
    """Can this system's localtime() put `moment`, and the days around it, on a calendar day of
    the years 1 to 9999? Days and hours are cut in local time; outside that range (or that of a
    32-bit time_t) an instant is treated as no time at all."""
    if -2145916800 <= moment < 2145916800:     # 1902 to 2037: any localtime() places these
        return True
    try:
        years = [time.localtime(moment + days * 86400).tm_year for days in (-2, 0, 2)]
    except (OverflowError, OSError, ValueError):
        return False
    return 1 <= min(years) and max(years) <= 9999


def parse_log_time(value):
    """Epoch seconds of an ISO 8601 time from the event log (without an offset: local time).

    Returns None for anything else, so one bad field never stops a summary.
    """
    if not isinstance(value, str):
        return None
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"     # fromisoformat() learnt "Z" only in Python 3.11
    try:
        moment = datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return moment if _calendar_can_place(moment) else None


def parse_summary_date(text, option, end_of_day=False):
    """--since/--until: YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], local time, as epoch seconds.

    With `end_of_day`, a bare date means the end of that day (the next midnight), so that
    --until 2026-11-24 includes all of the 24th.
    """
    match = _SUMMARY_DATE.match(text.strip())
    if not match:
        raise UsageError("%s: %r is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]' "
                         "(local time)" % (option, text))
    try:
        moment = datetime(*[int(part) for part in match.groups() if part is not None])
        if end_of_day and match.group(4) is None:
            moment = datetime.fromordinal(moment.toordinal() + 1)
        moment = moment.timestamp()
    except (ValueError, OverflowError, OSError) as error:
        raise UsageError("%s: %r is not a valid date (%s)" % (option, text, _one_line(error)))
    if not _calendar_can_place(moment):
        raise UsageError("%s: %r is outside the dates this system can show" % (option, text))
    return moment


def _number(value, default=None):
    """A finite float from a JSON number, else `default`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        value = float(value)
    except OverflowError:
        return default
    return value if math.isfinite(value) else default


def _hour_pieces(start, end):
    """Cuts [start, end) at local hour boundaries: yields (hour, seconds)."""
    moment = start
    while moment < end:
        local = time.localtime(moment)
        # whole seconds: the boundary is exact; always later than `moment`, even in a leap second
        boundary = max(math.floor(moment) + 1,
                       math.floor(moment) - local.tm_min * 60 - local.tm_sec + 3600)
        piece_end = min(end, boundary)
        yield local.tm_hour, piece_end - moment
        moment = piece_end


def _local_day(moment):
    """The local calendar day that holds `moment`: ((year, month, day), its first instant, the
    next day's first instant). A day has 23 to 25 hours where summer time begins or ends."""
    local = time.localtime(moment)
    key = local[:3]
    hour_start = math.floor(moment) - local.tm_min * 60 - local.tm_sec
    first = hour_start
    while True:                       # back one hour at a time: at most a day's hours
        before = time.localtime(first - 1)
        if before[:3] != key:
            break
        first -= 1 + before.tm_min * 60 + before.tm_sec
    following = hour_start + 3600
    while True:                       # and forward
        after = time.localtime(following)
        if after[:3] != key:
            break
        following += max(1, 3600 - after.tm_min * 60 - after.tm_sec)    # 23:59:60 a leap second
    return key, first, following


def _availability(monitored, downtime):
    if monitored <= 0:
        return None
    return min(100.0, max(0.0, 100.0 * (monitored - downtime) / monitored))


def _date_text(key):
    return "%04d-%02d-%02d" % key


class DaySummary:
    """One local calendar day, or several days in a row alike in every hour (`days` > 1): seconds
    monitored and down, in all and per hour. For several days the totals are their sum and the
    hours are those of one of them."""

    __slots__ = ("date", "last_date", "days", "start", "end", "monitored", "downtime",
                 "interruptions", "hour_monitored", "hour_down")

    def __init__(self, key, start, end):
        self.date = self.last_date = _date_text(key)     # "YYYY-MM-DD"
        self.days = 1
        self.start = start                 # the first instant of the (first) day
        self.end = end                     # the first instant of the day after the (last) day
        self.monitored = 0.0
        self.downtime = 0.0
        self.interruptions = 0             # those that began on this day
        self.hour_monitored = [0.0] * 24
        self.hour_down = [0.0] * 24

    @property
    def availability(self):
        """Percent, or None when the day was not monitored at all."""
        return _availability(self.monitored, self.downtime)

    def add(self, start, end, down):
        """Counts [start, end), a part of this one day, as monitored or as down, hour by hour."""
        if down:
            self.downtime += end - start
            hours = self.hour_down
        else:
            self.monitored += end - start
            hours = self.hour_monitored
        for hour, seconds in _hour_pieces(start, end):
            hours[hour] += seconds


class Summary:
    """What summarize_events() found. Instants are epoch seconds, durations seconds."""

    def __init__(self, since=None, until=None):
        self.since = since
        self.until = until
        self.start = None           # the period covered: the log's first monitored instant to
        self.end = None             # its last event, clipped to since/until (None: nothing)
        self.monitored = 0.0        # the monitor running, up or down, plus gaps (counted as down)
        self.downtime = 0.0         # interruptions and gaps
        self.gap_downtime = 0.0
        self.gaps = 0
        self.interruptions = 0      # gaps included, blips not
        self.longest = 0.0
        self.blips = 0              # shorter than min-interruption: ignored, not downtime
        self.still_running = False  # the log ends with the monitor running: counted to its last event
        self.still_down = False     # ... and with the network down
        self.days = []              # DaySummary rows from the period's first day to its last, in
        #                             order; days in a row without any change share one row
        self.invalid = 0            # records without a valid "time" and "event"
        self.unknown = {}           # unknown event name -> how many were skipped
        self.unknown_others = 0     # unknown events beyond UNKNOWN_NAMES_KEPT names

    @property
    def period(self):
        return 0.0 if self.start is None else self.end - self.start

    @property
    def not_running(self):
        """Stopped (or an ignored gap): neither up nor down."""
        return max(0.0, self.period - self.monitored)

    @property
    def availability(self):
        return _availability(self.monitored, self.downtime)

    def count_unknown(self, name):
        name = name[:40]
        if name in self.unknown or len(self.unknown) < UNKNOWN_NAMES_KEPT:
            self.unknown[name] = self.unknown.get(name, 0) + 1
        else:
            self.unknown_others += 1


class _Timeline:
    """Adds up monitored time and downtime clipped to [since, until), in all, per day and per hour.

    A span that overlaps one already counted is cut to the part after it, so an odd log (clock
    set back, a line written twice) never counts a second twice; so the spans of each kind come
    in order. A span is counted hour by hour only on its first and its last day; the whole days
    between are kept as one stretch. Work and memory grow with the number of spans, never with
    the time they cover.
    """

    def __init__(self, summary):
        self.summary = summary
        self.since = -math.inf if summary.since is None else summary.since
        self.until = math.inf if summary.until is None else summary.until
        self.monitored_to = -math.inf
        self.down_to = -math.inf
        self.days = {}               # (year, month, day) -> DaySummary: a day a span begins or ends
        self.whole = ([], [])        # [down]: (start, end) of the whole days inside spans, in order

    def _day(self, moment):
        key = time.localtime(moment)[:3]
        day = self.days.get(key)
        if day is None:
            day = self.days[key] = DaySummary(*_local_day(moment))
        return day

    def monitored(self, start, end):
        start, end = max(start, self.since, self.monitored_to), min(end, self.until)
        if end <= start:
            return
        self.monitored_to = end
        self.summary.monitored += end - start
        self._spread(start, end, down=False)

    def down(self, start, end, gap=False):
        start, end = max(start, self.since, self.down_to), min(end, self.until)
        if end <= start:
            return
        self.down_to = end
        summary = self.summary
        summary.downtime += end - start
        summary.interruptions += 1
        summary.longest = max(summary.longest, end - start)
        if gap:
            summary.gaps += 1
            summary.gap_downtime += end - start
        self._day(start).interruptions += 1
        self._spread(start, end, down=True)

    def blip(self, instant):
        if self.since <= instant < self.until:
            self.summary.blips += 1

    def _spread(self, start, end, down):
        first = self._day(start)
        first.add(start, min(end, first.end), down)
        if end <= first.end:
            return
        last_start = _local_day(end)[1]
        if last_start < end:
            self._day(end).add(last_start, end, down)
        if first.end < last_start:
            self.whole[down].append((first.end, last_start))

    def _covered(self, down, start, end):
        """Is [start, end), whole days, inside the whole days of one span of this kind?"""
        import bisect
        whole = self.whole[down]
        index = bisect.bisect_right(whole, (start, math.inf)) - 1
        return index >= 0 and whole[index][0] <= start and end <= whole[index][1]

    def _alike(self, start, end):
        """The row of the days from `start` to `end` (local midnights) without any change."""
        first, last = time.localtime(start)[:3], time.localtime(end - 1)[:3]
        row = DaySummary(first, start, end)
        row.days = datetime(*last).toordinal() - datetime(*first).toordinal() + 1
        row.last_date = _date_text(last)
        for down in (False, True):
            if not self._covered(down, start, end):
                continue
            if row.days == 1:
                row.add(start, end, down)
            elif down:
                row.downtime, row.hour_down = end - start, [3600.0] * 24
            else:
                row.monitored, row.hour_monitored = end - start, [3600.0] * 24
        return row

    def rows(self, start, end):
        """The day rows of the period [start, end): a row for each day a span begins or ends in,
        and one for each run of days between them."""
        if start is None:
            return []
        for day in self.days.values():      # whole days of one span, an edge of another in them
            for down in (False, True):
                if self._covered(down, day.start, day.end):
                    day.add(day.start, day.end, down)
        cuts = {_local_day(start)[1], _local_day(max(start, end - 0.001))[2]}
        for day in self.days.values():
            cuts.update((day.start, day.end))
        for whole in self.whole:
            for stretch in whole:
                cuts.update(stretch)
        cuts = sorted(cuts)
        edge_days = {day.start: day for day in self.days.values()}
        return [edge_days.get(cut) or self._alike(cut, following)
                for cut, following in zip(cuts, cuts[1:])]


class _Run:
    """A run of the monitor as the replay sees it: from its start to its latest sign of life."""

    __slots__ = ("start", "seen", "down_since", "down_text", "min_interruption")

    def __init__(self, start, min_interruption):
        self.start = self.seen = start
        self.down_since = None       # the network has been down since then (None: up)
        self.down_text = None        # ... as the `down` line wrote it: its `up` repeats it as start
        self.min_interruption = min_interruption


class _Replay:
    """Replays event-log records, in file order, onto a _Timeline.

    Every event in EVENTS that counts for availability has a handler on_<event>(moment, record);
    any other known event only shows that the monitor was running then. A handler reads the
    fields it knows and ignores the rest. To count a new event: add it to EVENTS, give it a
    handler here and a counter in Summary.
    """

    def __init__(self, summary):
        self.summary = summary
        self.timeline = _Timeline(summary)
        self.min_interruption = DEFAULT_MIN_INTERRUPTION     # that of the latest start
        self.run = None          # the run in progress (None: the monitor is not running)
        self.crashed = None      # a run ended without a stop, until we see if a gap follows
        self.first = None        # the first instant known to be monitored
        self.last = None         # the latest event
        self.handlers = {name: getattr(self, "on_" + name, self.on_sign_of_life)
                         for name in EVENTS}

    def feed(self, record):
        name = record.get("event") if isinstance(record, dict) else None
        moment = parse_log_time(record.get("time")) if isinstance(name, str) else None
        if moment is None:
            self.summary.invalid += 1
            return
        name = RENAMED_EVENTS.get(name, name)
        if name not in EVENTS:
            self.summary.count_unknown(name)
            return
        self.last = moment if self.last is None else max(self.last, moment)
        if self.crashed is not None and EVENTS[name].availability and name != "gap":
            self._end_crashed_run(None)
        self.handlers[name](moment, record)

    def finish(self):
        summary, timeline, run = self.summary, self.timeline, self.run
        if self.crashed is not None:
            self._end_crashed_run(None)
        if run is not None:
            self._close(run, run.seen, run.down_since, at_end=True)
            summary.still_running = run.seen <= timeline.until
            summary.still_down = summary.still_running and run.down_since is not None
        if self.first is not None:
            start, end = max(self.first, timeline.since), min(self.last, timeline.until)
            if end > start:
                summary.start, summary.end = start, end
        summary.days = timeline.rows(summary.start, summary.end)
        return summary

    # -- one handler per event -----------------------------------------------------------------
    def on_start(self, moment, record):
        if self.run is not None:
            self.crashed = self.run          # it ended without a stop; a gap may say when
        self.min_interruption = _number(record.get("min_interruption"), DEFAULT_MIN_INTERRUPTION)
        self.run = self._begin(moment)

    def on_stop(self, moment, record):
        run = self.run
        down = None if run is None else run.down_since
        if down is None:
            down = parse_log_time(record.get("down_since"))
        if run is None:                      # a log that begins with a stop (rotated)
            run = self._begin(moment if down is None else min(moment, down))
        self._close(run, moment, down)
        self.run = None

    def on_down(self, moment, record):
        run = self._alive(moment)
        if run.down_since is None:
            run.down_since, run.down_text = moment, record.get("time")

    def on_up(self, moment, record):
        began = self._outage_start(moment, record)
        run = self._alive(moment, began)
        began = max(began, run.start)
        ignored = record.get("ignored")
        if not isinstance(ignored, bool):
            ignored = moment - began < run.min_interruption
        if ignored:
            self.timeline.blip(began)
        else:
            self.timeline.down(began, moment)
        run.down_since = None

    def on_gap(self, moment, record):
        start, end = parse_log_time(record.get("start")), parse_log_time(record.get("end"))
        if self.crashed is not None:
            self._end_crashed_run(start)
        if start is not None and end is not None:
            end = min(end, moment)           # a gap cannot end after the line that tells of it
            ignored = record.get("ignored")
            if not isinstance(ignored, bool):
                ignored = end - start < self.min_interruption
            if end > start and not ignored:
                self.timeline.monitored(start, end)
                self.timeline.down(start, end, gap=True)
                self._monitored_from(start)
        if self.run is not None:
            self.run.seen = max(self.run.seen, moment)

    def on_log_reopened(self, moment, record):
        """A rotated log begins here with the monitor running: it counts from here."""
        self._alive(moment)

    def on_sign_of_life(self, moment, record):
        """Any other known event (a report, a ping, ...): the monitor was running then."""
        self._alive(moment)

    # -- runs ----------------------------------------------------------------------------------
    def _monitored_from(self, moment):
        self.first = moment if self.first is None else min(self.first, moment)

    def _begin(self, moment):
        self._monitored_from(moment)
        return _Run(moment, self.min_interruption)

    def _alive(self, moment, began=None):
        """The run `moment` belongs to; a log that begins while the monitor runs (rotated)
        counts from `began`, else from `moment`."""
        if self.run is None:
            self.run = self._begin(moment if began is None else began)
        self.run.seen = max(self.run.seen, moment)
        return self.run

    def _outage_start(self, moment, record):
        """When the outage that an `up` ends began: its `start`, else the `down` seen, else its
        `duration` before it."""
        run, text = self.run, record.get("start")
        began = None
        if run is not None and run.down_since is not None and text == run.down_text:
            began = run.down_since
        if began is None:
            began = parse_log_time(text)
        if began is None and run is not None:
            began = run.down_since
            if began is None:
                duration = max(0.0, _number(record.get("duration"), 0.0))
                began = max(run.start, moment - duration)
        return moment if began is None else min(began, moment)

    def _close(self, run, end, down, at_end=False):
        """Counts a run that ended at `end`, the network down since `down` (None: up)."""
        end = max(run.start, end)
        if down is not None:
            down = max(run.start, down)
            if end - down >= run.min_interruption:
                self.timeline.down(down, end)
            elif not at_end:                 # at the end of the log it may not be over yet
                self.timeline.blip(down)
        self.timeline.monitored(run.start, end)

    def _end_crashed_run(self, gap_start):
        """The run before the latest start had no stop: it lasted until its last event, or until
        the gap logged at the new start begins (its last heartbeat)."""
        crashed, self.crashed = self.crashed, None
        end = crashed.seen
        if gap_start is not None and self.run is not None:
            end = min(max(end, gap_start), self.run.start)
        self._close(crashed, end, crashed.down_since)


def summarize_events(events, since=None, until=None):
    """Availability from event-log records (parsed JSON, in file order), clipped to [since, until).

    The rules, in short: the monitor runs from a `start` to the next `stop`; `down`..`up` is an
    interruption unless the `up` says it was ignored (a blip); a `stop` while down ends the
    interruption then (if at least the run's min_interruption long); a `gap` that was not
    ignored is downtime that also counts as monitored time. Between a `stop` and the next
    `start` the monitor was not running: neither up nor down. A `start` with no `stop` before it
    ends the previous run at its last sign of life: the start of the `gap` logged right after
    (the last heartbeat), else its last event. A log that begins while the monitor runs (after
    logrotate: `log_reopened`) counts from its first event; one that ends while running, to its
    last. Records without a valid time and event, and unknown events, are counted in the
    summary and otherwise skipped; fields no handler reads are ignored.
    """
    replay = _Replay(Summary(since, until))
    for record in events:
        replay.feed(record)
    return replay.finish()


def open_event_log(path):
    """The event log as a binary stream. Only a regular file is read: a FIFO, a device or a
    directory is refused at once (opened without blocking, then checked)."""
    import stat
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
                    if stat.S_ISSOCK(mode) else "not a file")
            raise MonitorError("cannot read event log %s: it is %s, not a regular file"
                               % (path, kind))
        return os.fdopen(descriptor, "rb")    # O_NONBLOCK does nothing to a regular file
    except BaseException:
        os.close(descriptor)
        raise


def read_lines(stream, limit=EVENT_LINE_LIMIT):
    """The lines of a binary stream, each at most `limit` bytes besides its newline; None in
    place of a longer line, whose bytes are read past in pieces, never held whole."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(limit + 1)
        yield None


class EventLines:
    """Iterates the JSON values of an event log's lines (str or bytes); counts the lines that are
    not JSON, and the lines too long to read (None from read_lines())."""

    def __init__(self, lines):
        self.lines = lines
        self.not_json = 0
        self.too_long = 0

    def __iter__(self):
        decode = json.JSONDecoder().decode
        for line in self.lines:
            if line is None:
                self.too_long += 1
                continue
            if isinstance(line, bytes):
                line = line.decode("utf-8", "replace")
            if not line.strip():
                continue
            try:
                yield decode(line)
            except (ValueError, RecursionError):
                self.not_json += 1


def describe_skipped(not_json, summary, source, too_long=0):
    """The one warning about skipped lines, or None when nothing was skipped."""
    unknown = sum(summary.unknown.values()) + summary.unknown_others
    total = too_long + not_json + summary.invalid + unknown
    if not total:
        return None
    parts = []
    if too_long:
        parts.append("%d longer than %d KiB" % (too_long, EVENT_LINE_LIMIT // 1024))
    if not_json:
        parts.append("%d not JSON" % not_json)
    if summary.invalid:
        parts.append("%d without a valid time and event" % summary.invalid)
    if unknown:
        names = sorted(summary.unknown, key=lambda name: (-summary.unknown[name], name))
        shown = ", ".join(_one_line(name)[:30] or "''" for name in names[:5])
        more = len(names) > 5 or summary.unknown_others
        parts.append("%s (%s%s)" % (plural(unknown, "unknown event"), shown,
                                    ", ..." if more else ""))
    return "skipped %s of %s: %s" % (plural(total, "line"), source, ", ".join(parts))


def hour_bar(day, shades=HOUR_SHADES):
    """24 cells, one per hour: blank when not monitored, darker for more downtime."""
    cells = []
    for monitored, down in zip(day.hour_monitored, day.hour_down):
        if down > 0:
            cells.append(shades[min(4, 1 + int(4 * down / 3600.0))])
        elif monitored > 0:
            cells.append(shades[0])
        else:
            cells.append(" ")
    return "".join(cells)


def _percent(value, decimals):
    """Rounded, except that anything short of 100 % never reads as 100."""
    if value is None:
        return "-"
    text = "%.*f" % (decimals, value)
    if value < 100.0 and float(text) >= 100.0:
        text = "%.*f" % (decimals, 100.0 - 10.0 ** -decimals)
    return text


def format_day(day, shades=HOUR_SHADES):
    """One row of the table; days alike in a row end with '.. LAST-DATE (N days)'."""
    if day.monitored > 0:
        row = "%-10s  %7s  %4d  %16s  |%s|" % (
            day.date, _percent(day.availability, 2) + "%", day.interruptions,
            human_duration(day.downtime), hour_bar(day, shades))
    else:
        row = "%-10s  %7s  %4s  %16s  |%s|" % (day.date, "-", "-", "-", " " * 24)
    if day.days > 1:
        row += " .. %s (%d days)" % (day.last_date, day.days)
    return row


def format_summary(summary, source, ascii=False):
    """The text --summary prints (local time throughout)."""
    shades = HOUR_SHADES_ASCII if ascii else HOUR_SHADES
    lines = ["pyNetConnMon summary of %s" % source]
    if summary.since is not None or summary.until is not None:
        lines.append("Selected:      %s to %s" % (
            "the beginning" if summary.since is None else local_time(summary.since),
            "the end" if summary.until is None else local_time(summary.until)))
    if summary.start is None:
        lines.append("Nothing to summarize: no monitored time %s."
                     % ("in the log" if summary.since is None and summary.until is None
                        else "in the selected time"))
        return "\n".join(lines) + "\n"
    lines.append("Period:        %s to %s (%s)" % (
        local_time(summary.start), local_time(summary.end), human_duration(summary.period)))
    if summary.still_running:
        lines.append("               (the log ends while the monitor runs%s: counted until its "
                     "last event)" % (" and the network is down" if summary.still_down else ""))
    interruptions = "%d" % summary.interruptions
    if summary.interruptions:
        interruptions += " (longest %s)" % human_duration(summary.longest)
    downtime = human_duration(summary.downtime)
    if summary.gaps:
        downtime += " (of which %s in %s)" % (human_duration(summary.gap_downtime),
                                              plural(summary.gaps, "gap"))
    lines += [
        "Monitored:     %s" % human_duration(summary.monitored),
        "Not running:   %s (neither up nor down)" % human_duration(summary.not_running),
        "Availability:  %s %%" % _percent(summary.availability, 3),
        "Interruptions: %s, %s ignored" % (interruptions, plural(summary.blips, "blip")),
        "Downtime:      %s" % downtime,
        "",
        "%-10s  %7s  %4s  %16s   %s" % ("day", "avail", "int", "downtime",
                                        "00    06    12    18"),
    ]
    lines += [format_day(day, shades) for day in summary.days]
    lines += [
        "",
        "int: interruptions that began that day. One cell per hour of local time:",
        "%s no downtime, %s down under 25 %% of the hour, %s under 50 %%, %s under 75 %%, "
        "%s 75 %% or more; blank: not monitored." % tuple(shades),
    ]
    if any(day.days > 1 for day in summary.days):
        lines.append("'.. DATE (N days)': N days in a row alike in every hour, with their totals.")
    return "\n".join(lines) + "\n"


def _discard_output(out):
    """Points `out` at /dev/null, so that its last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def run_summary(settings, out, console):
    """--summary: the I/O around summarize_events() and format_summary()."""
    path = settings.log_file
    try:
        with open_event_log(path) as stream:
            lines = EventLines(read_lines(stream))
            summary = summarize_events(lines, settings.since, settings.until)
    except OSError as error:
        raise MonitorError("cannot read event log %s: %s"
                           % (path, error.strerror or _one_line(error)))
    try:
        HOUR_SHADES.encode(getattr(out, "encoding", None) or "ascii")
        plain = False
    except (LookupError, UnicodeError):
        plain = True
    text = format_summary(summary, path, ascii=plain)
    try:
        try:
            out.write(text)
        except UnicodeEncodeError:      # e.g. a file name the terminal cannot show
            encoding = getattr(out, "encoding", None) or "ascii"
            out.write(text.encode(encoding, "replace").decode(encoding))
        out.flush()
    except BrokenPipeError:             # `--summary | head`: the reader has seen enough
        _discard_output(out)
    except OSError as error:            # a full disk, a closed descriptor, ...
        _discard_output(out)
        raise MonitorError("cannot write the summary: %s" % (error.strerror or _one_line(error)))
    warning = describe_skipped(lines.not_json, summary, path, lines.too_long)
    if warning:
        console.warning(warning)
    return 0


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _finite(option, minimum, strict):
    def convert(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError("%r is not a finite number" % text)
        if (strict and value <= minimum) or (not strict and value < minimum):
            raise argparse.ArgumentTypeError("%g must be %s %g" % (value, ">" if strict else ">=", minimum))
        return value
    convert.__name__ = option
    return convert


def build_parser():
    parser = _Parser(
        prog="pyNetConnMon.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Monitor Internet or network connectivity and report interruptions via mail.\n\n"
                    "All time-based arguments are specified in seconds.")
    positive = _finite("seconds", 0.0, strict=True)
    non_negative = _finite("seconds", 0.0, strict=False)
    parser.add_argument("-a", "--address", action="append", metavar="ADDRESS",
                        help="target to connect to: HOST, HOST:PORT, [IPV6]:PORT or IPV6; "
                             "give several times for several targets (default: %s)" % DEFAULT_ADDRESS)
    parser.add_argument("-p", "--port", default=str(DEFAULT_PORT),
                        help="port for targets given without one (default: %d)" % DEFAULT_PORT)
    parser.add_argument("-i", "--interval", type=positive, default=DEFAULT_INTERVAL,
                        help="check interval (default: %.1f)" % DEFAULT_INTERVAL)
    parser.add_argument("-t", "--timeout", type=positive, default=DEFAULT_TIMEOUT,
                        help="connection timeout (default: %.1f)" % DEFAULT_TIMEOUT)
    parser.add_argument("-m", "--min-interruption", type=non_negative, default=DEFAULT_MIN_INTERRUPTION,
                        help="ignore interruptions shorter than this (default: %.1f)"
                             % DEFAULT_MIN_INTERRUPTION)
    parser.add_argument("-bmin", "--backoff-min", type=non_negative, default=DEFAULT_BACKOFF_MIN,
                        help="minimum time between mail reports, and the retry time after a "
                             "failed one (default: %.1f)" % DEFAULT_BACKOFF_MIN)
    parser.add_argument("-bmax", "--backoff-max", type=non_negative, default=DEFAULT_BACKOFF_MAX,
                        help="maximum time between mail reports; after this long without a report "
                             "the backoff resets (default: %.1f)" % DEFAULT_BACKOFF_MAX)
    parser.add_argument("-bstep", "--backoff-step", type=non_negative, default=DEFAULT_BACKOFF_STEP,
                        help="backoff increment for each further report (default: %.1f)"
                             % DEFAULT_BACKOFF_STEP)
    parser.add_argument("--log-file", metavar="PATH",
                        help="append every event to PATH as JSON Lines (SIGHUP reopens it)")
    parser.add_argument("--state-file", metavar="PATH",
                        help="pending reports, backoff and heartbeat (default: "
                             "$XDG_STATE_HOME/pyNetConnMon/state.json or "
                             "~/.local/state/pyNetConnMon/state.json)")
    parser.add_argument("--heartbeat", type=positive, default=DEFAULT_HEARTBEAT, metavar="SECONDS",
                        help="how often the state file records that the monitor is alive, which "
                             "bounds how exactly a power cut is reported (default: %.1f)"
                             % DEFAULT_HEARTBEAT)
    parser.add_argument("--metrics-port", metavar="PORT",
                        help="serve Prometheus metrics at http://ADDRESS:PORT/metrics "
                             "(default: no metrics)")
    parser.add_argument("--metrics-address", metavar="ADDRESS",
                        help="IP address the metrics are served on; 0.0.0.0 or :: for all "
                             "(default: %s)" % DEFAULT_METRICS_ADDRESS)
    parser.add_argument("--ping-url", metavar="URL",
                        help="while the network is up, request this http(s) URL every "
                             "--ping-interval seconds: a dead man's switch for Healthchecks, "
                             "Uptime Kuma push monitors and the like")
    parser.add_argument("--ping-interval", type=positive, metavar="SECONDS",
                        help="at most one ping per this many seconds (default: %.1f)"
                             % DEFAULT_PING_INTERVAL)
    parser.add_argument("--pysendmail", metavar="DIR",
                        help="the pySendMail folder (default: pySendMail/ beside this script)")
    parser.add_argument("--notify-command", metavar="CMD",
                        help="deliver reports by running CMD (report on stdin, subject in "
                             "$PYNETCONNMON_SUBJECT; exit status 0 means delivered) instead of mail")
    parser.add_argument("--no-mail", action="store_true", help="do not send reports at all")
    parser.add_argument("--test-mail", action="store_true",
                        help="send one test report now; exit 0 if it was accepted, else 1")
    parser.add_argument("--once", action="store_true",
                        help="probe every target once, print the results; exit 0 if up, 1 if down")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only warnings and errors")
    summary = parser.add_argument_group(
        "availability summary", "Reads the event log back; needs no network.\n"
        "DATE is local time: YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]'.")
    summary.add_argument("--summary", action="store_true",
                         help="print the availability of the event log given by --log-file: "
                              "overall, then one row per day with a bar of its 24 hours; then exit")
    summary.add_argument("--since", metavar="DATE",
                         help="summarize from DATE on; a bare date means 00:00 of that day")
    summary.add_argument("--until", metavar="DATE",
                         help="summarize up to DATE; a bare date includes all of that day, so "
                              "--since 2026-11-24 --until 2026-11-24 is that one day")
    parser.add_argument("--version", action="version", version="pyNetConnMon " + VERSION)
    return parser


def parse_arguments(argv):
    """Parses and checks everything before anything runs; raises UsageError."""
    args = build_parser().parse_args(argv)
    args.port = parse_port(args.port)
    if args.backoff_max < args.backoff_min:
        raise UsageError("-bmax/--backoff-max: %g is below -bmin/--backoff-min %g"
                         % (args.backoff_max, args.backoff_min))
    if args.no_mail and (args.test_mail or args.notify_command):
        raise UsageError("--no-mail cannot be combined with --test-mail or --notify-command")
    if args.notify_command is not None and not args.notify_command.strip():
        raise UsageError("--notify-command: empty command")
    _check_metrics_and_ping(args)
    args.targets = [parse_target(value, args.port) for value in (args.address or [DEFAULT_ADDRESS])]
    if args.summary:
        if not args.log_file:
            raise UsageError("--summary needs --log-file PATH, the event log to read")
        if args.once or args.test_mail:
            raise UsageError("--summary cannot be combined with --once or --test-mail")
    elif args.since is not None or args.until is not None:
        raise UsageError("--since and --until only go with --summary")
    if args.since is not None:
        args.since = parse_summary_date(args.since, "--since")
    if args.until is not None:
        args.until = parse_summary_date(args.until, "--until", end_of_day=True)
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise UsageError("--since must be before --until")
    if args.pysendmail is None:
        args.pysendmail = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pySendMail")
    args.state_file = args.state_file or default_state_path()
    return Settings(**{name: getattr(args, name) for name in Settings.__slots__})


def _check_metrics_and_ping(args):
    if args.metrics_port is not None:
        args.metrics_port = parse_port(args.metrics_port, "--metrics-port")
    elif args.metrics_address is not None:
        raise UsageError("--metrics-address needs --metrics-port")
    if args.metrics_address is None:
        args.metrics_address = DEFAULT_METRICS_ADDRESS
    elif _ip_literal(args.metrics_address) is None or "%" in args.metrics_address:
        raise UsageError("--metrics-address: %r is not an IP address" % args.metrics_address)
    if args.ping_url is not None:
        problem = ping_url_problem(args.ping_url)
        if problem:
            raise UsageError("--ping-url: " + problem)
    elif args.ping_interval is not None:
        raise UsageError("--ping-interval needs --ping-url")
    if args.ping_interval is None:
        args.ping_interval = DEFAULT_PING_INTERVAL


def start_metrics(args, console):
    """(board, server) serving --metrics-port, or (None, None) without it."""
    if args.metrics_port is None:
        return None, None
    board = MetricsBoard(empty_metrics_snapshot())
    server = start_metrics_server(args.metrics_address, args.metrics_port, board)
    console.info("serving metrics at http://%s/metrics"
                 % Target(args.metrics_address, args.metrics_port).label)
    return board, server


def make_pinger(args, waker, console):
    """(sender, schedule) for --ping-url, or (None, None) without it."""
    if args.ping_url is None:
        return None, None
    console.info("pinging %s every %s while the network is up"
                 % (ping_url_for_people(args.ping_url), human_duration(args.ping_interval)))
    return PingSender(args.ping_url, args.timeout, waker.wake), PingSchedule(args.ping_interval)


def make_deliverer(args):
    if args.no_mail:
        return None
    if args.notify_command:
        return CommandDeliverer(args.notify_command)
    return MailDeliverer(args.pysendmail)


def run_once(args, console_out):
    if len(args.targets) > 200:
        _raise_file_limit()      # as the monitor does: else a low soft limit reads as EMFILE
    prober = Prober(args.timeout)
    results = prober.probe_round(args.targets)
    prober.close()
    for result in results:
        if result.up:
            detail = "up %.1f ms" % (result.connect_time * 1000)
        else:
            detail = "down %s" % result.reason
        console_out.write("%s %s\n" % (result.target.label, detail))
    console_out.flush()
    return 0 if any(result.up for result in results) else 1


def run_test_mail(args, console):
    deliverer = make_deliverer(args)
    hostname = socket.gethostname()
    subject = "pyNetConnMon on %s: test report" % hostname
    body = ("This is a test report from pyNetConnMon %s on %s.\n"
            "Reports about interruptions of %s will arrive the same way.\n"
            % (VERSION, hostname, ", ".join(target.label for target in args.targets)))
    try:
        deliverer.deliver(subject, body)
    except DeliveryError as error:
        console.error("test report not delivered: %s" % error)
        return 1
    console.info("test report accepted by %s" % deliverer.name)
    return 0


def _raise_file_limit():
    """Many targets need many sockets at once; use the hard limit that is already allowed."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def run_monitor(args, console):
    state = StateFile(args.state_file)
    state.lock()       # first: a refused second copy should say only that
    deliverer = make_deliverer(args)
    if deliverer is not None:
        problem = deliverer.problem()
        if problem:
            console.warning("mail cannot work yet: %s. Monitoring anyway; reports wait until it "
                            "works (or use --no-mail)." % problem)
        if isinstance(deliverer, MailDeliverer):
            warning = config_permission_warning(args.pysendmail)
            if warning:
                console.warning(warning)
    if len(args.targets) > 200:
        _raise_file_limit()
    event_log = EventLog(args.log_file, warn=console.warning)
    waker = Waker()
    waker.install()
    metrics_server = None
    try:
        metrics_board, metrics_server = start_metrics(args, console)
        ping_sender, ping_schedule = make_pinger(args, waker, console)
        monitor = Monitor(args, args.targets, console, event_log, state, deliverer, waker,
                          metrics_board=metrics_board, ping_sender=ping_sender,
                          ping_schedule=ping_schedule)
        stop_signal = monitor.run()
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
        waker.uninstall()
        waker.close()
        event_log.close()
        state.unlock()
    return 130 if stop_signal == "SIGINT" else 0


def main(argv=None):
    console = Console()
    try:
        args = parse_arguments(argv)
        console.quiet = args.quiet
        if args.summary:
            return run_summary(args, sys.stdout, console)
        if args.once:
            return run_once(args, sys.stdout)
        if args.test_mail:
            return run_test_mail(args, console)
        return run_monitor(args, console)
    except UsageError as error:
        sys.stderr.write("pyNetConnMon.py: error: %s\n" % error)
        return 2
    except MonitorError as error:
        console.error(str(error))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
