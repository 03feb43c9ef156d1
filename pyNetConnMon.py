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
DOWN_INTERVAL_SHARE = 10         # while down, probe this many times as often as -i by default ...
DOWN_INTERVAL_MIN = 0.05         # ... but no more often than every this many seconds
DOWN_CONNECTS_LIMIT = 64         # connects in flight at most while probing fast (see Prober)

NOTIFY_COMMAND_TIMEOUT = 60.0
NOTIFY_ERROR_TAIL = 4096         # bytes: only the end of a notify command's stderr is kept
NOTIFY_OUTPUT_GRACE = 0.2        # seconds to read a notify command's last output after it exited
REASON_LIMIT = 200               # characters: a failure reason from outside text stays this short
REPORT_LIST_LIMIT = 100          # beyond this many interruptions a report lists the first and last half
PENDING_LIMIT = 1000             # beyond this many pending interruptions the middle ones are folded
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
                 "until", "discard_pending", "down_interval")

    DEFAULTS = dict(targets=(), interval=DEFAULT_INTERVAL, timeout=DEFAULT_TIMEOUT,
                    min_interruption=DEFAULT_MIN_INTERRUPTION, backoff_min=DEFAULT_BACKOFF_MIN,
                    backoff_max=DEFAULT_BACKOFF_MAX, backoff_step=DEFAULT_BACKOFF_STEP,
                    heartbeat=DEFAULT_HEARTBEAT, log_file=None, state_file=None,
                    metrics_port=None, metrics_address=DEFAULT_METRICS_ADDRESS, ping_url=None,
                    ping_interval=DEFAULT_PING_INTERVAL, pysendmail=None, notify_command=None,
                    no_mail=False, test_mail=False, once=False, quiet=False, summary=False,
                    since=None, until=None, discard_pending=False, down_interval=None)

    def __init__(self, **values):
        unknown = set(values) - set(self.__slots__)
        if unknown:
            raise TypeError("unknown settings: %s" % ", ".join(sorted(unknown)))
        for name in self.__slots__:
            setattr(self, name, values.get(name, self.DEFAULTS[name]))

    @property
    def target_labels(self):
        return [target.label for target in self.targets]

    @property
    def down_probe_interval(self):
        """Seconds between rounds while the network is down: --down-interval, else a tenth of
        -i, at least DOWN_INTERVAL_MIN (and never more than -i)."""
        if self.down_interval is not None:
            return self.down_interval
        return min(self.interval, max(DOWN_INTERVAL_MIN, self.interval / DOWN_INTERVAL_SHARE))


# ---------------------------------------------------------------------------------------------
# The event log's vocabulary: the one list of events that the monitor writes and --summary reads
# ---------------------------------------------------------------------------------------------


class EventKind:
    __slots__ = ("fields", "availability")

    def __init__(self, fields, availability=False):
        self.fields = frozenset(fields)     # besides "time" and "event"
        self.availability = availability    # does it change what --summary counts as up or down?


EVENTS = {
    "start": EventKind(("version", "targets", "interval", "down_interval", "timeout",
                        "min_interruption", "backoff_min", "backoff_max", "backoff_step", "pid",
                        "state_file"), True),
    "stop": EventKind(("signal", "down_since"), True),
    "down": EventKind(("start", "start_after", "start_before", "reason", "targets"), True),
    "up": EventKind(("start", "start_after", "start_before", "end", "duration", "duration_min",
                     "duration_max", "ignored", "reason", "targets"), True),
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
    """Rounds on fixed grids of the monotonic clock: every `interval` seconds while the network is
    up, every `down_interval` seconds while it is down (both grids count from the first round).

    A round that overruns lets the next one start at once, but the grid is kept: rounds missed
    entirely are skipped, not made up in a burst. Which grid the next round is on is asked after
    the round, so the first failed round is followed by a fast one, and the first good round by
    one on the interval's grid again.
    """

    def __init__(self, interval, first_round, down_interval=None):
        self.interval = interval
        self.down_interval = min(down_interval or interval, interval)
        self.origin = first_round
        self.next_due = self.next_due_down = first_round

    def seconds_until_due(self, now, down=False):
        left = (self.next_due_down if down else self.next_due) - now
        return left if left > 1e-9 else 0.0     # a rounding error away is due: no wait of 1e-16 s

    def round_started(self, now):
        self.next_due = self._next_after(now, self.interval)
        self.next_due_down = self._next_after(now, self.down_interval)

    def _next_after(self, now, step):
        """The first instant of the grid of `step` after `now`; a round that starts a rounding
        error before an instant of the grid counts as started at that instant."""
        due = self.origin + (math.floor((now - self.origin) / step + 1e-6) + 1) * step
        return due if due > now else due + step


def counts_as_interruption(duration, min_interruption):
    """The one rule: downtime shorter than -m is a blip, logged and ignored."""
    return duration >= min_interruption


class Interruption:
    """One stretch of downtime: wall-clock start for people, a monotonic-clock duration."""

    __slots__ = ("id", "start", "end", "duration", "reason", "kind", "cut_short", "targets",
                 "count")

    def __init__(self, id, start, end, duration, reason, kind="outage", cut_short=False,
                 targets=(), count=1):
        self.id = id
        self.start = start          # wall-clock epoch seconds of the first failed round
        self.end = end              # wall-clock epoch seconds of the first good round
        self.duration = duration    # seconds, from the monotonic clock
        self.reason = reason
        self.kind = kind            # "outage", "gap" (the monitor was not running) or "many"
        self.cut_short = cut_short  # the monitor stopped while the network was still down
        self.targets = list(targets)    # labels of the targets it was measured on
        self.count = count          # > 1 only for "many": interruptions folded into one entry

    def to_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data[name] for name in cls.__slots__ if name in data})


class OngoingOutage:
    """An outage while it lasts. It began after the last probe that got through (`after`, None
    when there was none since the start) and by the first failed round (`before`); it is taken
    to begin in the middle of that window. Instants are (monotonic, wall clock) pairs."""

    __slots__ = ("after", "before", "start_mono", "start_wall", "last_failed", "reason",
                 "targets")

    def __init__(self, after, before, reason, targets):
        self.after = after
        self.before = before
        start = before if after is None else after
        self.start_mono = (start[0] + before[0]) / 2
        self.start_wall = (start[1] + before[1]) / 2
        self.last_failed = before[0]    # monotonic: the latest round that found it still down
        self.reason = reason
        self.targets = targets

    def duration_bounds(self, end_mono):
        """(shortest, longest) it can have lasted if it ended by `end_mono` (longest: None when
        it began before the first round): from the first failed round to the last one, and from
        the last good probe to the end."""
        shortest = max(0.0, self.last_failed - self.before[0])
        return shortest, None if self.after is None else max(0.0, end_mono - self.after[0])


class InterruptionTracker:
    """Turns round results into DOWN and UP transitions.

    An interruption begins between the last probe that got through and the first failed round
    (taken in the middle) and ends when the first connect gets through again.
    """

    def __init__(self, min_interruption):
        self.min_interruption = min_interruption
        self.outage = None
        self.last_good = None        # (monotonic, wall) of the latest connect that got through

    @property
    def is_down(self):
        return self.outage is not None

    def observe(self, network_up, mono, wall, reason=None, target_reasons=None):
        """`mono`, `wall`: when the round's first connect got through if the network is up, else
        when the round began. Returns ("down", OngoingOutage), ("up", (OngoingOutage, duration,
        ignored)) or None."""
        outage = self.outage
        if network_up:
            self.last_good = (mono, wall)
            if outage is None:
                return None
            self.outage = None
            duration = max(0.0, mono - outage.start_mono)
            return ("up", (outage, duration,
                           not counts_as_interruption(duration, self.min_interruption)))
        if outage is not None:
            outage.last_failed = mono
            return None
        self.outage = OngoingOutage(self.last_good, (mono, wall), reason,
                                    dict(target_reasons or {}))
        return ("down", self.outage)

    def ongoing_duration(self, mono):
        """How long the current outage has lasted at `mono` (0 while up)."""
        return 0.0 if self.outage is None else max(0.0, mono - self.outage.start_mono)


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


class PendingReports:
    """Interruptions waiting for an accepted report, their ids, and when the next report may go
    out (the backoff). No I/O: the state file and the deliverer are someone else's job.

    The list is bounded: beyond PENDING_LIMIT interruptions the first and last half are kept in
    full and the ones between are folded into one counted, timed entry (kind "many").
    """

    def __init__(self, backoff, limit=None):
        self.backoff = backoff
        self.limit = limit or PENDING_LIMIT
        self.items = []
        self.next_id = 1

    def __len__(self):
        return len(self.items)

    @property
    def count(self):
        """How many interruptions wait, the folded ones included."""
        return sum(item.count for item in self.items)

    def add(self, start, end, duration, reason, targets, kind="outage", cut_short=False):
        self.items.append(Interruption(self.next_id, start, end, duration, reason, kind,
                                       cut_short, targets))
        self.next_id += 1
        if len(self.items) > self.limit:
            self._fold(self.limit // 2)

    def _fold(self, at):
        """Folds the entry after `at` into the entry at `at` (which becomes a "many" entry)."""
        into, item = self.items[at], self.items.pop(at + 1)
        if into.kind != "many":
            into = self.items[at] = Interruption(into.id, into.start, into.end, into.duration,
                                                 "", "many", targets=into.targets, count=into.count)
        into.end = max(into.end, item.end)
        into.duration += item.duration
        into.count += item.count
        into.targets = into.targets + [label for label in item.targets
                                       if label not in into.targets]

    def due(self, now, network_down):
        """The interruptions a report should carry now; [] when none is due."""
        if not self.items or network_down:
            self.backoff.quiet(now)
            return []
        return list(self.items) if self.backoff.may_send(now) else []

    def accepted(self, ids, now):
        self.backoff.record_success(now)
        sent = set(ids)
        self.items = [item for item in self.items if item.id not in sent]

    def failed(self, now):
        self.backoff.record_failure(now)

    def discard(self):
        """Forgets everything pending; returns how many interruptions that was."""
        count, self.items = self.count, []
        return count

    def to_dict(self, mono, wall):
        return {"pending": [item.to_dict() for item in self.items], "next_id": self.next_id,
                "backoff": self.backoff.to_dict(mono, wall)}

    def restore(self, state, mono, wall):
        """Takes over a checked state (see check_state)."""
        self.items = [Interruption.from_dict(item) for item in state["pending"]]
        self.next_id = max([state["next_id"]] + [item.id + 1 for item in self.items])
        while len(self.items) > self.limit:
            self._fold(self.limit // 2)
        self.backoff.restore(state["backoff"], mono, wall)


def recover_previous_run(state, wall, min_interruption):
    """What a run that did not stop cleanly leaves behind, from its last state and the time now.

    Returns (cut_short, gap): the outage it was in at its last heartbeat, as keyword arguments
    for PendingReports.add() when it counts, else None; and the time it was not running as
    (start, end, duration, ignored), or None when it stopped cleanly or the clock went back.
    """
    heartbeat = state.get("heartbeat")
    if state.get("clean_stop") or heartbeat is None:
        return None, None
    cut_short = None
    down = state.get("down")
    if down and counts_as_interruption(heartbeat - down["start"], min_interruption):
        cut_short = dict(start=down["start"], end=heartbeat,
                         duration=max(0.0, heartbeat - down["start"]),
                         reason=down["reason"], targets=state["targets"], cut_short=True)
    duration = wall - heartbeat
    if duration <= 0:
        return cut_short, None
    return cut_short, (heartbeat, wall, duration,
                       not counts_as_interruption(duration, min_interruption))


class MetricsCounters:
    """The counters behind /metrics (they never go down), and the snapshot of a round."""

    def __init__(self):
        self.interruptions = 0           # counted ones that ended
        self.ignored = 0
        self.downtime = 0.0
        self.reports_sent = 0
        self.report_failures = 0

    def interruption_ended(self, duration, ignored):
        if ignored:
            self.ignored += 1
        else:
            self.interruptions += 1
            self.downtime += duration

    def snapshot(self, results, ongoing, min_interruption, unreported, last_round):
        """`ongoing`: how long the current outage had lasted at the last round (0 while up)."""
        interruptions, downtime = self.interruptions, self.downtime
        if ongoing and counts_as_interruption(ongoing, min_interruption):
            interruptions += 1           # it can no longer end up ignored
            downtime += ongoing
        return MetricsSnapshot(
            network_up=any(result.up for result in results) if results else None,
            targets=tuple((result.target.label, result.up,
                           None if result.connect_time is None else round(result.connect_time, 6))
                          for result in results),
            interruptions=interruptions, ignored_interruptions=self.ignored,
            downtime_seconds=round(downtime, 3), unreported_interruptions=unreported,
            reports_sent=self.reports_sent, report_failures=self.report_failures,
            last_round=None if last_round is None else round(last_round, 3))


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


def describe_interruption(item, with_targets=False):
    reason = item.reason
    if item.kind == "gap":
        reason = "gap: the monitor was not running (no clean stop)"
    elif item.kind == "many":
        reason = ("%s between these times, added up here (the event log has each)"
                  % plural(item.count, "interruption"))
    elif item.cut_short:
        reason += " (the monitor stopped while still down)"
    if with_targets and item.targets:
        reason += "; targets " + ", ".join(item.targets)
    return "%s  %s  %12s  %s" % (local_time(item.start), local_time(item.end),
                                  human_duration(item.duration), reason)


def _targets_of(interruptions):
    """Every target the interruptions were measured on, in order of appearance."""
    labels = []
    for item in interruptions:
        labels += [label for label in item.targets if label not in labels]
    return labels


def format_report(interruptions, hostname):
    """Subject and body of one report about `interruptions` (all of them count in the totals)."""
    count = sum(item.count for item in interruptions)
    total = sum(item.duration for item in interruptions)
    targets = _targets_of(interruptions)
    changed = len({tuple(item.targets) for item in interruptions}) > 1
    subject = "pyNetConnMon on %s: %s, %s of downtime" % (
        hostname, plural(count, "interruption"), human_duration(total))
    lines = [
        "pyNetConnMon on %s saw %s (%s of downtime in total)." % (
            hostname, plural(count, "interruption"), human_duration(total)),
        "",
        "Host:    %s" % hostname,
        "Targets: %s%s" % (", ".join(targets) or "not recorded",
                           " (they changed between runs: each line names its own)" if changed else ""),
        "",
        "%-19s  %-19s  %12s  %s" % ("start", "end", "duration", "reason"),
    ]
    shown = interruptions
    if len(interruptions) > REPORT_LIST_LIMIT:
        half = REPORT_LIST_LIMIT // 2
        left_out = sum(item.count for item in interruptions[half:-half])
        shown = interruptions[:half] + [None] + interruptions[-half:]
    for item in shown:
        if item is None:
            lines.append("... %s left out here; the event log has all of them ..."
                         % plural(left_out, "interruption"))
        else:
            lines.append(describe_interruption(item, with_targets=changed))
    gaps = [item for item in interruptions if item.kind == "gap"]
    lines += ["", "Total: %s, %s of downtime." % (plural(count, "interruption"),
                                                   human_duration(total))]
    if gaps:
        lines.append("Of these, %s (%s) were times the monitor itself was not running, e.g. a "
                     "power cut: the connection may or may not have been up then."
                     % (plural(len(gaps), "gap"), human_duration(sum(g.duration for g in gaps))))
    return subject, "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Prometheus metrics: a snapshot of the monitor rendered in the text exposition format 0.0.4
# ---------------------------------------------------------------------------------------------

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsSnapshot:
    """What /metrics shows, as of the last round. The loop builds a new one after every round
    and never changes it once published; the HTTP side only renders the latest one."""

    __slots__ = ("network_up", "targets", "interruptions", "ignored_interruptions",
                 "downtime_seconds", "unreported_interruptions", "reports_sent",
                 "report_failures", "last_round")

    def __init__(self, network_up=None, targets=(), interruptions=0, ignored_interruptions=0,
                 downtime_seconds=0.0, unreported_interruptions=0, reports_sent=0,
                 report_failures=0, last_round=None):
        self.network_up = network_up                # None before the first round
        self.targets = targets                      # ((label, up, connect seconds or None), ...)
        self.interruptions = interruptions          # counted ones, an ongoing one included
        self.ignored_interruptions = ignored_interruptions    # blips, counted at their end
        self.downtime_seconds = downtime_seconds    # of the counted ones, an ongoing one included
        self.unreported_interruptions = unreported_interruptions
        self.reports_sent = reports_sent
        self.report_failures = report_failures
        self.last_round = last_round                # Unix time; None before the first round


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


def render_metrics(snapshot, version=VERSION):
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

    targets = snapshot.targets
    family("build_info", "gauge", "Always 1; the version label says which pyNetConnMon runs.",
           [((("version", version),), 1)])
    family("network_up", "gauge", "1 if at least one target answered in the last round, else 0.",
           single(snapshot.network_up))
    family("target_up", "gauge", "1 if the target answered in the last round, else 0.",
           [((("target", label),), up) for label, up, _ in targets])
    family("target_connect_seconds", "gauge",
           "Time the target's TCP connect took in the last round; absent while the target is down.",
           [((("target", label),), seconds) for label, up, seconds in targets
            if up and seconds is not None])
    family("interruptions_total", "counter",
           "Interruptions of at least --min-interruption; an ongoing one counts once it is that long.",
           single(snapshot.interruptions))
    family("ignored_interruptions_total", "counter",
           "Interruptions shorter than --min-interruption (blips), counted when they end.",
           single(snapshot.ignored_interruptions))
    family("downtime_seconds_total", "counter",
           "Seconds of downtime in counted interruptions, an ongoing one included.",
           single(snapshot.downtime_seconds))
    family("unreported_interruptions", "gauge",
           "Interruptions waiting for a report to be accepted (always 0 with --no-mail).",
           single(snapshot.unreported_interruptions))
    family("reports_sent_total", "counter", "Reports accepted by the mail server or notify command.",
           single(snapshot.reports_sent))
    family("report_failures_total", "counter", "Report deliveries that failed (each is retried).",
           single(snapshot.report_failures))
    family("last_round_timestamp_seconds", "gauge",
           "Unix time the last round of probes completed: the monitor's heartbeat.",
           single(snapshot.last_round))
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
    __slots__ = ("target", "up", "reason", "connect_time", "answered")

    def __init__(self, target, up, reason=None, connect_time=None, answered=None):
        self.target = target
        self.up = up
        self.reason = reason
        self.connect_time = connect_time
        self.answered = answered    # monotonic instant the connect got through (None: not up)


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
    """Connects to all targets concurrently; a round lasts at most about `timeout`.

    While the network is down the monitor asks for fast rounds (see probe_round): their connects
    may outlive the round, each until its own timeout, so that a new round can start every few
    tenths of a second even while every connect waits for its timeout. At most `limit` connects
    are in flight then; a round that does not fit starts none (one round alone may exceed it).
    """

    def __init__(self, timeout, wake_fd=None, clock=time.monotonic, limit=None):
        self.timeout = timeout
        self.wake_fd = wake_fd
        self.clock = clock
        self.limit = limit or DOWN_CONNECTS_LIMIT
        self.in_flight = {}     # socket -> (target, connect started, deadline)
        # one selector for the whole run: a new epoll per round would cost CPU on a small Pi
        self.selector = selectors.DefaultSelector()
        if wake_fd is not None:
            self.selector.register(wake_fd, selectors.EVENT_READ, "wake")

    def close(self):
        self._drop(list(self.in_flight))
        self.selector.close()

    def probe_round(self, targets, interrupted=lambda: False, wait=None):
        """One ProbeResult per target, in order.

        `wait` None: the round waits for its connects, each at most `timeout`, and leaves none
        behind. `wait` SECONDS (a fast round): it waits at most that long, or until its own
        connects have ended; connects still waiting stay in flight, watched by the next rounds
        until their own timeout, and one that ends during a later round counts for that round.
        A target whose connect still waits is "timeout" for the round. Once a connect has got
        through, the ones left in flight are closed: they would only add traffic.
        """
        started = self.clock()
        in_flight = self.in_flight
        results = {}
        own = set()
        if in_flight:
            if wait is None:
                self._drop(list(in_flight))
            else:
                self._expire(started, own, results)
        needed = sum(1 if target.is_literal else MAX_ADDRESSES_PER_TARGET for target in targets)
        admitted = not in_flight or len(in_flight) + needed <= self.limit
        if admitted:
            resolved = resolve_all(targets, started + self.timeout, self.clock)
            for target in targets:
                addresses = resolved[target]
                if isinstance(addresses, str):
                    results[target] = ProbeResult(target, False, addresses)
                    continue
                for family, sockaddr in addresses:
                    self._start_connect(target, family, sockaddr, own, results)
        end = math.inf if wait is None else started + wait
        deadline = self._soonest_deadline()
        selector = self.selector
        try:
            while (own if admitted else in_flight) and not interrupted():
                now = self.clock()
                if now >= end:
                    break
                if now >= deadline:
                    self._expire(now, own, results)
                    deadline = self._soonest_deadline()
                    continue
                for key, _ in selector.select(min(end, deadline) - now):
                    if key.data == "wake":
                        _drain(self.wake_fd)
                        continue
                    sock = key.fileobj
                    target, began, _ = in_flight.pop(sock)
                    own.discard(sock)
                    selector.unregister(sock)
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    sock.close()
                    self._record(results, target, error, began, self.clock())
        finally:
            if wait is None or any(result.up for result in results.values()):
                self._drop(list(in_flight))
        for target in targets:
            results.setdefault(target, ProbeResult(target, False, "timeout"))
        return [results[target] for target in targets]

    def _start_connect(self, target, family, sockaddr, own, results):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as error:
            self._record(results, target, error.errno or errno.EIO)
            return
        try:
            sock.setblocking(False)
            began = self.clock()
            error = sock.connect_ex(sockaddr)
        except OSError as exc:       # e.g. an IPv6 scope that does not exist
            sock.close()
            self._record(results, target, exc.errno or errno.EINVAL)
            return
        if error in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self.selector.register(sock, selectors.EVENT_WRITE)
            self.in_flight[sock] = (target, began, began + self.timeout)
            own.add(sock)
        else:
            sock.close()
            self._record(results, target, error, began, self.clock())

    def _soonest_deadline(self):
        return min([deadline for _, _, deadline in self.in_flight.values()] or [math.inf])

    def _expire(self, now, own, results):
        """Connects whose timeout has passed end as "timeout" for this round."""
        expired = [sock for sock, (_, _, deadline) in self.in_flight.items() if deadline <= now]
        for sock in expired:
            own.discard(sock)
            self._record(results, self.in_flight[sock][0], errno.ETIMEDOUT)
        self._drop(expired)

    def _drop(self, sockets):
        for sock in sockets:
            del self.in_flight[sock]
            self.selector.unregister(sock)
            sock.close()

    @staticmethod
    def _record(results, target, error, began=None, ended=None):
        previous = results.get(target)
        if previous is not None and previous.up:
            return       # another address of this target already answered
        if error == 0:
            results[target] = ProbeResult(target, True, None, ended - began, ended)
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
    except json.JSONDecodeError as error:
        return "%s is not valid JSON (line %d, column %d: %s)" % (
            config_path, error.lineno, error.colno, error.msg)
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
    """Returns a warning when the config, which holds the SMTP password, is readable by others."""
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


def mail_server_address(pysendmail_dir):
    """host:port of the mail server in pySendMail's config (port 0: the protocol's default), or
    None when the config does not say."""
    try:
        with open(os.path.join(pysendmail_dir, PYSENDMAIL_CONFIG), encoding="utf-8") as stream:
            smtp = json.load(stream)["mail"]["smtp"]
        host, port = str(smtp["server"]), int(smtp["port"]) or (465 if smtp["tls"] else 25)
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def describe_send_error(error, server=None):
    """One line for a failed delivery; `server` (host:port) is named when the connection failed."""
    if isinstance(error, DeliveryError):
        return str(error)
    code = getattr(error, "smtp_code", None)
    if code is not None:
        message = getattr(error, "smtp_error", b"")
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        return "SMTP server answered %s %s" % (code, " ".join(str(message).split()))
    where = "mail server %s" % server if server else "mail server"
    if isinstance(error, socket.timeout):
        return where + " timed out"
    if isinstance(error, ConnectionRefusedError):
        return where + " refused the connection"
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
            server = mail_server_address(self.pysendmail_dir)
            raise DeliveryError(describe_send_error(error, server))


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def escape_controls(text):
    """Text from outside with its control characters written as escapes (ESC as \\x1b, a
    newline as \\n), so that it cannot break a line, forge a console line or drive the terminal."""
    return _CONTROL_CHARACTERS.sub(lambda found: found.group().encode("unicode_escape").decode(),
                                   text)


def bounded_reason(text, limit=REASON_LIMIT):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_command_exit(status, stderr_tail):
    """Why a notify command did not deliver, as one bounded line (None for status 0): the signal
    that killed it (by name, or by number when Python has no name for it, like a real-time
    signal), or its exit status and the last line it wrote to stderr."""
    if status == 0:
        return None
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "signal %d" % -status
        return "notify command was killed by %s" % name
    lines = [line.strip() for line in stderr_tail.decode("utf-8", "replace").splitlines()]
    last = ([line for line in lines if line] or [""])[-1]
    return bounded_reason("notify command exited with status %d%s" % (
        status, (": " + escape_controls(last)) if last else ""))


class CommandDeliverer:
    """Pipes the report into a command (ntfy, Apprise, msmtp, ...); exit status 0 means delivered.

    The command's own exit is the delivery: a background child it leaves holding its stderr
    neither delays nor changes the result. It runs in its own process group, killed as a whole
    at the time limit; no pipe, not even one held by a grandchild in another session, keeps the
    delivery thread past the limit (plus NOTIFY_OUTPUT_GRACE). Only the last NOTIFY_ERROR_TAIL
    bytes of its stderr are kept; stdout goes to /dev/null."""

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
        deadline = time.monotonic() + self.timeout
        try:
            process = subprocess.Popen(self.command, shell=True, env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except OSError as error:
            raise DeliveryError("notify command could not start: %s" % _one_line(error))
        self.process = process
        try:
            exited, stderr_tail = self._feed_and_watch(process, body.encode("utf-8"), deadline)
            if not exited:
                _kill_group(process)
                try:
                    process.wait(NOTIFY_OUTPUT_GRACE)     # reaped, unless stuck in the kernel
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.process = None
            process.stdin.close()
            process.stderr.close()
        if not exited:
            raise DeliveryError("notify command ran longer than %g s" % self.timeout)
        problem = describe_command_exit(process.returncode, stderr_tail)
        if problem:
            raise DeliveryError(problem)

    @staticmethod
    def _feed_and_watch(process, data, deadline):
        """Writes `data` to the command's stdin and keeps the end of its stderr until the command
        exits (then at most NOTIFY_OUTPUT_GRACE more for output still in the pipe) or the
        deadline passes. Returns (exited, stderr tail)."""
        stdin, stderr = process.stdin.fileno(), process.stderr.fileno()
        os.set_blocking(stdin, False)
        os.set_blocking(stderr, False)
        tail = bytearray()
        exited_by = None          # the end of the grace once the command has exited
        with selectors.DefaultSelector() as selector:
            selector.register(stderr, selectors.EVENT_READ)
            if data:
                selector.register(stdin, selectors.EVENT_WRITE)
            else:
                process.stdin.close()
            while True:
                now = time.monotonic()
                if exited_by is None and process.poll() is not None:
                    exited_by = max(now, min(now + NOTIFY_OUTPUT_GRACE, deadline))
                    if not process.stdin.closed:      # a child may hold stdin: stop feeding it
                        selector.unregister(stdin)
                        process.stdin.close()
                if exited_by is None:
                    if now >= deadline:
                        return False, bytes(tail)
                    wait = min(deadline - now, 0.05)  # also a tick to notice the exit
                elif not selector.get_map():
                    return True, bytes(tail)
                else:
                    wait = max(0.0, exited_by - now)
                ready = selector.select(wait)
                for key, _ in ready:
                    if key.fd == stderr:
                        try:
                            chunk = os.read(stderr, 65536)
                        except BlockingIOError:
                            continue
                        if not chunk:
                            selector.unregister(stderr)
                        tail += chunk
                        del tail[:-NOTIFY_ERROR_TAIL]
                    else:
                        try:
                            data = data[os.write(stdin, data[:65536]):]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:       # it stopped reading: its exit tells
                            data = b""
                        if not data:
                            selector.unregister(stdin)
                            process.stdin.close()
                if exited_by is not None and (not ready or time.monotonic() >= exited_by):
                    return True, bytes(tail)


def _kill_group(process):
    """SIGKILL to the command's whole process group; nothing once the command has been reaped
    (then its number may belong to another process)."""
    if process.returncode is not None:
        return
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


class Reporter:
    """Sends the reports PendingReports says are due through a deliverer, one at a time in the
    background, and applies each outcome to the pending list."""

    def __init__(self, pending, deliverer, hostname, on_done, spawn=None):
        self.pending = pending
        self.deliverer = deliverer
        self.hostname = hostname
        self.worker = OneJobAtATime("delivery", on_done, describe_send_error, spawn)
        self.problem_shown = False

    @property
    def busy(self):
        return self.worker.busy

    def maybe_send(self, now, network_down):
        """Starts a delivery when one is due. Returns a set-up problem the first time it stops
        a report (to be shown once), else None."""
        if self.worker.busy:
            return None
        batch = self.pending.due(now, network_down)
        if not batch:
            return None
        problem = self.deliverer.problem()
        if problem:
            # not set up (yet): keep the report, look again after a while without spamming
            self.pending.failed(now)
            shown, self.problem_shown = self.problem_shown, True
            return None if shown else problem
        self.problem_shown = False
        subject, body = format_report(batch, self.hostname)
        self.worker.submit(lambda: self.deliverer.deliver(subject, body),
                           tag=(len(batch), sum(item.count for item in batch),
                                [item.id for item in batch]))
        return None

    def outcomes(self, now):
        """[(interruptions in the report, None or why it failed)] for deliveries that ended."""
        done = []
        for (_, count, ids), failure in self.worker.take_results():
            if failure is None:
                self.pending.accepted(ids, now)
            else:
                self.pending.failed(now)
            done.append((count, failure))
        return done

    def cancel(self):
        """Kills a notify command still running (at a stop), so it cannot deliver a report that
        stays pending."""
        cancel = getattr(self.deliverer, "cancel", None)
        if cancel is not None:
            cancel()


# ---------------------------------------------------------------------------------------------
# The state file: pending interruptions, backoff and heartbeat survive restarts and power cuts
# ---------------------------------------------------------------------------------------------


def default_state_path():
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "pyNetConnMon", "state.json")


STATE_SIZE_LIMIT = 16 * 1024 * 1024  # bytes; a bounded pending list needs far less (older
                                     # versions kept every interruption: those files are folded)
_LATEST_TIME = 253402300799.0        # 9999-12-31 23:59:59 UTC: later instants have no date
_LONGEST = 100 * 366 * 86400.0       # seconds: no duration or wait in a state file is longer
_STATE_KINDS = ("outage", "gap", "many")


def _state_number(value, what, low, high, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s is not a number" % what)
    if not low <= value <= high:        # NaN fails this too
        raise ValueError("%s is out of range" % what)
    return float(value) if isinstance(value, float) else value


def _state_text(value, what, limit=1000):
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("%s is not a text of at most %d characters" % (what, limit))
    return value


def _state_flag(value, what):
    if not isinstance(value, bool):
        raise ValueError("%s is not true or false" % what)
    return value


def _state_list(value, what, limit):
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError("%s is not a list of at most %d entries" % (what, limit))
    return value


def _state_object(value, what):
    if not isinstance(value, dict):
        raise ValueError("%s is not an object" % what)
    return value


def _state_labels(value, what):
    return [_state_text(label, what, 300) for label in _state_list(value, what, 10000)]


def _check_interruption(data, what):
    data = _state_object(data, what)
    kind = data.get("kind", "outage")
    if kind not in _STATE_KINDS:
        raise ValueError("%s has an unknown kind" % what)
    return {
        "id": _state_number(data.get("id"), what + " id", 0, 2 ** 53),
        "start": _state_number(data.get("start"), what + " start", 0.0, _LATEST_TIME),
        "end": _state_number(data.get("end"), what + " end", 0.0, _LATEST_TIME),
        "duration": _state_number(data.get("duration"), what + " duration", 0.0, _LONGEST),
        "reason": _state_text(data.get("reason"), what + " reason"),
        "kind": kind,
        "cut_short": _state_flag(data.get("cut_short", False), what + " cut_short"),
        "targets": _state_labels(data.get("targets", []), what + " targets"),
        "count": int(_state_number(data.get("count", 1), what + " count", 1, 2 ** 53)),
    }


def check_state(data):
    """The previous run's state with every field checked and nothing else; ValueError says what
    cannot be used. Missing optional fields (older files) get their defaults."""
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise ValueError("not a pyNetConnMon state file of format %d" % STATE_FORMAT)
    backoff = _state_object(data.get("backoff") or {}, "backoff")
    down = data.get("down")
    if down is not None:
        down = _state_object(down, "down")
        down = {"start": _state_number(down.get("start"), "down start", 0.0, _LATEST_TIME),
                "reason": _state_text(down.get("reason", "down"), "down reason")}
    pending = _state_list(data.get("pending", []), "pending", 100 * PENDING_LIMIT)
    return {
        "format": STATE_FORMAT,
        "heartbeat": _state_number(data.get("heartbeat"), "heartbeat", 0.0, _LATEST_TIME, True),
        "clean_stop": _state_flag(data.get("clean_stop", False), "clean_stop"),
        "targets": _state_labels(data.get("targets", []), "targets"),
        "down": down,
        "next_id": int(_state_number(data.get("next_id", 1), "next_id", 0, 2 ** 53)),
        "pending": [_check_interruption(item, "pending entry %d" % number)
                    for number, item in enumerate(pending, 1)],
        "backoff": {
            "wait": _state_number(backoff.get("wait"), "backoff wait", 0.0, _LONGEST, True),
            "last_sent": _state_number(backoff.get("last_sent"), "backoff last_sent", 0.0,
                                       _LATEST_TIME, True),
            "last_failed": _state_number(backoff.get("last_failed"), "backoff last_failed", 0.0,
                                         _LATEST_TIME, True)},
    }


def _no_constant(name):
    raise ValueError("%s is not a number a state file holds" % name)


class StateFile:
    """The state file: one monitor at a time (a lock beside it), read once at start, replaced
    atomically on every save. Only a regular file is ever opened or moved."""

    def __init__(self, path):
        self.path = path
        self._lock_stream = None

    def _refuse_odd_file(self, path):
        """MonitorError if `path` exists and is not a regular file (a FIFO would block)."""
        import stat
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return
        except OSError as error:
            raise MonitorError("cannot use state file %s: %s" % (path, error.strerror or error))
        if not stat.S_ISREG(mode):
            raise MonitorError("state file %s is not a regular file; give --state-file a file "
                               "path" % path)

    def lock(self):
        """One state file, one monitor: hold an exclusive lock while running."""
        import fcntl
        self._refuse_odd_file(self.path)
        self._refuse_odd_file(self.path + ".lock")
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            descriptor = os.open(self.path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                 | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
            stream = os.fdopen(descriptor, "a")
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

    def read_bytes(self):
        """The file's bytes (at most STATE_SIZE_LIMIT + 1), or None when there is none.
        MonitorError when it cannot be read: that is not corruption, so nothing is moved."""
        import stat
        self._refuse_odd_file(self.path)
        try:
            descriptor = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise MonitorError("cannot read state file %s: %s" % (self.path,
                                                                   error.strerror or error))
        with os.fdopen(descriptor, "rb") as stream:
            try:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    raise MonitorError("state file %s is not a regular file" % self.path)
                return stream.read(STATE_SIZE_LIMIT + 1)
            except OSError as error:
                raise MonitorError("cannot read state file %s: %s" % (self.path,
                                                                       error.strerror or error))

    def load(self):
        """Returns (checked state or None, warning or None). Content that cannot be used is
        moved aside with a warning and the monitor starts afresh."""
        raw = self.read_bytes()
        if raw is None:
            return None, None
        try:
            if len(raw) > STATE_SIZE_LIMIT:
                raise ValueError("larger than %d bytes" % STATE_SIZE_LIMIT)
            return check_state(json.loads(raw.decode("utf-8"), parse_constant=_no_constant)), None
        except (ValueError, RecursionError) as error:     # UnicodeDecodeError is a ValueError
            reason = "too deeply nested" if isinstance(error, RecursionError) else _one_line(error)
        aside = "%s.corrupt-%s" % (self.path, datetime.now().strftime("%Y%m%d-%H%M%S"))
        try:
            os.replace(self.path, aside)
            where = "moved it to %s" % aside
        except OSError as move_error:
            where = "could not move it aside (%s)" % _one_line(move_error)
        return None, "state file %s could not be used (%s); %s and started afresh" % (
            self.path, reason[:200], where)

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


class Pinger:
    """The ping URL: when a ping is due (PingSchedule), sending it (PingSender), and which
    outcomes are news (PingHealth)."""

    def __init__(self, sender, schedule):
        self.sender = sender
        self.schedule = schedule
        self.health = PingHealth()

    @property
    def where(self):
        return ping_url_for_people(self.sender.url)

    def maybe_ping(self, now, network_up):
        if not self.sender.busy and self.schedule.due(now, network_up):
            self.schedule.started(now)
            self.sender.submit()

    def news(self, network_down):
        """[("failed", reason) or ("recovered", None)] for the pings that finished."""
        told = []
        for failure in self.sender.take_results():
            if failure is not None and network_down:
                continue     # the network went down during the request: not the endpoint's fault
            news = self.health.record(ok=failure is None)
            if news:
                told.append((news, failure))
        return told


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


class Announcer:
    """Says what happened, twice: a line on the console for people, an event in the log for
    programs (and --summary). Knows the wording; decides nothing."""

    def __init__(self, console, log, settings):
        self.console = console
        self.log = log
        self.settings = settings

    def started(self, wall, state_path):
        settings = self.settings
        down_interval = settings.down_probe_interval
        self.log.write("start", wall, version=VERSION, targets=settings.target_labels,
                       interval=settings.interval, down_interval=down_interval,
                       timeout=settings.timeout, min_interruption=settings.min_interruption,
                       backoff_min=settings.backoff_min, backoff_max=settings.backoff_max,
                       backoff_step=settings.backoff_step, pid=os.getpid(), state_file=state_path)
        self.console.info("started pyNetConnMon %s (pid %d): watching %s every %g s%s, timeout %g "
                          "s, interruptions under %g s ignored%s" % (
                              VERSION, os.getpid(), ", ".join(settings.target_labels),
                              settings.interval, " (%g s while down)" % down_interval
                              if down_interval < settings.interval else "", settings.timeout,
                              settings.min_interruption,
                              "; state file %s" % state_path if state_path else ""), wall)

    @staticmethod
    def _window(outage):
        """The event fields that say when an outage began: the middle of its window, and the
        window itself (start_after is null when no probe had got through since the start)."""
        return dict(start=iso_time(outage.start_wall),
                    start_after=outage.after and iso_time(outage.after[1]),
                    start_before=iso_time(outage.before[1]))

    def down(self, wall, outage):
        self.log.write("down", wall, **self._window(outage), reason=outage.reason,
                       targets=outage.targets)
        self.console.info("DOWN " + ", ".join("%s %s" % item for item in outage.targets.items()),
                          wall)

    def up(self, wall, outage, duration, ignored, bounds):
        shortest, longest = bounds
        self.log.write("up", wall, **self._window(outage), end=iso_time(wall),
                       duration=round(duration, 3), duration_min=round(shortest, 3),
                       duration_max=None if longest is None else round(longest, 3),
                       ignored=ignored)
        if ignored:
            # "shorter" only when even its longest possible length is; else "probably shorter"
            minimum = self.settings.min_interruption
            surely = longest is not None and longest < minimum
            lasted = "" if longest is None else " (it lasted %s to %s)" % (
                human_duration(shortest), human_duration(longest))
            self.console.info("UP after %s: %sshorter than %g s, ignored%s" % (
                human_duration(duration), "" if surely else "probably ", minimum, lasted), wall)
        else:
            self.console.info("UP after %s (down since %s, %s)" % (
                human_duration(duration), local_time(outage.start_wall), outage.reason), wall)

    def gap(self, wall, start, end, duration, ignored):
        self.log.write("gap", wall, start=iso_time(start), end=iso_time(end),
                       duration=round(duration, 3), ignored=ignored)
        if ignored:
            self.console.info("the previous run did not stop cleanly; gap of %s ignored"
                              % human_duration(duration), wall)
        else:
            self.console.info("GAP: the previous run did not stop cleanly; the monitor was not "
                              "running for %s since %s" % (human_duration(duration),
                                                           local_time(start)), wall)

    def still_to_report(self, wall, count):
        self.console.info("%s from the previous run still to report"
                          % plural(count, "interruption"), wall)

    def report_not_set_up(self, problem):
        self.console.warning("report pending, but %s" % problem)

    def report_sent(self, wall, count, via, next_wait):
        self.log.write("report_sent", wall, interruptions=count, via=via, next_wait=next_wait)
        self.console.info("report sent (%s) by %s; next report no sooner than in %s"
                          % (plural(count, "interruption"), via, human_duration(next_wait)), wall)

    def report_failed(self, wall, count, via, reason):
        retry = self.settings.backoff_min
        self.log.write("report_failed", wall, interruptions=count, via=via, reason=reason,
                       retry_in=retry)
        self.console.warning("report not delivered: %s; retrying in %s"
                             % (reason, human_duration(retry)), wall)

    def ping(self, wall, news, failure, where):
        if news == "failed":
            self.log.write("ping_failed", wall, url=where, reason=failure)
            self.console.warning("ping to %s failed: %s; trying again every %s, quietly until it "
                                 "works" % (where, failure,
                                            human_duration(self.settings.ping_interval)), wall)
        else:
            self.log.write("ping_ok", wall, url=where)
            self.console.info("ping ok again (%s)" % where, wall)

    def log_reopened(self, wall, error=None):
        if error is not None:
            self.console.warning("%s; still writing to the old file" % error, wall)
            return
        self.log.write("log_reopened", wall)
        self.console.info("event log reopened", wall)

    def state_not_saved(self, path, error):
        self.console.error("cannot write state file %s: %s" % (path, _one_line(error)))

    def stopped(self, wall, signal_name, down_since, pending):
        fields = {"signal": signal_name}
        if down_since is not None:
            fields["down_since"] = iso_time(down_since)
        self.log.write("stop", wall, **fields)
        self.console.info("stopped (%s)%s" % (signal_name, (
            "; %s still to report" % plural(pending, "interruption")) if pending else ""), wall)


class SystemClock:
    """The clocks the monitor reads: monotonic for the grid and durations, wall for people."""

    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)


class Monitor:
    """The loop: rounds on a fixed grid, what their results mean, and the parts that act on it.

    Its parts come ready-made: the prober and the announcer; the reporter (None with --no-mail);
    the state file, the pinger and the metrics board (None when not used).
    """

    def __init__(self, settings, announcer, waker, prober, clock=SystemClock, reporter=None,
                 state=None, pinger=None, metrics_board=None):
        self.settings = settings
        self.say = announcer
        self.waker = waker
        self.prober = prober
        self.clock = clock
        self.reporter = reporter
        self.state = state
        self.pinger = pinger
        self.metrics_board = metrics_board
        self.tracker = InterruptionTracker(settings.min_interruption)
        self.counters = MetricsCounters()
        self.last_results = ()
        self.last_round = None           # (monotonic start, wall clock at its end)
        self.last_heartbeat = -math.inf

    # -- the loop ----------------------------------------------------------------------------
    def run(self):
        """Runs until SIGTERM or SIGINT; returns the name of the signal."""
        self.start()
        schedule = RoundSchedule(self.settings.interval, self.clock.monotonic(),
                                 self.settings.down_probe_interval)
        while self.waker.stop_signal is None:
            if self.waker.reopen_requested:
                self.waker.reopen_requested = False
                self._reopen_event_log()
            self._collect_deliveries()
            self._collect_pings()
            if self.clock.monotonic() >= self._heartbeat_due():
                self._save_state()      # then a round, if one is due: saves never starve them
            now, down = self.clock.monotonic(), self.tracker.is_down
            wait = min(schedule.seconds_until_due(now, down), self._heartbeat_due() - now)
            if wait > 0:
                self.waker.wait(wait)
                continue
            schedule.round_started(now)
            wall = self.clock.wall()
            # while down, a fast round lasts until the next is due; its connects may outlive it
            results = self.prober.probe_round(
                self.settings.targets, lambda: self.waker.stop_signal is not None,
                wait=schedule.seconds_until_due(now, True) if down else None)
            if self.waker.stop_signal is not None:
                break
            self._handle_round(results, now, wall)
            self._after_round()
        return self.stop()

    def _heartbeat_due(self):
        return self.last_heartbeat + self.settings.heartbeat if self.state else math.inf

    def _handle_round(self, results, mono, wall):
        self.last_results = results
        self.last_round = (mono, self.clock.wall())
        answered = [result.answered if result.answered is not None
                    else mono + (result.connect_time or 0.0) for result in results if result.up]
        target_reasons = {result.target.label: result.reason for result in results if not result.up}
        first_reason = next((result.reason for result in results if not result.up), None)
        if answered:
            # The connect that shows the network up may have got through only on a SYN the
            # kernel resent (1 s, 3 s ... into the round), or in a later round than its own:
            # until it did, the network was not shown up.
            back = min(answered) - mono
            mono, wall = mono + back, wall + back
        transition = self.tracker.observe(bool(answered), mono, wall, first_reason, target_reasons)
        if transition is None:
            return
        kind, detail = transition
        if kind == "down":
            self.say.down(wall, detail)
        else:
            outage, duration, ignored = detail
            self.counters.interruption_ended(duration, ignored)
            self.say.up(wall, outage, duration, ignored, outage.duration_bounds(mono))
            if not ignored:
                self._add_interruption(start=outage.start_wall, end=wall, duration=duration,
                                       reason=outage.reason, targets=self.settings.target_labels)
        self._save_state()

    def _after_round(self):
        now = self.clock.monotonic()
        if self.reporter is not None:
            problem = self.reporter.maybe_send(now, self.tracker.is_down)
            if problem:
                self.say.report_not_set_up(problem)
        if self.pinger is not None:
            self.pinger.maybe_ping(now, network_up=not self.tracker.is_down)
        self._publish_metrics()

    def _add_interruption(self, **interruption):
        if self.reporter is not None:   # --no-mail: the event log is the only record
            self.reporter.pending.add(**interruption)

    # -- what the background jobs did --------------------------------------------------------
    def _collect_deliveries(self):
        if self.reporter is None:
            return
        outcomes = self.reporter.outcomes(self.clock.monotonic())
        for count, failure in outcomes:
            wall, via = self.clock.wall(), self.reporter.deliverer.name
            if failure is None:
                self.counters.reports_sent += 1
                self.say.report_sent(wall, count, via, self.reporter.pending.backoff.wait)
            else:
                self.counters.report_failures += 1
                self.say.report_failed(wall, count, via, failure)
        if outcomes:
            self._save_state()
            self._publish_metrics()

    def _collect_pings(self):
        if self.pinger is not None:
            for news, failure in self.pinger.news(network_down=self.tracker.is_down):
                self.say.ping(self.clock.wall(), news, failure, self.pinger.where)

    def _publish_metrics(self):
        if self.metrics_board is None:
            return
        mono, wall = self.last_round or (None, None)
        ongoing = self.tracker.ongoing_duration(mono) if mono is not None else 0.0
        self.metrics_board.publish(self.counters.snapshot(
            self.last_results, ongoing, self.settings.min_interruption, self._pending_count(), wall))

    def _pending_count(self):
        return self.reporter.pending.count if self.reporter is not None else 0

    # -- state file and event log ------------------------------------------------------------
    def _save_state(self, clean_stop=False):
        if self.state is None:
            return
        mono, wall = self.clock.monotonic(), self.clock.wall()
        outage = self.tracker.outage
        data = {"format": STATE_FORMAT, "heartbeat": wall, "clean_stop": clean_stop,
                "targets": self.settings.target_labels, "pending": [], "next_id": 1, "backoff": {},
                "down": None if outage is None else {
                    "start": outage.start_wall, "reason": outage.reason,
                    "duration": self.tracker.ongoing_duration(mono)}}
        if self.reporter is not None:
            data.update(self.reporter.pending.to_dict(mono, wall))
        self.last_heartbeat = mono      # also after a failure: try again at the next heartbeat
        try:
            self.state.save(data)
        except OSError as error:
            self.say.state_not_saved(self.state.path, error)

    def _restore_state(self, state):
        """Takes over what the previous run left: pending reports, backoff, and any gap."""
        mono, wall = self.clock.monotonic(), self.clock.wall()
        if self.reporter is not None:
            self.reporter.pending.restore(state, mono, wall)
            if self.reporter.pending:
                self.say.still_to_report(wall, self._pending_count())
        cut_short, gap = recover_previous_run(state, wall, self.settings.min_interruption)
        if cut_short:
            self._add_interruption(**cut_short)
        if gap is not None:
            start, end, duration, ignored = gap
            self.say.gap(wall, start, end, duration, ignored)
            if not ignored:
                self._add_interruption(start=start, end=end, duration=duration, kind="gap",
                                       reason="monitor not running", targets=state["targets"])

    def _reopen_event_log(self):
        if self.say.log.path:
            try:
                self.say.log.reopen()
            except MonitorError as error:
                self.say.log_reopened(self.clock.wall(), error)
                return
            self.say.log_reopened(self.clock.wall())

    # -- start and stop ----------------------------------------------------------------------
    def start(self):
        wall = self.clock.wall()
        self.say.started(wall, self.state.path if self.state is not None else None)
        if self.state is not None:
            state, warning = self.state.load()
            if warning:
                self.say.console.warning(warning, wall)
            if state:
                self._restore_state(state)
            self._save_state()
        self._publish_metrics()

    def _wait_for_delivery_in_flight(self, limit=0.5):
        """A report the server accepted just now must not stay pending and go out twice."""
        deadline, cancelled = self.clock.monotonic() + limit, False
        while self.reporter is not None and self.reporter.busy:
            if self.clock.monotonic() >= deadline:
                if cancelled:
                    break
                # a notify command runs in its own session and would still deliver after the
                # stop, behind the state file's back: kill it, so its report stays pending
                self.reporter.cancel()
                cancelled, deadline = True, self.clock.monotonic() + limit
            self.waker.wait(0.05)
            self._collect_deliveries()

    def stop(self):
        self._wait_for_delivery_in_flight()
        mono, wall = self.clock.monotonic(), self.clock.wall()
        outage, self.tracker.outage = self.tracker.outage, None
        if outage is not None:
            duration = max(0.0, mono - outage.start_mono)
            if counts_as_interruption(duration, self.settings.min_interruption):
                self._add_interruption(start=outage.start_wall, end=wall, duration=duration,
                                       reason=outage.reason, targets=self.settings.target_labels,
                                       cut_short=True)
        self.prober.close()
        self._save_state(clean_stop=True)
        self.say.stopped(wall, self.waker.stop_signal, outage and outage.start_wall,
                         self._pending_count())
        return self.waker.stop_signal


# ---------------------------------------------------------------------------------------------
# Availability summary (--summary): reads the event log back; pure apart from run_summary()
# ---------------------------------------------------------------------------------------------

HOUR_SHADES = "\u00b7\u2591\u2592\u2593\u2588"   # ·░▒▓█: no downtime, down <25 %, <50 %, <75 %, more
HOUR_SHADES_ASCII = ".-+*#"                      # the same, for a terminal without those characters
_SUMMARY_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def parse_log_time(value):
    """Epoch seconds of an ISO 8601 time from the event log (without an offset: local time).

    Returns None for anything else, so one bad field never stops a summary.
    """
    if not isinstance(value, str):
        return None
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"     # fromisoformat() learnt "Z" only in Python 3.11
    try:
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


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
        return moment.timestamp()
    except (ValueError, OverflowError, OSError) as error:
        raise UsageError("%s: %r is not a valid date (%s)" % (option, text, _one_line(error)))


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
    """Cuts [start, end) at local hour boundaries: yields ((year, month, day), hour, seconds)."""
    moment = start
    while moment < end:
        local = time.localtime(moment)
        # whole seconds: the boundary is exact and always later than `moment`
        boundary = math.floor(moment) - local.tm_min * 60 - local.tm_sec + 3600
        piece_end = min(end, boundary)
        yield (local.tm_year, local.tm_mon, local.tm_mday), local.tm_hour, piece_end - moment
        moment = piece_end


def _availability(monitored, downtime):
    if monitored <= 0:
        return None
    return min(100.0, max(0.0, 100.0 * (monitored - downtime) / monitored))


class DaySummary:
    """One local calendar day: seconds monitored and down, in all and per hour."""

    __slots__ = ("date", "monitored", "downtime", "interruptions", "hour_monitored", "hour_down")

    def __init__(self, date):
        self.date = date                   # "YYYY-MM-DD"
        self.monitored = 0.0
        self.downtime = 0.0
        self.interruptions = 0             # those that began on this day
        self.hour_monitored = [0.0] * 24
        self.hour_down = [0.0] * 24

    @property
    def availability(self):
        """Percent, or None when the day was not monitored at all."""
        return _availability(self.monitored, self.downtime)


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
        self.days = []              # a DaySummary for every local day of the period, in order
        self.invalid = 0            # records without a valid "time" and "event"
        self.unknown = {}           # unknown event name -> how many were skipped

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


class _Timeline:
    """Adds up monitored time and downtime clipped to [since, until), per day and per hour.

    A span that overlaps one already counted is cut to the part after it, so an odd log (clock
    set back, a line written twice) never counts a second twice. Work is linear in the number
    of spans plus the hours they cover.
    """

    def __init__(self, summary):
        self.summary = summary
        self.since = -math.inf if summary.since is None else summary.since
        self.until = math.inf if summary.until is None else summary.until
        self.monitored_to = -math.inf
        self.down_to = -math.inf
        self.days = {}               # (year, month, day) -> DaySummary

    def _day(self, key):
        day = self.days.get(key)
        if day is None:
            day = self.days[key] = DaySummary("%04d-%02d-%02d" % key)
        return day

    def monitored(self, start, end):
        start, end = max(start, self.since, self.monitored_to), min(end, self.until)
        if end <= start:
            return
        self.monitored_to = end
        self.summary.monitored += end - start
        for key, hour, seconds in _hour_pieces(start, end):
            day = self._day(key)
            day.monitored += seconds
            day.hour_monitored[hour] += seconds

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
        first_piece = True
        for key, hour, seconds in _hour_pieces(start, end):
            day = self._day(key)
            if first_piece:
                day.interruptions += 1
                first_piece = False
            day.downtime += seconds
            day.hour_down[hour] += seconds

    def blip(self, instant):
        if self.since <= instant < self.until:
            self.summary.blips += 1

    def day_list(self, start, end):
        """Every day from the period's first to its last, monitored or not."""
        keys = list(self.days)
        if start is not None:
            keys.append(time.localtime(start)[:3])
            keys.append(time.localtime(max(start, end - 0.001))[:3])   # an end at midnight
        if not keys:
            return []
        first = datetime(*min(keys)).toordinal()
        last = datetime(*max(keys)).toordinal()
        days = []
        for ordinal in range(first, last + 1):
            moment = datetime.fromordinal(ordinal)
            key = (moment.year, moment.month, moment.day)
            days.append(self.days.get(key) or DaySummary("%04d-%02d-%02d" % key))
        return days


def summarize_events(events, since=None, until=None):
    """Availability from event-log records (parsed JSON, in file order), clipped to [since, until).

    The rules, in short: the monitor runs from a `start` to the next `stop`; `down`..`up` is an
    interruption unless the `up` says it was ignored (a blip); a `stop` while down ends the
    interruption then (if at least the run's min_interruption long); a `gap` that was not
    ignored is downtime that also counts as monitored time. Between a `stop` and the next
    `start` the monitor was not running: neither up nor down. A `start` with no `stop` before it
    ends the previous run at its last sign of life: the start of the `gap` logged right after
    (the last heartbeat), else its last event. A log that ends while running is counted to its
    last event. Records without a valid time and event, and unknown events, are counted in the
    summary and otherwise skipped.
    """
    summary = Summary(since, until)
    timeline = _Timeline(summary)
    min_interruption = DEFAULT_MIN_INTERRUPTION
    run_start = None         # the current run began here (None: the monitor is not running)
    last_seen = None         # the current run's latest sign of life
    down_since = None        # the current run's network has been down since then
    crashed = None           # a run that ended without a stop, until we see whether a gap follows
    first = None             # the first instant known to be monitored
    last = None              # the latest event
    down_text = None         # the `down` event's time as written: an `up` repeats it as its start

    def close_run(start, end, down, threshold, at_end=False):
        end = max(start, end)
        if down is not None:
            down = max(start, down)
            if end - down >= threshold:
                timeline.down(down, end)
            elif not at_end:          # at the end of the log it may not be over yet
                timeline.blip(down)
        timeline.monitored(start, end)

    for event in events:
        name = event.get("event") if isinstance(event, dict) else None
        moment = parse_log_time(event.get("time")) if isinstance(name, str) else None
        if moment is None:
            summary.invalid += 1
            continue
        name = RENAMED_EVENTS.get(name, name)
        kind = EVENTS.get(name)
        if kind is None:
            summary.unknown[name] = summary.unknown.get(name, 0) + 1
            continue
        quiet = not kind.availability
        last = moment if last is None else max(last, moment)
        if crashed is not None and not quiet and name != "gap":
            close_run(*crashed)
            crashed = None

        if name == "start":
            if run_start is not None:
                crashed = (run_start, last_seen, down_since, min_interruption)
            run_start = last_seen = moment
            down_since = None
            min_interruption = _number(event.get("min_interruption"), DEFAULT_MIN_INTERRUPTION)
            first = moment if first is None else min(first, moment)
            continue

        if name == "gap":
            gap_start = parse_log_time(event.get("start"))
            gap_end = parse_log_time(event.get("end"))
            if crashed is not None:
                previous_start, previous_seen, previous_down, previous_threshold = crashed
                end = previous_seen
                if gap_start is not None:
                    end = min(max(previous_seen, gap_start), run_start)
                close_run(previous_start, end, previous_down, previous_threshold)
                crashed = None
            if gap_start is not None and gap_end is not None and gap_end > gap_start:
                ignored = event.get("ignored")
                if not isinstance(ignored, bool):
                    ignored = gap_end - gap_start < min_interruption
                if not ignored:
                    timeline.monitored(gap_start, gap_end)
                    timeline.down(gap_start, gap_end, gap=True)
                    first = gap_start if first is None else min(first, gap_start)
            if run_start is not None:
                last_seen = max(last_seen, moment)
            continue

        if name == "stop":
            down = down_since
            if down is None:
                down = parse_log_time(event.get("down_since"))
            if run_start is None:     # a log that begins with a stop (rotated)
                run_start = moment if down is None else min(moment, down)
                first = run_start if first is None else min(first, run_start)
            close_run(run_start, moment, down, min_interruption)
            run_start = last_seen = down_since = None
            continue

        began = moment
        if name == "up":
            began_text = event.get("start")
            if down_since is not None and began_text == down_text:
                began = down_since
            else:
                began = parse_log_time(began_text)
            if began is None:
                began = down_since
            if began is None and run_start is not None:
                began = max(run_start, moment - max(0.0, _number(event.get("duration"), 0.0)))
            if began is None:
                began = moment
            began = min(began, moment)
        if run_start is None:         # a log that begins while the monitor runs (rotated)
            run_start = last_seen = began
            first = began if first is None else min(first, began)
        last_seen = max(last_seen, moment)
        if name == "down":
            if down_since is None:
                down_since = moment
                down_text = event.get("time")
        elif name == "up":
            began = max(began, run_start)
            ignored = event.get("ignored")
            if not isinstance(ignored, bool):
                ignored = moment - began < min_interruption
            if ignored:
                timeline.blip(began)
            else:
                timeline.down(began, moment)
            down_since = None

    if crashed is not None:
        close_run(*crashed)
    if run_start is not None:
        close_run(run_start, last_seen, down_since, min_interruption, at_end=True)
        summary.still_running = last_seen <= timeline.until
        summary.still_down = summary.still_running and down_since is not None
    if first is not None:
        start, end = max(first, timeline.since), min(last, timeline.until)
        if end > start:
            summary.start, summary.end = start, end
    summary.days = timeline.day_list(summary.start, summary.end)
    return summary


class EventLines:
    """Iterates the JSON values of an event log's lines; counts the lines that are not JSON."""

    def __init__(self, lines):
        self.lines = lines
        self.not_json = 0

    def __iter__(self):
        decode = json.JSONDecoder().decode
        for line in self.lines:
            if not line.strip():
                continue
            try:
                yield decode(line)
            except (ValueError, RecursionError):
                self.not_json += 1


def describe_skipped(not_json, summary, source):
    """The one warning about skipped lines, or None when nothing was skipped."""
    unknown = sum(summary.unknown.values())
    total = not_json + summary.invalid + unknown
    if not total:
        return None
    parts = []
    if not_json:
        parts.append("%d not JSON" % not_json)
    if summary.invalid:
        parts.append("%d without a valid time and event" % summary.invalid)
    if unknown:
        names = sorted(summary.unknown, key=lambda name: (-summary.unknown[name], name))
        shown = ", ".join(_one_line(name)[:30] or "''" for name in names[:5])
        parts.append("%s (%s%s)" % (plural(unknown, "unknown event"), shown,
                                    ", ..." if len(names) > 5 else ""))
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
    for day in summary.days:
        if day.monitored > 0:
            lines.append("%-10s  %7s  %4d  %16s  |%s|" % (
                day.date, _percent(day.availability, 2) + "%", day.interruptions,
                human_duration(day.downtime), hour_bar(day, shades)))
        else:
            lines.append("%-10s  %7s  %4s  %16s  |%s|" % (day.date, "-", "-", "-", " " * 24))
    lines += [
        "",
        "int: interruptions that began that day. One cell per hour of local time:",
        "%s no downtime, %s down under 25 %% of the hour, %s under 50 %%, %s under 75 %%, "
        "%s 75 %% or more; blank: not monitored." % tuple(shades),
    ]
    return "\n".join(lines) + "\n"


def run_summary(args, out, console):
    """--summary: the I/O around summarize_events() and format_summary()."""
    try:
        with open(args.log_file, encoding="utf-8", errors="replace") as stream:
            lines = EventLines(stream)
            summary = summarize_events(lines, args.since, args.until)
    except OSError as error:
        raise MonitorError("cannot read event log %s: %s"
                           % (args.log_file, error.strerror or _one_line(error)))
    try:
        HOUR_SHADES.encode(getattr(out, "encoding", None) or "ascii")
        plain = False
    except (LookupError, UnicodeError):
        plain = True
    text = format_summary(summary, args.log_file, ascii=plain)
    try:
        try:
            out.write(text)
        except UnicodeEncodeError:      # e.g. a file name the terminal cannot show
            encoding = getattr(out, "encoding", None) or "ascii"
            out.write(text.encode(encoding, "replace").decode(encoding))
        out.flush()
    except BrokenPipeError:             # `--summary | head`: the reader has seen enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    warning = describe_skipped(lines.not_json, summary, args.log_file)
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
    parser.add_argument("--down-interval", type=positive, metavar="SECONDS",
                        help="while the connection is down, start a round every SECONDS, so that "
                             "its end is known that exactly; at most -i, which turns this off "
                             "(default: a tenth of -i, at least %g)" % DOWN_INTERVAL_MIN)
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
    parser.add_argument("--discard-pending", action="store_true",
                        help="forget the interruptions waiting for a report in the state file "
                             "(e.g. after trial runs), say how many, and exit")
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
    if args.down_interval is not None and args.down_interval > args.interval:
        raise UsageError("--down-interval: %g is above -i/--interval %g"
                         % (args.down_interval, args.interval))
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
    board = MetricsBoard(MetricsSnapshot())
    server = start_metrics_server(args.metrics_address, args.metrics_port, board)
    console.info("serving metrics at http://%s/metrics"
                 % Target(args.metrics_address, args.metrics_port).label)
    return board, server


def make_pinger(args, waker, console):
    """The Pinger for --ping-url, or None without it."""
    if args.ping_url is None:
        return None
    console.info("pinging %s every %s while the network is up"
                 % (ping_url_for_people(args.ping_url), human_duration(args.ping_interval)))
    return Pinger(PingSender(args.ping_url, args.timeout, waker.wake),
                  PingSchedule(args.ping_interval))


def make_backoff(settings):
    return ReportBackoff(settings.backoff_min, settings.backoff_max, settings.backoff_step)


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
    warning = isinstance(deliverer, MailDeliverer) and config_permission_warning(args.pysendmail)
    if warning:
        console.warning(warning)      # as the monitor warns at start
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


def run_discard_pending(settings, console):
    """--discard-pending: empties the pending list; the previous run counts as stopped cleanly,
    so no gap is reported for the time since."""
    state = StateFile(settings.state_file)
    state.lock()
    try:
        data, warning = state.load()
        if warning:
            console.warning(warning)
        count = sum(item["count"] for item in data["pending"]) if data else 0
        if data:
            data.update(pending=[], clean_stop=True, down=None)
            try:
                state.save(data)
            except OSError as error:
                raise MonitorError("cannot write state file %s: %s"
                                   % (state.path, _one_line(error)))
        log = EventLog(settings.log_file, warn=console.warning)
        log.write("pending_discarded", time.time(), interruptions=count)
        log.close()
    finally:
        state.unlock()
    console.info("discarded %s waiting for a report (state file %s)"
                 % (plural(count, "interruption"), settings.state_file))
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
                            "works (or deliver them with --notify-command CMD instead, or turn "
                            "them off with --no-mail)." % problem)
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
        reporter = None
        if deliverer is not None:
            reporter = Reporter(PendingReports(make_backoff(args)), deliverer,
                                socket.gethostname(), waker.wake)
        monitor = Monitor(args, Announcer(console, event_log, args), waker,
                          Prober(args.timeout, waker.read_fd), reporter=reporter, state=state,
                          pinger=make_pinger(args, waker, console), metrics_board=metrics_board)
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
        if args.discard_pending:
            return run_discard_pending(args, console)
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
