#!/bin/sh
# pyNetConnMon: watch an Internet (or network) connection and mail a report of every interruption.
#
# A Python program that starts itself: the shell runs only the `exec` line below, which to Python
# is a string. It has Python run the bytecode cached in __pycache__ beside this file (compiled in
# a short-lived child when the file is new, changed or its cache damaged, where the folder is
# writable). Compiling the whole file in the monitor itself would more than double the monitor's
# memory for as long as it runs: started as `python3 pyNetConnMon.py` (or `-m`), which compiles
# it, the monitor moves onto the cache before its loop. The loader's code is LOADER below. Python
# runs without its `site` module (-S): the program needs only the standard library, so what is
# installed in site-packages (a .pth file that imports a package at every start) neither slows
# its start nor goes into its memory.
""":"
exec python3 -S -c '
import sys
if sys.version_info < (3, 9):
    sys.exit("pyNetConnMon needs Python 3.9 or newer; this is Python %d.%d" % sys.version_info[:2])
script_first = sys.path[:1] == [""]
if script_first:
    del sys.path[0]
import os
from importlib.machinery import SourceFileLoader
from importlib.util import MAGIC_NUMBER, cache_from_source, module_from_spec, spec_from_loader
typed = sys.argv.pop(1)
path = os.path.realpath(typed)
sys.argv[0] = typed
if script_first:
    sys.path.insert(0, os.path.dirname(path))
cache = cache_from_source(path)
folder = os.path.dirname(cache)


def compile_cache():
    if sys.dont_write_bytecode or not os.access(
            folder if os.path.isdir(folder) else os.path.dirname(folder), os.W_OK):
        return
    import subprocess
    subprocess.run([sys.executable, "-I", "-c", "import py_compile, sys; py_compile.compile("
                    "sys.argv[1], sys.argv[2], optimize=int(sys.argv[3]))",
                    path, cache, str(sys.flags.optimize)], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


try:
    with open(cache, "rb") as stream:
        head = stream.read(16)
    source = os.stat(path)
    stamp = (int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF)
    fresh = head[:4] == MAGIC_NUMBER and (head[4:8] != bytes(4) or stamp == (
        int.from_bytes(head[8:12], "little"), int.from_bytes(head[12:16], "little")))
except OSError:
    fresh = False
if not fresh:
    compile_cache()
loader = SourceFileLoader("__main__", path)
sys.modules["__main__"] = module = module_from_spec(spec_from_loader("__main__", loader))
try:
    code = loader.get_code("__main__")
except (EOFError, ValueError, TypeError, ImportError):
    compile_cache()
    try:
        code = loader.get_code("__main__")
    except (EOFError, ValueError, TypeError, ImportError):
        code = compile(loader.get_data(path), path, "exec", dont_inherit=True)
exec(code, module.__dict__)
' "$0" "$@"
"""

# pyNetConnMon watches an Internet (or network) connection. Every `interval` seconds it tries a
# TCP connect to each target at once; the network is UP while at least one target answers.
# Interruptions (and partial outages and slow periods) are logged, kept in a state file until a
# report about them has been accepted by the mail server (or a notify command), and sent with a
# backoff so that a bad line does not flood the inbox. The event log is read back as a summary,
# an HTML/CSV report and a live status page; /metrics serves Prometheus.
#
# Copyright (C) the pyNetConnMon authors. License: GNU GPL v3 or later (see LICENSE).
# Python 3.9+, standard library only. Mail goes through the pySendMail submodule.
#
# THE MAP. Sections, in this order, each under a banner:
#   version and defaults; exceptions; settings; the event log's vocabulary (EVENTS);
#   pure decision logic: when an outage begins and ends (InterruptionTracker), where it broke
#     (CauseJudge, PartialOutages), slow periods and statistics, when a report is due
#     (PendingReports, ReportBackoff): no sockets, no clocks, every instant handed in;
#   formatting for people (console lines, the mail report); the metrics table (METRICS);
#   I/O at the edges: targets, probing (Prober), delivery (pySendMail or a notify command),
#     the state file, the event log and console, the HTTP endpoint, the ping URL, signals;
#   the monitor: Announcer, RoundInterpreter, Monitor (the loop);
#   the event log read back: Replay -> History; the text summary; the HTML and CSV report;
#     the status page;
#   the command line and main().
#
# Two flows:
#   monitoring: Monitor runs a round (Prober) -> RoundInterpreter (trackers: transitions)
#     -> Announcer (console, event log, metrics) and PendingReports -> Reporter (delivery,
#     backoff) -> StateFile (what must survive a restart).
#   reading back: the event log (or the events the monitor keeps in memory, RecentEvents)
#     -> Replay -> History -> the views: format_summary, render_report and the CSV,
#     render_status. No view reads an event itself.

import sys

if sys.version_info < (3, 9):     # before anything that may need a newer Python can fail
    sys.exit("pyNetConnMon needs Python 3.9 or newer; this is Python %d.%d" % sys.version_info[:2])

import argparse
import bisect
import collections
import contextlib
import errno
import fcntl
import gc
import heapq
import importlib.util
import io
import ipaddress
import itertools
import json
import math
import operator
import os
import pwd
import re
import resource
import select
import selectors
import signal
import socket
import stat
import struct
import tempfile
import threading
import time
import urllib.parse
from importlib.util import MAGIC_NUMBER, cache_from_source
# Imported where first needed, each for the memory the monitor saves without it (resident
# set, measured on Python 3.11): urllib.request 6.8 MB (only --ping-url), html 0.5 MB and
# datetime 0.5 MB (only the status page and reading the log back), subprocess 0.4 MB (only
# --notify-command), traceback 0.3 MB, csv 0.1 MB, base64 0.1 MB, urllib.error 0.1 MB.


def _datetime():
    import datetime     # see above: only for reading the log back
    return datetime


def escape(text):
    """html.escape(), quotes included."""
    import html         # see above: only for the pages
    return html.escape(text)

# ---------------------------------------------------------------------------------------------
# Version and defaults (the options -a -p -i -t -m -bmin -bmax -bstep keep the names, defaults
# and meaning they had in pyNetConnMon 1.x)
# ---------------------------------------------------------------------------------------------

VERSION = "2.1.0"

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
MAX_WAIT = 86400.0               # seconds: the longest single wait (poll() counts in an int of ms)
DOWN_CONNECTS_LIMIT = 64         # connects in flight at most while probing fast (see Prober)
PROBE_FD_RESERVE = 8             # files beside the connects: event log, state file and its lock,
#                                  a delivery's pipes, a ping
DEFAULT_SLOW_MS = 1000.0         # a second in a queue (a resent SYN's wait is loss, not slow)
DEFAULT_SLOW_FACTOR = 4.0        # and by default also slow at 4 times the usual connect time ...
SLOW_MARGIN_MS = 50.0            # ... if that is at least this much more (1 -> 4 ms on a LAN is
#                                  not)
DEFAULT_LOSS_PERCENT = 10.0      # lossy while at least this share of SYNs is lost (see LossWindow)
DEFAULT_STATS_INTERVAL = 300.0   # a stats event of two targets every 5 min: about 44 MB a year

NOTIFY_COMMAND_TIMEOUT = 60.0
NOTIFY_ERROR_TAIL = 4096         # bytes: only the end of a notify command's stderr is kept
NOTIFY_OUTPUT_GRACE = 0.2        # seconds to read a notify command's last output after it exited
DELIVERY_LIMIT = 300.0           # s: a delivery still running this long (a mail server that
                                 # stopped answering) is cut, and the report retried
MAIL_STOP_WAIT = 10.0            # s: at a stop, the wait for a mail server to accept a report in
                                 # flight (servers that scan mail answer late), so that it does
                                 # not stay pending and go out again after the restart
REASON_LIMIT = 200               # characters: a failure reason from outside text stays this short
NAMES_SHOWN = 5                  # names a warning lists; the others are counted
REPORT_LIST_LIMIT = 100          # beyond this many interruptions a report lists the first and
#                                  last half
PENDING_LIMIT = 1000             # beyond this many pending interruptions the middle ones are folded
LOG_PIPE_WAIT = 0.2              # s a line waits at most for the reader of a FIFO or pipe log
UNWRITTEN_EVENTS_KEPT = 1000     # events held while the event log cannot be written: the latest
PYSENDMAIL_CONFIG = "sendMailConfig.json"
PYSENDMAIL_URL = "https://github.com/scaidermern/pySendMail.git"
PYSENDMAIL_COMMIT = "96729e66a3f4398480d651717935ec5c12102903"   # the one tested (README)
PYSENDMAIL_KEYS = ("mail.from", "mail.to", "mail.smtp.server", "mail.smtp.port", "mail.smtp.user",
                   "mail.smtp.password", "mail.smtp.tls", "mail.smtp.timeout")
STATE_FORMAT = 1

# Where an interruption broke. The gateway (the home router) is probed with a TCP connect to this
# port: its DNS forwarder's, which nearly every home router runs because its DHCP hands itself out
# as the DNS server, so the connect is accepted; a router without one refuses it, which is an
# answer too. The connect is closed at once: no query is sent, nothing is logged.
GATEWAY_PORT = 53
LAN_MISSES = 2                   # router probes missed in a row that make an ongoing outage `lan`
ROUTER_SILENT_ROUNDS = 3         # rounds in a row the router misses while a target answers that
#                                  make it no witness (a lost SYN must not cost an outage its cause)
# A router that redirects DNS to itself (Pi-hole set-ups, some providers' routers) accepts a
# connect to ANY address on port 53, also while the line is down: such a target watches the router.
# Its sign: a target beyond the router connects about as fast as the router. The line's own first
# hop costs a real Internet target at least a few ms more than the router (fibre about 1 to 3 ms,
# DSL and cable 5 to 20 ms); a connect the router answers costs what the router's own does. So
# over the first rounds in which both accept, a target is suspect when its median connect time
# is at most max(the router's + ROUTER_ECHO_MARGIN_MS, the router's x ROUTER_ECHO_RATIO) and
# under ROUTER_ECHO_CAP_MS (beyond that, over slow Wi-Fi, the two are too noisy to compare).
ROUTER_ECHO_ROUNDS = 5
ROUTER_ECHO_MARGIN_MS = 1.0
ROUTER_ECHO_RATIO = 1.5
ROUTER_ECHO_CAP_MS = 5.0
CAUSES = ("local", "lan", "provider", "dns", "unknown")    # the closest to this machine first
ROUTE_FILES = ("/proc/net/route", "/proc/net/ipv6_route")  # Linux: the routing table as text
SYS_NET = "/sys/class/net"                                  # Linux: IF/operstate, IF/carrier
ROUTE_FILE_LIMIT = 128 * 1024 * 1024   # bytes read of a routing table file: a router's may
                                       # hold many thousands of routes (about 150 bytes each);
                                       # only its default routes are kept
ROUTES_RECHECK = 1.0             # seconds: the routing table is read at most this often, up or
                                 # down (read in every round at -i 0.05, it doubled a round's CPU;
                                 # with 20,000 routes, every round while down took 63 % of a core)
                                 # and once more at the first failed round of an interruption

# Prometheus metrics and the ping URL (dead man's switch)
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
METRICS_REQUEST_TIMEOUT = 5.0    # seconds a metrics client has for its whole request, and again
                                 # to take the answer, however slowly the bytes trickle
METRICS_MAX_CONNECTIONS = 8      # metrics clients served at once; one more takes the place of
                                 # one already answered, else of the one sending its request the
                                 # longest (with a 503)
METRICS_REQUEST_LIMIT = 8192     # bytes of request line and headers read; beyond: 414 or 431
METRICS_HEADER_LIMIT = 64        # header lines; beyond: 431
METRICS_FD_RESERVE = 32          # free descriptors the endpoint leaves to probes, state, reports
METRICS_ACCEPT_PAUSE = 0.5       # seconds without accepting after accept() found no free descriptor
DEFAULT_PING_INTERVAL = 60.0
PING_RESPONSE_LIMIT = 4096       # bytes of the ping answer read before closing (it is not used)
PING_URL_VARIABLE = "PYNETCONNMON_PING_URL"   # the ping URL, kept out of the command line
PING_REDIRECT_REFUSED = "redirect to a URL that is not http or https"    # our own reason
PING_LIMIT = 10.0                # s: a ping not answered in full within this, or 4 x -t if longer,
                                 # is cut (-t bounds each read, and a server that sends a byte
                                 # before each one would hold the only ping in flight for ever)

# Connect times: statistics windows, losses the kernel repaired, the metrics histogram
CONNECT_TIME_RATIO = 1.01        # log-spaced buckets, each 1 % wider: percentiles within 1 %
CONNECT_TIME_RANGE = (0.001, 1e6)    # ms; a time outside is counted at the edge (2084 buckets)
RESENT_SYN_AFTER = (1.0, 3.0, 7.0, 15.0, 31.0, 63.0)   # s after the first SYN (Linux: RTO 1 s,
                                                       # doubled for each further one)
RESENT_SYN_MARGIN = 0.1          # s: a connect this much earlier than a resend still counts
RESENT_SYN_FIT = 0.25            # s: ... and one at most this much later (the loss window): a
                                 # later one waited in a queue, not for a resent SYN
SYN_LINEAR_TIMEOUTS = "/proc/sys/net/ipv4/tcp_syn_linear_timeouts"   # Linux 6.7 and newer
LOSS_WINDOW_ROUNDS = 30          # loss is judged over the last 30 rounds while up (60 s at -i 2)
LOSS_MIN_SENT = 20               # ... once they hold this many SYNs and
LOSS_MIN_LOST = 3                # ... this many were lost: one or two alone tell nothing
LOSS_OFF_SHARE = 0.5             # lossy until the loss has stayed below half of --loss for as
                                 # many rounds as the window holds (hysteresis)
LOSS_RUN_LIMIT = 5               # a target failing this many rounds in a row is down, not lossy
CLOCK_STEP_MIN = 1.0             # s: the wall clock moving this much against the monotonic one
                                 # between two rounds was set (NTP at boot, by hand, a resume from
                                 # suspend); NTP's slewing moves it far less
HELD_UP_MIN = 10.0               # s: a round this much later than it was due, and than the end of
                                 # the round before, means the process did not run (Ctrl-Z,
                                 # SIGSTOP, a machine too busy): nothing was watched meanwhile
USUAL_SLOT = 60.0                # s: a target's usual connect time is the median of the medians
USUAL_SLOTS = 180                # of its last 180 slots of a minute (3 hours; in the state file)
USUAL_SAMPLE = 1.0               # s: at most one round a second feeds them (-i 0.05: a round's
                                 # CPU stays that of before)
CONNECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0,
                   16.0)         # s, the metrics histogram's: 1, 2, 4, 8 s part resent SYNs

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
                 "until", "discard_pending", "gateway", "slow", "stats_interval", "html", "csv",
                 "down_interval", "slow_factor", "loss", "log_files")

    DEFAULTS = dict(targets=(), interval=DEFAULT_INTERVAL, timeout=DEFAULT_TIMEOUT,
                    min_interruption=DEFAULT_MIN_INTERRUPTION, backoff_min=DEFAULT_BACKOFF_MIN,
                    backoff_max=DEFAULT_BACKOFF_MAX, backoff_step=DEFAULT_BACKOFF_STEP,
                    heartbeat=DEFAULT_HEARTBEAT, log_file=None, state_file=None,
                    metrics_port=None, metrics_address=DEFAULT_METRICS_ADDRESS, ping_url=None,
                    ping_interval=DEFAULT_PING_INTERVAL, pysendmail=None, notify_command=None,
                    no_mail=False, test_mail=False, once=False, quiet=False, summary=False,
                    since=None, until=None, discard_pending=False, gateway="auto", slow=None,
                    stats_interval=DEFAULT_STATS_INTERVAL, html=None, csv=None,
                    down_interval=None, slow_factor=None, loss=DEFAULT_LOSS_PERCENT,
                    log_files=())      # --summary: every --log-file given

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

    @property
    def slow_ms(self):
        """The slow threshold in effect, in ms; 0: slow periods are not watched. --slow not
        given (None) means DEFAULT_SLOW_MS, but only if a connect that slow is not a timeout."""
        if self.slow is not None:
            return self.slow
        return DEFAULT_SLOW_MS if DEFAULT_SLOW_MS < self.timeout * 1000.0 else 0.0

    @property
    def slow_times(self):
        """The relative slow threshold in effect (--slow Nx): N, or 0 when not watched. Neither
        form given: DEFAULT_SLOW_FACTOR beside the default absolute one; `--slow MS` alone
        watches only the absolute one, as it always did."""
        if self.slow_factor is not None:
            return self.slow_factor
        return DEFAULT_SLOW_FACTOR if self.slow is None else 0.0


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
                        "state_file", "gateway", "slow_ms", "stats_interval", "host",
                        "slow_factor", "loss_percent"), True),
    "stop": EventKind(("signal", "down_since", "cause"), True),
    "down": EventKind(("start", "start_after", "start_before", "reason", "targets", "cause"),
                      True),    # the first round's cause
    "up": EventKind(("start", "start_after", "start_before", "end", "duration", "duration_min",
                     "duration_max", "ignored", "reason", "targets", "cause"), True),
    "gap": EventKind(("start", "end", "duration", "ignored"), True),
    "log_reopened": EventKind((), True),      # a rotated log begins here, with the monitor running
    "clock_step": EventKind(("step",), True),  # the wall clock was set `step` s forward (or back)
    "held_up": EventKind(("start", "duration")),    # the process did not run: nothing watched
    # partial outages: the connection stays up while one target, one IP family or names fail
    "target_down": EventKind(("target", "reason")),
    "target_up": EventKind(("target", "start", "end", "duration", "ignored")),
    "family_down": EventKind(("family", "reason")),
    "family_up": EventKind(("family", "start", "end", "duration", "ignored")),
    "dns_down": EventKind(("targets", "reason")),
    "dns_up": EventKind(("targets", "start", "end", "duration", "ignored")),
    "gateway_changed": EventKind(("gateway",)),
    # slow, not down: even the fastest target took --slow or longer to connect
    "slow": EventKind(("start", "connect_ms"), True),
    "slow_end": EventKind(("start", "end", "duration", "ignored", "median_ms", "max_ms"), True),
    # lossy, not down: at least --loss % of the connect attempts (SYNs) were lost while up
    "lossy": EventKind(("start", "loss_percent", "sent", "lost", "targets"), True),
    "lossy_end": EventKind(("start", "end", "duration", "ignored", "loss_percent", "sent", "lost",
                            "targets"), True),
    "stats": EventKind(("start", "end", "targets")),    # `end` (= `time`): 2.0.0 wrote it
    "report_sent": EventKind(("interruptions", "partial_outages", "slow_periods", "via",
                              "next_wait", "lossy_periods")),
    "report_failed": EventKind(("interruptions", "partial_outages", "slow_periods", "via",
                                "reason", "retry_in", "lossy_periods")),
    "pending_discarded": EventKind(("interruptions", "partial_outages", "slow_periods",
                                    "lossy_periods")),
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
        self.next_due = first_round
        self.last_start = None

    @property
    def next_due_down(self):
        if self.last_start is None:
            return self.origin
        return self._next_after(self.last_start, self.down_interval)

    def seconds_until_due(self, now, down=False):
        left = (self.next_due_down if down else self.next_due) - now
        return left if left > 1e-9 else 0.0     # a rounding error away is due: no wait of 1e-16 s

    def round_started(self, now):
        self.last_start = now
        if now >= self.next_due - 1e-9:     # a round on the interval's grid (not a fast one)
            self.next_due += self.interval
            if self.next_due <= now:         # it overran, or rounds were missed: skip them
                self.next_due = self._next_after(now, self.interval)

    def _next_after(self, now, step):
        """The first instant of the grid of `step` after `now`; a round that starts a rounding
        error before an instant of the grid counts as started at that instant."""
        due = self.origin + (math.floor((now - self.origin) / step + 1e-6) + 1) * step
        return due if due > now else due + step


def counts_as_interruption(duration, min_interruption):
    """The one rule: downtime shorter than -m is a blip, logged and ignored."""
    return duration >= min_interruption


class WallClockSteps:
    """Notices the wall clock being set (NTP at boot, by hand, a resume from suspend): its
    distance from the monotonic clock changed by CLOCK_STEP_MIN or more since the last reading."""

    def __init__(self):
        self.offset = None          # wall - monotonic at the last reading

    def observe(self, mono, wall):
        """The step in seconds (positive: set forward) since the last reading, or None."""
        previous, self.offset = self.offset, wall - mono
        if previous is None or abs(self.offset - previous) < CLOCK_STEP_MIN:
            return None
        return self.offset - previous


class HoldUps:
    """Notices the monitor's process not running for a while (stopped by Ctrl-Z or SIGSTOP,
    starved by a machine swapping): its monotonic clock runs on, so a round starts long after it
    was due and after the round before ended. (A suspend of the machine stops that clock; the
    wall clock's step tells of it: WallClockSteps.)"""

    def __init__(self, least=HELD_UP_MIN):
        self.least = least
        self.free_since = None      # monotonic end of the latest round: the loop was free then

    def round_ended(self, mono):
        self.free_since = mono

    def round_starts(self, mono, due):
        """Seconds the round that starts at `mono`, due at `due`, was held up, or None."""
        if self.free_since is None:
            return None
        late = mono - max(due, self.free_since)
        return late if late >= self.least else None


def _moved(instant, step):
    """A (monotonic, wall clock) pair, or None, onto a wall clock set `step` s forward."""
    return None if instant is None else (instant[0], instant[1] + step)


class Interruption:
    """One stretch of downtime: wall-clock start for people, a monotonic-clock duration."""

    __slots__ = ("id", "start", "end", "duration", "reason", "kind", "cut_short", "targets",
                 "count", "cause", "part", "median_ms", "max_ms", "loss_percent", "sent", "lost",
                 "gaps", "gap_duration")

    def __init__(self, id, start, end, duration, reason, kind="outage", cut_short=False,
                 targets=(), count=1, cause=None, part=None, median_ms=None, max_ms=None,
                 loss_percent=None, sent=None, lost=None, gaps=0, gap_duration=0.0):
        self.id = id
        self.start = start          # wall-clock epoch seconds of the first failed round
        self.end = end              # wall-clock epoch seconds of the first good round
        self.duration = duration    # seconds, from the monotonic clock
        self.reason = reason
        self.kind = kind            # "outage", "gap" (the monitor was not running), "many",
                                    # "partial" (the connection stayed up: see `part`), or
                                    # "slow": a slow period (the connection was up, but slow),
                                    # "lossy": a lossy period (up, but losing SYNs)
        self.cut_short = cut_short  # the monitor stopped while the network was still down (slow)
        self.targets = list(targets)    # labels of the targets it was measured on
        self.count = count          # > 1 for "many", and for slow periods folded into one entry
        self.cause = cause          # one of CAUSES, the final one; None: not known (gap, folded)
        self.part = part            # a partial outage's what ("target X", "IPv6", "names");
                                    # None for an interruption
        self.median_ms = median_ms  # a slow period's fastest connects: their median (None when
        self.max_ms = max_ms        # folded) and maximum
        self.loss_percent = loss_percent    # a lossy period's SYNs lost, in % of those sent
        self.sent = sent
        self.lost = lost
        self.gaps = gaps            # "many": how many of its `count` were gaps, and their
        self.gap_duration = gap_duration    # seconds, of its `duration`

    def gap_part(self):
        """(gaps, their seconds) of this entry: all of it for a gap."""
        return (self.count, self.duration) if self.kind == "gap" else (self.gaps,
                                                                      self.gap_duration)

    def to_dict(self):
        data = {name: getattr(self, name) for name in self.__slots__}
        if self.kind != "slow":
            del data["median_ms"], data["max_ms"]
        if self.kind != "lossy":
            del data["loss_percent"], data["sent"], data["lost"]
        if not self.gaps:
            del data["gaps"], data["gap_duration"]
        return data

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data[name] for name in cls.__slots__ if name in data})


class OngoingOutage:
    """An outage while it lasts. It began after the last probe that got through (`after`, None
    when there was none since the start) and by the first failed round (`before`); it is taken
    to begin in the middle of that window. Instants are (monotonic, wall clock) pairs."""

    __slots__ = ("after", "before", "start_mono", "start_wall", "last_failed", "reason",
                 "targets", "cause")

    def __init__(self, after, before, reason, targets, cause=None):
        self.after = after
        self.before = before
        start = before if after is None else after
        self.start_mono = (start[0] + before[0]) / 2
        self.start_wall = (start[1] + before[1]) / 2
        self.last_failed = before[0]    # monotonic: the latest round that found it still down
        self.reason = reason
        self.targets = targets
        self.cause = cause          # made more precise while it lasts (closer_cause)

    def duration_bounds(self, end_mono):
        """(shortest, longest) it can have lasted if it ended by `end_mono` (longest: None when
        it began before the first round): from the first failed round to the last one, and from
        the last good probe to the end."""
        shortest = max(0.0, self.last_failed - self.before[0])
        return shortest, None if self.after is None else max(0.0, end_mono - self.after[0])

    def move(self, step):
        """Onto a wall clock set `step` s forward."""
        self.after, self.before = _moved(self.after, step), _moved(self.before, step)
        self.start_wall += step


class Transition:
    """A change a tracker found in a round: "down", "up", or "cause" (a further failed round made
    the cause more precise), of the connection (`key` None) or of a part of it (`key`: the
    partial outage's key). An "up" says how long it lasted, whether it was too short to count,
    and how far into the round the connect that showed it back got through (`back`)."""

    __slots__ = ("kind", "outage", "key", "duration", "ignored", "back")

    def __init__(self, kind, outage, key=None, duration=None, ignored=None, back=0.0):
        self.kind = kind
        self.outage = outage        # the OngoingOutage it is about
        self.key = key
        self.duration = duration
        self.ignored = ignored
        self.back = back


class InterruptionTracker:
    """Turns round results into DOWN and UP transitions.

    An interruption begins between the last probe that got through and the first failed round
    (taken in the middle) and ends when the first connect gets through again. Its cause is the
    first failed round's, made more precise by each further one (closer_cause).
    """

    def __init__(self, min_interruption):
        self.min_interruption = min_interruption
        self.outage = None
        self.last_good = None        # (monotonic, wall) of the latest connect that got through

    @property
    def is_down(self):
        return self.outage is not None

    def observe(self, network_up, mono, wall, reason=None, target_reasons=None, cause=None):
        """`mono`, `wall`: when the round's first connect got through if the network is up, else
        when the round began. Returns a Transition ("down", "up", or "cause" when a further
        failed round made the cause more precise), or None."""
        outage = self.outage
        if network_up:
            self.last_good = (mono, wall)
            if outage is None:
                return None
            self.outage = None
            duration = max(0.0, mono - outage.start_mono)
            return Transition("up", outage, duration=duration, ignored=not counts_as_interruption(
                duration, self.min_interruption))
        if outage is not None:
            outage.last_failed = mono
            known, outage.cause = outage.cause, closer_cause(outage.cause, cause)
            return Transition("cause", outage) if outage.cause != known else None
        self.outage = OngoingOutage(self.last_good, (mono, wall), reason,
                                    dict(target_reasons or {}), cause)
        return Transition("down", self.outage)

    def ongoing_duration(self, mono):
        """How long the current outage has lasted at `mono` (0 while up)."""
        return 0.0 if self.outage is None else max(0.0, mono - self.outage.start_mono)


# -- Where it broke: the routing table, the gateway's answers, causes, partial outages ----------


def closer_cause(first, second):
    """The cause closer to this machine (local, then lan, provider, dns); "unknown" or None only
    when neither is known better."""
    known = [cause for cause in (first, second) if cause is not None]
    return min(known, key=CAUSES.index) if known else None


class Route:
    """A default route: IP family (4 or 6), its gateway's address (None for a route without
    one, like a VPN's or PPP's), the interface it leaves by, its metric (lowest is used)."""

    __slots__ = ("family", "gateway", "interface", "metric")

    def __init__(self, family, gateway, interface, metric=0):
        self.family = family
        self.gateway = gateway
        self.interface = interface
        self.metric = metric

    def __repr__(self):
        return "Route(%d, %r, %r, %d)" % (self.family, self.gateway, self.interface, self.metric)

    def __eq__(self, other):
        return isinstance(other, Route) and repr(self) == repr(other)


_RTF_UP, _RTF_GATEWAY, _RTF_REJECT = 0x0001, 0x0002, 0x0200    # Linux's route flags


def parse_ipv4_routes(text, byteorder=sys.byteorder):
    """The default routes in the text of Linux's /proc/net/route (main table). Its addresses are
    32-bit numbers in hex in the machine's own byte order: little-endian on a PC or a Pi."""
    routes = []
    for line in text.splitlines()[1:]:       # the first line names the columns
        fields = line.split()
        try:
            interface, destination, flags = fields[0], int(fields[1], 16), int(fields[3], 16)
            metric, mask, gateway = int(fields[6]), int(fields[7], 16), bytes.fromhex(fields[2])
        except (IndexError, ValueError):
            continue
        if destination or mask or not flags & _RTF_UP or flags & _RTF_REJECT or len(gateway) != 4:
            continue
        if byteorder == "little":
            gateway = gateway[::-1]
        address = str(ipaddress.IPv4Address(gateway)) if flags & _RTF_GATEWAY else None
        routes.append(Route(4, address, interface, metric))
    return routes


def parse_ipv6_routes(text):
    """The default routes in the text of Linux's /proc/net/ipv6_route (every table, no header;
    addresses in 32 hex digits, metric and flags in hex). A link-local gateway gets its
    interface as scope (fe80::1%eth0): without one it names no host."""
    routes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 10:
            continue
        try:
            destination, prefix = int(fields[0], 16), int(fields[1], 16)
            next_hop = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
            metric, flags = int(fields[5], 16), int(fields[8], 16)
        except ValueError:
            continue
        if destination or prefix or not flags & _RTF_UP or flags & _RTF_REJECT:
            continue
        address = None
        if flags & _RTF_GATEWAY and next_hop.packed != bytes(16):
            address = str(next_hop) + ("%" + fields[9] if next_hop.is_link_local else "")
        routes.append(Route(6, address, fields[9], metric))
    return routes


def route_families(targets):
    """The IP families (4, 6) whose default routes lead to the targets: the family of each one
    given by address, both for a name (it may resolve to either). A loopback target needs no
    route; with none but those, both."""
    families = set()
    for target in targets:
        if not target.is_loopback:
            families.update({"ipv4": (4,), "ipv6": (6,), None: (4, 6)}[target_family(target)])
    return tuple(sorted(families)) or (4, 6)


def choose_gateway(routes):
    """The gateway to probe: the one of the IPv4 default route with the lowest metric, else the
    IPv6 one's; None when no default route has a gateway. Given the routes of the targets'
    families only (see Surroundings), a router of the other family is never probed: it tells
    nothing about the way to the targets."""
    candidates = [route for route in routes if route.gateway]
    if not candidates:
        return None
    return min(candidates, key=lambda route: (route.family, route.metric)).gateway


def link_is_up(operstate, carrier):
    """Whether an interface has a link, from its /sys/class/net files' text (None: unreadable).
    An interface the kernel cannot tell about ("unknown", as for many VPN or PPP interfaces)
    counts as up unless its carrier says 0."""
    if operstate is None:
        return False                 # gone: e.g. a USB Wi-Fi stick pulled out
    operstate = operstate.strip()
    if operstate == "up":
        return True
    if operstate in ("down", "lowerlayerdown", "notpresent", "dormant"):
        return False
    return (carrier or "").strip() != "0"


def local_trouble(routes, had_routes, down_interfaces, families=(4, 6)):
    """Why this machine itself has no way out, as its own routing table and interfaces show it,
    or None. `routes`: the default routes of the targets' `families`. No default route counts
    only after one was seen (a monitor that watches its own LAN may never have one); every
    default route's interface without link counts at once."""
    if not routes:
        if not had_routes:
            return None
        return "this machine has no %sdefault route" % (
            "" if len(families) > 1 else "IPv%d " % families[0])
    interfaces = sorted({route.interface for route in routes})
    if all(interface in down_interfaces for interface in interfaces):
        return "%s %s no link" % (" and ".join(interfaces),
                                  "has" if len(interfaces) == 1 else "have")
    return None


def gateway_answered(result):
    """A connect accepted or refused: both are the router's own answer. A timeout or an
    unreachable error is not."""
    return result is not None and (result.up or result.reason == "refused")


class CauseJudge:
    """Where the way out broke, for a round in which no target answered (see CAUSES):
    `local` when this machine shows no link or route; `unknown` without a gateway, or with one
    that is no witness (see gateway_probed); `lan` when it did not answer in this round; `dns`
    when it did and every target failed only in its name lookup; else `provider`. Returns
    (cause, plain words for the console).

    While an interruption lasts (`ongoing`), one missed router probe is not enough to make it
    `lan`: a lost SYN or a busy router misses one now and then, and the closer cause would win
    for the whole interruption. It takes LAN_MISSES misses in a row; until then the round reads
    `unknown`, which never replaces a cause already known."""

    def __init__(self, no_router="no router known to check"):
        self.no_router = no_router   # why there is no gateway to tell by (see no_router_words)
        self.gateway = None          # the label of the gateway to judge by
        self.had_gateway = False     # has there been one since the start?
        self.unheard = "has not answered since the start"   # why it is no witness (None: it is)
        self.misses = 0              # probes it missed in a row
        self.silent_while_up = 0     # ... in rounds in which a target answered

    def gateway_probed(self, label, answered, targets_answered=False):
        """Every round, with the gateway to judge by (None: none), whether it answered (None:
        no outcome of it in this round, which tells nothing) and whether a target did. True when
        the gateway changed.

        A gateway is a witness once it has answered, and stays one until it fails in
        ROUTER_SILENT_ROUNDS rounds in a row in which a target answered: a router that drops
        connects to itself while it still forwards (a firewall change) would otherwise read as
        `lan` at the next outage of the line."""
        changed = label != self.gateway
        if changed:
            self.unheard = ("has not answered since it became the gateway" if self.had_gateway
                            else "has not answered since the start")
            self.gateway, self.misses, self.silent_while_up = label, 0, 0
            self.had_gateway = self.had_gateway or label is not None
        if answered:
            self.unheard, self.misses, self.silent_while_up = None, 0, 0
        elif answered is not None:
            self.misses += 1
            if targets_answered:
                self.silent_while_up += 1
                if self.silent_while_up >= ROUTER_SILENT_ROUNDS and self.unheard is None:
                    self.unheard = "stopped answering while the targets still did"
        return changed

    def judge(self, local, gateway_answered_now, target_reasons, ongoing=False):
        if local:
            return "local", local
        if self.gateway is None:
            return "unknown", self.no_router
        if self.unheard:
            return "unknown", "the router %s %s" % (self.gateway, self.unheard)
        if gateway_answered_now is None:
            return "unknown", "no outcome of the router %s in this round" % self.gateway
        if not gateway_answered_now and ongoing and self.misses < LAN_MISSES:
            return "unknown", "the router %s missed one probe" % self.gateway
        if not gateway_answered_now:
            return "lan", "the router %s did not answer either" % self.gateway
        if target_reasons and all(reason == "dns" for reason in target_reasons.values()):
            return "dns", "the router %s answered, no name resolved" % self.gateway
        return "provider", "the router %s answered" % self.gateway


def router_not_needed(gateway, targets):
    """True when the gateway is left unprobed because every target is a loopback address: they
    need no router (--gateway auto only; a gateway given is always probed)."""
    return gateway == "auto" and all(target.is_loopback for target in targets)


def beyond_router(target, router):
    """Whether `target` lies beyond `router` (both Targets): an address not on this machine
    and not on the router's own network, taken as its /24 (IPv4) or /64 (IPv6), as home networks
    are. A name is not known to be beyond: it may name a host at home (what it resolves to is
    not kept)."""
    mine, theirs = _ip_literal(target.host), _ip_literal(router.host)
    if mine is None or mine.is_loopback:
        return False
    if theirs is None or mine.version != theirs.version:
        return True
    prefix = 24 if mine.version == 4 else 64
    return ipaddress.ip_network("%s/%d" % (theirs, prefix), strict=False).network_address != \
        ipaddress.ip_network("%s/%d" % (mine, prefix), strict=False).network_address


def router_answers_for(target_times, router_times):
    """[(label, target's median, router's median)] in ms of the targets whose connects take
    about as long as the router's (see ROUTER_ECHO_ROUNDS): the router probably answers for
    them. `target_times`: {label: [seconds]}; `router_times`: [seconds]."""
    if not router_times:
        return []
    router = _median(router_times) * 1000
    limit = min(ROUTER_ECHO_CAP_MS, max(router + ROUTER_ECHO_MARGIN_MS, router * ROUTER_ECHO_RATIO))
    suspects = []
    for label, times in target_times.items():
        median = _median(times) * 1000
        if median <= limit:
            suspects.append((label, median, router))
    return suspects


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class RouterEcho:
    """Watches the first rounds for a router that answers for targets beyond it (see
    ROUTER_ECHO_ROUNDS): fed each round's results and the router's, it judges once, after
    `rounds` rounds in which the router and a target beyond it accepted, and is then done.
    Bounded: `rounds` times per target."""

    def __init__(self, rounds=ROUTER_ECHO_ROUNDS):
        self.rounds = rounds
        self.router = []             # the router's connect times (s)
        self.targets = {}            # label -> connect times (s)
        self.done = False

    def observe(self, results, router):
        """None until it judges; then, once, the suspects (router_answers_for; maybe [])."""
        if self.done or router is None or not router.up or router.connect_time is None:
            return None
        beyond = [result for result in results if result.up and result.connect_time is not None
                  and beyond_router(result.target, router.target)]
        if not beyond:
            return None
        self.router.append(router.connect_time)
        for result in beyond:
            self.targets.setdefault(result.target.label, []).append(result.connect_time)
        if len(self.router) < self.rounds:
            return None
        self.done = True
        return router_answers_for(self.targets, self.router)


def names_unresolved_warning(hosts, since_start=False):
    """The warning for names that do not resolve (the monitor: since its start; --once)."""
    shown = ", ".join(printable(host) for host in hosts[:NAMES_SHOWN])
    if len(hosts) > NAMES_SHOWN:
        shown += " and %d more" % (len(hosts) - NAMES_SHOWN)
    many = len(hosts) > 1
    names, they = ("names", "they are") if many else ("name", "it is")
    if not since_start:
        return ("the %s %s did not resolve: check how %s spelled, or that DNS works here"
                % (names, shown, they))
    return ("the %s %s %s not resolved since the start: check how %s spelled, or that DNS "
            "works here (%s probed every round all the same)"
            % (names, shown, "have" if many else "has", they, they))


def router_echo_warning(label, median, router_label, router_median):
    """The warning for a target that the router probably answers for (start and --once)."""
    return ("target %s connects about as fast as the router %s (median %s against %s): the "
            "router probably answers for it, as routers that redirect DNS to themselves do, and "
            "then an outage of the line goes unseen; watch a target the router does not "
            "intercept, e.g. on port 443" % (label, router_label, milliseconds(median),
                                             milliseconds(router_median)))


def no_router_words(gateway, targets):
    """Why no router tells where an interruption broke, in the same words as the start line
    and --once: not probed (--gateway none, or every target on this machine), or none known."""
    if gateway == "none":
        return "router not probed (--gateway none)"
    if router_not_needed(gateway, targets):
        return "router not probed: every target is on this machine"
    return "no router known to check"


def target_family(target):
    """"ipv4" or "ipv6" for a target given by address, None for one given by name."""
    if not target.is_literal:
        return None
    if ":" not in target.host:
        return "ipv4"
    # [::ffff:198.51.100.1] is an IPv4 address, and its connects take the IPv4 routes
    mapped = ipaddress.ip_address(target.host.partition("%")[0]).ipv4_mapped
    return "ipv6" if mapped is None else "ipv4"


class PartialOutages:
    """Failures while the connection stays up (some target answers): one target; every target
    of one IP family while the other family answers (with targets of both); every name failing
    to resolve while an address answers. Keys: ("target", label), ("family", "ipv4" or "ipv6"),
    ("dns", "names"); at most one open outage per key, so the dict is bounded by the targets.

    A round in which no target answers is an interruption and changes nothing here: what was
    partly down stays so until it answers. A target's own outage starts only when a family or
    DNS outage does not already tell its failure.
    """

    def __init__(self, targets, min_interruption):
        self.min_interruption = min_interruption
        self.family = {target.label: target_family(target) for target in targets}
        self.names = [target.label for target in targets if not target.is_literal]
        self.open = {}               # key -> OngoingOutage

    def observe(self, results, mono, wall):
        """The Transitions ("down" or "up") of the parts, each with its key."""
        if not self.open and all(result.up for result in results):
            return []                # the usual round: everything answers, nothing was down
        by_label = {result.target.label: result for result in results}
        if not any(result.up for result in results):
            return []
        changes = []
        for key in list(self.open):
            back = [result for result in self._members(key, by_label) if self._answers(key, result)]
            if back:
                outage = self.open.pop(key)
                seconds = min(result.connect_time or 0.0 for result in back)
                duration = max(0.0, mono + seconds - outage.start_mono)
                changes.append(Transition("up", outage, key, duration, not counts_as_interruption(
                    duration, self.min_interruption), back=seconds))
        for key, reason in self._failing(by_label):
            if key not in self.open:
                self.open[key] = OngoingOutage(None, (mono, wall), reason, {})   # from this round
                changes.append(Transition("down", self.open[key], key))
        return changes

    def labels(self, key):
        """The targets whose failure the outage of `key` tells."""
        kind, what = key
        if kind == "target":
            return [what]
        if kind == "family":
            return [label for label, family in self.family.items() if family == what]
        return self.names

    def _members(self, key, by_label):
        return [by_label[label] for label in self.labels(key) if label in by_label]

    @staticmethod
    def _answers(key, result):
        return result.reason != "dns" if key[0] == "dns" else result.up

    def _failing(self, by_label):
        """(key, reason) of what fails in this round, families and names before targets."""
        failing = []
        up_families = {self.family.get(label) for label, result in by_label.items() if result.up}
        for family, other in (("ipv4", "ipv6"), ("ipv6", "ipv4")):
            own = self._members(("family", family), by_label)
            if own and other in up_families and not any(result.up for result in own):
                failing.append((("family", family), own[0].reason))
        names = self._members(("dns", "names"), by_label)
        if names and up_families - {None} and all(r.reason == "dns" for r in names):
            failing.append((("dns", "names"), "dns"))
        told = {key for key, _ in failing} | set(self.open)
        for label, result in by_label.items():
            if not result.up and ("family", self.family[label]) not in told and not (
                    label in self.names and ("dns", "names") in told):
                failing.append((("target", label), result.reason))
        return failing

    def close_all(self):
        """At a stop: every open outage as (key, OngoingOutage); none stays open."""
        closed, self.open = list(self.open.items()), {}
        return closed


class ReportBackoff:
    """When may the next report go out? The 1.x rule (-bmin, -bstep, -bmax), plus retries.

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


# -- connect times: statistics windows, losses the kernel repaired, slow periods ---------------

_LOG_RATIO = math.log(CONNECT_TIME_RATIO)


class ConnectTimes:
    """Connect times in a log-spaced histogram: its size never depends on how many times it
    holds (at most 2084 buckets over CONNECT_TIME_RANGE). The minimum and maximum are exact; a
    percentile is the mean of the times in the bucket holding its sample: exact when they are
    all equal, and always within 1 % of that sample, since a bucket is 1 % wide."""

    __slots__ = ("buckets", "count", "minimum", "maximum")

    def __init__(self):
        self.buckets = {}           # bucket number n -> [count, sum of ms] of the times in
        self.count = 0              # [ratio**n, ratio**(n+1)) ms
        self.minimum = math.inf     # ms
        self.maximum = -math.inf    # ms

    def add_ms(self, ms, count):
        """`count` times a connect of `ms` (not seconds), without the minimum and maximum:
        --summary adds each stats window to its day's histograms, and reads neither."""
        low, high = CONNECT_TIME_RANGE
        number = math.floor(math.log(low if ms < low else high if ms > high else ms) / _LOG_RATIO)
        bucket = self.buckets.get(number)
        if bucket is None:
            self.buckets[number] = [count, ms * count]
        else:
            bucket[0] += count
            bucket[1] += ms * count
        self.count += count

    def merge(self, other):
        """Adds the times of another histogram (--summary: the days' make the period's). Its
        minimum and maximum are not read."""
        buckets = self.buckets
        for number, (count, total) in other.buckets.items():
            bucket = buckets.get(number)
            if bucket is None:
                buckets[number] = [count, total]
            else:
                bucket[0] += count
                bucket[1] += total
        self.count += other.count

    def add(self, seconds, count=1):
        """`count` times a connect of `seconds` (the summary weighs windows by their connects)."""
        ms = seconds * 1000.0
        if ms < self.minimum:
            self.minimum = ms
        if ms > self.maximum:
            self.maximum = ms
        self.add_ms(ms, count)

    def values(self):
        """(mean ms, count) for each bucket, fastest first."""
        for number in sorted(self.buckets):
            count, total = self.buckets[number]
            yield total / count, count

    def percentile(self, fraction):
        """The ms below which `fraction` of the times lie (nearest rank), or None when empty."""
        rank = max(1, math.ceil(fraction * self.count - 1e-9))
        buckets = self.buckets
        if rank > self.count:                # none, or a fraction over 1
            return None
        # the first bucket, fastest first, whose times and those below reach the rank: walked
        # from the nearer end (a 95th percentile from the slowest)
        if fraction <= 0.5:
            seen = 0
            for number in sorted(buckets):
                seen += buckets[number][0]
                if seen >= rank:
                    break
        else:
            above = 0                        # the times in the buckets above this one
            for number in sorted(buckets, reverse=True):
                count = buckets[number][0]
                if self.count - above - count < rank:
                    break
                above += count
        count, total = buckets[number]
        return total / count


def resent_syns(extra, schedule=RESENT_SYN_AFTER):
    """How many SYNs the kernel sent again for a connect that took `extra` seconds longer than
    the usual: Linux resends an unanswered SYN at the instants of `schedule` (seconds after the
    first; see syn_resend_schedule); each counts once the connect took that long, less
    RESENT_SYN_MARGIN."""
    count = 0
    for after in schedule:
        if extra < after - RESENT_SYN_MARGIN:
            break
        count += 1
    return count


def fitting_resent_syns(extra, schedule):
    """resent_syns(), but 0 unless `extra` lies within RESENT_SYN_FIT after a resend: a connect
    that took 1.5 s on a line of 20 ms waited in a queue (a SYN resent at 1 s would have been
    answered at 1.02 s), and tells nothing about loss."""
    count = resent_syns(extra, schedule)
    return count if count and extra <= schedule[count - 1] + RESENT_SYN_FIT else 0


def first_syn_time(seconds, usual, schedule):
    """What a connect that took `seconds` would have taken had its first SYN got through: its
    time less the wait for the SYNs the kernel sent again, when its time over `usual` fits the
    resend `schedule` (fitting_resent_syns, as SynCounter counts them lost); else `seconds`.
    Never below 0 (a connect just before a resend is counted as one: RESENT_SYN_MARGIN)."""
    resent = fitting_resent_syns(seconds - usual, schedule)
    return max(0.0, seconds - schedule[resent - 1]) if resent else seconds


def syn_resend_schedule(linear):
    """When Linux sends an unanswered SYN again, in seconds after the first: `linear` times a
    second apart (net.ipv4.tcp_syn_linear_timeouts, Linux 6.7 and newer: 1, 2, 3, 4 s), then
    with the wait doubled each time; `linear` None (older kernels): doubled from the start,
    RESENT_SYN_AFTER (1, 3, 7, 15 ... s)."""
    linear = linear or 0
    moments, wait, moment = [], 1.0, 0.0
    for number in range(linear + len(RESENT_SYN_AFTER)):
        moment += wait
        moments.append(moment)
        if number >= linear - 1:
            wait *= 2
    return tuple(moments)


def failed_connect_syns(timeout, schedule):
    """The SYNs a connect that timed out after `timeout` seconds sent, all lost: the first
    and each one sent again before the timeout."""
    return 1 + sum(1 for after in schedule if after < timeout - RESENT_SYN_MARGIN)


def _ms(value):
    return None if value is None or not math.isfinite(value) else round(value, 3)


class TargetWindow:
    __slots__ = ("probes", "failures", "times", "last", "jitter", "steps")

    def __init__(self):
        self.probes = 0
        self.failures = 0
        self.times = ConnectTimes()
        self.last = None            # s: the latest connect time (less resend waits), for jitter
        self.jitter = 0.0           # s: the sum of the differences between consecutive times
        self.steps = 0              # ... and how many differences that is


class StatisticsWindow:
    """Each target's probes, failures and connect times over windows of `length` seconds on
    the monotonic clock, and at each window's end its figures (see figures()).

    A round belongs to the window it began in; a round that started no connect (see
    ProbeResult.tried) is not counted. Losses: a connect that took at least 0.9 s longer than
    the usual (the lower of this window's minimum and the previous window's median) waited for
    a SYN sent again, and so on by the kernel's `schedule` (see resent_syns). Jitter: the mean
    difference between consecutive connect times of a target, each less its wait for resent
    SYNs when the round's `times` give them (first_syn_time): a lost SYN is loss, not jitter.
    """

    def __init__(self, length, schedule=RESENT_SYN_AFTER):
        self.length = length
        self.schedule = schedule
        self.start = None           # (monotonic, wall clock) of the window's start
        self.targets = {}           # label -> TargetWindow
        self.previous_median = {}   # label -> ms, of the window before

    def add(self, results, mono, wall, times=None):
        """Records a round begun at `mono`; `times`: its connect times less resend waits, in
        the order of `results` (None: their own). Returns (start, end, figures) of the window
        it ended (wall-clock instants), or None."""
        ended = None
        if self.start is None:
            self.start = (mono, wall)
        elif mono >= self.start[0] + self.length:
            start_mono, start_wall = self.start
            ended = self.close(start_mono + self.length)
            later = math.floor((mono - start_mono) / self.length) * self.length
            self.start = (start_mono + later, start_wall + later)
        targets = self.targets
        for number, result in enumerate(results):
            if not result.tried:
                continue
            label = result.target.label
            window = targets.get(label)
            if window is None:
                window = targets[label] = TargetWindow()
            window.probes += 1
            if result.up:
                seconds = result.connect_time or 0.0
                window.times.add(seconds)
                if times is not None:
                    seconds = times[number]
                if window.last is not None:
                    window.jitter += abs(seconds - window.last)
                    window.steps += 1
                window.last = seconds
            else:
                window.failures += 1
        return ended

    def close(self, mono):
        """Ends the window at `mono` (a stop ends it early). Returns (start, end, figures), or
        None when it holds no probe."""
        if self.start is None or not self.targets:
            return None
        start_mono, start_wall = self.start
        figures = {label: self._figures(label, window) for label, window in self.targets.items()}
        self.start, self.targets = (mono, start_wall + (mono - start_mono)), {}
        return start_wall, start_wall + (mono - start_mono), figures

    def _figures(self, label, window):
        times = window.times
        median = times.percentile(0.5)
        usual = min(times.minimum, self.previous_median.get(label, math.inf))
        losses = sum(resent_syns((ms - usual) / 1000.0, self.schedule) * count
                     for ms, count in times.values())
        if median is not None:
            self.previous_median[label] = median
        return {"probes": window.probes, "failures": window.failures, "losses": losses,
                "min_ms": _ms(times.minimum), "median_ms": _ms(median),
                "p95_ms": _ms(times.percentile(0.95)), "max_ms": _ms(times.maximum),
                "jitter_ms": _ms(window.jitter * 1000.0 / window.steps) if window.steps else None}


class TargetConnects:
    """One target's connects since the start."""

    __slots__ = ("probes", "failures", "seconds", "buckets")

    def __init__(self):
        self.probes = 0
        self.failures = 0
        self.seconds = 0.0          # the sum of the times of those that got through
        self.buckets = [0] * (len(CONNECT_BUCKETS) + 1)     # ... counted per bucket, +Inf last


# A target's row of the metrics snapshot: `cumulative` holds the count of each bucket and below.
ConnectRow = collections.namedtuple("ConnectRow", "label probes failures seconds cumulative")


class ConnectCounters:
    """Per target since the start: probes, failures, and the connect times of the metrics
    histogram (CONNECT_BUCKETS), as Prometheus counts them."""

    def __init__(self):
        self.targets = {}           # label -> TargetConnects

    def record(self, results):
        for result in results:
            if not result.tried:
                continue
            counts = self.targets.get(result.target.label)
            if counts is None:
                counts = self.targets[result.target.label] = TargetConnects()
            counts.probes += 1
            if result.up:
                seconds = result.connect_time or 0.0
                counts.seconds += seconds
                counts.buckets[bisect.bisect_left(CONNECT_BUCKETS, seconds)] += 1
            else:
                counts.failures += 1

    def snapshot(self):
        """A ConnectRow per target."""
        rows = []
        for label, counts in self.targets.items():
            cumulative, running = [], 0
            for count in counts.buckets:
                running += count
                cumulative.append(running)
            rows.append(ConnectRow(label, counts.probes, counts.failures,
                                   round(counts.seconds, 6), tuple(cumulative)))
        return tuple(rows)


class OngoingSlow:
    __slots__ = ("start_mono", "start_wall", "times")

    def __init__(self, start_mono, start_wall):
        self.start_mono = start_mono
        self.start_wall = start_wall
        self.times = ConnectTimes()     # the fastest connect of each of its rounds


class PeriodChange:
    """A slow or lossy period that began ("slow", "lossy") or ended ("slow_end", "lossy_end"), as
    SlowTracker and LossWindow hand them out. An end says when it ended (wall clock), how long it
    lasted, whether that is too short to count and whether an interruption ended it; a lossy
    period's end, its loss figures too."""

    __slots__ = ("kind", "period", "end", "duration", "ignored", "by_interruption",
                 "loss_percent", "sent", "lost", "targets")

    def __init__(self, kind, period, end=None, duration=None, ignored=None,
                 by_interruption=False, loss_percent=None, sent=None, lost=None, targets=None):
        self.kind = kind
        self.period = period        # the OngoingSlow or OngoingLossy
        self.end = end
        self.duration = duration
        self.ignored = ignored
        self.by_interruption = by_interruption
        self.loss_percent = loss_percent
        self.sent = sent
        self.lost = lost
        self.targets = targets      # label -> {"sent", "lost", "loss_percent"}


class SlowTracker:
    """Turns the fastest connect of each round into SLOW and SLOW ENDED transitions.

    The connection is slow from the first round whose fastest connect took `threshold_ms` or
    longer, to the moment the first connect of a round that is not slow got through. Rounds in
    which no target answered are left out: an interruption that counts ends the slow stretch
    where it began (RoundInterpreter), a blip is part of it. The interpreter hands in connect
    times less the waits for resent SYNs (first_syn_time): a lost SYN is loss, not slowness.
    """

    def __init__(self, threshold_ms, min_duration):
        self.threshold = threshold_ms / 1000.0
        self.min_duration = min_duration
        self.ongoing = None         # the OngoingSlow, while slow

    @property
    def is_slow(self):
        return self.ongoing is not None

    def observe(self, fastest, mono, wall, slow=None, first=None):
        """`fastest`: seconds, or None when no target answered; `slow`: whether the round is
        slow (SlowRule), None: when `fastest` reaches the threshold; `first`: seconds into the
        round when its first connect got through (None: `fastest`). Returns a PeriodChange
        ("slow" or "slow_end") or None."""
        if slow is None:
            slow = fastest is not None and fastest >= self.threshold
        if fastest is not None and slow:
            if self.ongoing is None:
                self.ongoing = OngoingSlow(mono, wall)
                self.ongoing.times.add(fastest)
                return PeriodChange("slow", self.ongoing)
            self.ongoing.times.add(fastest)
            return None
        if self.ongoing is None:
            return None
        if fastest is None:
            return self.end(mono, wall, by_interruption=True)
        through = fastest if first is None else first
        return self.end(mono + through, wall + through)

    def end(self, mono, wall, by_interruption=False):
        """Ends the slow stretch at `mono` (also at a stop): its PeriodChange "slow_end"."""
        slow, self.ongoing = self.ongoing, None
        duration = max(0.0, mono - slow.start_mono)
        return PeriodChange("slow_end", slow, wall, duration, not counts_as_interruption(
            duration, self.min_duration), by_interruption)

    def ongoing_duration(self, mono):
        return 0.0 if self.ongoing is None else max(0.0, mono - self.ongoing.start_mono)


class UsualTimes:
    """Each target's usual connect time: the median of its medians of the last USUAL_SLOTS slots
    of USUAL_SLOT seconds (3 hours). A median of medians moves little with a bad hour, and a
    lasting change becomes the usual after half the history. A slot's median comes from a
    ConnectTimes histogram, so the memory does not grow with the rounds; the slot medians are
    kept in the state file. A target has no usual until its first slot has ended. At most one
    round every `sample` seconds is taken: 60 connects make a minute's median as well as 1200."""

    def __init__(self, slot=USUAL_SLOT, slots=USUAL_SLOTS, sample=USUAL_SAMPLE):
        self.slot = slot
        self.slots = slots
        self.sample = sample
        self.next_sample = -math.inf    # monotonic: the next round taken, at the earliest
        self.slot_end = None        # monotonic end of the slot under way
        self.current = {}           # label -> ConnectTimes of the slot under way
        self.history = {}           # label -> [slot medians, ms], oldest first
        self.usual = {}             # label -> the usual connect time, s

    def add(self, results, mono):
        if mono < self.next_sample:
            return
        self.next_sample = mono + self.sample
        if self.slot_end is None:
            self.slot_end = mono + self.slot
        elif mono >= self.slot_end:
            self._close()
            self.slot_end += (math.floor((mono - self.slot_end) / self.slot) + 1) * self.slot
        current = self.current
        for result in results:
            if result.up and result.tried:
                times = current.get(result.target.label)
                if times is None:
                    times = current[result.target.label] = ConnectTimes()
                times.add(result.connect_time or 0.0)

    def _close(self):
        for label, times in self.current.items():
            kept = self.history.setdefault(label, [])
            kept.append(_ms(times.percentile(0.5)))
            del kept[:-self.slots]
            self._settle(label)
        self.current = {}

    def _settle(self, label):
        ordered = sorted(self.history[label])
        self.usual[label] = ordered[(len(ordered) - 1) // 2] / 1000.0   # the lower median

    def baseline(self, label):
        """s: what a connect of `label` takes when no SYN is lost: its usual, or before it has
        one, the fastest of its slot under way (0 when none answered yet)."""
        usual = self.usual.get(label)
        if usual is not None:
            return usual
        times = self.current.get(label)
        return times.minimum / 1000.0 if times is not None else 0.0

    def to_dict(self):
        return {label: list(kept) for label, kept in self.history.items()}

    def restore(self, history, labels):
        """Takes over the slot medians of a checked state for the targets still watched."""
        for label in labels:
            if history.get(label):
                self.history[label] = list(history[label][-self.slots:])
                self._settle(label)


class SlowRule:
    """Is a round slow? Absolutely (--slow MS): even the fastest target took `threshold_ms` or
    longer. Relatively (--slow Nx): every target that answered took at least `factor` times its
    usual connect time (UsualTimes) and SLOW_MARGIN_MS more, so that 1 ms -> 4 ms on a LAN is
    not slow; a target without a usual yet is not slow by it. Either makes the round slow.
    `times`: the connect times to judge, in the order of the results (None: their own)."""

    def __init__(self, threshold_ms, factor, usual, margin_ms=SLOW_MARGIN_MS):
        self.threshold = threshold_ms / 1000.0 if threshold_ms else math.inf
        self.factor = factor
        self.margin = margin_ms / 1000.0
        self.usual = usual          # label -> s (UsualTimes.usual)

    def judge(self, results, fastest, times=None):
        if fastest >= self.threshold:
            return True
        if not self.factor or fastest < self.margin:
            return False
        usual = self.usual
        for number, result in enumerate(results):
            if result.up:
                typical = usual.get(result.target.label)
                seconds = (result.connect_time or 0.0) if times is None else times[number]
                if typical is None or seconds < typical * self.factor \
                        or seconds < typical + self.margin:
                    return False
        return True


class SynCounter:
    """The SYNs each target's connect of a round sent and lost, as its outcome tells. An answer
    that came k resends later than the usual (fitting_resent_syns) sent k + 1 and lost k; a
    refusal sent one that arrived; a timeout sent failed_connect_syns() and lost them all, but
    counts only once the target answers again within LOSS_RUN_LIMIT rounds, and only when its
    silence was not an outage that counts (forget()): a target that stays silent is down (a
    partial outage, or an interruption), not lossy. Other failures (unreachable, no address)
    tell nothing about loss."""

    def __init__(self, timeout, schedule):
        self.schedule = schedule
        self.failed = failed_connect_syns(timeout, schedule)
        self.first = schedule[0] - RESENT_SYN_MARGIN
        self.runs = {}              # label -> its timeouts in a row, not counted yet

    def count(self, results, baseline):
        """(sent, lost, per target ((sent, lost), ...) in the order of `results`, or None when
        every target answered its first SYN)."""
        if not self.runs:
            first = self.first
            for result in results:      # the usual round: every connect faster than a resend
                if not result.up or (result.connect_time or 0.0) >= first:
                    break
            else:
                return len(results), 0, None
        sent = lost = 0
        pairs = []
        runs = self.runs
        for result in results:
            label = result.target.label
            if result.up:
                extra = (result.connect_time or 0.0) - baseline(label)
                resent = fitting_resent_syns(extra, self.schedule) if extra >= self.first else 0
                run = runs.pop(label, 0) if runs else 0
                if run < LOSS_RUN_LIMIT:
                    resent += run * self.failed
                pair = (resent + 1, resent)
            elif result.reason == "timeout":
                runs[label] = runs.get(label, 0) + 1
                pair = (0, 0)
            else:
                pair = (1, 0) if result.reason == "refused" else (0, 0)
            sent += pair[0]
            lost += pair[1]
            pairs.append(pair)
        return sent, lost, (None if lost == 0 and sent == len(pairs) else tuple(pairs))

    def forget(self, labels):
        """The timeouts in a row of `labels` were an outage that counts, not loss."""
        for label in labels:
            self.runs.pop(label, None)

    def clear(self):
        self.runs = {}


class OngoingLossy:
    """A lossy period while it lasts: its SYNs, in all and per target, and the same as of its
    latest round with a loss (`kept`), which ends it at the next round (`end`)."""

    __slots__ = ("start_mono", "start_wall", "sent", "lost", "targets", "kept", "end")

    def __init__(self, start_mono, start_wall, count):
        self.start_mono = start_mono
        self.start_wall = start_wall
        self.sent = self.lost = 0
        self.targets = [[0, 0] for _ in range(count)]
        self.kept = None
        self.end = None

    def take(self, mono, wall, sent, lost, counts):
        if self.end is None and self.kept is not None:
            self.end = (mono, wall)
        self.sent += sent
        self.lost += lost
        if counts is None:
            for figures in self.targets:
                figures[0] += 1
        else:
            for figures, (one_sent, one_lost) in zip(self.targets, counts):
                figures[0] += one_sent
                figures[1] += one_lost
        if lost:
            self.kept = (self.sent, self.lost, [list(figures) for figures in self.targets])
            self.end = None


def loss_percent(lost, sent):
    return round(100.0 * lost / sent, 1) if sent else None


class LossWindow:
    """SYNs sent and lost over the last `rounds` rounds in which the connection was up (see
    SynCounter), and the lossy periods they make.

    The connection turns lossy when the window holds at least LOSS_MIN_SENT SYNs, of which at
    least LOSS_MIN_LOST and `percent` % were lost, and stays lossy until the window's loss has
    stayed below LOSS_OFF_SHARE of `percent` for `rounds` rounds in a row (hysteresis: a line
    near the threshold does not flap; see docs/loss-and-latency.md).
    The period is dated by its losses: from the first round in the window with a loss when it
    turned lossy, to the round after its last round with a loss. An interruption that counts
    ends it where the interruption began, and starts the window afresh.
    """

    def __init__(self, labels, percent, min_duration, rounds=LOSS_WINDOW_ROUNDS):
        self.labels = list(labels)
        self.on = percent / 100.0
        self.off = self.on * LOSS_OFF_SHARE
        self.min_duration = min_duration
        self.length = rounds
        # (mono, wall, sent, lost, per target or None), oldest first
        self.rounds = collections.deque(maxlen=rounds)
        self.sent = self.lost = 0
        self.lossy = None           # OngoingLossy
        self.calm = 0               # rounds in a row, while lossy, below the `off` share
        self.full = rounds * len(self.labels)   # SYNs of a window of usual rounds
        # is the window full of rounds where every target answered its first SYN, and not
        # lossy? Another such round then changes nothing (RoundInterpreter skips it)
        self.settled = False

    @property
    def ratio(self):
        """The share of SYNs lost in the window, None when it holds none."""
        return self.lost / self.sent if self.sent else None

    def add(self, mono, wall, sent, lost, counts):
        """Records a round begun at `mono`. Returns ("lossy", OngoingLossy), ("lossy_end",
        figures of the period (see _ended)) or None."""
        rounds = self.rounds
        if len(rounds) == self.length:     # the oldest round leaves the window
            _, _, old_sent, old_lost, _ = rounds[0]
            self.sent -= old_sent
            self.lost -= old_lost
        rounds.append((mono, wall, sent, lost, counts))
        self.sent += sent
        self.lost += lost
        lossy = self.lossy
        self.settled = lossy is None and not self.lost and self.sent == self.full \
            and len(rounds) == self.length
        if lossy is None:
            if self.lost >= LOSS_MIN_LOST and self.sent >= LOSS_MIN_SENT \
                    and self.lost >= self.on * self.sent:
                self.calm = 0
                return PeriodChange("lossy", self._begin())
            return None
        lossy.take(mono, wall, sent, lost, counts)
        self.calm = self.calm + 1 if self.lost < self.off * self.sent or not self.sent else 0
        if self.calm >= self.length:
            end_mono, end_wall = lossy.end or (mono, wall)
            return self._ended(end_mono, end_wall, lossy.kept)
        return None

    def _begin(self):
        rounds = list(self.rounds)
        first = next(number for number, entry in enumerate(rounds) if entry[3])
        mono, wall = rounds[first][:2]
        lossy = self.lossy = OngoingLossy(mono, wall, len(self.labels))
        for entry in rounds[first:]:
            lossy.take(*entry)
        return lossy

    def _ended(self, mono, wall, kept):
        lossy, self.lossy = self.lossy, None
        sent, lost, targets = kept or (lossy.sent, lossy.lost, lossy.targets)
        duration = max(0.0, mono - lossy.start_mono)
        return PeriodChange("lossy_end", lossy, max(wall, lossy.start_wall), duration,
                            not counts_as_interruption(duration, self.min_duration),
                            loss_percent=loss_percent(lost, sent), sent=sent, lost=lost,
                            targets=self.target_figures(targets))

    def target_figures(self, targets):
        return {label: {"sent": sent, "lost": lost, "loss_percent": loss_percent(lost, sent)}
                for label, (sent, lost) in zip(self.labels, targets)}

    def interrupted(self, mono, wall):
        """An interruption that counts began at `mono`: the lossy period ends there (figures as
        _ended, or None when not lossy), and the window starts afresh."""
        self.rounds.clear()
        self.sent = self.lost = 0
        self.settled = False
        return self.end(mono, wall)

    def end(self, mono, wall):
        """Ends a lossy period at `mono` (an interruption, a stop): its figures, or None."""
        if self.lossy is None:
            return None
        mono, wall = max((mono, wall), (self.lossy.start_mono, self.lossy.start_wall))
        return self._ended(mono, wall, None)

    def ongoing_duration(self, mono):
        return 0.0 if self.lossy is None else max(0.0, mono - self.lossy.start_mono)


class PendingReports:
    """Interruptions (partial outages, slow periods) waiting for an accepted report, their ids,
    and when the next report may go out (one backoff for all). No I/O: the state file and the
    deliverer are someone else's job.

    Interruptions are in `items`, partial outages in `partials`, slow periods in `slow_items`,
    lossy periods in `lossy_items`.
    Each list is bounded: beyond PENDING_LIMIT entries the first and last half are kept in full
    and the ones between are folded into one counted, timed entry (kind "many"; for slow
    periods a "slow" entry with a count, its maximum and no median).
    """

    def __init__(self, backoff, limit=None):
        self.backoff = backoff
        self.limit = limit or PENDING_LIMIT
        self.items = []
        self.partials = []
        self.slow_items = []
        self.lossy_items = []
        self.next_id = 1
        self.shared_targets = {}    # the latest entries' lists of labels, which later entries
        #                             of the same share: 1000 labels in each of 4000 entries

    def _shared(self, item):
        key = tuple(item.targets)
        shared = self.shared_targets.get(key)
        if shared is not None:
            item.targets = shared
        else:
            if len(self.shared_targets) >= 8:
                self.shared_targets.clear()
            self.shared_targets[key] = item.targets
        return item

    def __len__(self):
        return len(self.items) + len(self.partials) + len(self.slow_items) + len(self.lossy_items)

    @property
    def count(self):
        """How many interruptions wait, the folded ones included."""
        return sum(item.count for item in self.items)

    @property
    def gap_count(self):
        """How many of `count` were gaps (the monitor not running), the folded ones included."""
        return sum(item.gap_part()[0] for item in self.items)

    @property
    def partial_count(self):
        """How many partial outages wait, the folded ones included."""
        return sum(item.count for item in self.partials)

    @property
    def slow_count(self):
        """How many slow periods wait, the folded ones included."""
        return sum(item.count for item in self.slow_items)

    @property
    def lossy_count(self):
        """How many lossy periods wait, the folded ones included."""
        return sum(item.count for item in self.lossy_items)

    def counts(self):
        """(interruptions, partial outages, slow periods, lossy periods, of the interruptions
        the gaps): what pending_text() and the console's lines tell."""
        return (self.count, self.partial_count, self.slow_count, self.lossy_count,
                self.gap_count)

    def add(self, start, end, duration, reason, targets, kind="outage", cut_short=False,
            cause=None, part=None, median_ms=None, max_ms=None, loss_percent=None, sent=None,
            lost=None):
        entries = (self.slow_items if kind == "slow" else self.lossy_items if kind == "lossy"
                   else self.items if part is None else self.partials)
        entries.append(self._shared(Interruption(
            self.next_id, start, end, duration, reason, kind, cut_short, targets, cause=cause,
            part=part, median_ms=median_ms, max_ms=max_ms, loss_percent=loss_percent, sent=sent,
            lost=lost)))
        self.next_id += 1
        if len(entries) > self.limit:
            self._fold(entries, self.limit // 2)

    @staticmethod
    def _fold(entries, at):
        """Folds the entry after `at` into the entry at `at` (which becomes a "many" entry)."""
        into, item = entries[at], entries.pop(at + 1)
        if into.kind == "slow" and into.count == 1:
            into = entries[at] = Interruption(into.id, into.start, into.end, into.duration, "",
                                              "slow", targets=into.targets, max_ms=into.max_ms)
        elif into.kind == "lossy" and into.count == 1:
            into = entries[at] = Interruption(into.id, into.start, into.end, into.duration, "",
                                              "lossy", targets=into.targets, sent=into.sent,
                                              lost=into.lost)
        elif into.kind not in ("many", "slow", "lossy"):
            gaps, gap_duration = into.gap_part()
            into = entries[at] = Interruption(
                into.id, into.start, into.end, into.duration, "", "many", targets=into.targets,
                count=into.count, cause=into.cause,
                part=None if into.part is None else "several", gaps=gaps,
                gap_duration=gap_duration)
        into.cause = into.cause if into.cause == item.cause else None    # told only if shared
        into.end = max(into.end, item.end)
        into.duration += item.duration
        into.count += item.count
        gaps, gap_duration = item.gap_part()     # a gap stays a gap, folded or not
        into.gaps += gaps
        into.gap_duration += gap_duration
        if item.targets != into.targets and len(into.targets) < MAX_TARGETS:
            known = set(into.targets)            # a new list: the old may be shared. Bounded:
            into.targets = (into.targets + [     # a state file refuses a list of over 10000
                label for label in item.targets if label not in known])[:MAX_TARGETS]
        if into.kind == "slow":
            into.max_ms = max(into.max_ms or 0.0, item.max_ms or 0.0)
        if into.kind == "lossy":
            into.sent, into.lost = (into.sent or 0) + (item.sent or 0), (into.lost or 0) + (
                item.lost or 0)
            into.loss_percent = loss_percent(into.lost, into.sent)

    def due(self, now, network_down):
        """The entries a report should carry now; [] when none is due."""
        if not len(self) or network_down:
            self.backoff.quiet(now)
            return []
        if not self.backoff.may_send(now):
            return []
        return self.items + self.slow_items + self.lossy_items + self.partials

    def accepted(self, ids, now):
        self.backoff.record_success(now)
        sent = set(ids)
        self.items = [item for item in self.items if item.id not in sent]
        self.partials = [item for item in self.partials if item.id not in sent]
        self.slow_items = [item for item in self.slow_items if item.id not in sent]
        self.lossy_items = [item for item in self.lossy_items if item.id not in sent]

    def failed(self, now):
        self.backoff.record_failure(now)

    def discard(self):
        """Forgets everything pending; returns how many interruptions that was."""
        count, self.items, self.partials, self.slow_items = self.count, [], [], []
        self.lossy_items = []
        return count

    def to_dict(self, mono, wall, targets=None):
        """The state file's part. An entry measured on `targets` (the run's, which the file
        keeps once) leaves its own out; one measured on other targets (an earlier run's) gives
        the index of its list in target_lists, which the entries of the same targets share: a
        thousand targets in each of thousands of entries would make a file too large to read
        back."""
        lists, numbers = [], {}        # id() of an entry's list (shared, see _shared) -> index

        def entry(item):
            data = item.to_dict()
            if targets is not None and (item.targets is targets or item.targets == targets):
                del data["targets"]
            else:
                number = numbers.get(id(item.targets))
                if number is None:
                    number = numbers[id(item.targets)] = len(lists)
                    lists.append(item.targets)
                data["targets"] = number
            return data
        data = {"pending": [entry(item) for item in self.items + self.partials],
                "slow_pending": [entry(item) for item in self.slow_items],
                "lossy_pending": [entry(item) for item in self.lossy_items],
                "next_id": self.next_id, "backoff": self.backoff.to_dict(mono, wall)}
        if lists:
            data["target_lists"] = lists
        return data

    def restore(self, state, mono, wall):
        """Takes over a checked state (see check_state)."""
        def read(entries):
            return [self._shared(Interruption.from_dict(item)) for item in entries]
        entries = read(state["pending"])
        self.items = [item for item in entries if item.part is None]
        self.partials = [item for item in entries if item.part is not None]
        self.slow_items = read(state["slow_pending"])
        self.lossy_items = read(state["lossy_pending"])
        self.next_id = max([state["next_id"]] + [
            item.id + 1 for item in entries + self.slow_items + self.lossy_items])
        for kept in (self.items, self.partials, self.slow_items, self.lossy_items):
            while len(kept) > self.limit:
                self._fold(kept, self.limit // 2)
        self.backoff.restore(state["backoff"], mono, wall)


def recover_previous_run(state, wall, min_interruption, boot=None):
    """What a run that did not stop cleanly leaves behind, from its last state and the time now
    (`wall`, and `boot`: SystemClock.boot() now).

    Returns (cut_short, gap, behind): the outage it was in at its last heartbeat, as keyword
    arguments for PendingReports.add() when it counts, else None; the time it was not running
    as (start, end, duration, ignored), or None; and when that time cannot be told yet, since
    the clock is behind the last heartbeat (a Raspberry Pi after a power cut boots on the time
    it saved before), the heartbeat, else None. In the same boot the time comes from the boot's
    clock, whatever the wall clock did meanwhile.
    """
    heartbeat = state.get("heartbeat")
    if state.get("clean_stop") or heartbeat is None:
        return None, None, None
    cut_short = None
    down = state.get("down")
    if down and counts_as_interruption(heartbeat - down["start"], min_interruption):
        cut_short = dict(start=down["start"], end=heartbeat,
                         duration=max(0.0, heartbeat - down["start"]), reason=down["reason"],
                         targets=state["targets"], cut_short=True, cause=down.get("cause"))
    saved = state.get("boot")
    if boot is not None and saved is not None and boot[0] == saved["id"] and \
            boot[1] >= saved["seconds"]:
        duration = boot[1] - saved["seconds"]
        return cut_short, gap_of(wall - duration, wall, min_interruption), None
    if wall <= heartbeat:
        return cut_short, None, heartbeat
    return cut_short, gap_of(heartbeat, wall, min_interruption), None


def gap_of(start, end, min_interruption):
    """(start, end, duration, ignored) of the time a run was not running, or None if none."""
    duration = end - start
    if duration <= 0:
        return None
    return start, end, duration, not counts_as_interruption(duration, min_interruption)


def recover_partial_outages(state, min_interruption):
    """The partial outages a run that did not stop cleanly was in at its last heartbeat, as
    keyword arguments for PendingReports.add(), those that count."""
    if state.get("clean_stop") or state.get("heartbeat") is None:
        return []
    return [dict(start=partial["start"], end=partial["start"] + partial["duration"],
                 duration=partial["duration"], reason=partial["reason"],
                 targets=state["targets"], kind="partial", part=partial["part"], cut_short=True)
            for partial in state.get("partials", [])
            if counts_as_interruption(partial["duration"], min_interruption)]


def recover_slow_period(state, min_interruption):
    """The slow period a run that did not stop cleanly was in at its last heartbeat, as keyword
    arguments for PendingReports.add() when it counts, else None."""
    return _recover_period(state, "slow", min_interruption, lambda slow: dict(
        median_ms=slow["median_ms"], max_ms=slow["max_ms"]))


def recover_lossy_period(state, min_interruption):
    """The lossy period a run that did not stop cleanly was in at its last heartbeat, as
    recover_slow_period() gives a slow one."""
    return _recover_period(state, "lossy", min_interruption, lambda lossy: dict(
        sent=lossy["sent"], lost=lossy["lost"],
        loss_percent=loss_percent(lossy["lost"], lossy["sent"])))


def _recover_period(state, kind, min_interruption, figures):
    """A slow or lossy period (`kind`, the state's key for it) cut short at the last heartbeat,
    or where an interruption that counted by then began, with `figures` of the state's record
    of it, when it counts; else None."""
    heartbeat, period = state.get("heartbeat"), state.get(kind)
    if state.get("clean_stop") or heartbeat is None or not period:
        return None
    down, end = state.get("down"), heartbeat
    interrupted = bool(down) and counts_as_interruption(heartbeat - down["start"],
                                                        min_interruption)
    if interrupted:
        end = max(period["start"], min(heartbeat, down["start"]))
    duration = max(0.0, end - period["start"])
    if not counts_as_interruption(duration, min_interruption):
        return None
    return dict(start=period["start"], end=end, duration=duration,
                reason="an interruption followed" if interrupted else "",
                targets=state["targets"], kind=kind, cut_short=not interrupted, **figures(period))


class MetricsCounters:
    """The counters behind /metrics (they never go down), and the snapshot of a round."""

    def __init__(self):
        self.interruptions = 0           # counted ones that ended
        self.ignored = 0
        self.downtime = 0.0
        self.reports_sent = 0
        self.report_failures = 0
        self.by_cause = {cause: [0, 0.0] for cause in CAUSES}    # cause -> [count, downtime]
        self.slow_seconds = 0.0          # in slow periods that ended and counted
        self.lossy_seconds = 0.0         # in lossy periods that ended and counted
        self.rounds_not_started = 0      # rounds that started no connect (in-flight limit)
        self.connect = ConnectCounters()

    def interruption_ended(self, duration, ignored, cause=None):
        if ignored:
            self.ignored += 1
        else:
            self.interruptions += 1
            self.downtime += duration
            counted = self.by_cause[cause or "unknown"]
            counted[0] += 1
            counted[1] += duration

    def slow_ended(self, duration, ignored):
        if not ignored:
            self.slow_seconds += duration

    def lossy_ended(self, duration, ignored):
        if not ignored:
            self.lossy_seconds += duration

    def snapshot(self, results, ongoing, min_interruption, unreported, last_round, gateway=None,
                 slow=None, ongoing_slow=0.0, lossy=None, ongoing_lossy=0.0, loss_ratio=None,
                 jitter=()):
        """`ongoing`: how long the current outage had lasted at the last round (0 while up);
        `gateway`: the gateway's ProbeResult in the last round, or None; `slow`: whether the
        connection is slow (None: not watched), and `ongoing_slow` since when (0: not slow);
        `lossy`, `ongoing_lossy` the same for lossy periods, `loss_ratio` the loss window's;
        `jitter`: ((label, seconds), ...) of the latest statistics window."""
        interruptions, downtime = self.interruptions, self.downtime
        if ongoing and counts_as_interruption(ongoing, min_interruption):
            interruptions += 1           # it can no longer end up ignored
            downtime += ongoing
        slow_seconds = self.slow_seconds
        if ongoing_slow and counts_as_interruption(ongoing_slow, min_interruption):
            slow_seconds += ongoing_slow
        lossy_seconds = self.lossy_seconds
        if ongoing_lossy and counts_as_interruption(ongoing_lossy, min_interruption):
            lossy_seconds += ongoing_lossy
        return MetricsSnapshot(
            network_up=any(result.up for result in results) if results else None,
            targets=tuple((result.target.label, result.up,
                           None if result.connect_time is None else round(result.connect_time, 6))
                          for result in results),
            interruptions=interruptions, ignored_interruptions=self.ignored,
            downtime_seconds=round(downtime, 3), unreported_interruptions=unreported,
            reports_sent=self.reports_sent, report_failures=self.report_failures,
            last_round=None if last_round is None else round(last_round, 3),
            gateway=None if gateway is None else (gateway.target.label,
                                                  gateway_answered(gateway)),
            causes=tuple((cause, count, round(downtime, 3))
                         for cause, (count, downtime) in self.by_cause.items()),
            connect=self.connect.snapshot(), slow=slow,
            slow_seconds=None if slow is None else round(slow_seconds, 3), lossy=lossy,
            lossy_seconds=None if lossy is None else round(lossy_seconds, 3),
            loss_ratio=None if loss_ratio is None else round(loss_ratio, 6), jitter=jitter,
            rounds_not_started=self.rounds_not_started)


# ---------------------------------------------------------------------------------------------
# Formatting for people
# ---------------------------------------------------------------------------------------------


# The time module, not datetime, formats the monitor's times: datetime is left to --summary,
# which is rarely run (fewer modules loaded keep a small machine's memory low).
def local_time(wall):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))


def iso_time(wall):
    """ISO 8601 local time with its UTC offset, to the millisecond (as datetime's isoformat()
    writes it): 2026-11-24T01:02:03.456+01:00."""
    whole = math.floor(wall)
    micro = round((wall - whole) * 1e6)
    if micro >= 1000000:
        whole, micro = whole + 1, 0
    local = time.localtime(whole)
    hours, rest = divmod(abs(local.tm_gmtoff), 3600)
    minutes, seconds = divmod(rest, 60)
    return "%s.%03d%s%02d:%02d%s" % (time.strftime("%Y-%m-%dT%H:%M:%S", local), micro // 1000,
                                     "-" if local.tm_gmtoff < 0 else "+", hours, minutes,
                                     ":%02d" % seconds if seconds else "")


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


def pending_text(count, partial=0, slow=0, lossy=0, gaps=0):
    """'2 interruptions', '2 interruptions and 1 partial outage', '1 partial outage',
    '1 interruption, 1 gap, 1 slow period and 2 partial outages': `count` interruptions, of
    which `gaps` were gaps (the monitor not running)."""
    interruptions = count - gaps
    parts = ([plural(interruptions, "interruption")]
             if interruptions or not (gaps or partial or slow or lossy) else [])
    parts += ([plural(gaps, "gap")] if gaps else [])
    parts += ([plural(slow, "slow period")] if slow else [])
    parts += ([plural(lossy, "lossy period")] if lossy else [])
    parts += ([plural(partial, "partial outage")] if partial else [])
    return " and ".join([", ".join(parts[:-1])] + parts[-1:]) if len(parts) > 1 else parts[0]


# What each cause means, in the console's few words and in a report's one line per cause.
CAUSE_WORDS = {
    "local": "this machine had no link or no route",
    "lan": "the router did not answer either",
    "provider": "the router answered, so the line or the provider failed",
    "dns": "the router answered, only names did not resolve",
    "unknown": "no router probed that answered, so no telling where",
}
CAUSE_EXPLAINED = {
    "local": "local: this machine itself had no working link or no route out: its network "
             "interface was down (cable, Wi-Fi) or it had no default route.",
    "lan": "lan: your router did not answer either: the router, the Wi-Fi or a cable of your "
           "home network failed.",
    "provider": "provider: your router answered throughout; the line, the modem or the "
                "provider's network failed.",
    "dns": "dns: your router answered and only the targets' names could not be looked up: the "
           "DNS server failed (addresses may have worked).",
    "unknown": "unknown: where it broke cannot be told: no router was probed (every target is "
               "on this machine, --gateway none, or none in the routing table), or it had not "
               "answered a probe since the monitor started or since it became the router, or "
               "it had stopped answering while the targets still did (see --gateway).",
}


# What the reason words mean, for a reader who is no network person (the mail report and the
# HTML report's explanation). Each line starts with "- ": a cause's line starts with its word.
REASON_EXPLAINED = {
    "timeout": "timeout: no answer at all within the timeout (-t): the packets were lost on the "
               "way, or the far end was switched off or gone.",
    "refused": "refused: the target's machine answered at once that nothing takes connections "
               "on that port: the way there worked, but the service was stopped (or a router "
               "answered for a target it could not reach).",
    "unreachable": "unreachable: this machine or a router on the way said at once that there is "
                   "no way to the target: a cable or Wi-Fi down, no route, or the line down "
                   "behind the router.",
    "dns": "dns: the target's name could not be looked up: the DNS server did not answer or "
           "did not know the name.",
}


def reasons_explained(reasons):
    """The explanation lines ("- word: ...") of the known reason words among `reasons`."""
    return ["- " + REASON_EXPLAINED[word] for word in REASON_EXPLAINED if word in reasons]


def time_zones(moments):
    """The time zones of local times at `moments`, e.g. "CET, UTC+01:00" (two across a change)."""
    zones = []
    for moment in moments:
        local = time.localtime(moment)
        name, offset = time.strftime("%Z", local), time.strftime("%z", local)
        zone = printable("UTC" if name == "UTC" and offset == "+0000" else
                         "%s, UTC%s:%s" % (name, offset[:3], offset[3:]))
        if zone not in zones:
            zones.append(zone)
    return " and ".join(zones)


def describe_interruption(item, with_targets=False):
    reason = item.reason
    what = "partial outage" if item.part is not None else "interruption"
    if item.kind == "gap":
        reason = "gap: the monitor was not running (no clean stop)"
    elif item.kind == "many":
        told = [plural(item.count - item.gaps, what)] if item.count > item.gaps else []
        told += ["%s (the monitor not running)" % plural(item.gaps, "gap")] if item.gaps else []
        reason = ("%s between these times, added up here (the event log has each)"
                  % " and ".join(told))
    elif item.part is not None:
        reason = "%s (%s)" % (item.part, reason)
    if item.cut_short:
        reason += " (the monitor stopped while %s)" % (
            "it still failed" if item.part is not None else "still down")
    if with_targets and item.targets:
        reason += "; targets " + ", ".join(item.targets)
    if item.part is not None:
        return "%s  %s  %12s  %s" % (local_time(item.start), local_time(item.end),
                                      human_duration(item.duration), reason)
    return "%s  %s  %12s  %-8s  %s" % (local_time(item.start), local_time(item.end),
                                        human_duration(item.duration), item.cause or "-", reason)


def partial_what(key):
    """What failed in a partial outage (PartialOutages' key), as a report and the console say it."""
    kind, what = key
    if kind == "target":
        return "target " + what
    if kind == "family":
        return "every %s target" % {"ipv4": "IPv4", "ipv6": "IPv6"}[what]
    return "every target given by name"


def gateway_setting(gateway):
    """--gateway as the start event records it: "auto", "none" or the address."""
    return gateway if isinstance(gateway, str) else gateway.label


def _targets_of(interruptions):
    """Every target the interruptions were measured on, in order of appearance."""
    labels = {}
    for item in interruptions:
        labels.update(dict.fromkeys(item.targets))
    return list(labels)


def milliseconds(value):
    """1520 ms, 45.3 ms, 0.25 ms; "-" for None."""
    if value is None:
        return "-"
    return "%.*f ms" % (0 if value >= 100 else 1 if value >= 10 else 2, value)


def describe_slow_period(item, with_targets=False):
    note = item.reason
    if item.count > 1:
        note = ("%s between these times, added up here (the event log has each)"
                % plural(item.count, "slow period"))
    elif item.cut_short:
        note = "the monitor stopped while still slow"
    if with_targets and item.targets:
        note += ("; " if note else "") + "targets " + ", ".join(item.targets)
    return ("%s  %s  %12s  %9s  %9s  %s" % (
        local_time(item.start), local_time(item.end), human_duration(item.duration),
        milliseconds(item.median_ms), milliseconds(item.max_ms), note)).rstrip()


def describe_lossy_period(item, with_targets=False):
    note = item.reason
    if item.count > 1:
        note = ("%s between these times, added up here (the event log has each)"
                % plural(item.count, "lossy period"))
    elif item.cut_short:
        note = "the monitor stopped while still lossy"
    if with_targets and item.targets:
        note += ("; " if note else "") + "targets " + ", ".join(item.targets)
    lost = "-" if item.loss_percent is None else "%.1f %%" % item.loss_percent
    return ("%s  %s  %12s  %6s  %9s  %s" % (
        local_time(item.start), local_time(item.end), human_duration(item.duration), lost,
        "%s/%s" % (item.lost, item.sent) if item.sent is not None else "-", note)).rstrip()


def slow_words(slow_ms, slow_times=0.0):
    """What --slow means, as a report says it."""
    said = ["%s or longer" % milliseconds(slow_ms)] if slow_ms else []
    if slow_times:
        said.append("%g times its usual time and %s more or longer"
                    % (slow_times, milliseconds(SLOW_MARGIN_MS)))
    return ", or ".join(said) or "--slow or longer"


def _table(entries, with_targets, noun, describe=describe_interruption):
    """A report's rows for `entries`: beyond REPORT_LIST_LIMIT the first and last half."""
    shown = entries
    if len(entries) > REPORT_LIST_LIMIT:
        half = REPORT_LIST_LIMIT // 2
        left_out = sum(item.count for item in entries[half:-half])
        shown = entries[:half] + [None] + entries[-half:]
    return ["... %s left out here; the event log has all of them ..." % plural(left_out, noun)
            if item is None else describe(item, with_targets) for item in shown]


def format_report(entries, hostname, slow_ms=None, slow_times=0.0):
    """Subject and body of one report about `entries`: interruptions (all of them count in the
    totals), then slow periods, lossy periods and partial outages, each in their own section.
    `slow_ms` and `slow_times` are the thresholds the slow periods were seen with."""
    interruptions = [item for item in entries
                     if item.part is None and item.kind not in ("slow", "lossy")]
    slow = [item for item in entries if item.kind == "slow"]
    lossy = [item for item in entries if item.kind == "lossy"]
    lossy_count = sum(item.count for item in lossy)
    lossiness = "%s, %s lossy" % (plural(lossy_count, "lossy period"),
                                  human_duration(sum(item.duration for item in lossy)))
    partials = [item for item in entries if item.part is not None]
    # a gap (the monitor was not running: a crash, a power cut) is listed with the
    # interruptions but counted apart: nothing shows the connection was down then
    gap_parts = [item.gap_part() for item in interruptions]
    gaps = sum(count for count, _ in gap_parts)
    gap_total = sum(seconds for _, seconds in gap_parts)
    gap_words = "%s (%s) when the monitor was not running" % (plural(gaps, "gap"),
                                                              human_duration(gap_total))
    count = sum(item.count - item.gaps for item in interruptions if item.kind != "gap")
    partial_count = sum(item.count for item in partials)
    slow_count = sum(item.count for item in slow)
    total = sum(item.duration - item.gap_duration for item in interruptions
                if item.kind != "gap")
    slowness = "%s, %s slow" % (plural(slow_count, "slow period"),
                                human_duration(sum(item.duration for item in slow)))
    targets = _targets_of(entries)
    changed = len({tuple(item.targets) for item in entries}) > 1
    if not count and not gaps and not slow and not lossy:
        subject = "pyNetConnMon on %s: %s, the connection stayed up" % (
            hostname, plural(partial_count, "partial outage"))
        lines = ["pyNetConnMon on %s saw %s and no interruption: the connection stayed up."
                 % (hostname, plural(partial_count, "partial outage"))]
    else:
        told = ([] if not count else
                ["%s, %s of downtime" % (plural(count, "interruption"), human_duration(total))])
        told += [gap_words] if gaps else []
        told += [slowness] if slow else []
        told += [lossiness] if lossy else []
        told += [plural(partial_count, "partial outage")] if partials else []
        subject = "pyNetConnMon on %s: %s" % (hostname, "; ".join(told))
        saw = [] if not count else ["%s (%s of downtime in total)" % (
            plural(count, "interruption"), human_duration(total))]
        saw += [gap_words] if gaps else []
        saw += ["%s (%s in total)" % (plural(slow_count, "slow period"), human_duration(
            sum(item.duration for item in slow)))] if slow else []
        saw += ["%s (%s in total)" % (plural(lossy_count, "lossy period"), human_duration(
            sum(item.duration for item in lossy)))] if lossy else []
        saw += [plural(partial_count, "partial outage")] if partials else []
        lines = ["pyNetConnMon on %s saw %s." % (
            hostname, " and ".join([", ".join(saw[:-1])] + saw[-1:] if len(saw) > 1 else saw))]
    lines += [
        "",
        "Host:    %s" % hostname,
        "Targets: %s%s" % (", ".join(targets) or "not recorded",
                           " (they changed between runs: each line names its own)"
                           if changed else ""),
        "Times:   local time of %s (%s)" % (hostname, time_zones(
            [moment for item in entries for moment in (item.start, item.end)])),
    ]
    if interruptions:
        lines += ["", "%-19s  %-19s  %12s  %-8s  %s" % ("start", "end", "duration", "cause",
                                                        "reason")]
        lines += _table(interruptions, changed, "interruption")
        causes = {item.cause for item in interruptions}
        explained = [CAUSE_EXPLAINED[cause] for cause in CAUSES if cause in causes]
        if explained:
            lines += [""] + explained
        lines += ["", "Total: %s, %s of downtime." % (plural(count, "interruption"),
                                                       human_duration(total))
                  if count else "Total: no interruption while the monitor ran."]
        if gaps:
            lines.append("Besides, %s (%s) %s the monitor itself was not running, e.g. a "
                         "crash or a power cut: the connection may or may not have been up then."
                         % (plural(gaps, "gap"), human_duration(gap_total),
                            "was a time" if gaps == 1 else "were times"))
    if slow:
        lines += ["", "Slow periods: the connection was up, but even the fastest target took %s "
                  "to connect, in every round; median and max of those connects:"
                  % slow_words(slow_ms, slow_times),
                  "%-19s  %-19s  %12s  %9s  %9s" % ("start", "end", "duration", "median", "max")]
        lines += _table(slow, changed, "slow period", describe_slow_period)
        lines += ["", "Total: %s." % slowness]
    if lossy:
        lines += ["", "Lossy periods: the connection was up, but lost connect attempts (SYNs): "
                      "their share, and lost of sent:",
                  "%-19s  %-19s  %12s  %6s  %9s" % ("start", "end", "duration", "lost", "of sent")]
        lines += _table(lossy, changed, "lossy period", describe_lossy_period)
        lines += ["", "Total: %s." % lossiness]
    if partials:
        lines += ["", "Partial outages: the connection stayed up (another target answered), "
                      "but these failed:",
                  "%-19s  %-19s  %12s  %s" % ("start", "end", "duration", "what failed")]
        lines += _table(partials, changed, "partial outage")
        lines += ["", "Total: %s, %s in all." % (plural(partial_count, "partial outage"),
                                                 human_duration(sum(p.duration for p in partials)))]
    explained = reasons_explained({item.reason for item in interruptions + partials})
    if explained:
        lines += ["", "What the reasons mean:"] + explained
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
                 "report_failures", "last_round", "gateway", "causes", "connect", "slow",
                 "slow_seconds", "lossy", "lossy_seconds", "loss_ratio", "jitter",
                 "rounds_not_started")

    def __init__(self, network_up=None, targets=(), interruptions=0, ignored_interruptions=0,
                 downtime_seconds=0.0, unreported_interruptions=0, reports_sent=0,
                 report_failures=0, last_round=None, gateway=None,
                 causes=tuple((cause, 0, 0.0) for cause in CAUSES), connect=None, slow=None,
                 slow_seconds=None, lossy=None, lossy_seconds=None, loss_ratio=None, jitter=(),
                 rounds_not_started=0):
        self.network_up = network_up                # None before the first round
        self.targets = targets                      # ((label, up, connect seconds or None), ...)
        self.interruptions = interruptions          # counted ones, an ongoing one included
        self.ignored_interruptions = ignored_interruptions    # blips, counted at their end
        self.downtime_seconds = downtime_seconds    # of the counted ones, an ongoing one included
        self.unreported_interruptions = unreported_interruptions
        self.reports_sent = reports_sent
        self.report_failures = report_failures
        self.last_round = last_round                # Unix time; None before the first round
        self.gateway = gateway                      # (label, answered) in the last round or None
        self.causes = causes                        # ((cause, interruptions, downtime), ...)
        self.connect = connect      # ConnectCounters.snapshot(); None: connect times not counted
        self.slow = slow                            # None: slow periods not watched
        self.slow_seconds = slow_seconds            # in counted slow periods, an ongoing one too
        self.lossy = lossy                          # None: lossy periods not watched
        self.lossy_seconds = lossy_seconds          # in counted lossy periods, an ongoing one too
        self.loss_ratio = loss_ratio                # of the loss window; None: no SYN in it
        self.jitter = jitter                        # ((label, seconds), ...): latest stats window
        self.rounds_not_started = rounds_not_started


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


def _one(value):
    """The sample of a metric without labels; none while its value is None."""
    return [((), value)] if value is not None else []


def _per_target(pairs):
    return [((("target", label),), value) for label, value in pairs]


def _connect_histogram(connect):
    """The samples of connect_duration_seconds: (suffix, labels, value) per bucket, sum, count."""
    samples = []
    for row in connect:
        target = ("target", row.label)
        for bound, count in zip(CONNECT_BUCKETS + (math.inf,), row.cumulative):
            samples.append(("_bucket", (target, ("le", _metric_value(bound))), count))
        samples.append(("_sum", (target,), row.seconds))
        samples.append(("_count", (target,), row.cumulative[-1]))
    return samples


class Metric:
    """One metric of /metrics: its name (after "pynetconnmon_"), type, help, and where its value
    comes from: samples(snapshot) gives [(labels, value)] or, for a histogram, [(suffix, labels,
    value)]; None leaves the metric out (what it counts is not watched)."""

    __slots__ = ("name", "kind", "help", "samples")

    def __init__(self, name, kind, help_text, samples):
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples = samples


# The one list of metrics: /metrics is rendered from it, and the docs' list is checked against it.
METRICS = (
    Metric("build_info", "gauge", "Always 1; the version label says which pyNetConnMon runs.",
           lambda s: [((("version", VERSION),), 1)]),
    Metric("network_up", "gauge", "1 if at least one target answered in the last round, else 0.",
           lambda s: _one(s.network_up)),
    Metric("target_up", "gauge", "1 if the target answered in the last round, else 0.",
           lambda s: _per_target((label, up) for label, up, _ in s.targets)),
    Metric("target_connect_seconds", "gauge",
           "Time the target's TCP connect took in the last round; absent while the target is down.",
           lambda s: _per_target((label, seconds) for label, up, seconds in s.targets
                                 if up and seconds is not None)),
    Metric("interruptions_total", "counter",
           "Interruptions of at least --min-interruption; an ongoing one counts once it is that "
           "long.",
           lambda s: _one(s.interruptions)),
    Metric("ignored_interruptions_total", "counter",
           "Interruptions shorter than --min-interruption (blips), counted when they end.",
           lambda s: _one(s.ignored_interruptions)),
    Metric("downtime_seconds_total", "counter",
           "Seconds of downtime in counted interruptions, an ongoing one included.",
           lambda s: _one(s.downtime_seconds)),
    Metric("unreported_interruptions", "gauge",
           "Interruptions waiting for a report to be accepted (always 0 with --no-mail).",
           lambda s: _one(s.unreported_interruptions)),
    Metric("reports_sent_total", "counter",
           "Reports accepted by the mail server or notify command.",
           lambda s: _one(s.reports_sent)),
    Metric("report_failures_total", "counter", "Report deliveries that failed (each is retried).",
           lambda s: _one(s.report_failures)),
    Metric("last_round_timestamp_seconds", "gauge",
           "Unix time the last round of probes completed: the monitor's heartbeat.",
           lambda s: _one(s.last_round)),
    Metric("gateway_up", "gauge",
           "1 if the gateway (router) answered in the last round, by accepting or refusing the "
           "connect, else 0; absent without a gateway.",
           lambda s: [((("gateway", s.gateway[0]),), s.gateway[1])] if s.gateway else []),
    Metric("interruptions_by_cause_total", "counter",
           "Interruptions of at least --min-interruption by cause (local, lan, provider, dns, "
           "unknown), counted when they end, with their final cause.",
           lambda s: [((("cause", cause),), count) for cause, count, _ in s.causes]),
    Metric("downtime_by_cause_seconds_total", "counter",
           "Seconds of downtime in counted interruptions by cause, counted when they end.",
           lambda s: [((("cause", cause),), float(downtime)) for cause, _, downtime in s.causes]),
    Metric("connect_duration_seconds", "histogram",
           "Time the TCP connects that got through took, per target.",
           lambda s: None if s.connect is None else _connect_histogram(s.connect)),
    Metric("probes_total", "counter", "TCP connects tried, per target.",
           lambda s: None if s.connect is None else _per_target(
               (row.label, row.probes) for row in s.connect)),
    Metric("probe_failures_total", "counter", "TCP connects that failed, per target.",
           lambda s: None if s.connect is None else _per_target(
               (row.label, row.failures) for row in s.connect)),
    Metric("rounds_not_started_total", "counter", "Rounds while down that started no connect, "
           "as too many were still waiting: they count for no probe.",
           lambda s: None if s.connect is None else _one(s.rounds_not_started)),
    Metric("slow", "gauge", "1 while the connection is slow: even the fastest target took "
           "--slow or longer to connect, in every round since the last faster one.",
           lambda s: None if s.slow is None else _one(s.slow)),
    Metric("slow_seconds_total", "counter", "Seconds in slow periods of at least "
           "--min-interruption, an ongoing one included.",
           lambda s: None if s.slow is None else _one(s.slow_seconds)),
    Metric("loss_ratio", "gauge", "Share of the connect attempts (SYNs) lost while up, over the "
           "last %d rounds; absent while they hold none." % LOSS_WINDOW_ROUNDS,
           lambda s: None if s.lossy is None else _one(s.loss_ratio)),
    Metric("lossy", "gauge", "1 while the connection is lossy: at least --loss %% of its SYNs lost "
           "over the last %d rounds, until under half that for as many." % LOSS_WINDOW_ROUNDS,
           lambda s: None if s.lossy is None else _one(s.lossy)),
    Metric("lossy_seconds_total", "counter", "Seconds in lossy periods of at least "
           "--min-interruption, an ongoing one included.",
           lambda s: None if s.lossy is None else _one(s.lossy_seconds)),
    Metric("target_jitter_seconds", "gauge", "Mean difference between consecutive connect times "
           "of the target in the latest --stats-interval window.",
           lambda s: _per_target(s.jitter) if s.jitter else None),
)


def render_metrics(snapshot):
    """The text a Prometheus scrape of /metrics gets for `snapshot`."""
    lines = []
    for metric in METRICS:
        samples = metric.samples(snapshot)
        if samples is None:
            continue
        name = "pynetconnmon_" + metric.name
        lines.append("# HELP %s %s" % (name, metric.help))
        lines.append("# TYPE %s %s" % (name, metric.kind))
        for sample in samples:
            suffix, labels, value = sample if len(sample) == 3 else ("",) + tuple(sample)
            label_text = ",".join('%s="%s"' % (key, _label_value(text)) for key, text in labels)
            lines.append("%s%s%s %s" % (name, suffix, "{%s}" % label_text if labels else "",
                                        _metric_value(value)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Targets: parsing and validation
# ---------------------------------------------------------------------------------------------

_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)", re.ASCII)     # fullmatch
_SCOPE = re.compile(r"[A-Za-z0-9_.@+-]{1,15}", re.ASCII)    # an interface name or number


class Target:
    """A host (a name or an address) and a port. What a round needs of it is worked out once
    here: a round at -i 0.05 must stay cheap."""

    __slots__ = ("host", "port", "is_literal", "is_loopback", "addresses", "label")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        address = _ip_literal(host)
        self.is_literal = address is not None
        self.is_loopback = address is not None and address.is_loopback
        # [(family, sockaddr)] of an address; None for a name, or for an address with an IPv6
        # scope (fe80::1%eth0): its interface is looked up each round, it may come and go
        self.addresses = None if address is None or "%" in host else [
            (socket.AF_INET6 if address.version == 6 else socket.AF_INET, (host, port))]
        self.label = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


class Gateway(Target):
    """The router, probed with the targets. `found`: from the routing table (probed only while
    the targets lie beyond this machine), not given with --gateway (always probed)."""

    __slots__ = ("found",)

    def __init__(self, host, port, found=False):
        super().__init__(host, port)
        self.found = found


def _ip_literal(host):
    """The address of an IP literal (an IPv6 one may name its scope: fe80::1%eth0), else None."""
    address, percent, scope = host.partition("%")
    if percent and not (_SCOPE.fullmatch(scope) and scope not in (".", "..")):
        return None
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return None
    return found if not percent or found.version == 6 else None


def parse_port(text, option="-p/--port"):
    # ASCII digits only: int() would also take " 53", "+53", "5_3" and other scripts' digits
    if isinstance(text, int) and not isinstance(text, bool):
        port = text
    elif isinstance(text, str) and re.fullmatch(r"[0-9]{1,5}", text, re.ASCII):
        port = int(text)
    else:
        raise UsageError("%s: %r is not a port number (1-65535)" % (option, text))
    if not 1 <= port <= 65535:
        raise UsageError("%s: %d is outside 1-65535" % (option, port))
    return port


def _check_hostname(host, value):
    if len(host.rstrip(".")) > 253:
        raise UsageError("-a/--address: %r is longer than 253 characters" % value)
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels):
        raise UsageError("-a/--address: %r is not a valid host name or IP address" % value)


def parse_target(value, default_port):
    """HOST, HOST:PORT, [IPV6]:PORT, [IPV6] or a bare IPv6 address."""
    if not value.strip():
        raise UsageError("-a/--address: empty address")
    if "[" in value or "]" in value:
        match = re.match(r"^\[([^\[\]]+)\](?::([^:]*))?$", value)
        if not match or not isinstance(_ip_literal(match.group(1)), ipaddress.IPv6Address):
            raise UsageError("-a/--address: %r is not a valid [IPv6]:PORT" % value)
        port = (default_port if match.group(2) is None
                else parse_port(match.group(2), "-a/--address"))
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
LOOKUPS_PER_NAME = 4             # name lookups under way at once for one target, at most
MAX_TARGETS = 1000               # targets at most: each holds a socket in every round, a line of
                                 # every stats event (which --summary reads back) and metrics


def reason_for_errno(number):
    return _REASONS.get(number) or errno.errorcode.get(number, "error %d" % number)


class ProbeResult:
    __slots__ = ("target", "up", "reason", "connect_time", "answered", "tried")

    def __init__(self, target, up, reason=None, connect_time=None, answered=None, tried=True):
        self.target = target
        self.up = up
        self.reason = reason
        self.connect_time = connect_time
        self.answered = answered    # monotonic instant the connect got through (None: not up)
        self.tried = tried          # False: the round started no connect (over the in-flight
                                    # limit); it counts for no probe, only for up or down


class NameLookups:
    """Host name lookups, each in a thread of its own, at most LOOKUPS_PER_NAME at a time per
    name: with the DNS server unreachable a lookup waits for the resolver's timeouts (10 s and
    more), far longer than a round while down (0.1 s), and a new thread per name and round would
    pile up by the thousand. A round whose name is still being looked up waits for that lookup;
    once it has waited longer than a round's timeout, a new one starts beside it, so that a DNS
    server that answers again gets a fresh query within about that time."""

    def __init__(self):
        self.running = {}       # (host, port) -> [(started, thread, {"result": ...})], newest last

    def start(self, target, now, stale):
        """(thread, box) of the lookup of `target` that a round started at `now` waits for: the
        newest under way, unless it is older than `stale` seconds and there is room for one
        more; else one started now (no thread, and "dns" in the box, when none can start)."""
        key = (target.host, target.port)
        lookups = [item for item in self.running.get(key, ()) if item[1].is_alive()]
        self.running[key] = lookups
        if lookups and (now - lookups[-1][0] < stale or len(lookups) >= LOOKUPS_PER_NAME):
            return lookups[-1][1:]
        box = {}
        thread = threading.Thread(target=self._lookup, args=(target, box), daemon=True)
        try:
            thread.start()
        except RuntimeError:        # no thread to be had (a small machine's memory): the
            box["result"] = "dns"   # name is not looked up this round, and the monitor goes on
            return None, box
        lookups.append((now, thread, box))
        return thread, box

    @staticmethod
    def _lookup(target, box):
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            seen = []
            for family, _, _, _, sockaddr in infos:
                if (family, sockaddr) not in seen:
                    seen.append((family, sockaddr))
            box["result"] = seen[:MAX_ADDRESSES_PER_TARGET] or "dns"
        except (OSError, UnicodeError):
            box["result"] = "dns"


def resolve_all(targets, deadline, clock=time.monotonic, lookups=None):
    """Look up every host name (again, each round) in parallel, each at most until `deadline`.

    Returns {target: [sockaddr tuples] or a failure reason string}. IP literals need no lookup.
    `lookups` (a NameLookups) lets a lookup that outlives its round serve the next one.
    """
    results = {}
    waiting = []
    lookups = lookups if lookups is not None else NameLookups()
    now = clock()
    for target in targets:
        if target.is_literal and "%" in target.host:   # fe80::1%eth0: the scope needs a lookup,
            try:                                       # of a number only (no DNS)
                info = socket.getaddrinfo(target.host, target.port, socket.AF_INET6,
                                          socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
                results[target] = [(socket.AF_INET6, info[0][4])]
            except (OSError, UnicodeError):
                results[target] = "unreachable"        # no such interface (any more)
        elif target.is_literal:
            results[target] = target.addresses
        else:
            waiting.append((target, lookups.start(target, now, deadline - now)))
    for target, (thread, box) in waiting:
        if thread is not None:
            thread.join(max(0.0, deadline - clock()))
        results[target] = box.get("result", "dns")    # "dns": the lookup outlived the deadline
    return results


# Linux makes a socket non-blocking as it creates it: one system call less per connect
SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)


class RoundResults:
    """One round: each target's ProbeResult, in the order of the targets, and the gateway's
    apart (None when it was not probed); `router_needed` False when the gateway found in the
    routing table was left out because every target's address is on this machine."""

    __slots__ = ("targets", "gateway", "router_needed")

    def __init__(self, targets, gateway=None, router_needed=True):
        self.targets = targets
        self.gateway = gateway
        self.router_needed = router_needed


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
        self.sockets = {}       # file descriptor -> socket, of those in flight
        # poll(), one for the whole run: a round costs one system call to wait, where epoll
        # (the selectors module) costs three, and Python code of its own (a Pi's CPU)
        self.poller = select.poll()
        if wake_fd is not None:
            self.poller.register(wake_fd, select.POLLIN)
        self.beyond_loopback = False     # has a target had an address beyond this machine?
        self.loopback = {}               # address -> is it loopback? (see _leaves_this_machine)
        self.gateway_result = None       # the gateway's latest outcome (see probe_round)
        self.lookups = NameLookups()

    def close(self):
        self._drop(list(self.in_flight))

    def probe_round(self, targets, interrupted=lambda: False, gateway=None, wait=None):
        """RoundResults: a ProbeResult for each of `targets`, and one for `gateway` (a Gateway)
        when it was probed:
        on the same selector, by the same deadline, so a round takes no longer. A gateway found
        in the routing table is left out while every target is on this machine (loopback):
        they need no router, and a test on loopback sends nothing beyond this machine.

        `wait` None: the round waits for its connects, each at most `timeout`, and leaves none
        behind. `wait` SECONDS (a fast round, while the network is down): it waits at most that
        long for its own connects; those still waiting stay in flight, watched by the next
        rounds until their own timeout, and one that ends during a later round counts for that
        round. A target whose connect still waits is "timeout" for the round; the gateway keeps
        its latest outcome until one of its connects ends (a connect that waits has not shown
        whether the router answers). Once a target's connect has got through, the round waits
        for its own connects as a round while up does, and closes the ones left from earlier
        rounds: they would only add traffic.
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
        probed = list(targets)
        # names are looked up first: only the connects a round really starts count against
        # the limit (a name whose lookup failed starts none)
        resolved = resolve_all(targets, started + self.timeout, self.clock, self.lookups)
        if not self.beyond_loopback:
            self.beyond_loopback = self._leaves_this_machine(resolved)
        if gateway is not None and (self.beyond_loopback or not gateway.found):
            resolved.update(resolve_all([gateway], started + self.timeout, self.clock,
                                        self.lookups))
        admitted = not in_flight or len(in_flight) + sum(
            len(addresses) for addresses in resolved.values()
            if not isinstance(addresses, str)) <= self.limit
        if admitted:
            if gateway in resolved:
                probed.append(gateway)
            for target in probed:
                addresses = resolved[target]
                if isinstance(addresses, str):
                    results[target] = ProbeResult(target, False, addresses)
                    continue
                for family, sockaddr in addresses:
                    self._start_connect(target, family, sockaddr, own, results)
        # a round while up has only its own connects, none due before started + timeout
        end, deadline = ((math.inf, started + self.timeout) if wait is None
                         else (started + wait, self._soonest_deadline()))
        try:
            while (own if admitted else in_flight) and not interrupted():
                now = self.clock()
                if now >= end:
                    if not any(results[target].up for target in targets if target in results):
                        break
                    end = math.inf          # up again: wait for the round's own connects
                if now >= deadline:
                    self._expire(now, own, results)
                    deadline = self._soonest_deadline()
                    continue
                self._take_answers((deadline if deadline < end else end) - now, own, results)
        finally:
            if in_flight and (wait is None or any(results[target].up for target in targets
                                                  if target in results)):
                self._drop(list(in_flight))
        found = self._round_results(probed, gateway, results, admitted)
        found.router_needed = gateway is None or self.beyond_loopback or not gateway.found
        return found

    def _round_results(self, probed, gateway, results, admitted=True):
        if gateway is not None and gateway not in results and self.gateway_result is not None \
                and self.gateway_result.target is gateway:
            results[gateway] = self.gateway_result       # its connects still wait, or none went
        if gateway is not None and gateway in results and gateway not in probed:
            probed.append(gateway)    # a round that started none: its latest outcome, or one
            #                           of an earlier round's connects that ended in this one
        for target in probed:
            result = results.setdefault(target, ProbeResult(target, False, "timeout"))
            if not admitted:
                result.tried = False    # an answer now is that of a connect counted before
        router = None
        if gateway is not None and gateway in probed:
            router = self.gateway_result = results[gateway]
        return RoundResults([results[target] for target in probed if target is not gateway],
                            router)

    def _leaves_this_machine(self, resolved):
        """Has a target an address beyond loopback? Each address is looked at once (a round
        must stay cheap); the memory of them is bounded."""
        for target, addresses in resolved.items():
            if target.is_loopback:
                continue
            for _, sockaddr in () if isinstance(addresses, str) else addresses:
                local = self.loopback.get(sockaddr[0])
                if local is None:
                    if len(self.loopback) >= 256:
                        self.loopback.clear()
                    local = self.loopback[sockaddr[0]] = ipaddress.ip_address(
                        sockaddr[0].partition("%")[0]).is_loopback
                if not local:
                    return True
        return False

    def _start_connect(self, target, family, sockaddr, own, results):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM | SOCK_NONBLOCK)
        except OSError as error:
            self._record(results, target, error.errno or errno.EIO)
            return
        try:
            if not SOCK_NONBLOCK:
                sock.setblocking(False)
            began = self.clock()
            error = sock.connect_ex(sockaddr)
        except OSError as exc:       # e.g. an IPv6 scope that does not exist
            sock.close()
            self._record(results, target, exc.errno or errno.EINVAL)
            return
        if error in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self.poller.register(sock, select.POLLOUT)
            self.sockets[sock.fileno()] = sock
            self.in_flight[sock] = (target, began, began + self.timeout)
            own.add(sock)
        else:
            sock.close()
            self._record(results, target, error, began, self.clock())

    def _soonest_deadline(self):
        return min([deadline for _, _, deadline in self.in_flight.values()] or [math.inf])

    def _take_answers(self, seconds, own, results):
        """Waits up to `seconds` for connects to end, and records those that did."""
        for fd, _ in self.poller.poll(max(0.0, seconds) * 1000.0):
            if fd == self.wake_fd:
                _drain(self.wake_fd)
                continue
            sock = self.sockets.pop(fd)
            target, began, _ = self.in_flight.pop(sock)
            own.discard(sock)
            self.poller.unregister(fd)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sock.close()
            self._record(results, target, error, began, self.clock())

    def _expire(self, now, own, results):
        """Connects whose timeout has passed end as "timeout" for this round; but first those
        whose answer came and waits unread (a round busy with slow name lookups reads late)."""
        if any(deadline <= now for _, _, deadline in self.in_flight.values()):
            self._take_answers(0, own, results)
        expired = [sock for sock, (_, _, deadline) in self.in_flight.items() if deadline <= now]
        for sock in expired:
            own.discard(sock)
            self._record(results, self.in_flight[sock][0], errno.ETIMEDOUT)
        self._drop(expired)

    def _drop(self, sockets):
        for sock in sockets:
            del self.in_flight[sock]
            del self.sockets[sock.fileno()]
            self.poller.unregister(sock)
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


def read_small_file(path, limit=4096):
    """The text of a small /sys file, or None when it cannot be read. (os.read: half the CPU
    of open(), and these are read in every round while down.)"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    chunks, left = [], limit
    try:
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


DEFAULT_ROUTES_KEPT = 1000           # default routes kept of one table file (one is used)
_DEFAULT_ROUTE_LINES = re.compile(
    rb"^(?:[^\t\n]+\t00000000\t|0{32} 00 )[^\n]*", re.M)    # IPv4's, IPv6's (destination 0/0)


def read_default_route_lines(path, limit=ROUTE_FILE_LIMIT):
    """The first line of a Linux routing table file (/proc/net/route's names the columns) and
    its lines for a default destination, as text; None when it cannot be read. Read in pieces
    and filtered as it goes: a table of 20,000 routes is 3 MB, and the default route of an IPv6
    table tends to be near its end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    first, kept, rest, left = None, [], b"", limit
    try:
        while True:
            chunk = os.read(fd, min(left, 65536)) if left > 0 else b""
            left -= len(chunk)
            data = rest + chunk
            end = data.rfind(b"\n") + 1 if chunk else len(data)
            if end == 0 and len(data) > 65536:
                break                # no line is this long in a routing table
            rest, data = data[end:], data[:end]
            if first is None and data:
                first, _, data = data.partition(b"\n")
            kept += _DEFAULT_ROUTE_LINES.findall(data)[:DEFAULT_ROUTES_KEPT - len(kept)]
            if not chunk:
                break
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"\n".join([first or b"", *kept]).decode("ascii", "replace")


_NETLINK_ROUTE, _RTM_GETROUTE, _RTM_NEWROUTE, _NLMSG_ERROR, _NLMSG_DONE = 0, 26, 24, 2, 3
_NLM_F_DUMP_REQUEST = 0x301
_RTN_UNICAST, _RTA_OIF, _RTA_GATEWAY, _RTA_PRIORITY, _RTA_MULTIPATH = 1, 4, 5, 6, 9
NETLINK_DUMP_LIMIT = 256 * 1024 * 1024   # bytes of a route dump read at most


def _route_attributes(data, start, end):
    """{type: value bytes} of the netlink attributes in data[start:end]."""
    found = {}
    while start + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, start)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[start + 4:start + length]
        start += (length + 3) & ~3
    return found


def _ipv6_route(attributes):
    """A Route from a default route's netlink attributes (the first hop of a multipath one)."""
    gateway, index = attributes.get(_RTA_GATEWAY), attributes.get(_RTA_OIF)
    hops = attributes.get(_RTA_MULTIPATH)
    if gateway is None and hops is not None and len(hops) >= 8:
        length, _, _, index = struct.unpack_from("=HBBi", hops)
        hop = _route_attributes(hops, 8, min(length, len(hops)))
        gateway, index = hop.get(_RTA_GATEWAY), struct.pack("=i", index)
    try:
        interface = socket.if_indextoname(struct.unpack("=i", index)[0]) if index else "?"
    except (OSError, struct.error):
        interface = "?"
    metric = struct.unpack("=I", attributes[_RTA_PRIORITY])[0] \
        if len(attributes.get(_RTA_PRIORITY, b"")) == 4 else 0
    address = None
    if gateway is not None and len(gateway) == 16 and gateway != bytes(16):
        next_hop = ipaddress.IPv6Address(gateway)
        address = str(next_hop) + ("%" + interface if next_hop.is_link_local else "")
    return Route(6, address, interface, metric)


def netlink_ipv6_default_routes(limit=NETLINK_DUMP_LIMIT):
    """The IPv6 default routes, asked of the kernel over netlink (as `ip -6 route` does): with
    20,000 routes /proc/net/ipv6_route takes half a second of the kernel's time to read, a dump
    12 ms. OSError when netlink cannot be used."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE) as sock:
        sock.settimeout(2.0)
        sock.send(struct.pack("=LHHLL", 28, _RTM_GETROUTE, _NLM_F_DUMP_REQUEST, 1, 0)
                  + struct.pack("=BBBBBBBBI", socket.AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0))
        routes = []
        while limit > 0:
            data = sock.recv(65536)
            limit -= len(data)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=LH", data, offset)
                if kind == _NLMSG_DONE:
                    return routes
                if kind == _NLMSG_ERROR or length < 16:
                    raise OSError("netlink route dump refused")
                # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
                if kind == _RTM_NEWROUTE and data[offset + 17] == 0 \
                        and data[offset + 23] == _RTN_UNICAST and len(routes) < DEFAULT_ROUTES_KEPT:
                    routes.append(_ipv6_route(_route_attributes(
                        data, offset + 28, offset + length)))
                offset += (length + 3) & ~3
            if not data:
                break
        raise OSError("netlink route dump cut short")


def read_ipv6_default_routes(path):
    """The IPv6 default routes: from the kernel over netlink for the machine's own table, else
    (elsewhere, or a test's file) from the file at `path`."""
    if path == ROUTE_FILES[1]:
        try:
            return netlink_ipv6_default_routes()
        except (OSError, AttributeError, struct.error):
            pass
    return parse_ipv6_routes(read_default_route_lines(path) or "")


def read_syn_schedule(path=SYN_LINEAR_TIMEOUTS):
    """When this kernel sends a lost SYN again (syn_resend_schedule), from its setting of
    linear SYN timeouts; without one (older kernels, other systems), the exponential schedule."""
    text = read_small_file(path, 64)
    try:
        linear = int(text.strip()) if text is not None else None
    except ValueError:
        linear = None
    return syn_resend_schedule(linear if linear is not None and 0 <= linear <= 64 else None)


class Surroundings:
    """This machine's own view of its way out (Linux): its default routes, whether their
    interfaces have a link, and the gateway to probe. Reads a few small files (the routing table
    for the gateway at most every ROUTES_RECHECK seconds); sends nothing. Elsewhere the files are
    missing: no gateway is found (--gateway sets one) and `local` is never seen.

    Only the default routes of the targets' `families` count (see route_families): a
    dual-stack machine that lost its IPv4 route has no way to IPv4 targets, whatever its IPv6
    route says, and the router to probe is the one on their way."""

    def __init__(self, gateway="auto", route_files=ROUTE_FILES, sys_net=SYS_NET,
                 clock=time.monotonic, loopback_only=False, families=(4, 6)):
        self.setting = gateway       # "auto" (the routing table's), "none", or a Target
        # every target is a loopback address: a router found in the table would never be
        # probed (see Prober.probe_round), so the table is not read for one
        self.loopback_only = loopback_only
        self.families = families
        self.route_files = route_files
        self.sys_net = sys_net
        self.clock = clock
        self.had_routes = False      # has one (of the families) been seen since the start?
        self.found = None            # the gateway Target found, kept while its address stays
        self.looked = None           # when the routing table was last read
        self.default_routes = []     # what it said then

    def routes(self):
        """This machine's default routes of the targets' families, read again when
        ROUTES_RECHECK seconds have passed (while down too: every round asks)."""
        now = self.clock()
        if self.looked is None or now - self.looked >= ROUTES_RECHECK:
            self.looked = now
            ipv4, ipv6 = self.route_files
            self.default_routes = (
                (parse_ipv4_routes(read_default_route_lines(ipv4) or "")
                 if 4 in self.families else [])
                + (read_ipv6_default_routes(ipv6) if 6 in self.families else []))
            self.had_routes = self.had_routes or bool(self.default_routes)
            if self.setting == "auto":
                address = choose_gateway(self.default_routes)
                if address is None:
                    self.found = None
                elif self.found is None or self.found.host != address:
                    self.found = Gateway(address, GATEWAY_PORT, found=True)
        return self.default_routes

    def gateway(self, fresh=False):
        """The gateway to probe now (a Target), or None; reads the routing table again (when
        ROUTES_RECHECK seconds have passed, or at once when `fresh`), so a new router (DHCP) is
        followed."""
        if self.setting == "auto" and self.loopback_only:
            return None
        if fresh:
            self.looked = None
        self.routes()
        if self.setting != "auto":
            return None if self.setting == "none" else self.setting
        return self.found

    def link_is_up(self, interface):
        folder = os.path.join(self.sys_net, interface)
        return link_is_up(read_small_file(os.path.join(folder, "operstate"), 64),
                          read_small_file(os.path.join(folder, "carrier"), 64))

    def local_trouble(self):
        """Why this machine has no way out right now, or None (see local_trouble). None while
        every target is on this machine: its links and routes do not lead to them."""
        if self.loopback_only:
            return None
        routes = self.routes()
        down = {route.interface for route in routes if not self.link_is_up(route.interface)}
        return local_trouble(routes, self.had_routes, down, self.families)


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
    script = os.path.join(pysendmail_dir, "sendMail.py")
    try:
        os.stat(script)
    except PermissionError as error:    # there, maybe, but not for this user to see
        return "cannot read %s: %s" % (script, error.strerror)
    except OSError:
        pass
    if not os.path.isfile(script):
        if is_submodule_path(pysendmail_dir):
            return ("the pySendMail submodule in %s is empty or missing: run "
                    "`git submodule update --init` in %s" % (
                        pysendmail_dir, os.path.dirname(pysendmail_dir)))
        return ("pySendMail is not in %s: put it there (`git clone %s %s && git -C %s checkout "
                "%s`) or name its folder with --pysendmail DIR" % (
                    pysendmail_dir, PYSENDMAIL_URL, pysendmail_dir, pysendmail_dir,
                    PYSENDMAIL_COMMIT))
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


def is_submodule_path(folder):
    """True if `folder` is a submodule's path in the git checkout around it (its .gitmodules
    names it): only then can `git submodule update --init` fill it."""
    folder = os.path.abspath(folder)
    try:
        with open(os.path.join(os.path.dirname(folder), ".gitmodules"), encoding="utf-8",
                  errors="replace") as stream:
            text = stream.read(65536)
    except OSError:
        return False
    name = re.escape(os.path.basename(folder))
    return re.search(r"(?m)^\s*path\s*=\s*%s\s*$" % name, text) is not None


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
        smtp = _smtp_settings(pysendmail_dir)
        host, port = str(smtp["server"]), int(smtp["port"]) or (465 if smtp["tls"] else 25)
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def mail_server_tls(pysendmail_dir):
    """The config's "tls" (True: TLS from the first byte, False: STARTTLS), or None when unknown."""
    try:
        tls = _smtp_settings(pysendmail_dir)["tls"]
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return tls if isinstance(tls, bool) else None


def _smtp_settings(pysendmail_dir):
    with open(os.path.join(pysendmail_dir, PYSENDMAIL_CONFIG), encoding="utf-8") as stream:
        return json.load(stream)["mail"]["smtp"]


# pySendMail always uses TLS and always logs in; a server that offers neither is reached by a
# notify command instead (the README's section of that name gives an msmtp recipe).
PLAIN_RELAY_WAY = ('deliver with --notify-command and msmtp instead (README.md: "A mail server '
                   'without TLS or login")')


# smtplib's steps after the server's greeting, as a failure's traceback names them
SMTP_STEPS = (("starttls", "STARTTLS"), ("login", "the login"), ("send_message", "sending"),
              ("sendmail", "sending"), ("quit", "the goodbye"))


def _smtp_step(error):
    """The step after the greeting in which `error` was raised, in words, or None."""
    names, frame = set(), getattr(error, "__traceback__", None)
    for _ in range(200):
        if frame is None:
            break
        names.add(frame.tb_frame.f_code.co_name)
        frame = frame.tb_next
    return next((words for name, words in SMTP_STEPS if name in names), None)


def describe_send_error(error, server=None, tls=None):
    """One line for a failed delivery: what went wrong, and for a server that lacks what
    pySendMail needs, what it lacks and the way out; never an exception's class name. `server`
    (host:port) is named when known; `tls` is the config's "tls" (None: not known)."""
    if isinstance(error, DeliveryError):
        return str(error)
    where = "mail server %s" % server if server else "mail server"
    text = _one_line(error)
    smtplib = sys.modules.get("smtplib")      # loaded by pySendMail, not by this program
    if smtplib is not None and isinstance(error, smtplib.SMTPNotSupportedError):
        if "STARTTLS" in text:
            return "%s offers no TLS (no STARTTLS), and pySendMail sends only over TLS: %s" % (
                where, PLAIN_RELAY_WAY)
        if "AUTH" in text:
            return "%s offers no login (no AUTH), and pySendMail always logs in: %s" % (
                where, PLAIN_RELAY_WAY)
    if smtplib is not None and isinstance(error, smtplib.SMTPException) \
            and "authentication method" in text:
        return "%s offers no login method that pySendMail can use: %s" % (where, PLAIN_RELAY_WAY)
    code = getattr(error, "smtp_code", None)
    if code is not None:
        message = getattr(error, "smtp_error", b"")
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        answer = "%s %s" % (code, " ".join(str(message).split()))
        if smtplib is not None and isinstance(error, smtplib.SMTPAuthenticationError):
            # a wrong password and a server that takes no logins get the same answer
            return ("%s did not accept the login (%s): check user and password in %s; if the "
                    "server takes no logins, %s" % (where, answer, PYSENDMAIL_CONFIG,
                                                     PLAIN_RELAY_WAY))
        return "SMTP server answered %s" % answer
    if "WRONG_VERSION_NUMBER" in text:      # TLS from the first byte, but the server spoke plain
        return ('%s does not speak TLS from the first byte, as "tls": true in %s asks: set '
                '"tls": false if it offers STARTTLS; if it offers no TLS at all, %s'
                % (where, PYSENDMAIL_CONFIG, PLAIN_RELAY_WAY))
    timed_out = isinstance(error, socket.timeout) or text.endswith("timed out")
    step = _smtp_step(error)
    if timed_out and step is not None:      # it answered at first: no question of its port
        return "%s timed out during %s" % (where, step)
    if timed_out and tls is False:          # a server on a TLS port waits for TLS in silence
        return ('%s timed out; if it speaks TLS from the first byte (as on port 465), set '
                '"tls": true in %s' % (where, PYSENDMAIL_CONFIG))
    if timed_out:
        return where + " timed out"
    if isinstance(error, ConnectionRefusedError):
        return where + " refused the connection"
    if smtplib is not None and isinstance(error, smtplib.SMTPServerDisconnected):
        return "%s closed the connection" % where
    if isinstance(error, OSError) and error.strerror:
        return "%s: %s" % (where, " ".join(error.strerror.split()))
    if isinstance(error, UnicodeEncodeError):   # smtplib logs in with ASCII only; never quote
        return ("%s: the user name or password in %s has a character that is not ASCII, "
                "which pySendMail cannot send" % (where, PYSENDMAIL_CONFIG))
    return "%s: %s" % (where, text)


def _utf8_open(file, mode="r", *args, **kwargs):
    """open() as pySendMail gets it: text in UTF-8, not in the locale's encoding, which in an
    ISO-8859-1 or ASCII locale garbles a "from" like Jürgen Müller, or refuses the config."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    return open(file, mode, *args, **kwargs)


class MailDeliverer:
    """Sends through pySendMail's sendInternal(), which raises instead of swallowing errors.
    The smtplib it uses is watched: a report the server took (its answer to the mail) counts
    as delivered whatever fails after, at QUIT; and cancel() cuts a connection that hangs."""

    name = "mail"
    stop_wait = MAIL_STOP_WAIT

    def __init__(self, pysendmail_dir):
        self.pysendmail_dir = pysendmail_dir
        self._module = None
        self.taken = False          # the server took the mail being sent
        self.connection = None      # ... over this smtplib.SMTP, while it is sent
        self.cut = False            # ... which cancel() cut

    def problem(self):
        return check_mail_setup(self.pysendmail_dir)

    def _load(self):
        if self._module is None:
            path = os.path.join(self.pysendmail_dir, "sendMail.py")
            spec = importlib.util.spec_from_file_location("pySendMail_sendMail", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.smtplib = self._watched_smtplib()
            module.open = _utf8_open    # its config read as check_mail_setup reads it
            self._module = module
        return self._module

    def _watched_smtplib(self):
        """smtplib as pySendMail sees it: its SMTP and SMTP_SSL tell this deliverer their
        connection and when send_message() returned (the server answered 250 to the mail)."""
        import smtplib
        import types
        deliverer = self

        class Watched:
            def _get_socket(self, host, port, timeout):
                deliverer.connection = self
                return super()._get_socket(host, port, timeout)

            def send_message(self, *args, **kwargs):
                refused = super().send_message(*args, **kwargs)
                deliverer.taken = True
                return refused

        watched = types.ModuleType("smtplib")
        watched.__dict__.update(smtplib.__dict__)
        watched.SMTP = type("SMTP", (Watched, smtplib.SMTP), {})
        watched.SMTP_SSL = type("SMTP_SSL", (Watched, smtplib.SMTP_SSL), {})
        return watched

    def cancel(self):
        """Cuts the connection of the delivery in flight: it fails now, and is retried."""
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            self.cut = True
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def deliver(self, subject, body):
        problem = self.problem()      # the config is checked again at every attempt
        if problem:
            raise DeliveryError("mail is not set up: " + problem)
        captured = io.StringIO()      # pySendMail prints its errors; keep them off the console
        self.taken = self.cut = False
        try:
            with contextlib.redirect_stdout(captured):
                module = self._load()
        except Exception as error:  # noqa: BLE001 - its file, not the mail server, failed
            raise DeliveryError("cannot load pySendMail from %s: %s" % (
                os.path.join(self.pysendmail_dir, "sendMail.py"),
                _one_line(getattr(error, "strerror", None) or error)))
        try:
            with contextlib.redirect_stdout(captured):
                mail = module.pySendMail()
                mail.subject = subject
                mail.content = body
                mail.sendInternal()
        except SystemExit:
            if not self.taken:
                raise DeliveryError("pySendMail gave up: %s"
                                    % (_one_line(captured.getvalue()) or "exit"))
        except Exception as error:  # noqa: BLE001 - any failure of the helper is a failed delivery
            if not self.taken:      # after the server took it, a dropped QUIT loses nothing
                server = mail_server_address(self.pysendmail_dir)
                if self.cut:
                    raise DeliveryError("mail server %s stopped answering; the delivery was cut"
                                        % server)
                raise DeliveryError(describe_send_error(error, server,
                                                        mail_server_tls(self.pysendmail_dir)))
        finally:
            self.connection = None


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
        status, (": " + printable(last)) if last else ""))


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


class ReportContents:
    """What one report tells of: its interruptions, partial outages, slow and lossy periods, and
    the ids of the pending entries it carries (accepted together)."""

    __slots__ = ("interruptions", "gaps", "partial", "slow", "lossy", "ids")

    def __init__(self, batch):
        def count(keep):
            return sum(item.count for item in batch if keep(item))

        self.interruptions = count(lambda item: item.part is None     # gaps included
                                   and item.kind not in ("slow", "lossy"))
        self.gaps = sum(item.gap_part()[0] for item in batch)
        self.partial = count(lambda item: item.part is not None)
        self.slow = count(lambda item: item.kind == "slow")
        self.lossy = count(lambda item: item.kind == "lossy")
        self.ids = [item.id for item in batch]


class Reporter:
    """Sends the reports PendingReports says are due through a deliverer, one at a time in the
    background, and applies each outcome to the pending list."""

    def __init__(self, pending, deliverer, hostname, on_done, spawn=None, slow_ms=None,
                 slow_times=0.0):
        self.pending = pending
        self.deliverer = deliverer
        self.hostname = hostname
        self.slow_ms = slow_ms          # the thresholds slow periods are seen with, for the report
        self.slow_times = slow_times
        self.worker = OneJobAtATime("delivery", on_done, describe_send_error, spawn)
        self.problem_shown = False
        self.started = None             # monotonic start of the delivery in flight

    @property
    def busy(self):
        return self.worker.busy

    def maybe_send(self, now, network_down):
        """Starts a delivery when one is due. Returns a set-up problem the first time it stops
        a report (to be shown once), else None."""
        if self.worker.busy:
            if now - self.started >= DELIVERY_LIMIT:
                self.cancel()               # a server that stopped answering holds no report
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
        subject, body = format_report(batch, self.hostname, self.slow_ms, self.slow_times)
        self.started = now
        self.worker.submit(lambda: self.deliverer.deliver(subject, body),
                           tag=ReportContents(batch))
        return None

    def outcomes(self, now):
        """[(ReportContents, None or why it failed)] of the deliveries that ended."""
        done = self.worker.take_results()
        for contents, failure in done:
            if failure is None:
                self.pending.accepted(contents.ids, now)
            else:
                self.pending.failed(now)
        return done

    def settle(self, clock, wait, collect, limit=0.5):
        """At a stop: a report the server accepted just now must not stay pending and go out
        twice. Waits up to the deliverer's `stop_wait` (else `limit`) s for a delivery in
        flight (calling `collect` to take its outcome); then cancels it, and waits up to
        `limit` s more."""
        deadline = clock.monotonic() + getattr(self.deliverer, "stop_wait", limit)
        cancelled = False
        while self.busy:
            if clock.monotonic() >= deadline:
                if cancelled:
                    break
                # a notify command runs in its own session and would still deliver after the
                # stop, behind the state file's back: kill it (a mail connection: cut it), so
                # its report stays pending
                self.cancel()
                cancelled, deadline = True, clock.monotonic() + limit
            wait(0.05)
            collect()

    def cancel(self):
        """Kills a notify command still running (at a stop, or past DELIVERY_LIMIT), or cuts a
        mail connection, so it cannot deliver a report that stays pending."""
        cancel = getattr(self.deliverer, "cancel", None)
        if cancel is not None:
            cancel()


# ---------------------------------------------------------------------------------------------
# The state file: pending interruptions, backoff and heartbeat survive restarts and power cuts
# ---------------------------------------------------------------------------------------------


def default_state_path():
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):        # the XDG spec: a relative one is invalid, and ignored
        base = os.path.join(home_folder(), ".local", "state")
    return os.path.join(base, "pyNetConnMon", "state.json")


def home_folder():
    """$HOME; when it is unset or relative ("~", "x": a folder under the current one, which the
    start line would show as if it were the home), the user database's, as Python's
    os.path.expanduser has it for an unset HOME. UsageError when neither is absolute."""
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return home
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        home = ""
    if not os.path.isabs(home):      # else a "./~" folder, another in each folder started from
        raise UsageError("cannot tell the home folder for the state file (HOME is not an "
                         "absolute path and user %d has none in the user database): give "
                         "--state-file" % os.getuid())
    return home


# The state file, the event log, --html and --csv: others may read them, as under the usual
# umask 022, but even under umask 000 not write them (erase pending reports, forge events);
# umask 077 still makes them 0600
FILE_MODE = 0o644
STATE_SIZE_LIMIT = 16 * 1024 * 1024  # bytes; a bounded pending list needs far less (older
                                     # versions kept every interruption: those files are folded)
_LATEST_TIME = 253402300799.0        # 9999-12-31 23:59:59 UTC: later instants have no date
_LONGEST = 100 * 366 * 86400.0       # seconds: no duration or wait in a state file is longer
_STATE_KINDS = ("outage", "gap", "many", "partial")
_SLOWEST = 1e9                       # ms: no connect time in a state file is longer


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


def _state_targets(value, what, lists):
    """An entry's targets: its own labels, or (newer files) the index of a list in the state's
    target_lists, which entries of the same targets share."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(lists):
            raise ValueError("%s is not in target_lists" % what)
        return lists[value]
    return _state_labels(value, what)


def _check_interruption(data, what, lists=()):
    data = _state_object(data, what)
    kind = data.get("kind", "outage")
    if kind not in _STATE_KINDS:
        raise ValueError("%s has an unknown kind" % what)
    checked = {
        "id": _state_number(data.get("id"), what + " id", 0, 2 ** 53),
        "start": _state_number(data.get("start"), what + " start", 0.0, _LATEST_TIME),
        "end": _state_number(data.get("end"), what + " end", 0.0, _LATEST_TIME),
        "duration": _state_number(data.get("duration"), what + " duration", 0.0, _LONGEST),
        "reason": _state_text(data.get("reason"), what + " reason"),
        "kind": kind,
        "cut_short": _state_flag(data.get("cut_short", False), what + " cut_short"),
        "targets": (_state_targets(data["targets"], what + " targets", lists)
                    if "targets" in data else None),    # None: the state's own targets
        "count": int(_state_number(data.get("count", 1), what + " count", 1, 2 ** 53)),
        "cause": _state_cause(data.get("cause"), what + " cause"),
        "part": (None if data.get("part") is None
                 else _state_text(data["part"], what + " part", 300)),
    }
    # of a "many" entry's count and duration, those of gaps (newer files)
    gaps = data.get("gaps", 0)
    if kind == "gap" and checked["part"] is not None:
        raise ValueError("%s is a gap of a part" % what)
    if (kind != "many" or checked["part"] is not None) and gaps != 0 or not (
            type(gaps) is int and 0 <= gaps <= checked["count"]):
        raise ValueError("%s gaps is not a whole number from 0 to its count, of a many "
                         "entry" % what)
    checked["gaps"] = gaps
    checked["gap_duration"] = _state_number(data.get("gap_duration", 0.0), what + " gap_duration",
                                            0.0, checked["duration"] * (1 + 1e-9) + 1e-6
                                            if gaps else 0.0)
    return checked


def _state_cause(value, what):
    if value is not None and value not in CAUSES:
        raise ValueError("%s is not one of %s" % (what, ", ".join(CAUSES)))
    return value


def _check_lossy_period(data, what, lists=()):
    data = _state_object(data, what)
    if data.get("kind") != "lossy":
        raise ValueError("%s is not a lossy period" % what)
    checked = _check_interruption(dict(data, kind="outage"), what, lists)
    checked.update(kind="lossy",
                   loss_percent=_state_number(data.get("loss_percent"), what + " loss_percent",
                                              0.0, 100.0, True),
                   sent=_state_number(data.get("sent"), what + " sent", 0, 2 ** 53, True),
                   lost=_state_number(data.get("lost"), what + " lost", 0, 2 ** 53, True))
    return checked


def _check_usual(data):
    """Each target's slot medians (UsualTimes), of targets by label."""
    data = _state_object(data, "usual")
    if len(data) > 10000:
        raise ValueError("usual holds more than 10000 targets")
    return {_state_text(label, "usual target", 300): [
        _state_number(ms, "usual time", 0.0, _SLOWEST)
        for ms in _state_list(kept, "usual times", USUAL_SLOTS)] for label, kept in data.items()}


def _check_slow_period(data, what, lists=()):
    data = _state_object(data, what)
    if data.get("kind") != "slow":
        raise ValueError("%s is not a slow period" % what)
    checked = _check_interruption(dict(data, kind="outage"), what, lists)
    checked.update(kind="slow",
                   median_ms=_state_number(data.get("median_ms"), what + " median_ms", 0.0,
                                           _SLOWEST, True),
                   max_ms=_state_number(data.get("max_ms"), what + " max_ms", 0.0, _SLOWEST,
                                        True))
    return checked


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
                "reason": _state_text(down.get("reason", "down"), "down reason"),
                "cause": _state_cause(down.get("cause"), "down cause")}
    slow = data.get("slow")
    if slow is not None:
        slow = _state_object(slow, "slow")
        slow = {"start": _state_number(slow.get("start"), "slow start", 0.0, _LATEST_TIME),
                "median_ms": _state_number(slow.get("median_ms"), "slow median_ms", 0.0,
                                           _SLOWEST, True),
                "max_ms": _state_number(slow.get("max_ms"), "slow max_ms", 0.0, _SLOWEST, True)}
    lossy = data.get("lossy")
    if lossy is not None:
        lossy = _state_object(lossy, "lossy")
        lossy = {"start": _state_number(lossy.get("start"), "lossy start", 0.0, _LATEST_TIME),
                 "sent": _state_number(lossy.get("sent"), "lossy sent", 0, 2 ** 53),
                 "lost": _state_number(lossy.get("lost"), "lossy lost", 0, 2 ** 53)}
    partials = [_state_object(item, "partial") for item in _state_list(
        data.get("partials", []), "partials", MAX_TARGETS + 3)]
    boot = data.get("boot")
    if boot is not None:
        boot = _state_object(boot, "boot")
        boot = {"id": _state_text(boot.get("id"), "boot id", 100),
                "seconds": _state_number(boot.get("seconds"), "boot seconds", 0.0, _LONGEST)}
    pending = _state_list(data.get("pending", []), "pending", 100 * PENDING_LIMIT)
    slow_pending = _state_list(data.get("slow_pending", []), "slow_pending", 100 * PENDING_LIMIT)
    lossy_pending = _state_list(data.get("lossy_pending", []), "lossy_pending",
                                100 * PENDING_LIMIT)
    lists = [_state_labels(labels, "target_lists entry") for labels in _state_list(
        data.get("target_lists", []), "target_lists", 300 * PENDING_LIMIT)]
    checked = {
        "format": STATE_FORMAT,
        "heartbeat": _state_number(data.get("heartbeat"), "heartbeat", 0.0, _LATEST_TIME, True),
        "clean_stop": _state_flag(data.get("clean_stop", False), "clean_stop"),
        "boot": boot,
        "targets": _state_labels(data.get("targets", []), "targets"),
        "down": down,
        "next_id": int(_state_number(data.get("next_id", 1), "next_id", 0, 2 ** 53)),
        "pending": [_check_interruption(item, "pending entry %d" % number, lists)
                    for number, item in enumerate(pending, 1)],
        "slow": slow,
        "slow_pending": [_check_slow_period(item, "slow_pending entry %d" % number, lists)
                         for number, item in enumerate(slow_pending, 1)],
        "lossy": lossy,
        "partials": [{"part": _state_text(item.get("part"), "partial part", 300),
                      "start": _state_number(item.get("start"), "partial start", 0.0,
                                             _LATEST_TIME),
                      "reason": _state_text(item.get("reason"), "partial reason"),
                      "duration": _state_number(item.get("duration"), "partial duration", 0.0,
                                                _LONGEST)} for item in partials],
        "lossy_pending": [_check_lossy_period(item, "lossy_pending entry %d" % number, lists)
                          for number, item in enumerate(lossy_pending, 1)],
        "usual": _check_usual(data.get("usual") or {}),
        "backoff": {
            "wait": _state_number(backoff.get("wait"), "backoff wait", 0.0, _LONGEST, True),
            "last_sent": _state_number(backoff.get("last_sent"), "backoff last_sent", 0.0,
                                       _LATEST_TIME, True),
            "last_failed": _state_number(backoff.get("last_failed"), "backoff last_failed", 0.0,
                                         _LATEST_TIME, True)},
    }
    for entry in checked["pending"] + checked["slow_pending"] + checked["lossy_pending"]:
        if entry["targets"] is None:
            entry["targets"] = checked["targets"]
    return checked


def _no_constant(name):
    raise ValueError("%s is not a number a state file holds" % name)


class StateFile:
    """The state file: one monitor at a time (a lock beside it), read once at start, replaced
    atomically on every save. Only a regular file is ever opened or moved."""

    def __init__(self, path):
        self.path = path            # as given, for messages
        # a symlink's target: the lock must be the same for every name of the file, and a
        # save must replace the file, not the link (put on other storage on purpose)
        self.file = os.path.realpath(path)
        self._lock_stream = None

    def _refuse_odd_file(self, path):
        """MonitorError if `path` exists and is not a regular file (a FIFO would block)."""
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
        self._refuse_odd_file(self.path)
        self._refuse_odd_file(self.file + ".lock")
        directory = os.path.dirname(self.file)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            descriptor = os.open(self.file + ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND
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

    def keep_lock(self):
        """At each heartbeat: touches the lock file, so that a cleaner of old files (in /tmp)
        leaves it; if it was removed all the same, makes and takes it again, so that a second
        monitor cannot start on this state file. Returns a warning to show, or None."""
        if self._lock_stream is None:
            return None
        descriptor = self._lock_stream.fileno()
        try:
            os.utime(descriptor)
            named, held = os.stat(self.file + ".lock"), os.fstat(descriptor)
            if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                return None
        except FileNotFoundError:
            pass
        except OSError:
            return None                 # cannot tell: keep the lock held
        self.unlock()
        try:
            self.lock()
        except MonitorError as error:
            return "the lock file %s.lock was removed, and cannot be taken again: %s" % (
                self.file, error)
        return "the lock file %s.lock was removed; made it again" % self.file

    def unlock(self):
        if self._lock_stream is not None:
            self._lock_stream.close()
            self._lock_stream = None

    def read_bytes(self):
        """The file's bytes (at most STATE_SIZE_LIMIT + 1), or None when there is none.
        MonitorError when it cannot be read: that is not corruption, so nothing is moved."""
        self._refuse_odd_file(self.path)
        try:
            descriptor = os.open(self.file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
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
        aside = "%s.corrupt-%s" % (self.file, time.strftime("%Y%m%d-%H%M%S"))
        try:
            os.replace(self.file, aside)
            where = "moved it to %s" % aside
        except OSError as move_error:
            where = "could not move it aside (%s)" % _one_line(move_error)
        return None, "state file %s could not be used (%s); %s and started afresh" % (
            self.path, reason[:200], where)

    def save(self, data):
        """Atomically: a temporary file, fsync, rename, fsync of the folder."""
        temporary = "%s.tmp-%d" % (self.file, os.getpid())
        try:
            with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                              FILE_MODE), "w", encoding="utf-8") as stream:
                json.dump(data, stream, indent=1, sort_keys=True)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.file)
        except OSError:
            try:                        # a part written to a full disk holds its last space
                os.unlink(temporary)
            except OSError:
                pass
            raise
        directory = os.open(os.path.dirname(self.file), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# ---------------------------------------------------------------------------------------------
# Event log (JSON Lines) and console
# ---------------------------------------------------------------------------------------------


class UnwrittenEvents:
    """The lines of events the log could not take yet, oldest first: the latest `limit` of them,
    and how many older ones were let go to keep to that."""

    def __init__(self, limit=UNWRITTEN_EVENTS_KEPT):
        self.lines = collections.deque(maxlen=limit)
        self.dropped = 0

    def add(self, line):
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1       # the oldest goes: the latest say how things stand now
        self.lines.append(line)

    def take_dropped(self):
        """How many were let go since the last call: said once, when the log works again."""
        dropped, self.dropped = self.dropped, 0
        return dropped


class EventLog:
    """One JSON object per line, appended and flushed per event. reopen() serves logrotate.
    Events the log cannot take (a full disk) wait in `unwritten` and go first when it can."""

    def __init__(self, path, warn=None, listener=None, unwritten_kept=UNWRITTEN_EVENTS_KEPT):
        self.path = path
        self.listener = listener    # listener(event, wall, fields): each event, log file or not
        self.stream = None
        self.unwritten = UnwrittenEvents(unwritten_kept)
        self.torn = False           # the file ends in a line cut short: end it before the next
        self.torn_file = None       # (st_dev, st_ino) of a file this log cut a line short in:
        #                             a FIFO or pipe cannot be read back to tell
        self.warn = warn or (lambda text: None)
        self.failing = False        # warn once per stretch of failed writes (e.g. disk full)
        self.stuck = False          # ... and of a path moved away where no file can be made
        if path:
            self.reopen()

    def reopen(self):
        """Opens the path afresh (logrotate renamed the file away). Every event is flushed when
        written, so all events up to now are in the old file and all after it in the new one.
        If the path cannot be opened, MonitorError says why and the old file stays in use."""
        if not self.path:
            return
        try:
            stream, torn = self._open()
        except OSError as error:
            self.stuck = self.stream is not None    # said once: by the caller
            raise MonitorError("cannot open event log %s: %s" % (self.path, _one_line(error)))
        self._drop_stream()
        self.stream, self.torn, self.stuck = stream, torn, False

    def _open(self):
        """The path opened to append, unbuffered: no part of a line waits in a buffer to be
        glued to a later one. And whether the file ends in a torn line. Without blocking: a
        FIFO there that no process reads is an error, not a monitor that waits for ever, and
        one whose reader stalls refuses lines (they wait in `unwritten`) instead of a round."""
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                 | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE)
        except OSError as error:
            if error.errno == errno.ENXIO:     # a FIFO without a reader, or a socket
                raise OSError(_unopenable_kind(self.path)) from None
            raise
        stream = open(descriptor, "ab", buffering=0)
        return stream, _ends_mid_line(self.path, descriptor) or _file_key(descriptor) == \
            self.torn_file

    def write(self, event, wall, **fields):
        kind = EVENTS[event]                 # a KeyError here is a bug: add the event to EVENTS
        if not kind.fields.issuperset(fields):
            raise ValueError("event %s has no field(s) %s"
                             % (event, sorted(set(fields) - kind.fields)))
        if self.listener is not None:
            self.listener(event, wall, fields)
        if not self.path:
            return
        record = {"time": iso_time(wall), "event": event}
        record.update(fields)
        line = _event_line(record)
        try:
            if self.stream is None:
                self.stream, self.torn = self._open()
            elif self._moved_away():
                self._reopen_moved(record["time"])  # its log_reopened waits before this line
            self._write_unwritten()
            self._write_line(line)
        except OSError as error:
            self.unwritten.add(line)
            self._drop_stream()     # the next write opens it again and looks for a torn line
            if not self.failing:
                self.warn("cannot write event log %s: %s; monitoring goes on, and the latest "
                          "%d events wait until it works again"
                          % (self.path, _one_line(error), self.unwritten.lines.maxlen))
            self.failing = True
            return
        if self.failing:
            self.failing = False
            dropped = self.unwritten.take_dropped()
            self.warn("event log %s is writable again%s" % (self.path, (
                "; the %d oldest events of that time could not wait and are missing from it"
                % dropped) if dropped else ""))

    def _write_unwritten(self):
        """The waiting lines in order, each removed once it is in the file."""
        while self.unwritten.lines:             # each pass removes a line or raises
            self._write_line(self.unwritten.lines[0])
            self.unwritten.lines.popleft()

    def _write_line(self, line):
        """Appends one encoded line, first ending a line torn before (a full disk, a kill in the
        middle of a write), so that readers skip only the torn one. A write cut short raises
        OSError at the next try (the disk is still full); the file is opened again for the next
        line and found to end mid-line."""
        data = b"\n" + line if self.torn else line
        whole, deadline = len(data), None
        try:
            while data:                         # each pass writes some bytes or raises
                written = self.stream.write(data)
                if not written:                 # a full FIFO or pipe: its reader is behind
                    deadline = deadline or time.monotonic() + LOG_PIPE_WAIT
                    self._wait_writable(deadline)
                    continue
                data = data[written:]
        except OSError:
            if len(data) < whole:
                self.torn_file = _file_key(self.stream.fileno())
            raise
        self.torn, self.torn_file = False, None

    def _wait_writable(self, deadline):
        """Lets a FIFO's reader catch up, up to `deadline`: a line longer than the pipe holds
        goes whole to a reader that keeps up; one that stalls costs a round at most this."""
        poller = select.poll()
        poller.register(self.stream.fileno(), select.POLLOUT)
        if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000.0):
            raise OSError(errno.EAGAIN, "it takes no more for now (a reader behind?)")

    def _moved_away(self):
        """Whether the path no longer names the file being written: rotated, or deleted,
        without the SIGHUP that would have reopened it (a postrotate that did not match)."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False                # cannot tell: go on with the open file
        opened = os.fstat(self.stream.fileno())
        return (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino)

    def _reopen_moved(self, time_text):
        """Writes on in a file at the path, which begins as after a SIGHUP: else the events
        would go to a file that logrotate compresses, or deletes, next. If none can be made
        there, the old file stays in use."""
        try:
            stream, torn = self._open()
        except OSError as error:
            if not self.stuck:
                self.warn("event log %s was moved away and cannot be made again (%s); still "
                          "writing to the old file" % (self.path, _one_line(error)))
            self.stuck = True
            return
        self._drop_stream()
        self.stream, self.torn, self.stuck = stream, torn, False
        self.unwritten.add(_event_line({"time": time_text, "event": "log_reopened"}))
        self.warn("event log %s was moved away without a SIGHUP; writing to a new one there"
                  % self.path)

    def _drop_stream(self):
        if self.stream is not None:
            try:
                self.stream.close()
            except OSError:
                pass
            self.stream = None

    def close(self):
        self._drop_stream()
        lost = len(self.unwritten.lines) + self.unwritten.take_dropped()
        if lost:
            self.warn("event log %s still cannot be written: the %d events that waited for it "
                      "are lost" % (self.path, lost))
            self.unwritten.lines.clear()


def _event_line(record):
    return (json.dumps(record, sort_keys=False) + "\n").encode("utf-8")


def _unopenable_kind(path):
    """Why `path` could not be opened for writing without waiting (ENXIO)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISFIFO(mode):
        return "a FIFO that no process reads"
    if stat.S_ISSOCK(mode):
        return "a socket, which cannot be opened by name: give a file"
    return "no device or address there"


def _ends_mid_line(path, opened):
    """Whether the regular file open as descriptor `opened` ends without a newline: its last
    line was cut short. Read at `path` (the log is open to append only); False when that cannot
    tell: another file there now, or none that may be read."""
    try:
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)     # a FIFO must not block
    except OSError:
        return False
    try:
        found, meant = os.fstat(reader), os.fstat(opened)
        if ((found.st_dev, found.st_ino) != (meant.st_dev, meant.st_ino)
                or not stat.S_ISREG(found.st_mode) or found.st_size == 0):
            return False
        return os.pread(reader, 1, found.st_size - 1) != b"\n"
    except OSError:
        return False
    finally:
        os.close(reader)


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                       r"\u2066-\u2069\ud800-\udfff]")


def _escape(match):
    code = ord(match.group())
    if 0xdc80 <= code <= 0xdcff:         # a byte that was not UTF-8 (surrogateescape, as in argv)
        return "\\x%02x" % (code - 0xdc00)
    return ("\\x%02x" if code < 0x100 else "\\u%04x") % code


def printable(text):
    """`text` with control characters written as \\xNN (\\uNNNN for Unicode's line and bidi
    controls and lone surrogates), so that a target, a command's output or a log line cannot
    forge a console line or drive the terminal. Ordinary Unicode stays as it is."""
    return _CONTROLS.sub(_escape, text)


def write_text(stream, text, what=None):
    """The one way text leaves for a stream: the console, --summary, --once, --help. Text the
    stream's encoding cannot hold gets \\ escapes; a stream closed at the start (None) takes
    nothing. On failure, a one-shot output (`what` names it) points the descriptor at /dev/null,
    so that the interpreter's last flush cannot fail a second time, and is a MonitorError
    ("cannot write WHAT: ..."), except for a reader that has gone (`| head`), which is not an
    error. The console (`what` None) gets False and tries again with its next line: a full
    disk or terminal never stops the monitor. True when written."""
    if stream is None or not text:
        return False
    try:
        try:
            stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(stream, "encoding", None) or "ascii"
            stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
        stream.flush()
        return True
    except (OSError, ValueError) as error:          # ValueError: closed meanwhile
        if what is None:
            return False
        _discard(stream)
        if isinstance(error, BrokenPipeError):
            return False
        raise MonitorError("cannot write %s: %s" % (what, getattr(error, "strerror", None)
                                                     or _one_line(error)))


def write_line(stream, line):
    """One printable line of the console, flushed at once."""
    return write_text(stream, printable(line) + "\n")


def _discard(stream):
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):     # a stream without a descriptor
        pass
    finally:
        os.close(devnull)


class Console:
    """Timestamped lines, flushed at once so nohup, tmux and journald show them immediately.
    Every line goes through printable(); a closed or full terminal never stops the monitor."""

    def __init__(self, quiet=False, out=None, err=None):
        self.quiet = quiet
        self.out = out or sys.stdout     # kept: redirect_stdout elsewhere must not swallow these
        self.err = err or sys.stderr

    def _write(self, stream, text, wall):
        write_line(stream, "%s %s" % (local_time(wall if wall is not None else time.time()), text))

    def info(self, text, wall=None):
        if not self.quiet:
            self._write(self.out, text, wall)

    def warning(self, text, wall=None):
        self._write(self.err, "WARNING " + text, wall)

    def error(self, text, wall=None):
        self._write(self.err, "ERROR " + text, wall)

    def usage_error(self, text):
        write_line(self.err, "pyNetConnMon.py: error: " + text)


# ---------------------------------------------------------------------------------------------
# Metrics endpoint: GET /metrics renders the latest snapshot; the monitor loop never waits for it
# ---------------------------------------------------------------------------------------------


class MetricsBoard:
    """Holds the latest snapshot. The loop replaces it whole; the HTTP thread only reads it."""

    def __init__(self, snapshot):
        self._lock = threading.Lock()
        self._snapshot = snapshot

    def publish(self, snapshot):
        with self._lock:
            self._snapshot = snapshot

    def latest(self):
        with self._lock:
            return self._snapshot

    def rendered(self, render):
        """render(latest snapshot), once per snapshot however often it is asked for: a client
        scraping without pause costs the rounds no more than one scrape per round would."""
        snapshot = self.latest()
        cached = getattr(self, "_rendered", None)
        if cached is None or cached[0] is not snapshot:
            cached = self._rendered = (snapshot, render(snapshot))
        return cached[1]


HTTP_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                414: "URI Too Long", 421: "Misdirected Request",
                431: "Request Header Fields Too Large", 503: "Service Unavailable"}
# Every answer: no type sniffing. A page: nothing but its own inline style and data: images, and
# no other site may frame it (clickjacking)
HTTP_HEADERS = "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
HTTP_PAGE_HEADERS = ("Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                     "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                     "\r\nX-Frame-Options: DENY\r\n")
HTTP_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
             b"Retry-After: %d\r\n%s\r\n" % (int(METRICS_REQUEST_TIMEOUT),
                                              HTTP_HEADERS.encode("ascii")))


_MALFORMED_HEADER = re.compile(rb"[ \t:]|[^:]*[ \t]+:|[^:]*\r?$")   # folded, no name, space,
#                                                                    no colon


def http_request_head(received, limit=METRICS_REQUEST_LIMIT, max_headers=METRICS_HEADER_LIMIT):
    """(method, path, Host header or None) once `received` holds a whole request head, None
    while it may still come, or the status (int) that refuses it: 414 or 431 beyond `limit`
    bytes or `max_headers` header lines, 400 when the request line is not "METHOD TARGET
    HTTP/1.x", a header line is malformed, or Host is given twice (or not at all in 1.1)."""
    ends = [at for at in (received.find(b"\n\r\n"), received.find(b"\n\n")) if at >= 0]
    end = min(ends) if ends else len(received)
    if end >= limit:
        return 431 if 0 <= received.find(b"\n", 0, limit) else 414
    if not ends:
        return None
    lines = bytes(received[:end]).split(b"\n")
    if len(lines) - 1 > max_headers:
        return 431
    words = lines[0].rstrip(b"\r").split(b" ")
    if len(words) != 3 or re.fullmatch(rb"HTTP/1\.[0-9]", words[2]) is None:
        return 400
    try:
        method, target = words[0].decode("ascii"), words[1].decode("ascii")
    except UnicodeDecodeError:
        return 400
    # a header's name ends at its colon (no space before it), and a line never continues the
    # one before (obsolete folding): else a Host the check below does not see may be meant
    if any(_MALFORMED_HEADER.match(line) for line in lines[1:]):
        return 400
    hosts = [line.split(b":", 1)[1].strip() for line in lines[1:]
             if line[:5].lower() == b"host:"]
    if len(hosts) > 1 or not hosts and words[2] != b"HTTP/1.0" or hosts == [b""]:
        return 400                   # since 1.1 a request must name its Host
    host = hosts[0].decode("latin-1") if hosts else None
    return method, target.split("?", 1)[0], host


def host_names_of_this_machine():
    """The names a browser may use for this machine's endpoint without DNS rebinding: its own
    host name (short, and .local for mDNS, as raspberrypi.local)."""
    name = socket.gethostname().lower().rstrip(".")
    short = name.split(".", 1)[0]
    return frozenset(item for item in (name, short, short + ".local") if item)


def host_allowed(host, names):
    """Whether a request's Host header (None: not sent) is one this endpoint answers to: an IP
    address (the one it serves on), localhost (and *.localhost), or one of `names`. A page
    from another site that rebinds its own name to this machine sends that name: refused."""
    if host is None:
        return True          # no browser leaves it out (HTTP/1.0 tools may)
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.rstrip(".")
    if _ip_literal(name) is not None:
        return True
    return name == "localhost" or name.endswith(".localhost") or name in names


def _lower_this_threads_priority(steps=10):
    """Linux schedules each thread on its own: the endpoint's thread yields the CPU to the
    monitor's rounds. (Measured at -i 0.1 with 1000 targets and a client scraping without
    pause: 9 to 24 rounds of 40 came when each scrape rendered the page, 32 with it rendered
    once per round, 35 to 40 with this as well.)"""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except (AttributeError, OSError):
        pass


class _HttpClient:
    __slots__ = ("sock", "deadline", "received", "answer")

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline      # whole request, then again the whole answer, by this time
        self.received = bytearray()   # the request head so far; None once it is answered
        self.answer = None            # memoryview of what is still to be sent


class HttpEndpoint:
    """A small HTTP/1.0 server in ONE thread, for GET and HEAD of the paths in `routes`.

    `routes` maps a path to a function returning (status, content type, body bytes). Bounded by
    construction: at most `max_connections` clients at a time (one more takes the place of a
    client that has its whole answer, else of the one that has waited longest for its request
    to come in full, which is answered 503; with none such, the newcomer is), each has `timeout`
    seconds for its whole request head however slowly it trickles in and as long again to take
    the answer, and no more than METRICS_REQUEST_LIMIT bytes of a request are kept. So it holds
    at most max_connections + 5 file descriptors and no thread per client. Call start(), and
    shutdown() then server_close() to stop.
    """

    def __init__(self, address, port, routes, timeout, max_connections=METRICS_MAX_CONNECTIONS,
                 clock=time.monotonic, host_names=frozenset()):
        self.routes = routes
        self.host_names = host_names   # names besides addresses and localhost (host_allowed)
        self.timeout = timeout
        self.max_connections = max_connections
        self.clock = clock
        self.clients = {}              # socket -> _HttpClient
        self._paused_until = None      # accept() found no free descriptor: try again then
        self._stopping = False
        self._thread = None
        self._selector = self._wake_fds = None
        self._listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((address, port))
            self._listener.listen(2 * max_connections)
            self._listener.setblocking(False)
            self.server_address = self._listener.getsockname()
            self.server_port = self.server_address[1]
            self._wake_fds = os.pipe()
            for fd in self._wake_fds:
                os.set_blocking(fd, False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._wake_fds[0], selectors.EVENT_READ, "wake")
            self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        except BaseException:
            self.server_close()
            raise

    def start(self):
        self._thread = threading.Thread(target=self._serve, name="metrics", daemon=True)
        self._thread.start()
        return self

    def shutdown(self):
        self._stopping = True
        if self._thread is not None:
            os.write(self._wake_fds[1], b"\0")
            self._thread.join(5.0)
            self._thread = None

    def server_close(self):
        if self._thread is not None:
            self.shutdown()
        for client in list(self.clients.values()):
            self._close(client)
        if self._selector is not None:
            self._selector.close()
        self._listener.close()
        for fd in self._wake_fds or ():
            os.close(fd)
        self._selector = self._wake_fds = None

    # -- the loop: one select for every client, with the nearest deadline as its timeout -------
    def _serve(self):
        _lower_this_threads_priority()
        while not self._stopping:
            for key, events in self._selector.select(self._wait_time(self.clock())):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    _drain(key.fd)
                else:
                    self._serve_client(key.data, events)
            now = self.clock()
            for client in [c for c in self.clients.values() if c.deadline <= now]:
                # too slow, however many bytes it sent; an unsent answer is dropped with a reset
                self._close(client, abort=client.answer is not None)
            if self._paused_until is not None and now >= self._paused_until:
                self._paused_until = None
                self._selector.register(self._listener, selectors.EVENT_READ, "accept")

    def _wait_time(self, now):
        times = [client.deadline for client in self.clients.values()]
        if self._paused_until is not None:
            times.append(self._paused_until)
        return max(0.0, min(times) - now) if times else None

    def _accept(self):
        try:
            sock = self._listener.accept()[0]
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError:     # EMFILE, ENFILE, ENOBUFS: the listener stays readable; do not spin
            self._selector.unregister(self._listener)
            self._paused_until = self.clock() + METRICS_ACCEPT_PAUSE
            return
        sock.setblocking(False)
        if len(self.clients) >= self.max_connections:
            # idle connections must not lock a scraper out: a client that has its whole answer,
            # else the one that has waited longest for its request to come in full, makes room
            # (with a 503); while every client is being sent its answer, the newcomer gets it
            clients = self.clients.values()
            answered = [client for client in clients
                        if client.received is None and client.answer is None]
            waiting = [client for client in clients if client.received is not None]
            if answered:
                self._close(answered[0])
            elif waiting:
                self._close(min(waiting, key=lambda client: client.deadline), refuse=True)
            else:
                self._refuse(sock)
                return
        client = _HttpClient(sock, self.clock() + self.timeout)
        self.clients[sock] = client
        self._selector.register(sock, selectors.EVENT_READ, client)

    def _close(self, client, abort=False, refuse=False):
        self.clients.pop(client.sock, None)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        if abort:       # linger on, for 0 s: the kernel resets instead of sending on for minutes
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if refuse:
            self._refuse(client.sock)
        else:
            client.sock.close()

    @staticmethod
    def _refuse(sock):
        try:
            sock.send(HTTP_BUSY)
        except OSError:
            pass
        sock.close()

    def _serve_client(self, client, events):
        try:
            if events & selectors.EVENT_READ:
                self._receive(client)
            if client.answer is not None and client.sock.fileno() >= 0:
                self._send(client)
        except Exception:       # a bug or a broken route: show it, drop only this client
            import traceback
            try:
                traceback.print_exc()
            except (OSError, ValueError):
                pass
            self._close(client)

    def _receive(self, client):
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
        elif client.received is not None:     # after the answer, what comes is dropped
            client.received += data
            head = http_request_head(client.received)
            if isinstance(head, int):
                self._reply(client, head, "text/plain; charset=utf-8",
                            b"%d %s\n" % (head, HTTP_REASONS[head].encode("ascii")))
            elif head is not None:
                self._route(client, *head)

    def _route(self, client, method, path, host):
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            self._reply(client, 405, "text/plain; charset=utf-8", b"405 Method Not Allowed\n",
                        extra="Allow: GET, HEAD\r\n")
        elif not host_allowed(host, self.host_names):
            self._reply(client, 421, "text/plain; charset=utf-8", b"421 Misdirected Request: "
                        b"ask by this machine's address, its name or localhost\n", head_only)
        elif path not in self.routes:
            self._reply(client, 404, "text/plain; charset=utf-8", b"404 Not Found\n", head_only)
        else:
            self._reply(client, *self.routes[path](), head_only=head_only)

    def _reply(self, client, status, content_type, body, head_only=False, extra=""):
        if content_type.startswith("text/html"):
            extra += HTTP_PAGE_HEADERS
        head = ("HTTP/1.0 %d %s\r\nServer: pyNetConnMon\r\nDate: %s\r\nContent-Type: %s\r\n"
                "Content-Length: %d\r\n%s%sConnection: close\r\n\r\n"
                % (status, HTTP_REASONS[status],
                   time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()), content_type,
                   len(body), HTTP_HEADERS, extra)).encode("latin-1")
        client.received = None
        client.answer = memoryview(head if head_only else head + body)
        client.deadline = self.clock() + self.timeout

    def _send(self, client):
        try:
            sent = client.sock.send(client.answer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(client)
            return
        client.answer = client.answer[sent:] or None
        if client.answer is not None:
            self._selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
            return
        try:        # all sent: say so, and read (and drop) until the client closes or its time
            #         is up
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(client)
            return
        self._selector.modify(client.sock, selectors.EVENT_READ, client)


def check_free_descriptors(needed, what):
    """Raises MonitorError unless `needed` more files can be opened under RLIMIT_NOFILE; the soft
    limit is raised to the hard one first when that is needed. Returns how many more can be
    opened; None where it cannot tell (then no check) or without a limit."""
    try:
        in_use = len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError):
        return None
    if soft != resource.RLIM_INFINITY and soft - in_use < needed:
        _raise_file_limit()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    if soft - in_use < needed:
        raise MonitorError("%s: the open-file limit (ulimit -n) is %d and %d files are open; %d "
                           "more are needed: raise the limit to at least %d (ulimit -n %d, or "
                           "LimitNOFILE= in a systemd unit)" % (what, soft, in_use, needed,
                                                              in_use + needed, in_use + needed))
    return soft - in_use


def check_descriptors_for_probes(targets, gateway, reserve=PROBE_FD_RESERVE):
    """Raises MonitorError unless a round's connects (one per target given by address, two for
    a name: a dual-stack host's usual two addresses; one to the router unless --gateway none)
    and `reserve` files besides fit under RLIMIT_NOFILE: a connect refused its socket (EMFILE)
    would read as its target failing. Returns how many connects may be in flight while the
    network is down (see Prober)."""
    sockets = sum(1 if target.is_literal else 2 for target in targets) + (gateway != "none")
    free = check_free_descriptors(sockets + reserve, "cannot watch %s" % plural(
        len(targets), "target"))
    return DOWN_CONNECTS_LIMIT if free is None else max(
        sockets, min(DOWN_CONNECTS_LIMIT, free - reserve))


def start_metrics_server(address, port, board, request_timeout=METRICS_REQUEST_TIMEOUT):
    """Serves the board at http://ADDRESS:PORT/metrics from one daemon thread; returns the server.

    Raises MonitorError when the port cannot be bound, or when the open-file limit would not leave
    METRICS_FD_RESERVE descriptors to the probes, the state file and the reports beside the ones
    the endpoint may hold. Call shutdown() and server_close() to stop.
    """
    def metrics_page():
        return 200, METRICS_CONTENT_TYPE, board.rendered(
            lambda snapshot: render_metrics(snapshot).encode("utf-8"))

    where = "cannot serve metrics on %s" % Target(address, port).label
    check_free_descriptors(METRICS_MAX_CONNECTIONS + 5 + METRICS_FD_RESERVE, where)
    try:
        server = HttpEndpoint(address, port, {"/metrics": metrics_page,
                                              "/": lambda: status_page(board)}, request_timeout,
                              host_names=host_names_of_this_machine())
    except OSError as error:
        raise MonitorError("%s: %s" % (where, _one_line(error.strerror or error)))
    return server.start()


# ---------------------------------------------------------------------------------------------
# Ping URL (dead man's switch for Healthchecks, Uptime Kuma push, ...): one request at a time
# ---------------------------------------------------------------------------------------------


def ping_url_problem(url):
    """None if `url` can be pinged, else why not, for a usage error. The reason never quotes the
    URL: its user:password@, path and query are secrets (a Healthchecks URL's path is its key)."""
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127
           for character in url):
        return "the URL contains spaces or control characters"
    if not url.isascii():
        return "the URL contains characters that are not ASCII: percent-encode them"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "not a valid URL"
    try:
        parts.port
    except ValueError:
        return "the URL's port is not a number from 0 to 65535"
    if parts.scheme.lower() not in ("http", "https"):
        return "not an http:// or https:// URL"
    if not parts.hostname:
        return "the URL has no host"
    return None


def ping_url_for_people(url):
    """scheme://host:port/... without the path: ping URLs carry secrets, keep them out of logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]     # drop user:password@
    return "%s://%s/..." % (parts.scheme.lower(), host)


def ping_request_parts(url):
    """(the URL without user:password@, the Authorization header for them or None): urllib
    would take user:password@ for part of the host name and never reach the server."""
    netloc = urllib.parse.urlsplit(url).netloc
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return url, None
    start = url.index("//") + 2                # the netloc follows scheme:// as it was written
    user, _, password = userinfo.partition(":")
    import base64
    credentials = ("%s:%s" % (urllib.parse.unquote(user),
                              urllib.parse.unquote(password))).encode("utf-8")
    authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return url[:start] + host + url[start + len(netloc):], authorization


def describe_ping_error(error):
    """A short reason, without text the server chose (it may echo the request, secrets and
    all): an HTTP status by its standard phrase."""
    import http.client
    import urllib.error
    if isinstance(error, urllib.error.HTTPError):
        if error.reason == PING_REDIRECT_REFUSED:         # our own words: no server's text
            return "HTTP %d %s" % (error.code, error.reason)
        try:
            return "HTTP %d %s" % (error.code, http.client.responses[error.code])
        except KeyError:
            return "HTTP %d" % error.code
    if isinstance(error, (http.client.BadStatusLine, http.client.UnknownProtocol)):
        return "the answer is not HTTP"
    if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, str):
        error = error.reason
    if isinstance(error, socket.timeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, urllib.error.URLError):
        return _one_line(error.reason)
    return "%s: %s" % (type(error).__name__, _one_line(error))


def ping_proxy(url):
    """host:port of the proxy (from http_proxy, https_proxy, no_proxy) a ping to `url` goes
    through, or None: a dead proxy fails like a dead endpoint, and the reason must say which."""
    import urllib.request
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme.lower())
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    where = urllib.parse.urlsplit(proxy if "//" in proxy else "//" + proxy).netloc
    return where.rpartition("@")[2] or None         # without user:password@


class PingSender:
    """Requests the ping URL in a thread, so a slow endpoint never stalls the rounds. Only
    http and https (redirects too); a ping running longer than `limit` is cut (cancel())."""

    def __init__(self, url, timeout, on_done):
        import urllib.request      # here, not in the thread: the first ping must not wait for it
        self._urllib = urllib.request
        self.url = url
        self.timeout = timeout
        self.limit = max(PING_LIMIT, 4 * timeout)
        self.proxy = ping_proxy(url)
        self.jobs = OneJobAtATime("ping", on_done, self._describe)
        self.connection = None        # the HTTP connection of the ping in flight, and its
        self.sock = None              # socket (urllib lets go of it once the headers are in)
        self.cut = False              # ... cut by cancel()
        self._opener = self._make_opener()

    @property
    def busy(self):
        return self.jobs.busy

    def submit(self):
        self.connection, self.sock, self.cut = None, None, False
        self.jobs.submit(self._request)

    def cancel(self):
        """Cuts the ping in flight: it fails now, and the next one may go out."""
        self.cut = True
        sock = self.sock or getattr(self.connection, "sock", None)    # or its TLS handshake's
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _describe(self, error):
        reason = "no complete answer within %s" % human_duration(self.limit) if self.cut \
            else describe_ping_error(error)
        return reason if self.proxy is None else "%s (through the proxy %s)" % (reason, self.proxy)

    def _request(self):
        url, authorization = ping_request_parts(self.url)
        request = self._urllib.Request(url, headers={"User-Agent": "pyNetConnMon/" + VERSION})
        if authorization is not None:      # unredirected: a redirect to elsewhere gets no password
            request.add_unredirected_header("Authorization", authorization)
        with self._opener.open(request, timeout=self.timeout) as response:
            response.read(PING_RESPONSE_LIMIT)
        if self.cut:                       # the answer read so far was cut short
            raise OSError("cut")

    def _make_opener(self):
        """urllib's opener for http and https only, whose connections this sender can cut, and
        whose redirects keep user:password for the same scheme, host and port (as curl does)."""
        request, sender = self._urllib, self

        def watched(connection_class):
            class Watched(connection_class):
                def connect(self):
                    sender.connection = self
                    if sender.cut:             # cut while its name was being looked up
                        raise OSError("cut")
                    super().connect()
                    sender.sock = self.sock    # the answer's body is read from it later
            return Watched

        class HTTP(request.HTTPHandler):
            def do_open(self, http_class, req, **kwargs):
                return super().do_open(watched(http_class), req, **kwargs)

        class Redirects(request.HTTPRedirectHandler):
            def http_error_302(self, req, fp, code, msg, headers):
                location = headers.get("location") or headers.get("uri") or ""
                if urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, location)) \
                        .scheme.lower() not in ("http", "https"):
                    from urllib.error import HTTPError   # the reason leaves out its URL
                    raise HTTPError(req.full_url, code, PING_REDIRECT_REFUSED, headers, fp)
                return super().http_error_302(req, fp, code, msg, headers)

            http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

            def redirect_request(self, req, fp, code, msg, headers, newurl):
                old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
                redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
                authorization = req.unredirected_hdrs.get("Authorization")
                if redirected is not None and authorization is not None and \
                        (old.scheme.lower(), old.hostname, old.port) == \
                        (new.scheme.lower(), new.hostname, new.port):
                    redirected.add_unredirected_header("Authorization", authorization)
                return redirected

        handlers = [request.ProxyHandler(), request.UnknownHandler(), HTTP(),
                    request.HTTPDefaultErrorHandler(), Redirects(), request.HTTPErrorProcessor()]
        if hasattr(request, "HTTPSHandler"):            # Python built without ssl: http only
            class HTTPS(request.HTTPSHandler):
                def do_open(self, http_class, req, **kwargs):
                    return super().do_open(watched(http_class), req, **kwargs)
            handlers.append(HTTPS())
        opener = request.OpenerDirector()
        for handler in handlers:
            opener.add_handler(handler)
        return opener

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
        if self.sender.busy:
            if now - self.schedule.last_started >= self.sender.limit:
                self.sender.cancel()
        elif self.schedule.due(now, network_up):
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
        self._poller = select.poll()
        self._poller.register(self.read_fd, select.POLLIN)

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
            self.stop_signal = signal.Signals(self._first_stop_signal(signum)).name

    def _first_stop_signal(self, signum):
        """The stop signal that came first. Signals that arrive during one long call (parsing
        a large state file) have their handlers run afterwards in the order of their numbers,
        SIGINT before SIGTERM; the wakeup fd got their numbers as they arrived."""
        try:
            pending = os.read(self.read_fd, 4096)
        except OSError:
            return signum
        if pending:
            self.wake()          # what was read was a wake-up too
        for number in pending:
            if number in (signal.SIGTERM, signal.SIGINT):
                return number
        return signum

    def _on_hangup(self, signum, frame):
        self.reopen_requested = True

    def wake(self):
        try:
            os.write(self.write_fd, b"\0")
        except (BlockingIOError, OSError):
            pass

    def wait(self, seconds):
        """Sleep up to `seconds`, returning early when woken."""
        if self._poller.poll(min(max(0.0, seconds), MAX_WAIT) * 1000.0):
            _drain(self.read_fd)

    def close(self):
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
        self.gateway_told = False   # a gateway now line was printed (or needed none)

    def started(self, wall, state_path):
        settings = self.settings
        down_interval = settings.down_probe_interval
        self.log.write("start", wall, version=VERSION, targets=settings.target_labels,
                       interval=settings.interval, down_interval=down_interval,
                       timeout=settings.timeout, min_interruption=settings.min_interruption,
                       backoff_min=settings.backoff_min, backoff_max=settings.backoff_max,
                       backoff_step=settings.backoff_step, pid=os.getpid(), state_file=state_path,
                       gateway=gateway_setting(settings.gateway), slow_ms=settings.slow_ms,
                       stats_interval=settings.stats_interval, host=socket.gethostname(),
                       slow_factor=settings.slow_times, loss_percent=settings.loss)
        self.console.info("started pyNetConnMon %s (pid %d): watching %s every %g s%s, timeout %g "
                          "s, interruptions under %g s ignored%s" % (
                              VERSION, os.getpid(), ", ".join(settings.target_labels),
                              settings.interval, " (%g s while down)" % down_interval
                              if down_interval < settings.interval else "", settings.timeout,
                              settings.min_interruption,
                              "; state file %s" % state_path if state_path else ""), wall)
        if settings.gateway == "none":
            self.console.info("gateway not probed (--gateway none): a cause other than local "
                              "reads unknown", wall)
        elif router_not_needed(settings.gateway, settings.targets):
            self.console.info("gateway not probed: every target is on this machine, so no router "
                              "is on the way and an interruption's cause reads unknown", wall)
        else:
            self.console.info("gateway (router) %s, probed on TCP port %d in every round to tell "
                              "where an interruption broke" % (
                                  "from the routing table" if settings.gateway == "auto"
                                  else settings.gateway.label,
                                  GATEWAY_PORT if settings.gateway == "auto"
                                  else settings.gateway.port), wall)
        if settings.slow is None and not settings.slow_ms:
            self.console.info("slow periods: a connect %gx slower than usual counts as slow; "
                              "the default --slow of %s does not apply with -t %g, where such "
                              "a connect is a timeout (give a longer -t, or --slow below %g)"
                              % (settings.slow_times, milliseconds(DEFAULT_SLOW_MS),
                                 settings.timeout, settings.timeout * 1000), wall)

    @staticmethod
    def _window(outage):
        """The event fields that say when an outage began: the middle of its window, and the
        window itself (start_after is null when no probe had got through since the start)."""
        return dict(start=iso_time(outage.start_wall),
                    start_after=outage.after and iso_time(outage.after[1]),
                    start_before=iso_time(outage.before[1]))

    def names_unresolved(self, wall, hosts):
        self.console.warning(names_unresolved_warning(hosts, since_start=True), wall)

    def router_echo(self, wall, suspect, router_label):
        label, median, router_median = suspect
        self.console.warning(router_echo_warning(label, median, router_label, router_median), wall)

    def gateway_changed(self, wall, label):
        self.log.write("gateway_changed", wall, gateway=label)
        given = self.settings.gateway
        if isinstance(given, Target) and given.label == label and not self.gateway_told:
            self.gateway_told = True     # the start line named it already
            return
        self.gateway_told = True
        self.console.info("gateway now %s" % (label or "none (no default route with a gateway)"),
                          wall)

    def down(self, wall, outage, detail=""):
        self.log.write("down", wall, **self._window(outage), reason=outage.reason,
                       targets=outage.targets, cause=outage.cause)
        self.console.info("DOWN %s (%s: %s)" % (
            ", ".join("%s %s" % item for item in outage.targets.items()), outage.cause, detail),
            wall)

    def up(self, wall, outage, duration, ignored, bounds):
        shortest, longest = bounds
        self.log.write("up", wall, **self._window(outage), end=iso_time(wall),
                       duration=round(duration, 3), duration_min=round(shortest, 3),
                       duration_max=None if longest is None else round(longest, 3),
                       ignored=ignored, cause=outage.cause)
        if ignored:
            # "shorter" only when even its longest possible length is; else "probably shorter"
            minimum = self.settings.min_interruption
            surely = longest is not None and longest < minimum
            lasted = "" if longest is None else " (it lasted %s to %s)" % (
                human_duration(shortest), human_duration(longest))
            self.console.info("UP after %s: %sshorter than %g s, ignored%s" % (
                human_duration(duration), "" if surely else "probably ", minimum, lasted), wall)
        else:
            self.console.info("UP after %s (down since %s, %s; %s: %s)" % (
                human_duration(duration), local_time(outage.start_wall), outage.reason,
                outage.cause, CAUSE_WORDS.get(outage.cause, "")), wall)

    def partial_down(self, wall, key, reason, names):
        kind, what = key
        if kind == "target":
            self.log.write("target_down", wall, target=what, reason=reason)
        elif kind == "family":
            self.log.write("family_down", wall, family=what, reason=reason)
        else:
            self.log.write("dns_down", wall, targets=names, reason=reason)
        self.console.info("PARTIAL DOWN %s (%s); the connection stays up" % (
            partial_what(key), reason), wall)

    def partial_up(self, wall, key, outage, duration, ignored, names):
        kind, what = key
        times = dict(start=iso_time(outage.start_wall), end=iso_time(wall),
                     duration=round(duration, 3), ignored=ignored)
        if kind == "target":
            self.log.write("target_up", wall, target=what, **times)
        elif kind == "family":
            self.log.write("family_up", wall, family=what, **times)
        else:
            self.log.write("dns_up", wall, targets=names, **times)
        self.console.info("PARTIAL UP %s after %s%s" % (
            partial_what(key), human_duration(duration),
            ": shorter than %g s, ignored" % self.settings.min_interruption if ignored else ""),
            wall)

    def slow(self, wall, connect, label, usual=None):
        self.log.write("slow", wall, start=iso_time(wall), connect_ms=_ms(connect * 1000.0))
        self.console.info("SLOW the fastest connect took %s (%s%s)" % (
            milliseconds(connect * 1000.0), label, "" if not usual else
            ", %.1f times its usual %s" % (connect / usual, milliseconds(usual * 1000.0))), wall)

    def lossy(self, wall, lossy, targets):
        percent = loss_percent(lossy.lost, lossy.sent)
        self.log.write("lossy", wall, start=iso_time(lossy.start_wall), loss_percent=percent,
                       sent=lossy.sent, lost=lossy.lost, targets=targets)
        self.console.info("LOSSY %.1f %% of %s lost since %s" % (
            percent, plural(lossy.sent, "connect attempt"), local_time(lossy.start_wall)), wall)

    def lossy_end(self, wall, ended):
        lossy = ended.period
        self.log.write("lossy_end", wall, start=iso_time(lossy.start_wall),
                       end=iso_time(ended.end), duration=round(ended.duration, 3),
                       ignored=ended.ignored, loss_percent=ended.loss_percent,
                       sent=ended.sent, lost=ended.lost, targets=ended.targets)
        if ended.ignored:
            self.console.info("LOSSY ENDED after %s: shorter than %g s, ignored" % (
                human_duration(ended.duration), self.settings.min_interruption), wall)
        else:
            self.console.info("LOSSY ENDED after %s%s (lossy since %s, %s of %s lost)" % (
                human_duration(ended.duration), ", when the interruption began"
                if ended.by_interruption else "", local_time(lossy.start_wall),
                "-" if ended.loss_percent is None else "%.1f %%" % ended.loss_percent,
                plural(ended.sent, "connect attempt")), wall)

    def slow_end(self, ended):
        slow, wall, duration, ignored = ended.period, ended.end, ended.duration, ended.ignored
        by_interruption = ended.by_interruption
        median, maximum = _ms(slow.times.percentile(0.5)), _ms(slow.times.maximum)
        self.log.write("slow_end", wall, start=iso_time(slow.start_wall), end=iso_time(wall),
                       duration=round(duration, 3), ignored=ignored, median_ms=median,
                       max_ms=maximum)
        if ignored:
            self.console.info("SLOW ENDED after %s: shorter than %g s, ignored"
                              % (human_duration(duration), self.settings.min_interruption), wall)
        else:
            self.console.info("SLOW ENDED after %s%s (slow since %s, median %s, max %s)" % (
                human_duration(duration), ", when the interruption began" if by_interruption
                else "", local_time(slow.start_wall), milliseconds(median),
                milliseconds(maximum)), wall)

    def stats(self, start, end, figures):
        self.log.write("stats", end, start=iso_time(start), targets=figures)   # ends at `time`

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

    def gap_waiting(self, wall, heartbeat):
        self.console.warning("the previous run did not stop cleanly, but this machine's clock "
                             "is behind its last heartbeat (%s): the time it was not running is "
                             "reported as a gap once the clock is set" % local_time(heartbeat),
                             wall)

    def gap_not_measured(self, wall, heartbeat):
        self.console.warning("the clock was never set past the previous run's last heartbeat "
                             "(%s): the time it was not running could not be measured"
                             % local_time(heartbeat), wall)

    def still_to_report(self, wall, count, partial=0, slow=0, lossy=0, gaps=0):
        self.console.info("%s from the previous run still to report"
                          % pending_text(count, partial, slow, lossy, gaps), wall)

    def kept_for_later(self, wall, count, partial=0, slow=0, lossy=0, gaps=0):
        """--no-mail with reports left by earlier runs: they stay in the state file."""
        self.console.warning("%s from earlier runs still to report: not sent with --no-mail, "
                             "kept for the next run that sends reports (--discard-pending drops "
                             "them)" % pending_text(count, partial, slow, lossy, gaps), wall)

    def report_not_set_up(self, problem):
        self.console.warning("report pending, but %s" % problem)

    def report_sent(self, wall, contents, via, next_wait):
        self.log.write("report_sent", wall, interruptions=contents.interruptions,
                       partial_outages=contents.partial, slow_periods=contents.slow,
                       lossy_periods=contents.lossy, via=via, next_wait=next_wait)
        told = [(contents.interruptions - contents.gaps, "interruption"),
                (contents.gaps, "gap"),
                (contents.slow, "slow period"), (contents.lossy, "lossy period"),
                (contents.partial, "partial outage")]
        self.console.info("report sent (%s) by %s; next report no sooner than in %s" % (
            ", ".join(plural(count, what) for count, what in told if count) or
            plural(0, "interruption"), via, human_duration(next_wait)), wall)

    def report_failed(self, wall, contents, via, reason, stopping=False):
        """A delivery failed; at a stop (cut short by it) the retry is at the next start."""
        retry = {} if stopping else {"retry_in": self.settings.backoff_min}
        self.log.write("report_failed", wall, interruptions=contents.interruptions,
                       partial_outages=contents.partial, slow_periods=contents.slow,
                       lossy_periods=contents.lossy, via=via, reason=reason, **retry)
        self.console.warning("report not delivered: %s; %s" % (reason, (
            "the monitor is stopping: it waits in the state file for the next start" if stopping
            else "retrying in %s" % human_duration(retry["retry_in"]))), wall)

    def ping(self, wall, news, failure, where):
        if news == "failed":
            self.log.write("ping_failed", wall, url=where, reason=failure)
            self.console.warning("ping to %s failed: %s; trying again every %s, quietly until it "
                                 "works" % (where, failure,
                                            human_duration(self.settings.ping_interval)), wall)
        else:
            self.log.write("ping_ok", wall, url=where)
            self.console.info("ping ok again (%s)" % where, wall)

    def held_up(self, wall, seconds):
        self.log.write("held_up", wall, start=iso_time(wall - seconds),
                       duration=round(seconds, 3))
        self.console.warning("the monitor was held up for %s (its process was stopped, or the "
                             "machine too busy to run it): nothing was watched since %s"
                             % (human_duration(seconds), local_time(wall - seconds)), wall)

    def clock_stepped(self, wall, step):
        self.log.write("clock_step", wall, step=round(step, 3))
        self.console.info("clock set %s by %s (NTP, by hand or a resume from suspend); what is "
                          "still open moved with it" % ("forward" if step > 0 else "back",
                                                        human_duration(abs(step))), wall)

    def log_reopened(self, wall, error=None):
        if error is not None:
            self.console.warning("%s; still writing to the old file" % error, wall)
            return
        self.log.write("log_reopened", wall)
        self.console.info("event log reopened", wall)

    def state_not_saved(self, path, error, stopping=False):
        self.console.error("cannot write state file %s: %s; %s" % (
            path, _one_line(error), "what changed since its last save is lost" if stopping else
            "monitoring goes on, and the file is tried again at every heartbeat"))

    def state_saved_again(self, path):
        self.console.warning("state file %s is writable again" % path)

    def stopped(self, wall, signal_name, down_since, pending, cause=None, partial=0, slow=0,
                lossy=0, gaps=0):
        fields = {"signal": signal_name}
        if down_since is not None:
            fields["down_since"] = iso_time(down_since)
            fields["cause"] = cause
        self.log.write("stop", wall, **fields)
        self.console.info("stopped (%s)%s" % (signal_name, (
            "; %s still to report" % pending_text(pending, partial, slow, lossy, gaps))
            if pending or partial or slow or lossy else ""), wall)


class SystemClock:
    """The clocks the monitor reads: monotonic for the grid and durations, wall for people."""

    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    @staticmethod
    def boot():
        """(this boot's id, seconds since it began, suspended time included), or None where the
        system does not tell (not Linux)."""
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as stream:
                return stream.read(100).strip(), time.clock_gettime(time.CLOCK_BOOTTIME)
        except (OSError, AttributeError, ValueError):
            return None


class RoundInterpreter:
    """What the rounds mean: interruptions and their cause, partial outages, slow and lossy
    periods and connect-time statistics. It holds the trackers; for each round it tells the
    announcer what changed and hands what waits for a report to `record`. No loop, no state
    file, no thread. `syn_schedule`: when this kernel sends a lost SYN again (read_syn_schedule)."""

    def __init__(self, settings, announcer, record, surroundings=None,
                 syn_schedule=RESENT_SYN_AFTER):
        self.settings = settings
        self.say = announcer
        self.record = record             # record(**interruption): a report will tell of it
        self.surroundings = surroundings  # routing table, links, gateway; None: causes unknown
        self.tracker = InterruptionTracker(settings.min_interruption)
        self.judge = CauseJudge(no_router_words(settings.gateway, settings.targets))
        self.router_echo = RouterEcho()
        self.partials = PartialOutages(settings.targets, settings.min_interruption)
        self.usual = UsualTimes()
        watched = settings.slow_ms or settings.slow_times
        self.slow_rule = (SlowRule(settings.slow_ms, settings.slow_times, self.usual.usual)
                          if watched else None)
        self.slow = SlowTracker(settings.slow_ms, settings.min_interruption) if watched else None
        self.loss = (LossWindow(settings.target_labels, settings.loss, settings.min_interruption)
                     if settings.loss else None)
        self.syns = SynCounter(settings.timeout, syn_schedule) if settings.loss else None
        self.round_syns = None           # what SynCounter made of the latest round, or None
        self.clean_syns = (len(settings.targets), 0, None)    # ... of one where all answered
        self.first_resend = syn_schedule[0] - RESENT_SYN_MARGIN    # at once (see SynCounter)
        self.syn_schedule = syn_schedule
        self.stats = (StatisticsWindow(settings.stats_interval, syn_schedule)
                      if settings.stats_interval else None)
        self.jitter = ()                 # ((label, s), ...) of the latest statistics window
        self.counters = MetricsCounters()
        # per-target connect counts feed only /metrics: not kept when nothing serves them
        self.count_connects = settings.metrics_port is not None
        self.last_results = ()
        self.names_unseen = {target.label for target in settings.targets
                             if not target.is_literal}   # names not resolved since the start:
        #                                  the first failure of one says how it is spelled
        self.last_gateway = None         # the gateway's ProbeResult in the last round, or None
        self.last_round = None           # (monotonic start, wall clock at its end)

    @property
    def is_down(self):
        return self.tracker.is_down

    def clock_stepped(self, step, wall):
        """The wall clock was set `step` s forward (back if negative), and reads `wall` now. What
        is still open moves with it, so that it ends on the clock it is said to begin on; what
        ended before stays as it was logged."""
        self.say.clock_stepped(wall, step)
        tracker = self.tracker
        tracker.last_good = _moved(tracker.last_good, step)
        for outage in (tracker.outage, *self.partials.open.values()):
            if outage is not None:
                outage.move(step)
        if self.slow is not None and self.slow.ongoing is not None:
            self.slow.ongoing.start_wall += step
        if self.loss is not None and self.loss.lossy is not None:
            self.loss.lossy.start_wall += step
            self.loss.lossy.end = _moved(self.loss.lossy.end, step)
        if self.stats is not None:
            self.stats.start = _moved(self.stats.start, step)
        self.last_round = _moved(self.last_round, step)

    def round(self, results, mono, wall, gateway=None, completed=None, router_needed=True):
        """Takes one round's results (the targets', and `gateway`: its ProbeResult or None);
        whether something happened that the state file must keep."""
        self.last_results = results
        self.last_round = (mono, wall if completed is None else completed)
        if results and not results[0].tried:
            self.counters.rounds_not_started += 1
        round_mono, round_wall = mono, wall
        first_answer, target_reasons = None, {}
        if self.names_unseen:
            self._names_seen(results, wall)
        for result in results:
            if not result.up:
                target_reasons[result.target.label] = result.reason
                continue
            answered = (result.answered if result.answered is not None
                        else mono + (result.connect_time or 0.0))
            if first_answer is None or answered < first_answer:
                first_answer = answered
        # what failed alone: nothing in the usual round, where every target answered
        partial_changes = (self.partials.observe(results, mono, wall)
                           if target_reasons or self.partials.open else ())
        # a partial outage that counts is not loss too, unless the line is lossy already: there
        # a target's SYNs lost in a row are as likely as any, and left out they bias the loss
        if self.syns is not None and self.loss.lossy is None:
            for change in partial_changes:
                if change.kind == "up" and not change.ignored:
                    self.syns.forget(self.partials.labels(change.key))
        save = self._measure(results, mono, wall)
        if not self.router_echo.done:
            for suspect in self.router_echo.observe(results, gateway) or ():
                self.say.router_echo(wall, suspect, gateway.target.label)
        first_reason = next(iter(target_reasons.values())) if target_reasons else None
        network_up = first_answer is not None
        cause, detail = self._where_it_broke(network_up, gateway, target_reasons, wall,
                                             router_needed)
        # a round that ends an interruption tells it first: what still fails then fails while
        # the connection is up again
        ends_outage = network_up and self.tracker.is_down
        if not ends_outage:
            for change in partial_changes:
                self._partial_change(change, wall)
        if network_up:
            # The connect that shows the network up may have got through only on a SYN the
            # kernel resent (1 s, 3 s ... into the round), or in a later round than its own:
            # until it did, the network was not shown up.
            back = first_answer - mono
            mono, wall = mono + back, wall + back
        transition = self.tracker.observe(network_up, mono, wall, first_reason, target_reasons,
                                          cause)
        outage = self.tracker.outage
        if outage is not None and counts_as_interruption(self.tracker.ongoing_duration(mono),
                                                         self.settings.min_interruption):
            save = self._interrupted(outage, wall) or save
        loss = self.loss
        if loss is not None and not (   # a usual round in a window of usual rounds: no change
                transition is None and self.round_syns is self.clean_syns and loss.settled):
            save = self._lossy(network_up, transition, round_mono, round_wall) or save
        if transition is not None:
            self._transition(transition, mono, wall, detail)
            save = True
        if ends_outage:
            for change in partial_changes:
                self._partial_change(change, round_wall)
        return save

    def _transition(self, transition, mono, wall, detail):
        """Tells and records the interruption that began or ended in this round (`detail`: the
        plain words of where it broke)."""
        outage = transition.outage
        if transition.kind == "down":
            self.say.down(wall, outage, detail)
        elif transition.kind == "up":
            duration, ignored = transition.duration, transition.ignored
            if not ignored:              # if it came to count between the last two rounds
                self._interrupted(outage, wall)
            self.counters.interruption_ended(duration, ignored, outage.cause)
            self.say.up(wall, outage, duration, ignored, outage.duration_bounds(mono))
            if not ignored:
                self.record(start=outage.start_wall, end=wall, duration=duration,
                            reason=outage.reason, targets=self.settings.target_labels,
                            cause=outage.cause)

    def _names_seen(self, results, wall):
        """A name that has not resolved since the start may be misspelled: its first failure
        to resolve says so, once; one that resolved (or failed otherwise) is known good."""
        unresolved = []
        for result in results:
            label = result.target.label
            if label in self.names_unseen:
                self.names_unseen.discard(label)
                if not result.up and result.reason == "dns":
                    unresolved.append(result.target.host)
        if unresolved:                   # one line: at boot, before the network, every name
            self.say.names_unresolved(wall, unresolved)

    def _where_it_broke(self, network_up, gateway, target_reasons, wall, router_needed=True):
        """(cause, plain words) for a round in which no target answered, else (None, None).
        Tells the judge every round which gateway is in use and whether it answered, and says
        when it changed. None is in use while every target's address is on this machine (a
        name such as localhost): the prober leaves the router out then."""
        self.last_gateway = gateway
        label, answered = self._gateway_in_use(
            gateway, fresh=not network_up and not self.tracker.is_down) if router_needed \
            else (None, None)
        if self.judge.gateway_probed(label, answered, network_up):
            self.say.gateway_changed(wall, label)
        if network_up:
            return None, None
        local = self.surroundings.local_trouble() if self.surroundings is not None else None
        return self.judge.judge(local, answered, target_reasons, ongoing=self.tracker.is_down)

    def _gateway_in_use(self, result, fresh):
        """(the label of the gateway in use, whether it answered in this round: None when the
        round has no outcome of it). The routing table tells which gateway is in use, not the
        round: a round may have no outcome of it (its connects still wait, or the round started
        none) while its route stays. `fresh` (the first failed round): the table is read again
        first, since DHCP may have named another router after the round chose its own, and the
        old one's answer tells nothing of the new."""
        if self.surroundings is None:
            in_use = result.target.label if result is not None else self.judge.gateway
        else:
            found = self.surroundings.gateway(fresh)
            in_use = found.label if found is not None else None
        if result is None or result.target.label != in_use:
            return in_use, None
        return in_use, gateway_answered(result)

    def _partial_change(self, change, wall):
        names, key, outage = self.partials.names, change.key, change.outage
        if change.kind == "down":
            self.say.partial_down(wall, key, outage.reason, names)
            return
        end = wall + change.back
        self.say.partial_up(end, key, outage, change.duration, change.ignored, names)
        if not change.ignored:
            self.record(start=outage.start_wall, end=end, duration=change.duration,
                        reason=outage.reason, targets=self.settings.target_labels,
                        kind="partial", part=partial_what(key))

    def _measure(self, results, mono, wall):
        """Connect times: the metrics, the statistics window, the usual times, the SYNs of the
        round (for the loss window), slow periods. The round that ends an interruption is not
        slow, nor lossy: its connect often waited for a SYN sent again. A connect that waited
        for resent SYNs (first_syn_time) counts toward slowness and jitter with the time it
        would have taken had its first SYN got through: its lost SYNs are loss, and counted as
        such. Returns whether a slow period that counts ended."""
        if self.count_connects:
            self.counters.connect.record(results)
        # one pass: the first answer, and whether every target answered before a resend could
        # have been (the usual round, cheap from here on: -i 0.05 runs 20 a second)
        first, quick, resend = None, True, self.first_resend
        for result in results:
            if result.up:
                seconds = result.connect_time or 0.0
                if first is None or seconds < first:
                    first = seconds
                if seconds >= resend:
                    quick = False
            else:
                quick = False
        times = None if quick else self._first_syn_times(results)
        if self.stats is not None:
            ended = self.stats.add(results, mono, wall, times)
            if ended is not None:
                self.say.stats(*ended)
                self.jitter = tuple((label, figures["jitter_ms"] / 1000.0)
                                    for label, figures in ended[2].items()
                                    if figures["jitter_ms"] is not None)
        down = self.tracker.outage is not None
        syns = self.syns
        if syns is not None:
            self.round_syns = (None if down else self.clean_syns if quick and not syns.runs
                               else syns.count(results, self.usual.baseline))
        if mono >= self.usual.next_sample and (self.slow_rule or syns):
            self.usual.add(results, mono)
        if self.slow is None or first is None or down:
            return False        # a round in which no target answered: see _interrupted
        fastest = first if times is None else min(
            seconds for seconds in times if seconds is not None)
        rule = self.slow_rule
        transition = self.slow.observe(fastest, mono, wall, fastest >= rule.threshold or (
            rule.factor and fastest >= rule.margin and rule.judge(results, fastest, times)),
            first)
        if transition is None:
            return False
        if transition.kind == "slow":
            label = next(result.target.label for number, result in enumerate(results)
                         if result.up and fastest == ((result.connect_time or 0.0)
                                                      if times is None else times[number]))
            self.say.slow(wall, fastest, label,
                          self.usual.usual.get(label) if self.slow_rule.factor else None)
            return False
        return self._slow_ended(transition)

    def _first_syn_times(self, results):
        """The round's connect times less their waits for resent SYNs (first_syn_time), against
        each target's usual as the loss window counts them (None: no answer)."""
        baseline, schedule = self.usual.baseline, self.syn_schedule
        return tuple(first_syn_time(result.connect_time or 0.0, baseline(result.target.label),
                                    schedule) if result.up else None for result in results)

    def _lossy(self, network_up, transition, mono, wall):
        """The loss window takes the round begun at `mono`, if the connection was up when it
        began and some target answered. An interruption that counts ends a lossy period where
        it began; a blip (shorter than -m) does not, and the timeouts of its first round count
        as losses once their targets answer again (see SynCounter). Returns whether a lossy
        period that counts ended."""
        if transition is not None and transition.kind == "up":
            if transition.ignored:
                return False
            self.syns.clear()       # the window starts afresh after it (_interrupted ended it)
            self.loss.interrupted(transition.outage.start_mono, transition.outage.start_wall)
            return False
        if self.round_syns is None or not network_up:
            return False
        change = self.loss.add(mono, wall, *self.round_syns)
        if change is None:
            return False
        if change.kind == "lossy":
            self.say.lossy(wall, change.period, self.loss.target_figures(change.period.targets))
            return False
        return self._lossy_ended(change, wall)

    def _lossy_ended(self, ended, wall, by_interruption=False, cut_short=False):
        """Tells of it; a lossy period that counts waits for a report. Returns whether it counts."""
        ended.by_interruption = by_interruption
        self.counters.lossy_ended(ended.duration, ended.ignored)
        self.say.lossy_end(wall, ended)
        if not ended.ignored:
            self.record(start=ended.period.start_wall, end=ended.end, duration=ended.duration,
                        kind="lossy", reason="an interruption followed" if by_interruption else "",
                        targets=self.settings.target_labels, cut_short=cut_short,
                        loss_percent=ended.loss_percent, sent=ended.sent, lost=ended.lost)
        return not ended.ignored

    def _interrupted(self, outage, wall):
        """An interruption that counts (it lasted -m) ends what was slow or lossy where it began
        (the middle of its start window), never before that began itself; a blip does not.
        Returns whether a period that counts ended."""
        counted = False
        if self.slow is not None and self.slow.is_slow:
            began = self.slow.ongoing
            end = max((outage.start_mono, outage.start_wall), (began.start_mono, began.start_wall))
            counted = self._slow_ended(self.slow.end(*end, by_interruption=True))
        if self.loss is not None and self.loss.lossy is not None:
            ended = self.loss.end(outage.start_mono, outage.start_wall)
            counted = self._lossy_ended(ended, wall, by_interruption=True) or counted
        return counted

    def _slow_ended(self, ended, cut_short=False):
        """Tells of it; a slow period that counts waits for a report. Returns whether it counts."""
        slow = ended.period
        self.counters.slow_ended(ended.duration, ended.ignored)
        self.say.slow_end(ended)
        if not ended.ignored:
            self.record(start=slow.start_wall, end=ended.end, duration=ended.duration,
                        kind="slow",
                        reason="an interruption followed" if ended.by_interruption else "",
                        targets=self.settings.target_labels, cut_short=cut_short,
                        median_ms=_ms(slow.times.percentile(0.5)), max_ms=_ms(slow.times.maximum))
        return not ended.ignored

    def close(self, mono, wall):
        """The monitor stops: what is still going on is kept, cut short, if it counts already;
        the statistics window in progress is written, up to now. Returns the outage in
        progress, or None."""
        if self.stats is not None:
            ended = self.stats.close(mono)
            if ended is not None:
                self.say.stats(*ended)
        outage = self.tracker.outage
        if outage is not None and counts_as_interruption(self.tracker.ongoing_duration(mono),
                                                         self.settings.min_interruption):
            self._interrupted(outage, wall)
        if self.slow is not None and self.slow.is_slow:
            self._slow_ended(self.slow.end(mono, wall), cut_short=True)
        if self.loss is not None and self.loss.lossy is not None:
            self._lossy_ended(self.loss.end(mono, wall), wall, cut_short=True)
        self.tracker.outage = None
        going_on = [(outage, dict(cause=outage.cause))] if outage is not None else []
        going_on += [(partial, dict(kind="partial", part=partial_what(key)))
                     for key, partial in self.partials.close_all()]
        for item, what in going_on:
            duration = max(0.0, mono - item.start_mono)
            if counts_as_interruption(duration, self.settings.min_interruption):
                self.record(start=item.start_wall, end=wall, duration=duration, cut_short=True,
                            reason=item.reason, targets=self.settings.target_labels, **what)
        return outage

    def state(self, mono):
        """What the state file keeps of what is going on: an outage, a slow period, a lossy
        period; and each target's usual connect times."""
        outage = self.tracker.outage
        slow = self.slow.ongoing if self.slow is not None else None
        lossy = self.loss.lossy if self.loss is not None else None
        return {"down": None if outage is None else {
                    "start": outage.start_wall, "reason": outage.reason, "cause": outage.cause,
                    "duration": self.tracker.ongoing_duration(mono)},
                "slow": None if slow is None else {
                    "start": slow.start_wall, "median_ms": _ms(slow.times.percentile(0.5)),
                    "max_ms": _ms(slow.times.maximum)},
                "lossy": None if lossy is None else {
                    "start": lossy.start_wall, "sent": lossy.sent, "lost": lossy.lost},
                "partials": [{"part": partial_what(key), "start": partial.start_wall,
                              "reason": partial.reason,
                              "duration": max(0.0, mono - partial.start_mono)}
                             for key, partial in self.partials.open.items()],
                "usual": self.usual.to_dict()}

    def metrics(self, unreported):
        """The metrics snapshot as of the last round."""
        mono, wall = self.last_round or (None, None)
        ongoing = self.tracker.ongoing_duration(mono) if mono is not None else 0.0
        # while down, the seconds slow or lossy stop where the outage began: if it comes to
        # count, the period ends there, and a counter must never go back
        until = mono if self.tracker.outage is None else self.tracker.outage.start_mono
        slow, loss = self.slow, self.loss
        return self.counters.snapshot(
            self.last_results, ongoing, self.settings.min_interruption, unreported, wall,
            self.last_gateway, slow=None if slow is None else slow.is_slow,
            ongoing_slow=slow.ongoing_duration(until) if slow and mono is not None else 0.0,
            # a blip does not end a slow or lossy period (an interruption that counts does):
            # on a bad line blips are frequent, and each 0 would restart an alert's wait
            lossy=None if loss is None else loss.lossy is not None,
            ongoing_lossy=loss.ongoing_duration(until) if loss and mono is not None else 0.0,
            loss_ratio=None if loss is None else loss.ratio, jitter=self.jitter)


class Monitor:
    """The loop: rounds on a fixed grid (faster while down), and the parts that act on them.

    Its parts come ready-made: the announcer, the prober and the interpreter of the rounds; the
    reporter (None with --no-mail); the state file, the pinger and the metrics board (None
    when not used).
    """

    def __init__(self, settings, announcer, waker, prober, interpreter, clock=SystemClock,
                 reporter=None, state=None, pinger=None, metrics_board=None):
        self.settings = settings
        self.say = announcer
        self.waker = waker
        self.prober = prober
        self.rounds = interpreter
        self.clock = clock
        self.reporter = reporter
        self.state = state
        self.pinger = pinger
        self.metrics_board = metrics_board
        self.last_heartbeat = -math.inf
        self.state_failing = False      # the latest save failed: say so once per stretch
        self.clock_steps = WallClockSteps()
        self.hold_ups = HoldUps()
        self.gap_waiting = None         # (last heartbeat, monotonic start, targets): a gap to
        #                                 measure once the clock is set (recover_previous_run)
        self.stopping = False           # stop() is settling the delivery in flight
        self.kept_reports = None        # --no-mail: the PendingReports earlier runs left, kept
        #                                 in the state file as they were for a run that reports

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
            now, down = self.clock.monotonic(), self.rounds.is_down
            wait = min(schedule.seconds_until_due(now, down), self._heartbeat_due() - now)
            if wait > 0:
                self.waker.wait(wait)
                continue
            held_up = self.hold_ups.round_starts(
                now, schedule.next_due_down if down else schedule.next_due)
            schedule.round_started(now)
            wall = self.clock.wall()
            if held_up is not None:
                self.say.held_up(wall, held_up)
            step = self.clock_steps.observe(now, wall)
            if step is not None:
                self.rounds.clock_stepped(step, wall)
                if self.gap_waiting is not None:
                    self._measure_waiting_gap(now, wall)
            targets, stopping = self.settings.targets, lambda: self.waker.stop_signal is not None
            surroundings = self.rounds.surroundings
            gateway = surroundings.gateway() if surroundings is not None else None
            # while down, a fast round lasts until the next is due; its connects may outlive it
            # (--down-interval equal to -i: none, rounds as while up)
            fast = down and schedule.down_interval < schedule.interval
            results = self.prober.probe_round(
                targets, stopping, gateway,
                wait=schedule.seconds_until_due(now, True) if fast else None)
            if self.waker.stop_signal is not None:
                break
            if self.rounds.round(results.targets, now, wall, results.gateway,
                                 completed=self.clock.wall(),
                                 router_needed=results.router_needed):
                self._save_state()
            self._after_round()
            self.hold_ups.round_ended(self.clock.monotonic())
        return self.stop()

    def _heartbeat_due(self):
        return self.last_heartbeat + self.settings.heartbeat if self.state else math.inf

    def _after_round(self):
        now = self.clock.monotonic()
        if self.reporter is not None:
            problem = self.reporter.maybe_send(now, self.rounds.is_down)
            if problem:
                self.say.report_not_set_up(problem)
        if self.pinger is not None:
            self.pinger.maybe_ping(now, network_up=not self.rounds.is_down)
        self._publish_metrics()

    # -- what the background jobs did --------------------------------------------------------
    def _collect_deliveries(self):
        if self.reporter is None:
            return
        outcomes = self.reporter.outcomes(self.clock.monotonic())
        counters = self.rounds.counters
        for contents, failure in outcomes:
            wall, via = self.clock.wall(), self.reporter.deliverer.name
            if failure is None:
                counters.reports_sent += 1
                self.say.report_sent(wall, contents, via, self.reporter.pending.backoff.wait)
            else:
                counters.report_failures += 1
                self.say.report_failed(wall, contents, via, failure, self.stopping)
        if any(failure is None for _, failure in outcomes):
            self._save_state()      # a failure changes only when to retry: the heartbeat keeps it
        if outcomes:
            self._publish_metrics()

    def _collect_pings(self):
        if self.pinger is not None:
            for news, failure in self.pinger.news(network_down=self.rounds.is_down):
                self.say.ping(self.clock.wall(), news, failure, self.pinger.where)

    def _publish_metrics(self):
        if self.metrics_board is not None:
            self.metrics_board.publish(self.rounds.metrics(self._report_counts()[0]))

    @property
    def pending(self):
        """The PendingReports the state file keeps: the reporter's, or with --no-mail what
        earlier runs left (None before the state is read)."""
        return self.reporter.pending if self.reporter is not None else self.kept_reports

    def _report_counts(self):
        """PendingReports.counts() of what waits for this run's reports (none with --no-mail)."""
        return (0,) * 5 if self.reporter is None else self.reporter.pending.counts()

    # -- state file and event log ------------------------------------------------------------
    def _save_state(self, clean_stop=False):
        if self.state is None:
            return
        mono, wall = self.clock.monotonic(), self.clock.wall()
        data = {"format": STATE_FORMAT, "heartbeat": wall, "clean_stop": clean_stop,
                "targets": self.settings.target_labels, "pending": [], "next_id": 1, "backoff": {}}
        boot = self.clock.boot()
        if boot is not None:
            data["boot"] = {"id": boot[0], "seconds": boot[1]}
        data.update(self.rounds.state(mono))
        if self.pending is not None:
            data.update(self.pending.to_dict(mono, wall, self.settings.target_labels))
        self.last_heartbeat = mono      # also after a failure: try again at the next heartbeat
        lock_warning = self.state.keep_lock()
        if lock_warning:
            self.say.console.warning(lock_warning, wall)
        try:
            self.state.save(data)
        except OSError as error:
            # a full disk would otherwise say it every heartbeat; the save at stop, whose
            # failure loses what waits for a report, always says it
            if not self.state_failing or clean_stop:
                self.say.state_not_saved(self.state.path, error, clean_stop)
            self.state_failing = True
            return
        if self.state_failing:
            self.state_failing = False
            self.say.state_saved_again(self.state.path)

    def _restore_state(self, state):
        """Takes over what the previous run left: pending reports, backoff, and any gap."""
        mono, wall = self.clock.monotonic(), self.clock.wall()
        if self.reporter is not None:
            self.reporter.pending.restore(state, mono, wall)
            if self.reporter.pending:
                self.say.still_to_report(wall, *self._report_counts())
        else:
            self.kept_reports = PendingReports(make_backoff(self.settings))
            self.kept_reports.restore(state, mono, wall)
        self.rounds.usual.restore(state["usual"], self.settings.target_labels)
        cut_short, gap, behind = recover_previous_run(state, wall, self.settings.min_interruption,
                                                      self.clock.boot())
        slow = recover_slow_period(state, self.settings.min_interruption)
        lossy = recover_lossy_period(state, self.settings.min_interruption)
        for item in [cut_short, slow, lossy] + recover_partial_outages(
                state, self.settings.min_interruption):
            if item:
                self._record_earlier(**item)
        if gap is not None:
            self._gap(wall, gap, state["targets"])
        kept = self.kept_reports
        if kept:
            self.say.kept_for_later(wall, *kept.counts())
        if behind is not None:
            self.gap_waiting = (behind, mono, state["targets"])
            self.say.gap_waiting(wall, behind)

    def _gap(self, wall, gap, targets):
        start, end, duration, ignored = gap
        self.say.gap(wall, start, end, duration, ignored)
        if not ignored:
            self._record_earlier(start=start, end=end, duration=duration, kind="gap",
                                 reason="monitor not running", targets=targets)

    def _record_earlier(self, **item):
        """What an earlier run left to report (a gap, what a crash cut short): with --no-mail
        it is kept for a run that reports, as what it had waiting is."""
        if self.kept_reports is not None:
            self.kept_reports.add(**item)
        else:
            self.rounds.record(**item)

    def _measure_waiting_gap(self, mono, wall):
        """The clock was set: the gap since the last heartbeat ends where this run began, on the
        new clock, unless the clock is still behind."""
        heartbeat, started, targets = self.gap_waiting
        began = wall - (mono - started)
        if began > heartbeat:
            self.gap_waiting = None
            gap = gap_of(heartbeat, began, self.settings.min_interruption)
            if gap is not None:
                self._gap(wall, gap, targets)

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
        self.clock_steps.observe(self.clock.monotonic(), wall)   # a step before the first round
        # read before the start line: a state file that cannot be read ends the start
        state, warning = self.state.load() if self.state is not None else (None, None)
        self.say.started(wall, self.state.path if self.state is not None else None)
        if self.state is not None:
            if warning:
                self.say.console.warning(warning, wall)
            if state:
                self._restore_state(state)
            self._save_state()
        self._publish_metrics()

    def stop(self):
        self.stopping = True
        if self.reporter is not None:
            self.reporter.settle(self.clock, self.waker.wait, self._collect_deliveries)
        mono, wall = self.clock.monotonic(), self.clock.wall()
        outage = self.rounds.close(mono, wall)
        self.prober.close()
        self._save_state(clean_stop=True)
        if self.gap_waiting is not None:
            self.say.gap_not_measured(wall, self.gap_waiting[0])
        count, *others = self._report_counts()
        self.say.stopped(wall, self.waker.stop_signal, outage and outage.start_wall, count,
                         outage and outage.cause, *others)
        return self.waker.stop_signal


# ---------------------------------------------------------------------------------------------
# The event log read back: one Replay builds one History that every view renders (the text
# summary, the HTML and CSV report, the status page); pure apart from reading the file
# ---------------------------------------------------------------------------------------------

HOUR_SHADES = "\u00b7\u2591\u2592\u2593\u2588"   # ·░▒▓█: no downtime, down <25, <50, <75 %, more
HOUR_SHADES_ASCII = ".-+*#"                      # the same, for a terminal without those characters
GC_THRESHOLD_SUMMARY = 20000      # objects made and not freed between two collections (700 by
#                                  default): at most some MB of garbage in reference cycles
READ_BLOCK = 64 * 1024           # bytes of the event log read at a time: with their text, within
#                                  the processor's cache
EVENT_LINE_LIMIT = 1024 * 1024   # bytes; a longer line is skipped and counted, never held in
                                 # memory (a stats line of MAX_TARGETS targets with the longest
                                 # names is about 400 KB)
UNKNOWN_NAMES_KEPT = 100         # unknown event names counted by name; any further ones in one sum
SUMMARY_TARGETS_KEPT = 100       # more targets than this: no per-target figures
_SUMMARY_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?",
                           re.ASCII)    # fullmatch; ASCII digits only


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


def log_time_reader():
    """A reader of times from the event log: epoch seconds of an ISO 8601 time (without an
    offset: local time), or None for anything else, so one bad field never stops a summary.

    It reads what datetime.fromisoformat() reads (and "Z" for UTC, which Python before 3.11
    does not), on a calendar this system can place. datetime's reader is in C: a time as the
    monitor writes it takes a fifth of what any Python-level reading of its digits does, and a
    year's log holds a million of them. The reader is made once, for reading many times.
    """
    from_iso = _datetime().datetime.fromisoformat

    def read(value):
        if not isinstance(value, str):
            return None
        try:
            moment = from_iso(value).timestamp()
        except (ValueError, OverflowError, OSError):
            if value[-1:] not in ("Z", "z"):
                return None
            return read(value[:-1] + "+00:00")
        if -2145916800 <= moment < 2145916800 or _calendar_can_place(moment):
            return moment
        return None
    return read


def parse_log_time(value):
    """One time from the event log: see log_time_reader()."""
    return log_time_reader()(value)


def parse_summary_date(text, option, end_of_day=False):
    """--since/--until: YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], local time, as epoch seconds.

    With `end_of_day`, a bare date means the end of that day (the next midnight), so that
    --until 2026-11-24 includes all of the 24th.
    """
    match = _SUMMARY_DATE.fullmatch(text.strip())
    if not match:
        raise UsageError("%s: %r is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]' "
                         "(local time)" % (option, text))
    datetime = _datetime().datetime
    try:
        moment = datetime(*[int(part) for part in match.groups() if part is not None])
    except (ValueError, OverflowError) as error:
        raise UsageError("%s: %r is not a valid date (%s)" % (option, text, _one_line(error)))
    try:
        if end_of_day and match.group(4) is None:
            moment = datetime.fromordinal(moment.toordinal() + 1)
        moment = moment.timestamp()
    except (ValueError, OverflowError, OSError):
        moment = None            # (year 0 or 10000 on the way to epoch seconds)
    if moment is None or not _calendar_can_place(moment):
        raise UsageError("%s: %r is outside the dates this system can show" % (option, text))
    return moment


def _number(value, default=None):
    """A finite float from a JSON number, else `default`."""
    if type(value) is float:
        return value if value - value == 0.0 else default     # inf - inf and nan are nan
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


class LocalHours:
    """time.localtime() of many instants close together, for one replay (one time zone): the
    local date and hour are read once per hour, and kept for the two latest hours. An hour in
    which the local time does not run evenly from its first second to its last (summer time
    begins or ends, a leap second) is not kept."""

    def __init__(self):
        self.latest = self.before = (0, 0, None)   # (first second, next hour's, (hour, day))

    def hour_and_day(self, moment):
        """(the first second of the local hour that holds `moment`, its (year, month, day))."""
        second = math.floor(moment)
        first, following, found = self.latest
        if first <= second < following:
            return found
        first, following, found = self.before
        if first <= second < following:
            self.latest, self.before = self.before, self.latest
            return found
        local = time.localtime(second)
        hour = second - local.tm_min * 60 - local.tm_sec
        found = (hour, local[:3])
        begins, ends = time.localtime(hour), time.localtime(hour + 3599)
        if begins[:4] == ends[:4] == local[:4] and (begins.tm_min, begins.tm_sec, ends.tm_min,
                                                    ends.tm_sec) == (0, 0, 59, 59):
            self.latest, self.before = (hour, hour + 3600, found), self.latest
        return found

    def bounds(self, hour):
        """[first second, next hour's first) of the local `hour` (its first second) that
        hour_and_day() just gave, when the hour runs evenly; else (0, 0), which holds nothing."""
        first, following, found = self.latest
        return (first, following) if found is not None and found[0] == hour else (0, 0)


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


class DayLatency:
    """One local calendar day's connect times, from the stats windows that ended on it."""

    __slots__ = ("date", "medians", "p95s")

    def __init__(self, key):
        self.date = _date_text(key)
        self.medians = ConnectTimes()      # each stats window's median, weighted by its connects
        self.p95s = ConnectTimes()         # ... and its 95th percentile


# -- the model: what one reading of the event log found -----------------------------------

REPORT_ROWS_KEPT = 20000         # rows of the HTML's table and spans drawn: the first and last half
REPORT_HOSTS_KEPT = 16           # hosts named in the HTML report; the others are counted
OTHER_HOSTS_COUNTED = 10000      # ... up to this many
REPORT_TARGETS_KEPT = 64         # targets with their own figures; a log with more counts the rest
REPORT_WINDOWS_PER_HOUR = 3600   # statistics windows taken per target and hour
REPORT_WINDOWS_KEPT = 3000       # windows kept as they are, per target, for a short period
REPORT_TEXT_LIMIT = 200          # characters of any text from the log shown in a cell
ROW_KINDS = ("interruption", "gap", "partial", "slow", "lossy")
# how a period still open when its run was closed ended, by how the run was closed
_ENDINGS = {
    "stopped": "the monitor stopped while still down",
    "crash": "the monitor ended without a stop line (crash, power cut): counted to its last sign "
             "of life",
    "end": "still down where the log ends",
    "now": "still down",
}
_STILL = {"end": "where the log ends", "stopped": "the monitor stopped", "crash":
          "the monitor stopped"}


def _log_text(value, limit=REPORT_TEXT_LIMIT):
    """A string field of the log, bounded and without control characters; '' for anything else."""
    return bounded_reason(printable(value), limit) if isinstance(value, str) else ""


def _log_labels(value):
    """Target labels from a list (start, dns_*) or the keys of a dict (down), bounded."""
    if isinstance(value, dict):
        value = list(value)
    if not isinstance(value, list):
        return []
    return [_log_text(label, 100) for label in value[:REPORT_TARGETS_KEPT]
            if isinstance(label, str)]


def _cause_of(value):
    return _log_text(value, 20) or None


# One target's connect times in one statistics window (a `stats` event): the median and the 95th
# percentile in ms (never below the median), the connects that got through (1 to 1e9). A named
# tuple: a year of stats events makes a million of them; the hours' quantiles keep them as is.
WindowFigures = collections.namedtuple("WindowFigures", ("median", "p95", "connects"))


_STATS_FIELDS = operator.itemgetter("median_ms", "p95_ms", "probes", "failures")


def stats_figures(record):
    """The one reading of a `stats` event: [(label, WindowFigures)] of the targets with a valid
    median and at least one connect that got through. A missing or odd 95th percentile is
    taken as the median (the window still tells the median)."""
    targets = record.get("targets")
    if type(targets) is dict:
        # the monitor's own line, whose types and figures all hold, takes a short way to what
        # _checked_stats_figures() gives (which takes any other, however rare): few bytecodes,
        # run a million times a year
        found = []
        new = tuple.__new__      # WindowFigures without its Python-level __new__
        try:
            for label, figures in targets.items():
                median, p95, probes, failures = _STATS_FIELDS(figures)
                if not (type(median) is float and type(p95) is float and type(probes) is int
                        and type(failures) is int and 0.0 <= median <= 1e300
                        and -1e300 <= p95 <= 1e300 and 0 <= failures < probes <= 1e9):
                    break
                found.append((label, new(WindowFigures, (median, p95 if p95 > median else median,
                                                         probes - failures))))
            else:
                return found
        except (KeyError, TypeError):           # a field missing, or not an object
            pass
    return _checked_stats_figures(targets)


def _checked_stats_figures(targets):
    """stats_figures() of a `stats` event's `targets`, each figure checked."""
    if not isinstance(targets, dict):
        return []
    found = []
    for label, figures in targets.items():
        if not isinstance(figures, dict):
            continue
        get = figures.get
        median, p95, probes, failures = (get("median_ms"), get("p95_ms"), get("probes"),
                                         get("failures"))
        if type(median) is not float or median - median != 0.0:
            median = _number(median)
        if type(p95) is not float or p95 - p95 != 0.0:
            p95 = _number(p95)
        if type(probes) is int is type(failures) and 0 <= failures <= probes < 2 ** 53:
            connects = probes - failures      # as exact as the floats below
        else:
            connects = _number(probes, 0.0) - _number(failures, 0.0)
        if median is None or median < 0 or not 1 <= connects <= 1e9:
            continue
        found.append((label, WindowFigures(median, median if p95 is None else max(median, p95),
                                           int(connects))))
    return found


class EvidenceRow:
    """One line of the report's table and of the CSV: an interruption, a gap (the monitor not
    running, counted as down), a partial outage or a slow period, clipped to --since/--until."""

    __slots__ = ("kind", "start", "end", "cause", "reason", "targets", "note", "window", "open")

    def __init__(self, kind, start, end, cause="", reason="", targets=(), note="", window=None,
                 open=False):
        self.kind = kind            # one of ROW_KINDS
        self.start = start          # epoch seconds
        self.end = end
        self.cause = cause          # interruptions: the cause, "not recorded" in old logs
        self.reason = reason
        self.targets = list(targets)
        self.note = note            # how it ended, when not as usual
        self.window = window        # (after, before): the outage began in between
        self.open = open            # still going on at `end` (the status page's now)

    @property
    def duration(self):
        return self.end - self.start

    @property
    def why(self):
        return "%s (%s)" % (self.reason, self.note) if self.reason and self.note else \
            self.reason or self.note


class _Kept:
    """The first and the last half of at most `limit` items, and how many between them were
    left out: memory stays bounded however long the log is."""

    def __init__(self, limit):
        self.half = limit // 2
        self.first = []
        self.last = collections.deque(maxlen=limit - self.half)
        self.left_out = 0

    def add(self, item):
        if len(self.first) < self.half:
            self.first.append(item)
            return
        if len(self.last) == self.last.maxlen:
            self.left_out += 1
        self.last.append(item)

    def __iter__(self):
        yield from self.first
        yield from self.last

    def __len__(self):
        return len(self.first) + len(self.last)


def _weighted_quantile(pairs, fraction):
    """The value below which `fraction` of the weight of (value, weight) pairs lies."""
    pairs = sorted(pairs)
    seen = list(itertools.accumulate(map(operator.itemgetter(1), pairs)))  # ints: exact sums
    total = seen[-1]
    index = bisect.bisect_left(seen, fraction * total - 1e-9)    # the first that reaches it
    return pairs[min(index, len(pairs) - 1)][0]


def _even_quantile(values, fraction, weight):
    """_weighted_quantile() of `values` that all weigh `weight`."""
    values = sorted(values)
    total = weight * len(values)
    index = bisect.bisect_left(range(weight, total + 1, weight), fraction * total - 1e-9)
    return values[min(index, len(values) - 1)]


class _TargetHours:
    """One target's connect times, as HourlyConnectTimes gathers them."""

    __slots__ = ("hour", "current", "points", "windows", "connects")

    def __init__(self):
        self.hour = None            # the local hour being filled (its first second) ...
        self.current = []           # ... and the WindowFigures of its windows
        self.points = []            # (middle of the hour, median ms, p95 ms) of each hour
        self.windows = []           # (middle of the window, median, p95) of the first windows,
        #                             None once there were more than REPORT_WINDOWS_KEPT
        self.connects = 0           # in all windows


class HourlyConnectTimes:
    """Connect time per target and local hour from the statistics windows (`stats` events):
    the median of the windows' medians and the 95th percentile of their 95th percentiles, each
    window weighted by its connects. Only the hour being filled keeps its windows; the log's
    order closes an hour when the next begins. The first REPORT_WINDOWS_KEPT windows of each
    target are kept as they are too, for a short period. finish() makes `hours`, `windows` and
    `connects`: dicts by target label, as _log_text() shows it."""

    def __init__(self, limit=REPORT_TARGETS_KEPT, local=None):
        self.limit = limit
        self.local = local or LocalHours()
        self.targets = {}           # label as shown -> _TargetHours
        self.by_label = {}          # label as the log gives it -> the same _TargetHours
        self.hours, self.windows, self.connects = {}, {}, {}
        self.hour = None            # the local hour of the latest window (its first second)
        self.bounds = (0, 0)        # ... and [first, next) of it; (0, 0) for an odd hour

    def add_window(self, found, moment, end):
        """A window [moment, end): (label, WindowFigures) of each of its targets."""
        first, following = self.bounds
        if not first <= moment < following:
            self.hour = self.local.hour_and_day(moment)[0]
            self.bounds = self.local.bounds(self.hour)
        hour, by_label = self.hour, self.by_label
        for label, figures in found:
            target = by_label.get(label)
            # the usual case, a few steps run a million times a year: a known target, in the
            # hour it is filling, whose first windows are no longer kept as they are
            if target is not None and target.hour == hour and target.windows is None:
                current = target.current
                if len(current) < REPORT_WINDOWS_PER_HOUR:
                    current.append(figures)
            else:
                self._add_one(((label, figures),), moment, end, hour)

    def _add_one(self, found, moment, end, hour):
        """One window of the local `hour`: each target's figures to that hour, and to the
        target's first windows while it keeps them."""
        middle = None
        for label, figures in found:
            target = self.by_label.get(label)
            if target is None:
                target = self._target(label)
                if target is None:
                    continue
            if target.hour != hour:
                if target.hour is not None:
                    self._close(target)
                target.hour = hour
            if len(target.current) < REPORT_WINDOWS_PER_HOUR:
                target.current.append(figures)
            windows = target.windows
            if windows is not None:
                if middle is None:
                    middle = (moment + max(moment, end)) / 2
                windows.append((middle, figures.median, figures.p95))
                if len(windows) > REPORT_WINDOWS_KEPT:
                    target.windows = None

    def _target(self, label):
        """The _TargetHours of a label new to by_label; None past the limit of targets."""
        text = _log_text(label, 100)
        target = self.targets.get(text)
        if target is None:
            if len(self.targets) >= self.limit:
                return None
            target = self.targets[text] = _TargetHours()
        if len(self.by_label) < REPORT_TARGETS_KEPT * 4:
            self.by_label[label] = target
        return target

    @staticmethod
    def _close(target):
        windows, target.current = target.current, []
        medians, p95s, weights = zip(*windows)
        if weights.count(weights[0]) == len(weights):    # as alike as the monitor's windows
            point = (_even_quantile(medians, 0.5, weights[0]),
                     _even_quantile(p95s, 0.95, weights[0]))
        else:
            point = (_weighted_quantile(zip(medians, weights), 0.5),
                     _weighted_quantile(zip(p95s, weights), 0.95))
        target.points.append((target.hour + 1800.0,) + point)
        target.connects += sum(weights)

    def finish(self):
        for target in self.targets.values():
            if target.hour is not None:
                self._close(target)
                target.hour = None
            for points in (target.points, target.windows):
                if points is not None:
                    points.sort()
        self.hours = {label: target.points for label, target in self.targets.items()}
        self.windows = {label: target.windows for label, target in self.targets.items()}
        self.connects = {label: float(target.connects) for label, target in
                         self.targets.items()}


class History:
    """What one replay of the event log found: the figures --summary prints, and the evidence
    the HTML report, the CSV and the status page show (every row, the stretches monitored,
    hosts, targets, connect times per hour). Instants are epoch seconds, durations seconds."""

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
        self.overlapped = [0, 0.0]  # interruptions and gaps wholly in downtime already counted
        #                             (a clock behind at a start): how many, their seconds
        self.still_running = False  # the log ends with the monitor running: counted to its end
        self.still_down = False     # ... and with the network down
        self.days = []              # DaySummary rows from the period's first day to its last, in
        #                             order; days in a row without any change share one row
        self.invalid = 0            # records without a valid "time" and "event"
        self.any_event = False      # the log held an event the monitor writes (in the period
        #                             or not): it is an event log
        self.unknown = {}           # unknown event name -> how many were skipped
        self.unknown_others = 0     # unknown events beyond UNKNOWN_NAMES_KEPT names
        self.by_cause = {}          # cause (or "not recorded") -> [interruptions, downtime]
        self.partial = {}           # "target", "family" or "dns" -> [partial outages, seconds]
        self.targets = []           # the targets every run watched (none when runs differ)
        self.targets_changed = False
        self.partial_only = {}      # target label or "ipv4"/"ipv6" -> seconds it alone failed
        self.slow = 0.0             # in slow periods of at least min-interruption
        self.slow_periods = 0
        self.slow_longest = 0.0
        self.slow_ignored = 0       # shorter slow stretches
        self.slow_spans = []        # (start, end) of each slow period counted, in order
        self.lossy = 0.0            # in lossy periods of at least min-interruption, the same way
        self.lossy_periods = 0
        self.lossy_longest = 0.0
        self.lossy_ignored = 0
        self.lossy_spans = []
        self.windows = 0            # stats windows with a connect that got through
        self.medians = ConnectTimes()   # per window, of its fastest target (by median),
        self.p95s = ConnectTimes()      # weighted by that target's connects: the days' together
        self.latency_days = {}      # (year, month, day) -> DayLatency
        # the evidence
        self.rows = _Kept(REPORT_ROWS_KEPT)               # EvidenceRows, in the log's order
        self.monitored_spans = _Kept(REPORT_ROWS_KEPT)    # (start, end) of the time monitored
        self.row_counts = dict.fromkeys(ROW_KINDS, 0)
        self.hosts = []             # the first REPORT_HOSTS_KEPT hosts named ...
        self.other_hosts = set()    # ... and the others, counted up to OTHER_HOSTS_COUNTED
        self.all_targets = []       # every target label of every run, in order of appearance
        self.local = LocalHours()      # the local date and hour of an instant, read once
        self.hourly = HourlyConnectTimes(local=self.local)
        # what is still going on where the log ends (the status page's headline)
        self.run_start = None       # the run in progress began then (None: not running)
        self.down_since = None      # the outage in progress: its start, cause and reason
        self.down_cause = None
        self.down_reason = ""
        self.slow_since = None      # the slow period in progress, and its first slow connect
        self.slow_connect_ms = None
        self.lossy_since = None     # the lossy period in progress, and its loss when it began
        self.lossy_percent = None
        self.last_up = None         # the end of the latest outage, blip or not
        self.latest_stats = []      # stats_figures() of the latest stats window, and its span
        self.latest_stats_span = None
        self.report_sent = None     # when the latest report was sent
        self.report_failed = None   # (when, why) of the latest report that failed

    def day_latency(self, key):
        day = self.latency_days.get(key)
        if day is None:
            day = self.latency_days[key] = DayLatency(key)
        return day

    @property
    def has_latency(self):
        """Did the log say anything about slow periods or connect times?"""
        return bool(self.windows or self.slow_periods or self.slow_ignored or self.has_loss)

    @property
    def has_loss(self):
        """Did the log tell of lossy periods?"""
        return bool(self.lossy_periods or self.lossy_ignored)

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

    def saw_run(self, host, labels):
        if host and host not in self.hosts:
            if len(self.hosts) < REPORT_HOSTS_KEPT:
                self.hosts.append(host)
            elif len(self.other_hosts) < OTHER_HOSTS_COUNTED:
                self.other_hosts.add(host)
        self.all_targets += [label for label in labels if label not in self.all_targets
                             ][:max(0, REPORT_TARGETS_KEPT - len(self.all_targets))]

    def add_row(self, row):
        self.rows.add(row)
        self.row_counts[row.kind] += 1


class Timeline:
    """Adds up monitored time and downtime clipped to [since, until), in all, per day and per hour.

    A span that overlaps one already counted is cut to the part after it, so an odd log (clock
    set back, a line written twice) never counts a second twice; so the spans of each kind come
    in order. A span is counted hour by hour only on its first and its last day; the whole days
    between are kept as one stretch. Work and memory grow with the number of spans, never with
    the time they cover. Each method returns the span it counted, as clipped, or None.
    """

    def __init__(self, history):
        self.history = history
        self.since = -math.inf if history.since is None else history.since
        self.until = math.inf if history.until is None else history.until
        self.clipped = history.since is not None or history.until is not None
        self.monitored_to = -math.inf
        self.down_to = -math.inf
        self.degraded_to = {"slow": -math.inf, "lossy": -math.inf}
        self.days = {}               # (year, month, day) -> DaySummary: a day a span begins or ends
        self.latency_hour = (0, 0, None)     # (first second, next hour's, DayLatency) of the
        #                                      latest stats window's hour; (0, 0, ..): odd hour
        self.whole = ([], [])        # [down]: (start, end) of the whole days inside spans, in order

    def _day(self, moment):
        key = self.history.local.hour_and_day(moment)[1]
        day = self.days.get(key)
        if day is None:
            day = self.days[key] = DaySummary(*_local_day(moment))
        return day

    def clip(self, start, end):
        start, end = max(start, self.since), min(end, self.until)
        return (start, end) if end > start else None

    def monitored(self, start, end):
        start, end = max(start, self.since, self.monitored_to), min(end, self.until)
        if end <= start:
            return None
        self.monitored_to = end
        self.history.monitored += end - start
        self.history.monitored_spans.add((start, end))
        self._spread(start, end, down=False)
        return start, end

    def down(self, start, end, gap=False, cause=None):
        selected = self.clip(start, end)
        if selected is None:
            return None
        start, end = max(selected[0], self.down_to), selected[1]
        if end <= start:
            overlapped = self.history.overlapped
            overlapped[0] += 1
            overlapped[1] += selected[1] - selected[0]
            return None
        self.down_to = end
        history = self.history
        history.downtime += end - start
        history.interruptions += 1
        history.longest = max(history.longest, end - start)
        if gap:
            history.gaps += 1
            history.gap_downtime += end - start
        else:
            counted = history.by_cause.setdefault(cause if cause in CAUSES else "not recorded",
                                                  [0, 0.0])
            counted[0] += 1
            counted[1] += end - start
        self._day(start).interruptions += 1
        self._spread(start, end, down=True)
        return start, end

    def blip(self, instant):
        if self.since <= instant < self.until:
            self.history.blips += 1

    def degraded(self, kind, start, end, ignored):
        """A slow or lossy period (`kind`): up, but not well. History keeps each kind's seconds,
        periods, longest, ignored ones and spans as KIND, KIND_periods, KIND_longest, ..."""
        history = self.history
        if ignored:
            if self.since <= start < self.until:
                setattr(history, kind + "_ignored", getattr(history, kind + "_ignored") + 1)
            return None
        start, end = max(start, self.since, self.degraded_to[kind]), min(end, self.until)
        if end <= start:
            return None
        self.degraded_to[kind] = end
        setattr(history, kind, getattr(history, kind) + end - start)
        setattr(history, kind + "_periods", getattr(history, kind + "_periods") + 1)
        setattr(history, kind + "_longest", max(getattr(history, kind + "_longest"), end - start))
        getattr(history, kind + "_spans").append((start, end))
        return start, end

    def window(self, end, fastest):
        """A stats window that ended at `end`: the WindowFigures of its fastest target."""
        if not self.since <= end < self.until:
            return
        first, following, day = self.latency_hour
        if not first <= end < following:
            day = self._latency_day(end)
        self.history.windows += 1
        # (ms / 1000) * 1000: what add() makes of ms given in s
        day.medians.add_ms((fastest.median / 1000.0) * 1000.0, fastest.connects)
        day.p95s.add_ms((fastest.p95 / 1000.0) * 1000.0, fastest.connects)

    def _latency_day(self, end):
        """The DayLatency of `end`'s day, remembered with the bounds of its hour when the hour
        runs evenly (see LocalHours)."""
        history = self.history
        hour, key = history.local.hour_and_day(end)
        day = history.latency_days.get(key) or history.day_latency(key)
        self.latency_hour = history.local.bounds(hour) + (day,)
        return day

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
        whole = self.whole[down]
        index = bisect.bisect_right(whole, (start, math.inf)) - 1
        return index >= 0 and whole[index][0] <= start and end <= whole[index][1]

    def _alike(self, start, end):
        """The row of the days from `start` to `end` (local midnights) without any change."""
        first, last = time.localtime(start)[:3], time.localtime(end - 1)[:3]
        row = DaySummary(first, start, end)
        date = _datetime().date
        row.days = date(*last).toordinal() - date(*first).toordinal() + 1
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

    __slots__ = ("start", "seen", "down_since", "down_text", "down_cause", "min_interruption",
                 "targets", "known", "families", "slow_since", "slow_connect_ms",
                 "lossy_since", "lossy_percent")

    def __init__(self, start, min_interruption, targets=()):
        self.start = self.seen = start
        self.down_since = None       # the network has been down since then (None: up)
        self.down_text = None        # ... as the `down` line wrote it: its `up` repeats it as start
        self.down_cause = None       # ... and the cause its `down` gave
        self.min_interruption = min_interruption
        self.targets = targets       # the labels its start names
        self.known = frozenset(targets)   # ... as a set, to tell a target_down of its own
        self.families = None         # ... by IP family (None: a name), once a partial needs it
        self.slow_since = None       # the connection has been slow since then (None: not slow)
        self.slow_connect_ms = None  # ... and the fastest connect of its first slow round
        self.lossy_since = None      # the connection has been lossy since then (None: not lossy)
        self.lossy_percent = None    # ... and its loss when it became lossy


def _label_family(label):
    """"ipv4" or "ipv6" for a target label with an IP address (198.18.1.2:80, [::1]:53), None
    for one with a host name."""
    host = label[1:label.rfind("]")] if label.startswith("[") else label.rpartition(":")[0]
    address = _ip_literal(host)
    return None if address is None else "ipv%d" % address.version


class _AloneFailing:
    """How long one target (or one IP family) failed while the connection was up: the union of
    the partial outages that cover it, less the interruptions inside them. A sweep: O(1) state."""

    __slots__ = ("covers", "since", "overlap", "seconds")

    def __init__(self):
        self.covers = 0              # partial outages open that cover it
        self.since = None            # the union's current stretch began here
        self.overlap = 0.0           # interruption time inside that stretch
        self.seconds = 0.0


class _OutageSaid:
    """What the `down` of the outage in progress said (and its `up`, when the down gave no
    reason), read only when a row or the status page asks: most outages of a flapping line are
    blips that never need it."""

    __slots__ = ("down", "up")

    def __init__(self, down=None, up=None):
        self.down = down            # the records
        self.up = up

    def has_reason(self):
        """get("reason") is not empty (a string that is not empty never reads as empty)."""
        said = self.up if self.up is not None else self.down
        reason = None if said is None else said.get("reason")
        return isinstance(reason, str) and reason != ""

    def get(self, name, default=None):
        down = self.down
        if name == "reason":
            said = self.up if self.up is not None else down
            return default if said is None else _log_text(said.get("reason"))
        if down is None:
            return default
        if name == "targets":
            return _log_labels(down.get("targets"))
        after, before = (parse_log_time(down.get(field))
                         for field in ("start_after", "start_before"))
        return (after, before) if after and before and after <= before else None    # window


class Replay:
    """The one reading of the event log: replays its records, in file order, into a History
    that every view renders (the text summary, the HTML report, the CSV, the status page).

    Every event in EVENTS that counts has a handler on_<event>(moment, record); any other known
    event only shows that the monitor was running then. A handler reads the fields it knows and
    ignores the rest; a field or event a log lacks is shown as not recorded, or left out. To
    count a new event: add it to EVENTS, give it a handler here and a field in History.
    """

    def __init__(self, history, on_row=None):
        self.history = history
        self.timeline = Timeline(history)
        self.on_row = on_row         # gets each row as it is found (the CSV, written as it comes)
        self.min_interruption = DEFAULT_MIN_INTERRUPTION     # that of the latest start
        self.run = None          # the run in progress (None: the monitor is not running)
        self.crashed = None      # a run ended without a stop, until we see if a gap follows
        self.first = None        # the first instant known to be monitored
        self.last = None         # the latest event
        self.partials = {}       # partial outage key -> (start, the _AloneFailing it covers,
        #                          the reason its down gave)
        self.alone = {}          # target label or family -> _AloneFailing
        self.outage = _OutageSaid()  # what the down of the outage in progress said
        self.closing = None      # (the run being closed, how it ended: a key of _ENDINGS)
        self.stopping = False    # a stop is being replayed
        self.last_labels = []    # the latest start's targets
        self.read_time = log_time_reader()
        self.times = {}          # the latest time texts read -> read_time() of each: a
        #                          window's start is the time of the one before, an up repeats
        #                          its down's start
        self.handlers = {name: getattr(self, "on_" + name, self.on_sign_of_life)
                         for name in EVENTS}
        for kind in ("target", "family", "dns"):
            self.handlers[kind + "_down"] = lambda moment, record, kind=kind: self._partial_down(
                kind, moment, record)
            self.handlers[kind + "_up"] = lambda moment, record, kind=kind: self._partial_up(
                kind, moment, record)

    def feed(self, record):
        """One record as read from the log (its `time` an ISO 8601 text)."""
        name = record.get("event") if isinstance(record, dict) else None
        moment = None
        if isinstance(name, str):
            moment = self.when(record.get("time"))
        if moment is None:
            self.history.invalid += 1
            return
        handler = self.handlers.get(name)
        if handler is not None:              # feed_event(), shorter
            self.last = moment if self.last is None or moment > self.last else self.last
            if self.crashed is not None and EVENTS[name].availability and name != "gap":
                self._end_crashed_run(None)
            handler(moment, record)
            return
        self.feed_event(name, moment, record)

    def feed_event(self, name, moment, record):
        """One event at `moment` (epoch seconds), its fields in `record`."""
        name = RENAMED_EVENTS.get(name, name)
        if name not in EVENTS:
            self.history.count_unknown(name)
            return
        self.last = moment if self.last is None else max(self.last, moment)
        if self.crashed is not None and EVENTS[name].availability and name != "gap":
            self._end_crashed_run(None)
        self.handlers[name](moment, record)

    def when(self, text):
        """read_time(text), read once for the latest texts."""
        if type(text) is not str:
            return self.read_time(text)
        moment = self.times.get(text, False)
        if moment is False:
            if len(self.times) >= 64:
                self.times.clear()
            moment = self.times[text] = self.read_time(text)
        return moment

    def finish(self, now=None):
        """The History. With `now` (the status page), the log is the monitor's own, running at
        `now`: what is still open is counted to then, whatever its length."""
        history, timeline, run = self.history, self.timeline, self.run
        if self.crashed is not None:
            self._end_crashed_run(None)
        if run is not None:
            history.run_start = run.start
            history.down_since, history.down_cause = run.down_since, run.down_cause
            history.down_reason = self.outage.get("reason", "")
            history.slow_since, history.slow_connect_ms = run.slow_since, run.slow_connect_ms
            history.lossy_since, history.lossy_percent = run.lossy_since, run.lossy_percent
            if now is not None:
                run.seen = self.last = max(run.seen, now)
            self._close(run, run.seen, run.down_since, at_end="end" if now is None else "now")
            history.still_running = run.seen <= timeline.until
            history.still_down = history.still_running and run.down_since is not None
        if self.first is not None:
            start, end = max(self.first, timeline.since), min(self.last, timeline.until)
            if end > start:
                history.start, history.end = start, end
        history.any_event = self.last is not None
        history.days = timeline.rows(history.start, history.end)
        history.partial_only = {key: alone.seconds for key, alone in self.alone.items()}
        history.hourly.finish()
        for day in history.latency_days.values():       # the period's: its days' together
            history.medians.merge(day.medians)
            history.p95s.merge(day.p95s)
        return history

    # -- one handler per event -----------------------------------------------------------------
    def on_start(self, moment, record):
        if self.run is not None:
            self.crashed = self.run          # it ended without a stop; a gap may say when
        self.min_interruption = _number(record.get("min_interruption"), DEFAULT_MIN_INTERRUPTION)
        self.run = self._begin(moment)
        self._watching(record.get("targets"))
        self.last_labels = _log_labels(record.get("targets"))
        self.history.saw_run(_log_text(record.get("host"), 100), self.last_labels)

    def on_stop(self, moment, record):
        run = self.run
        down = None if run is None else run.down_since
        if down is None:
            down = self.when(record.get("down_since"))
        if run is None:                      # a log that begins with a stop (rotated)
            run = self._begin(moment if down is None else min(moment, down))
        run.down_cause = record.get("cause") or run.down_cause
        self.stopping = True
        self._close(run, moment, down)
        self.stopping = False
        self.run = None

    def on_down(self, moment, record):
        """Down since its `start`: the middle of the window the outage began in (in logs from
        before that window, the first failed round: the `time`)."""
        if self.run is None or self.run.down_since is None:
            self.outage = _OutageSaid(record)
        began = self.when(record.get("start"))
        began = moment if began is None else min(began, moment)
        run = self._alive(moment, began)
        if run.down_since is None:
            run.down_since, run.down_text = began, record.get("start")
            run.down_cause = record.get("cause")

    def on_up(self, moment, record):
        if not self.outage.has_reason():
            self.outage = _OutageSaid(self.outage.down, record)
        began = self._outage_start(moment, record)
        run = self._alive(moment, began)
        began = max(began, run.start)
        ignored = record.get("ignored")
        if not isinstance(ignored, bool):
            ignored = moment - began < run.min_interruption
        if ignored:
            self.timeline.blip(began)
        else:
            self._interruption(began, moment, record.get("cause") or run.down_cause)
        run.down_since = None
        self.history.last_up = moment
        self.outage = _OutageSaid()

    def on_clock_step(self, moment, record):
        """The monitor's wall clock was set `step` s forward (back if negative): its run counts
        up to that instant on the old clock and again from `moment` on the new one, so a clock
        set forward adds no time and one set back counts none twice. What is open moves with
        the clock, as the monitor moved it."""
        step = _number(record.get("step"))
        run = self.run
        if run is None or step is None or abs(step) > _LATEST_TIME:
            self._alive(moment)
            return
        # the run counts on the old clock until what is still open began: all of that counts
        # on the new one, where it now begins
        cut = max(run.start, min([moment - step] + [since for since in (
            run.down_since, run.slow_since, run.lossy_since) if since is not None] +
            [start for start, _, _ in self.partials.values()]))
        self.timeline.monitored(run.start, cut)
        if run.down_since is not None:
            run.down_since += step
        if run.slow_since is not None:
            run.slow_since += step
        if run.lossy_since is not None:
            run.lossy_since += step
        for key, (start, covered, reason) in list(self.partials.items()):
            self.partials[key] = (start + step, covered, reason)
        for alone in self.alone.values():
            if alone.covers:
                alone.since += step
        run.start, run.seen = cut + step, moment

    def on_gap(self, moment, record):
        start, end = self.when(record.get("start")), self.when(record.get("end"))
        if self.crashed is not None:
            self._end_crashed_run(start)
        if start is not None and end is not None:
            end = min(end, moment)           # a gap cannot end after the line that tells of it
            ignored = record.get("ignored")
            if not isinstance(ignored, bool):
                ignored = end - start < self.min_interruption
            if end > start and not ignored:
                self.timeline.monitored(start, end)
                span = self.timeline.down(start, end, gap=True)
                if span is not None:
                    self._add_row(EvidenceRow(
                        "gap", *span, reason="the monitor was not running (no clean stop): "
                        "counted as down", targets=self._labels()))
                self._monitored_from(start)
        if self.run is not None:
            self.run.seen = max(self.run.seen, moment)

    def _partial_down(self, kind, moment, record):
        """target_down, family_down, dns_down: a part failing while the connection is up."""
        self._alive(moment)
        key = self._partial_key(kind, record)
        if key is None or key in self.partials:
            return
        per_target = not self.history.targets_changed and len(
            self.run.targets) <= SUMMARY_TARGETS_KEPT            # else no per-target figures
        covered = [self.alone.setdefault(name, _AloneFailing())
                   for name in self._covered(key)] if per_target else []
        self.partials[key] = (moment, covered, _log_text(record.get("reason")))
        for alone in covered:
            if alone.covers == 0:
                alone.since, alone.overlap = moment, 0.0
            alone.covers += 1

    def _partial_up(self, kind, moment, record):
        self._alive(moment)
        key = self._partial_key(kind, record)
        if key in self.partials:
            ignored = record.get("ignored")
            self._partial_end(key, moment, ignored if isinstance(ignored, bool) else None)

    def _partial_end(self, key, moment, ignored=None):
        start, covered, reason = self.partials.pop(key)
        labels = [label for label in self._covered(key) if label not in ("ipv4", "ipv6")]
        if ignored is None:
            ignored = moment - start < self.min_interruption
            if self.closing is not None and self.closing[1] == "now":
                ignored = False              # still failing now: shown whatever its length
        seconds = self._clipped(start, moment)
        if not ignored and seconds > 0:
            counted = self.history.partial.setdefault(key[0], [0, 0.0])
            counted[0] += 1
            counted[1] += seconds
        for alone in covered:
            alone.covers -= 1
            if alone.covers == 0 and not (ignored and alone.since == start):
                alone.seconds += max(0.0, self._clipped(alone.since, moment) - alone.overlap)
        if ignored:
            return
        kind, what = key
        if kind == "family":
            reason = "every %s target failed%s" % ("IPv6" if what == "ipv6" else "IPv4",
                                                  ": " + reason if reason else "")
        elif kind == "dns":
            reason = "names did not resolve%s" % (": " + reason if reason else "")
        span = self.timeline.clip(start, moment)
        if span is not None:
            self._add_row(EvidenceRow("partial", *span, reason=reason,
                                      targets=[_log_text(label, 100)
                                               for label in labels[:REPORT_TARGETS_KEPT]],
                                      **self._still("still down")))

    def _partial_key(self, kind, record):
        run = self.run
        if kind == "target":
            label = record.get("target")
            return ("target", label) if run is not None and label in run.known else None
        if kind == "family":
            family = record.get("family")
            return ("family", family) if family in ("ipv4", "ipv6") else None
        return ("dns", "names")

    def _covered(self, key):
        """What a partial outage makes fail: a target, or a family and its targets, or every
        target given by name."""
        kind, what = key
        if kind == "target":
            return [what]
        run = self.run
        if run is None:
            return [what] if kind == "family" else []
        if run.families is None:      # once a run: a thousand targets, thousands of outages
            run.families = {}
            for label in run.targets:
                run.families.setdefault(_label_family(label), []).append(label)
        if kind == "family":
            return [what] + run.families.get(what, [])
        return list(run.families.get(None, []))

    def _clipped(self, start, end):
        timeline = self.timeline
        return max(0.0, min(end, timeline.until) - max(start, timeline.since))

    def _watching(self, targets):
        """A run's targets: its partial outages are told whatever the other runs watched;
        per-target figures only while every run watches the same ones."""
        labels = ([label for label in targets if isinstance(label, str)]
                  if isinstance(targets, list) else [])
        history = self.history
        if history.targets and labels != history.targets:
            history.targets_changed = True
        if not history.targets_changed and not history.targets:
            history.targets = labels
        self.run.targets, self.run.known, self.run.families = labels, frozenset(labels), None

    def _interruption(self, start, end, cause):
        """Downtime: the interruption's time is no part of what failed alone meanwhile."""
        span = self.timeline.down(start, end, cause=cause)
        if span is not None:
            closing = self.closing[1] if self.closing is not None else None
            self._add_row(EvidenceRow(
                "interruption", *span, _cause_of(cause) or "not recorded",
                self.outage.get("reason", ""), self.outage.get("targets") or self._labels(),
                _ENDINGS.get(closing, ""), self.outage.get("window"), closing == "now"))
        for alone in self.alone.values():
            if alone.covers and alone.since <= start:
                alone.overlap += self._clipped(start, end)

    def on_slow(self, moment, record):
        run = self._alive(moment)
        if run.slow_since is None:
            run.slow_since = moment
            run.slow_connect_ms = _number(record.get("connect_ms"))

    def on_slow_end(self, moment, record):
        run = self._alive(moment)
        began = self.when(record.get("start"))
        if began is None:
            began = run.slow_since
        if began is None:
            began = moment - max(0.0, _number(record.get("duration"), 0.0))
        began = max(min(began, moment), run.start)
        ignored = record.get("ignored")
        if not isinstance(ignored, bool):
            ignored = moment - began < run.min_interruption
        median, slowest = _number(record.get("median_ms")), _number(record.get("max_ms"))
        self._slow(began, moment, ignored, ", ".join(words for words in (
            median is not None and "median %s" % milliseconds(median),
            slowest is not None and "max %s" % milliseconds(slowest)) if words))
        run.slow_since = None

    def _slow(self, start, end, ignored, figures=""):
        span = self.timeline.degraded("slow", start, end, ignored)
        if span is not None:
            self._add_row(EvidenceRow("slow", *span, reason=figures, targets=self._labels(),
                                      **self._still("still slow")))

    def on_lossy(self, moment, record):
        run = self._alive(moment)
        if run.lossy_since is None:
            began = self.when(record.get("start"))
            run.lossy_since = moment if began is None else max(min(began, moment), run.start)
            run.lossy_percent = _number(record.get("loss_percent"))

    def on_lossy_end(self, moment, record):
        """Its `end` is when the losses stopped, before the event that tells of it."""
        run = self._alive(moment)
        end = self.when(record.get("end"))
        end = moment if end is None else min(end, moment)
        began = self.when(record.get("start"))
        if began is None:
            began = run.lossy_since
        if began is None:
            began = end - max(0.0, _number(record.get("duration"), 0.0))
        began = max(min(began, end), run.start)
        ignored = record.get("ignored")
        if not isinstance(ignored, bool):
            ignored = end - began < run.min_interruption
        percent, sent, lost = (_number(record.get(name)) for name in ("loss_percent", "sent",
                                                                      "lost"))
        figures = ""
        if None not in (percent, sent, lost):
            figures = "%d of %d connect attempts lost (%.1f %%)" % (lost, sent, percent)
        self._lossy(began, end, ignored, figures)
        run.lossy_since = run.lossy_percent = None

    def _lossy(self, start, end, ignored, figures=""):
        span = self.timeline.degraded("lossy", start, end, ignored)
        if span is not None:
            self._add_row(EvidenceRow("lossy", *span, reason=figures, targets=self._labels(),
                                      **self._still("still lossy")))

    def on_stats(self, moment, record):
        """A statistics window: its fastest target (by median) stands for the connection; each
        target's figures go to its connect time per hour."""
        run = self.run
        if run is None:
            self._alive(moment)
        elif moment > run.seen:
            run.seen = moment
        found = stats_figures(record)
        if found:
            fastest = found[0][1]
            for _, figures in found:
                if figures.median < fastest.median:
                    fastest = figures
            self.timeline.window(moment, fastest)
        # a window's start is the time of the one before; its `end` (logs before 2.1) its time
        start, end = record.get("start"), record.get("end")
        start = self.when(start) or moment
        end = moment if end is None else self.when(end) or moment
        history = self.history
        history.latest_stats, history.latest_stats_span = found, (start, end)
        timeline = self.timeline
        if timeline.clipped and min(start + 1, timeline.until) <= max(start, timeline.since):
            return                                                          # clip() is None
        history.hourly.add_window(found if len(found) <= REPORT_TARGETS_KEPT
                                  else found[:REPORT_TARGETS_KEPT], start, end)

    def on_report_sent(self, moment, record):
        self._alive(moment)
        self.history.report_sent = moment

    def on_report_failed(self, moment, record):
        self._alive(moment)
        self.history.report_failed = (moment, _log_text(record.get("reason")))

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
            began = self.when(text)
        if began is None and run is not None:
            began = run.down_since
            if began is None:
                duration = max(0.0, _number(record.get("duration"), 0.0))
                began = max(run.start, moment - duration)
        return moment if began is None else min(began, moment)

    def _close(self, run, end, down, at_end=None):
        """Counts a run that ended at `end`, the network down since `down` (None: up); a slow
        or lossy stretch it did not see end lasted until `end`. `at_end`: "end" where the log
        ends, "now" for the monitor's own events at the status page's now; what is open then
        may not be over yet."""
        self.closing = (run, at_end or ("stopped" if self.stopping else "crash"))
        end = max(run.start, end)
        long_enough = (lambda since, until=end: at_end == "now" or
                       until - since >= run.min_interruption)
        # an interruption that counts ended what was slow or lossy where it began, as the
        # monitor says once it counts: a crash or the log's end may come before it could
        interrupted = None
        if down is not None and end - max(run.start, down) >= run.min_interruption:
            interrupted = max(run.start, down)
        for since, count in ((run.slow_since, self._slow), (run.lossy_since, self._lossy)):
            if since is not None:
                since = max(run.start, since)
                until = end if interrupted is None else max(since, interrupted)
                if long_enough(since, until):
                    count(since, until, False)
                elif not at_end:
                    count(since, until, True)
        if down is not None:
            down = max(run.start, down)
            if long_enough(down):
                self._interruption(down, end, run.down_cause)
            elif not at_end:                 # at the end of the log it may not be over yet
                self.timeline.blip(down)
        for key in list(self.partials):      # what still failed when the run ended
            self._partial_end(key, max(end, self.partials[key][0]))
        self.timeline.monitored(run.start, end)
        self.closing, self.outage = None, _OutageSaid()

    def _end_crashed_run(self, gap_start):
        """The run before the latest start had no stop: it lasted until its last event, or until
        the gap logged at the new start begins (its last heartbeat)."""
        crashed, self.crashed = self.crashed, None
        end = crashed.seen
        if gap_start is not None and self.run is not None:
            end = min(max(end, gap_start), self.run.start)
        self._close(crashed, end, crashed.down_since)

    # -- rows ----------------------------------------------------------------------------------
    def _labels(self):
        run = self.closing[0] if self.closing is not None else self.run
        return _log_labels(getattr(run, "targets", None) or self.last_labels)

    def _still(self, words):
        """The note and flag of a row still open when its run was closed."""
        if self.closing is None:
            return {}
        how = self.closing[1]
        if how == "now":
            return {"note": words, "open": True}
        return {"note": "%s: %s" % (words, _STILL[how])}

    def _add_row(self, row):
        self.history.add_row(row)
        if self.on_row is not None:
            self.on_row(row)


def summarize_events(events, since=None, until=None, on_row=None):
    """The History of event-log records (parsed JSON, in file order), clipped to [since, until).
    `on_row` gets each row of the evidence as it is found.

    The rules, in short: the monitor runs from a `start` to the next `stop`; `down`..`up` is an
    interruption unless the `up` says it was ignored (a blip); a `stop` while down ends the
    interruption then (if at least the run's min_interruption long); a `gap` that was not
    ignored is downtime that also counts as monitored time. Between a `stop` and the next
    `start` the monitor was not running: neither up nor down. A `start` with no `stop` before it
    ends the previous run at its last sign of life: the start of the `gap` logged right after
    (the last heartbeat), else its last event. A log that begins while the monitor runs (after
    logrotate: `log_reopened`) counts from its first event; one that ends while running, to its
    last. Records without a valid time and event, and unknown events, are counted in the
    history and otherwise skipped; fields no handler reads are ignored.
    """
    replay = Replay(History(since, until), on_row)
    for record in events:
        replay.feed(record)
    return replay.finish()


def open_event_log(path):
    """The event log as a binary stream. Only a regular file is read: a FIFO, a device or a
    directory is refused at once (opened without blocking, then checked)."""
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


def read_blocks(stream, limit=EVENT_LINE_LIMIT, size=READ_BLOCK):
    """The lines of a binary stream, many at a time: blocks of whole lines, each line at most
    `limit` bytes besides its newline (the stream's last line may lack one); None in place of
    each longer line, which is never held whole. The stream is read `size` bytes at a time (at
    most `limit` + 1), not a line at a time; read1() where there is one, so that the lines of a
    damaged compressed file up to the damage are read before its error."""
    read = getattr(stream, "read1", stream.read)
    size = min(size, limit + 1)
    rest, held, too_long = [], 0, False  # the line the blocks before ended in: its pieces, its
    while True:                          # bytes; already too long?
        block = read(size)
        if not block:
            if too_long:
                yield None
            elif rest:
                yield b"".join(rest)
            return
        last = block.rfind(b"\n")
        if last < 0:                     # the line goes on
            held += len(block)
            if too_long or held > limit:
                rest, too_long = [], True
            else:
                rest.append(block)
            continue
        first = block.find(b"\n")
        if too_long or held + first > limit:
            yield None
            if first < last:
                yield block[first + 1:last + 1]
        else:
            rest.append(block[:last + 1])
            yield b"".join(rest)
        tail = block[last + 1:]          # within the limit: shorter than a block
        rest, held, too_long = [tail] if tail else [], len(tail), False


def read_lines(stream, limit=EVENT_LINE_LIMIT, size=READ_BLOCK):
    """The lines of a binary stream one at a time, each with its newline, as read_blocks()
    reads them; None in place of a line longer than `limit` bytes."""
    for block in read_blocks(stream, limit, size):
        if block is None:
            yield None
            continue
        lines = block.split(b"\n")
        last = lines.pop()               # b"" when the block ends with a newline
        for line in lines:
            yield line + b"\n"
        if last:
            yield last


class EventLines:
    """Iterates the JSON values of an event log's lines; counts the lines that are not JSON, and
    the lines too long to read. It reads texts (str or bytes) of one or more whole lines each,
    as read_blocks() gives them (or a line at a time), and None for each line too long."""

    def __init__(self, lines):
        self.lines = lines
        self.not_json = 0
        self.too_long = 0
        self.seen = 0               # lines read to their end (each too long one too)

    def __iter__(self):
        decoder = json.JSONDecoder()
        scan, decode = decoder.scan_once, decoder.decode
        for text in self.lines:
            if text is None:
                self.too_long += 1
                self.seen += 1
                continue
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")     # line by line alike: "\n" is ASCII
            start, size = 0, len(text)
            lines, whole = 0, True
            while start < size:
                lines += 1
                newline = text.find("\n", start)
                end = size if newline < 0 else newline
                # the usual line, a value from its first character to its newline: a JSON
                # string holds no newline, so the value is the line's alone. Any other line
                # may have had the scanner read on through the lines after it: the rest of
                # the block is read a line at a time, so that a log of such lines costs at
                # most one block's text more than reading every line alone
                if whole:
                    try:
                        value, value_end = scan(text, start)
                    except (StopIteration, ValueError, RecursionError):
                        value_end = -1
                    if value_end == end:
                        yield value
                        start = end + 1
                        continue
                    whole = False
                # a line alone (blank, spaces around its value, not JSON), read in this frame:
                # the scanner's nesting shares Python's recursion limit with its callers
                line, start = text[start:end], end + 1
                try:
                    try:
                        value, value_end = scan(line, 0)
                    except StopIteration:       # nothing at 0: blank, leading space, not JSON
                        if not line.strip():
                            continue
                        value, value_end = decode(line), len(line)
                except (ValueError, RecursionError):
                    self.not_json += 1
                    continue
                if value_end != len(line) and line[value_end:].strip(" \t\n\r"):
                    self.not_json += 1          # more after the value: as decode() says
                    continue
                yield value
            self.seen += lines


# -- the event log and its rotated files, read as one ------------------------------------------

# what logrotate names a rotated PATH: PATH.1, PATH.2.gz, ... and with dateext PATH-20261101(.gz)
# (a dateformat of digits and - _ ., which begins with one of them); compressed by gzip
# (default), bzip2 or xz. After a dot, up to 7 digits are a rotation count (PATH.1), 8 or more
# or digits with separators a date (PATH.20261101, PATH.1764000000, PATH.2026-11-01).
ROTATED_NAME = re.compile(r"(?:\.(\d{1,7})"
                          r"|[-_](\d{4,}(?:[-_.]\d+)*)"
                          r"|\.(\d{8,}(?:[-_.]\d+)*|\d{4,}(?:[-_.]\d+)+))"
                          r"(?:\.(?:gz|bz2|xz))?\Z")
LOG_MAGIC = ((b"\x1f\x8b", "gzip", "gzip"), (b"BZh", "bz2", "bzip2"),
             (b"\xfd7zXZ\x00", "lzma", "xz"))     # first bytes, module, what it is called
ROTATED_KEPT = 10000             # rotated files read at most, the newest
SEAM_LINES = 10000               # a file's last lines, looked for at the start of the next one
PEEK_LINES = 100                 # lines read to find a file's first time


def rotated_siblings(path):
    """PATH's rotated files in its folder, as logrotate names them: (dateext names by their
    date, numbered ones from the highest number), each list oldest first and all of them."""
    folder, base = os.path.split(path)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return [], []
    dated, numbered = [], []
    for name in names:
        match = ROTATED_NAME.match(name, len(base)) if name.startswith(base) else None
        if match is None or name == base:
            continue
        number, date, dotted_date = match.groups()
        date = date or dotted_date
        if date:
            # the date's digits read as YYYYMMDDhhmmss, padded on the right, so that two
            # dateformats in one folder sort together: -2026032712 (hourly) before -20260329
            # (daily), -20260327 before -2026-03-29; epoch seconds (%s) among their own kind
            dated.append((re.sub(r"\D", "", date).ljust(14, "0"), name))
        else:
            numbered.append((-int(number), name))
    return tuple([os.path.join(folder, name) for _, name in sorted(found)]
                 for found in (dated, numbered))


def open_log_stream(path):
    """An event log file as a binary stream of its lines, decompressed when it is gzip, bzip2
    or xz (known by its first bytes, whatever its name)."""
    stream = open_event_log(path)
    try:
        start = stream.peek(6)[:6]
        for magic, module, compression in LOG_MAGIC:
            if start.startswith(magic):
                try:
                    opener = importlib.import_module(module)    # only for a compressed file
                except ImportError:     # a Python built without the library (pyenv, asdf)
                    raise MonitorError("cannot read event log %s: it is compressed with %s, "
                                       "and this Python has no %s module"
                                       % (path, compression, module)) from None
                return opener.open(stream, "rb")
        return stream
    except BaseException:
        stream.close()
        raise


def _read_size(stream):
    """How much of a log's stream to read at a time: READ_BLOCK of a file, but as much as a
    line may be of a decompressor. In smaller reads bzip2 and xz hand over text they have not
    yet checked, before the error that says the file is damaged."""
    return READ_BLOCK if isinstance(stream, io.BufferedReader) else EVENT_LINE_LIMIT + 1


def _read_errors():
    """What a damaged file raises while it is read: OSError, EOFError (cut short) and each
    decompressor's own error."""
    errors = (OSError, EOFError, ValueError)
    for module, name in (("zlib", "error"), ("lzma", "LZMAError")):
        if module in sys.modules:
            errors += (getattr(sys.modules[module], name),)
    return errors


class EventLogFiles:
    """The JSON values of one or more event logs and of each one's rotated files (see
    rotated_siblings), oldest file first, as one stream of lines that EventLines reads.

    The rotated files of one kind (numbered, dated) are read in the order of their names, the
    log itself last; the kinds and the logs given are merged by each file's first event (a file
    whose first lines tell no time counts as beginning where the one before it does). A file
    met twice (the same file under two names, or given twice) is read once. Lines repeated at
    the start of a file from the last lines read before it, whichever files gave them (a copy
    made twice, overlapping logs), are read once. A file that cannot be opened
    or is damaged is a warning in `warnings`, and what was read of it counts; only when no file
    at all can be opened is it an error (MonitorError, as for one log)."""

    def __init__(self, paths, rotated=True):
        self.given = list(paths)
        self.repeated = 0            # lines read before, at the start of a later file
        self.warnings = []
        self.paths = self._merge(self._chains(rotated))
        self.read = []               # the files read (to the end, or some lines), in order
        self.lines = EventLines(self._lines())

    def __iter__(self):
        return iter(self.lines)

    @property
    def not_json(self):
        return self.lines.not_json

    @property
    def too_long(self):
        return self.lines.too_long

    def _chains(self, rotated):
        """Lists of files, each in the order it is to be read in; every file once."""
        siblings = {path: rotated_siblings(path) if rotated else ([], []) for path in self.given}
        claimed = {_file_key(sibling) for dated, numbered in siblings.values()
                   for sibling in dated + numbered}
        chains, seen = [], set()
        # a log given beside one of its own rotated files: the file is read in the log's chain,
        # by its name, whatever order they were given in
        for path in sorted(self.given, key=lambda given: _file_key(given) in claimed):
            dated, numbered = siblings[path]
            left_out = max(0, len(dated) - ROTATED_KEPT) + max(0, len(numbered) - ROTATED_KEPT)
            if left_out:
                self.warnings.append("read at most %d rotated files of each kind (numbered, "
                                     "dated) of %s: left out the oldest %d"
                                     % (ROTATED_KEPT, path, left_out))
                del dated[:-ROTATED_KEPT], numbered[:-ROTATED_KEPT]
            (numbered or dated).append(path)        # the log itself after its rotated files
            for chain in (dated, numbered) if numbered else (dated,):
                kept = []
                for candidate in chain:
                    key = _file_key(candidate)
                    if key not in seen:
                        seen.add(key)
                        kept.append(candidate)
                if kept:
                    chains.append(kept)
        return chains

    def _merge(self, chains):
        """The chains merged by the first time of each file, each chain's order kept."""
        if len(chains) < 2:
            return chains[0] if chains else []
        keyed = []
        for number, chain in enumerate(chains):
            previous, keys = -math.inf, []
            for path in chain:
                first = self._first_time(path)
                previous = previous if first is None else max(previous, first)
                keys.append((previous, number, path))
            keyed.append(keys)
        return [path for _, _, path in heapq.merge(*keyed)]

    @staticmethod
    def _first_time(path):
        try:
            with open_log_stream(path) as stream:
                for number, line in enumerate(read_lines(stream, size=_read_size(stream))):
                    if number >= PEEK_LINES:
                        break
                    try:
                        record = json.loads(line) if line is not None else None
                    except (ValueError, RecursionError):
                        continue
                    moment = parse_log_time(record.get("time")) if isinstance(record, dict) \
                        else None
                    if moment is not None:
                        return moment
        except (MonitorError,) + _read_errors():
            pass
        return None

    def _lines(self):
        """The lines of every file in turn, in blocks as read_blocks() gives them."""
        # the last lines read, whatever file they came from: a file that gave none (empty,
        # unreadable, or all of it a repeat) leaves the seam to be found against the one before
        tail = _LastLines(SEAM_LINES)
        opened = 0
        for number, path in enumerate(self.paths):
            try:
                stream = open_log_stream(path)
            except (MonitorError, OSError) as error:
                if len(self.paths) == 1:
                    raise _cannot_read(path, error)
                self.warnings.append(str(_cannot_read(path, error)))
                continue
            opened += 1
            # the last file has no seam after it
            last = collections.deque(maxlen=SEAM_LINES) if number + 1 < len(self.paths) else None
            seam, damaged = bool(tail), False
            # the file's lines read: EventLines reads each block to its end before it asks for
            # the next, and the repeats it never sees are counted here
            seen_before = self.lines.seen + self.repeated
            try:
                with stream:
                    for block in read_blocks(stream, size=_read_size(stream)):
                        if block is None:
                            yield None
                            continue
                        if seam:
                            block, seam = self._after_repeats(block, tail)
                        if last is not None:
                            last.extend(map(hash, _line_keys(block)))
                        if block:
                            yield block
            except _read_errors() as error:
                lines_read = self.lines.seen + self.repeated - seen_before
                if len(self.paths) == 1 and not isinstance(error, (EOFError, ValueError)) \
                        and not lines_read:
                    raise _cannot_read(path, error)
                self.warnings.append(str(_cannot_read(path, error, lines_read)))
                damaged = True
            if not damaged or self.lines.seen + self.repeated > seen_before:
                self.read.append(path)
            if last:
                tail.extend(last)
        if not opened:
            raise MonitorError("cannot read event log %s: none of its files can be read"
                               % self.source)

    def _after_repeats(self, block, tail):
        """`block` less its first lines that are among the `tail` of the files read before (each
        counted in `repeated`), and whether the seam goes on after it (all of them were)."""
        start = 0
        while start < len(block):
            newline = block.find(b"\n", start)
            line = (block[start:],) if newline < 0 else block[start:newline]
            if line not in tail:
                return block[start:], False
            self.repeated += 1
            start = len(block) if newline < 0 else newline + 1
        return b"", True

    @property
    def source(self):
        """The logs, as the summary's first line names them once read: each log given, and
        the rotated files that could be read (all or in part)."""
        rotated = len([path for path in self.read if path not in self.given])
        named, seen = [], set()          # a log given twice (or by two names) is read once
        for path in self.given:
            key = _file_key(path)
            if key not in seen:
                seen.add(key)
                named.append(path)
        return ", ".join(named) + (" and %s" % plural(rotated, "rotated file")
                                   if rotated else "")


def _file_key(path):
    """What tells a file from another: its device and inode, else its absolute path. `path`
    may be an open descriptor (then None when it cannot be told)."""
    try:
        info = os.stat(path)
        return info.st_dev, info.st_ino
    except OSError:
        return None if isinstance(path, int) else ("missing", os.path.abspath(path))


def _line_keys(block):
    """The lines of a block from read_blocks() as _LastLines knows them: without their newline,
    and a last line that has none (the end of a file cut short) as a tuple, so that it never
    equals a whole line of the file after it."""
    lines = block.split(b"\n")
    last = lines.pop()               # b"" when the block ends with a newline
    if last:
        lines.append((last,))
    return lines


class _LastLines:
    """Is a line (as _line_keys() gives it) one of the last `size` lines added? Known by its
    hash, in bounded memory."""

    def __init__(self, size):
        self.size = size
        self.added = 0
        self.at = {}                 # a line's hash -> when it was last added

    def extend(self, hashes):
        """The hashes of lines read, oldest first."""
        self.at.update(zip(hashes, itertools.count(self.added)))
        self.added += len(hashes)
        if len(self.at) > 2 * self.size:     # now and then, so that it costs little per line
            recent = self.added - self.size
            self.at = {key: when for key, when in self.at.items() if when >= recent}

    def __contains__(self, line):
        when = self.at.get(hash(line))
        return when is not None and when >= self.added - self.size

    def __bool__(self):
        return self.added > 0


def _cannot_read(path, error, lines_read=0):
    if isinstance(error, MonitorError):
        return error
    return MonitorError("cannot read event log %s%s: %s" % (
        path, " after %s" % plural(lines_read, "line") if lines_read else "",
        getattr(error, "strerror", None) or _one_line(error)))


# ---------------------------------------------------------------------------------------------
# The text summary (--summary): renders a History
# ---------------------------------------------------------------------------------------------

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


def summary_figures(summary):
    """The headline figures of a summary with monitored time, as --summary and the HTML report
    both write them."""
    interruptions = "%d" % summary.interruptions
    if summary.interruptions:
        interruptions += " (longest %s)" % human_duration(summary.longest)
    downtime = human_duration(summary.downtime)
    if summary.gaps:
        downtime += " (of which %s in %s)" % (human_duration(summary.gap_downtime),
                                              plural(summary.gaps, "gap"))
    figures = {"period": "%s to %s (%s)" % (local_time(summary.start), local_time(summary.end),
                                            human_duration(summary.period)),
               "monitored": human_duration(summary.monitored),
               "not_running": human_duration(summary.not_running),
               "availability": "%s %%" % _percent(summary.availability, 3),
               "interruptions": interruptions, "blips": plural(summary.blips, "blip"),
               "downtime": downtime}
    left_out, seconds = summary.overlapped
    if left_out:
        figures["left_out"] = "%s (%s) dated before downtime already counted (a clock behind " \
                              "at a start, or lines written twice)" % (
                                  plural(left_out, "interruption"), human_duration(seconds))
    return figures


def _summary_by_cause(summary):
    """The lines of interruptions and downtime per cause (gaps have their own)."""
    causes = [cause for cause in CAUSES + ("not recorded",) if cause in summary.by_cause]
    if causes in ([], ["not recorded"]):
        return []                    # a log of a version before causes, or no interruption
    return ["%-15s%-12s  %s, %s" % ("By cause:" if number == 0 else "", cause,
                                   plural(summary.by_cause[cause][0], "interruption"),
                                   human_duration(summary.by_cause[cause][1]))
            for number, cause in enumerate(causes)]


def _summary_partial(summary):
    """Partial outages, and per target and per IP family how much of the monitored time each
    answered, when there is more than one."""
    lines = []
    if summary.partial:
        kinds = [("target", "of one target"), ("family", "of one IP family"),
                 ("dns", "of names (DNS)")]
        count = sum(counted[0] for counted in summary.partial.values())
        lines.append("Partial:       %s while the connection stayed up (%s): %s" % (
            plural(count, "outage"), human_duration(sum(c[1] for c in summary.partial.values())),
            ", ".join("%d %s" % (summary.partial[kind][0], words)
                      for kind, words in kinds if kind in summary.partial)))
    if summary.targets_changed:
        return lines + ["Per target:    - (the targets changed between runs)"]
    if len(summary.targets) > SUMMARY_TARGETS_KEPT:
        return lines + ["Per target:    - (%d targets; shown for at most %d)" % (
            len(summary.targets), SUMMARY_TARGETS_KEPT)]
    rows = [(label, label) for label in summary.targets] if len(summary.targets) > 1 else []
    families = {_label_family(label) for label in summary.targets}
    family_rows = [("IPv4", "ipv4"), ("IPv6", "ipv6")] if {"ipv4", "ipv6"} <= families else []
    for title, entries in (("Per target:", rows), ("Per family:", family_rows)):
        for number, (shown, key) in enumerate(entries):
            availability = _availability(summary.monitored, summary.downtime
                                         + summary.partial_only.get(key, 0.0))
            lines.append("%-15s%s %%  %s" % (title if number == 0 else "",
                                            _percent(availability, 3), shown))
    return lines


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
    figures = summary_figures(summary)
    lines.append("Period:        %s" % figures["period"])
    if summary.still_running:
        lines.append("               (the log ends while the monitor runs%s: counted until its "
                     "last event)" % (" and the network is down" if summary.still_down else ""))
    lines += [
        "Monitored:     %s" % figures["monitored"],
        "Not running:   %s (neither up nor down)" % figures["not_running"],
        "Availability:  %s" % figures["availability"],
        "Interruptions: %s, %s ignored" % (figures["interruptions"], figures["blips"]),
        "Downtime:      %s" % figures["downtime"],
    ]
    if "left_out" in figures:
        lines.append("Left out:      %s" % figures["left_out"])
    lines += _summary_by_cause(summary) + _summary_partial(summary)
    if summary.has_latency:
        lines += latency_lines(summary)
    lines += [
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
    if summary.has_latency:
        lines += latency_table(summary)
    return "\n".join(lines) + "\n"


def latency_lines(summary):
    """The summary's lines on slow periods and connect times, below its downtime."""
    slow = human_duration(summary.slow)
    if summary.slow_periods:
        slow += " in %s (longest %s)" % (plural(summary.slow_periods, "slow period"),
                                         human_duration(summary.slow_longest))
    connect = "no stats events"
    if summary.windows:
        connect = "median %s, 95th percentile %s (%s)" % (
            milliseconds(summary.medians.percentile(0.5)),
            milliseconds(summary.p95s.percentile(0.95)), plural(summary.windows, "stats window"))
    lines = ["Slow:          %s, %s ignored" % (slow, plural(summary.slow_ignored,
                                                                 "shorter one"))]
    if summary.has_loss:
        lossy = human_duration(summary.lossy)
        if summary.lossy_periods:
            lossy += " in %s (longest %s)" % (plural(summary.lossy_periods, "lossy period"),
                                              human_duration(summary.lossy_longest))
        lines.append("Lossy:         %s, %s ignored" % (lossy, plural(summary.lossy_ignored,
                                                                      "shorter one")))
    return lines + ["Connect time:  %s" % connect]


def latency_rows(summary):
    """For each row of the day table (a day, or days alike in a row): its seconds in slow
    periods, and the connect times of the stats windows that ended in it, as (row, slow
    seconds, DayLatency or None). Work grows with the rows, spans and days with windows."""
    spans, days, result = summary.slow_spans, sorted(summary.latency_days.items()), []
    next_span = next_day = 0
    for row in summary.days:
        slow = 0.0
        while next_span < len(spans) and spans[next_span][1] <= row.start:
            next_span += 1
        for start, end in spans[next_span:]:
            if start >= row.end:
                break
            slow += min(end, row.end) - max(start, row.start)
        inside = []
        while next_day < len(days) and days[next_day][1].date <= row.last_date:
            if days[next_day][1].date >= row.date:
                inside.append(days[next_day][1])
            next_day += 1
        times = inside[0] if len(inside) == 1 else None
        if len(inside) > 1:                  # days alike in availability: their windows together
            times = DayLatency(days[next_day - 1][0])
            for day in inside:
                for mine, theirs in ((times.medians, day.medians), (times.p95s, day.p95s)):
                    for ms, count in theirs.values():
                        mine.add(ms / 1000.0, count)
        result.append((row, slow, times))
    return result


def latency_table(summary):
    """One row per row of the day table with slow time or connect times, and what the columns
    mean."""
    lines = ["", "%-10s  %12s  %10s  %10s" % ("day", "slow", "median", "p95")]
    for row, slow, times in latency_rows(summary):
        if not slow and times is None:
            continue
        lines.append(("%-10s  %12s  %10s  %10s%s" % (
            row.date, human_duration(slow),
            milliseconds(times and times.medians.percentile(0.5)),
            milliseconds(times and times.p95s.percentile(0.95)),
            " .. %s (%d days)" % (row.last_date, row.days) if row.days > 1 else "")))
    lines += ["",
              "slow: time in slow periods of at least --min-interruption. median, p95: the "
              "connect time of the fastest target (the one with the lowest median in each stats "
              "window): the median of the windows' medians and the 95th percentile of their 95th "
              "percentiles, each window weighted by its connects that got through."]
    return lines


@contextlib.contextmanager
def fewer_collections():
    """Python's cycle collector, less often and without this program's own objects, while a
    replay makes and frees millions of small objects and keeps few: its passes over the new ones
    find next to nothing to free, and each full one walked the program's objects again."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_SUMMARY)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def run_summary(settings, out, console):
    """--summary: the I/O around summarize_events() and format_summary(); with --html or
    --csv, ReportFiles replays the log instead and writes those files as well."""
    lines = EventLogFiles(settings.log_files or [settings.log_file])
    files = ReportFiles(settings.html, settings.csv) if settings.html or settings.csv else None
    try:
        with fewer_collections():
            if files is None:
                summary = summarize_events(lines, settings.since, settings.until)
            else:
                summary = files.summarize(lines, settings.since, settings.until)
    finally:
        for warning in lines.warnings:
            console.warning(warning)
    path = lines.source              # once read: only the files that could be
    try:
        HOUR_SHADES.encode(getattr(out, "encoding", None) or "ascii")
        plain = False
    except (LookupError, UnicodeError):
        plain = True
    write_text(out, format_summary(summary, path, ascii=plain), "the summary")
    warning = describe_skipped(lines.not_json, summary, path, lines.too_long)
    if warning:
        console.warning(warning)
    if lines.repeated:
        console.warning("read once %s at the start of a file that repeat the last lines of the "
                        "file before it" % plural(lines.repeated, "line"))
    if not summary.any_event and (lines.not_json or lines.too_long or summary.invalid or
                                  summary.unknown or summary.unknown_others):
        console.error("%s is not an event log of pyNetConnMon: none of its lines is an event "
                      "it writes" % printable(path))
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# HTML and CSV report (--summary --html FILE, --csv FILE): render the same History
# ---------------------------------------------------------------------------------------------

REPORT_CHARTS = 8                # targets with a connect-time chart: those with the most connects
REPORT_ZOOM = 3 * 86400.0       # a period this short also gets one bar of its own, to scale
BAR_WIDTH = 480                  # SVG units of a day's 24 hours (one unit: 3 minutes)
BAR_HEIGHT = 16

# The colour of each cause (CAUSES; their words are CAUSE_WORDS and CAUSE_EXPLAINED). A log
# from before causes says "not recorded"; a cause this table does not know is drawn as unknown.
CAUSE_COLOURS = {
    "local": "#7b3294", "lan": "#e66101", "provider": "#d7191c", "dns": "#c51b7d",
    "unknown": "#8c2d04",
    "not recorded": "#a6761d",       # a log from before causes: drawn, and said, apart
}
REPORT_COLOURS = {               # the rest of the picture; every colour has a CSS class of its name
    "up": "#b8e0b0", "gap": "#636363", "slow": "#f1b517", "partial": "#f4a582", "off": "#ffffff",
    "lossy": "#8073ac",
    "a100": "#1a9850", "a999": "#91cf60", "a99": "#fee08b", "a95": "#fc8d59", "alow": "#d73027",
    "median": "#2166ac", "p95": "#92c5de",
}
CSV_COLUMNS = ("start", "end", "duration_s", "kind", "cause", "reason", "targets")


# -- CSV: one row per interruption, gap, partial outage and slow period ----------------------

def _spreadsheet_safe(text):
    """A cell a spreadsheet will not run as a formula (=, +, -, @ first get a quote)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_fields(row):
    """The CSV_COLUMNS of a row: ISO 8601 times with their UTC offset, seconds with a point."""
    return [iso_time(row.start), iso_time(row.end), "%.3f" % row.duration, row.kind,
            _spreadsheet_safe(row.cause), _spreadsheet_safe(row.why),
            _spreadsheet_safe(" ".join(row.targets))]


# -- HTML: a page without scripts or requests, its pictures inline SVG ------------------------

REPORT_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1b1b1b;background:#fff;max-width:62em;margin:1.2em auto;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0 .1em}h2{font-size:1.15em;margin:1.6em 0 .5em;
border-bottom:1px solid #bbb;padding-bottom:.15em}p{margin:.4em 0}
table{border-collapse:collapse;margin:.3em 0}th,td{padding:.12em .55em;text-align:left;
vertical-align:middle}th{border-bottom:1px solid #888;font-weight:600}
tbody tr:nth-child(even) td{background:#f4f4f4}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}.t{white-space:nowrap}
.figures th{text-align:left;font-weight:normal;color:#555;border:0}.figures td{font-weight:600;
background:none!important}
.muted{color:#666}.small{font-size:.85em}svg{display:block;max-width:100%;height:auto}
.key{display:inline-block;margin-right:1em;white-space:nowrap}
.key svg{display:inline-block;vertical-align:-2px;margin-right:.3em}
.state{font-weight:700;padding:0 .3em}.w{white-space:normal}#interruptions-table,#recent{width:100%}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
@media print{@page{size:A4;margin:12mm}body{font-size:9pt;max-width:none;margin:0;padding:0}
h2{break-after:avoid}tr,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def _style():
    fills = ["." + name + "{fill:" + colour + "}" for name, colour in REPORT_COLOURS.items()]
    fills += [".%s{fill:%s}" % (_cause_class(cause), colour)
              for cause, colour in CAUSE_COLOURS.items()]
    fills.append(".off{stroke:#bbb;stroke-width:.5}.grid{stroke:#fff;stroke-width:.6}"
                 ".axis{stroke:#999;stroke-width:.5}.median{fill:none;stroke:%s;stroke-width:1.3}"
                 ".p95{fill:none;stroke:%s;stroke-width:1}text{font-size:9px;fill:#555}"
                 % (REPORT_COLOURS["median"], REPORT_COLOURS["p95"]))
    return REPORT_STYLE + "".join(fills)


def _html_page(title, body, refresh=None):
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '%s<link rel="icon" href="data:,"><title>%s</title><style>%s</style></head>\n'
            '<body>\n%s\n</body></html>\n'
            % ('<meta http-equiv="refresh" content="%d">' % refresh if refresh else "",
               escape(title), _style(), body))


def _svg(width, height, inner, label):
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" '
            'role="img" aria-label="%s">%s</svg>' % (width, height, width, height,
                                                      escape(label), "".join(inner)))


def _cause_class(cause):
    return "c-" + (cause if cause in CAUSE_COLOURS else "unknown").replace(" ", "-")


def _row_class(row):
    if row.kind == "interruption":
        return _cause_class(row.cause)
    return {"gap": "gap", "slow": "slow", "lossy": "lossy", "partial": "partial"}[row.kind]


def _row_title(row):
    what = row.cause if row.kind == "interruption" else row.kind
    return "%s to %s (%s) %s: %s" % (local_time(row.start)[11:], local_time(row.end)[11:],
                                     human_duration(row.duration), what, row.why or "-")


def _bar(start, end, monitored, rows, ticks=(), width=BAR_WIDTH, height=BAR_HEIGHT, label=""):
    """A bar of [start, end): blank where not monitored, then the monitored stretches, slow
    periods, interruptions and gaps (full height) and partial outages (a stripe below), each
    to scale and at least 0.6 units wide; white lines at `ticks` (instants)."""
    scale = width / float(end - start)
    inner = ['<rect class="off" x="0" y="0" width="%g" height="%g"/>' % (width, height)]

    def rect(css, a, b, top=0.0, title=None):
        x = max(0.0, (a - start) * scale)
        w = max(0.6, min(width, (b - start) * scale) - x)
        inner.append('<rect class="%s" x="%.1f" y="%g" width="%.1f" height="%g">%s</rect>'
                     % (css, x, top, w, height - top,
                        "<title>%s</title>" % escape(title) if title else ""))

    for a, b in monitored:
        if b > start and a < end:
            rect("up", max(a, start), min(b, end))
    for order in ("slow", "lossy", "down", "partial"):
        for row in rows:
            kind = {"slow": "slow", "lossy": "lossy", "partial": "partial"}.get(row.kind, "down")
            if kind == order and row.end > start and row.start < end:
                rect(_row_class(row), max(row.start, start), min(row.end, end),
                     height * 0.7 if kind == "partial" else 0.0, _row_title(row))
    for tick in ticks:
        x = (tick - start) * scale
        inner.append('<line class="grid" x1="%.1f" y1="0" x2="%.1f" y2="%g"/>' % (x, x, height))
    return _svg(width, height, inner, label)


def _local_hour(day_start, hour):
    """The instant of HOUR:00 on the local day beginning at `day_start`."""
    if hour == 0:
        return day_start
    local = time.localtime(day_start)
    return time.mktime((local.tm_year, local.tm_mon, local.tm_mday, hour, 0, 0, 0, 0, -1))


def _overlapping(days, spans, key):
    """For each day row, the spans that overlap it (spans in any order; days in order)."""
    spans = sorted(spans, key=key)
    index, active = 0, []
    for day in days:
        while index < len(spans) and key(spans[index])[0] < day.end:
            active.append(spans[index])
            index += 1
        active = [span for span in active if key(span)[1] > day.start]
        yield [span for span in active if key(span)[0] < day.end]


def _avail_class(day):
    value = day.availability
    if value is None:
        return "off"
    return ("a100" if value >= 100.0 else "a999" if value >= 99.9 else "a99" if value >= 99.0
            else "a95" if value >= 95.0 else "alow")


def _day_text(day):
    if day.days == 1:
        return day.date
    return "%s to %s (%d days)" % (day.date, day.last_date, day.days)


def _ordinal(date_text):
    """The proleptic ordinal of a "YYYY-MM-DD" that _date_text() wrote."""
    return _datetime().date.fromisoformat(date_text).toordinal()


def _calendar(days):
    """Weeks as columns, Monday to Sunday as rows, a cell per day coloured by its availability;
    days in a row alike are drawn as one shape, so its size grows with the rows, not the days.
    One picture per 53 weeks; a stretch of such weeks not monitored at all is one line."""
    datetime, timedelta = _datetime().datetime, _datetime().timedelta
    if not days:
        return ""
    step, cell, left, top = 13, 11, 26, 14
    runs = [(_ordinal(day.date), _ordinal(day.last_date), day) for day in days]
    first = runs[0][0] - datetime.fromordinal(runs[0][0]).weekday()
    out, quiet_from = [], None
    for chunk in range(first, runs[-1][1] + 1, 53 * 7):
        chunk_end = chunk + 53 * 7
        inside = [run for run in runs if run[1] >= chunk and run[0] < chunk_end]
        if all(run[2].monitored <= 0 for run in inside):
            quiet_from = chunk if quiet_from is None else quiet_from
            continue
        if quiet_from is not None:
            out.append('<p class="muted">%s to %s: not monitored.</p>' % (
                datetime.fromordinal(quiet_from).date(),
                datetime.fromordinal(chunk - 1).date()))
            quiet_from = None
        weeks = (min(chunk_end, runs[-1][1] + 1) - chunk + 6) // 7
        inner = []
        for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"), (6, "Sun")):
            inner.append('<text x="0" y="%d">%s</text>' % (top + row * step + 9, name))
        month = datetime.fromordinal(max(chunk, runs[0][0])).replace(day=1)
        while month.toordinal() < chunk + weeks * 7:
            column = max(0, (month.toordinal() - chunk) // 7)
            following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
            if column == 0 and (following.toordinal() - chunk) // 7 < min(6, weeks):
                month = following           # no room for a label before the next one
                continue
            inner.append('<text x="%d" y="10">%s</text>' % (
                left + column * step, month.strftime("%b %Y" if month.month == 1 or
                                                     column == 0 else "%b")))
            month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        for a, b, day in inside:
            a, b = max(a, chunk), min(b, chunk_end - 1)
            title = "%s: %s" % (_day_text(day), "not monitored" if day.monitored <= 0 else
                                "%s %% available, %s down" % (_percent(day.availability, 2),
                                                             human_duration(day.downtime)))
            shapes = []
            for col in range((a - chunk) // 7, (b - chunk) // 7 + 1):
                low = max(a, chunk + col * 7) - chunk - col * 7
                high = min(b, chunk + col * 7 + 6) - chunk - col * 7
                shapes.append((col, low, high))
            inner.append('<g class="%s"><title>%s</title>%s</g>' % (
                _avail_class(day), escape(title), "".join(
                    '<rect x="%d" y="%d" width="%d" height="%d"/>' % (
                        left + col * step, top + low * step, cell, (high - low) * step + cell)
                    for col, low, high in shapes)))
        out.append(_svg(left + weeks * step + 40, top + 7 * step, inner,
                        "availability per day from %s" % datetime.fromordinal(chunk).date()))
    if quiet_from is not None and out:
        out.append('<p class="muted">%s on: not monitored.</p>'
                   % datetime.fromordinal(quiet_from).date())
    return "\n".join(out)


def _nice_ceiling(value):
    """1, 2 or 5 times a power of ten, at least `value` (ms) taken within 0.01 (the least a
    chart's labels show) and CONNECT_TIME_RANGE's top: a damaged log may give any float, and
    5e-324 has no power of ten a float can hold. 1 for nothing above 0."""
    if value <= 0:
        return 1.0
    value = min(max(value, 0.01), CONNECT_TIME_RANGE[1])
    power = 10.0 ** math.floor(math.log10(value))
    return next(power * factor for factor in (1, 2, 5, 10) if power * factor >= value - 1e-12)


def _time_ticks(start, end, most=8):
    """About `most` instants at round local times between start and end, and their format."""
    datetime, timedelta = _datetime().datetime, _datetime().timedelta
    span = end - start
    for step, fmt in ((10, "%H:%M:%S"), (30, "%H:%M:%S"), (60, "%H:%M"), (120, "%H:%M"),
                      (300, "%H:%M"), (600, "%H:%M"), (900, "%H:%M"), (1800, "%H:%M")):
        if span / step <= most:
            offset = time.localtime(start).tm_gmtoff       # round in local time
            first = math.ceil((start + offset) / step) * step - offset
            return [first + number * step for number in range(most + 1)
                    if first + number * step < end], fmt
    for hours, fmt in ((1, "%H:%M"), (2, "%H:%M"), (3, "%H:%M"), (6, "%H:%M"), (12, "%d %H:%M"),
                       (24, "%m-%d"), (48, "%m-%d"), (168, "%m-%d"), (336, "%m-%d")):
        if span / (hours * 3600.0) <= most:
            break
    else:
        months = max(1, int(math.ceil(span / (most * 30.4 * 86400))))
        ticks, day = [], datetime.fromtimestamp(start).replace(day=1, hour=0, minute=0, second=0,
                                                               microsecond=0)
        while day.timestamp() < end and len(ticks) <= most + 2:
            if day.timestamp() >= start and (day.month - 1) % months == 0:
                ticks.append(day.timestamp())
            day = datetime(day.year + day.month // 12, day.month % 12 + 1, 1)
        return ticks, "%b %Y"
    ticks, local = [], datetime.fromtimestamp(start)
    moment = local.replace(minute=0, second=0, microsecond=0)
    if hours >= 24:
        moment = moment.replace(hour=0)
    if hours == 168 or hours == 336:
        moment = datetime.fromordinal(moment.toordinal() - moment.weekday())
    while len(ticks) <= most + 2:
        instant = moment.timestamp()
        if instant >= end:
            break
        if instant >= start and (hours >= 24 or moment.hour % hours == 0):
            ticks.append(instant)
        moment = (moment + timedelta(hours=min(hours, 24)
                                                           if hours < 24 else hours))
    return ticks, fmt


def _connect_chart(label, points, step, start, end, width=720, height=130):
    """Median and 95th percentile as two lines over [start, end), a point every `step`
    seconds (an hour, or a statistics window); where there are no statistics, a hole. With
    more points than the width has room for, each pixel column shows the middle of its points'
    medians and the highest of their 95th percentiles."""
    left, bottom, top = 46, 16, 6
    plot_w, plot_h = width - left - 4, height - bottom - top
    span = max(1.0, end - start)
    points = [point for point in points if start - step < point[0] < end + step]
    if not points:
        return ""
    if len(points) > plot_w:
        columns = {}
        for point in points:
            column = int((point[0] - start) / span * plot_w)
            group = columns.get(column)
            if group is None:
                columns[column] = [point]
            else:
                group.append(point)
        points = []
        for _, group in sorted(columns.items()):
            moments, medians, p95s = zip(*group)
            points.append((sum(moments) / len(group), sorted(medians)[len(group) // 2],
                           max(p95s)))
    top_ms = _nice_ceiling(max(p95 for _, _, p95 in points))
    gap = max(2.5 * step, 1.5 * span / plot_w)

    def x(moment):
        return left + min(plot_w, max(0.0, (moment - start) / span * plot_w))

    def y(ms):
        return top + plot_h - min(ms, top_ms) / top_ms * plot_h

    def path(index):
        words, previous = [], None
        for point in points:
            step = "L" if previous is not None and point[0] - previous < gap else "M"
            words.append("%s%.1f %.1f" % (step, x(point[0]), y(point[index])))
            previous = point[0]
        return " ".join(words)

    inner = ['<line class="axis" x1="%d" y1="%g" x2="%d" y2="%g"/>' % (left, top + plot_h,
                                                                       width - 4, top + plot_h)]
    for fraction in (0.0, 0.5, 1.0):
        inner.append('<line class="axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>'
                     '<text x="0" y="%.1f">%s</text>'
                     % (left, y(top_ms * fraction), width - 4, y(top_ms * fraction),
                        y(top_ms * fraction) + 3, milliseconds(top_ms * fraction)
                        if fraction else "0 ms"))
    ticks, fmt = _time_ticks(start, end)
    for tick in ticks:
        inner.append('<text x="%.1f" y="%d">%s</text>' % (
            min(width - 44, x(tick) - 10), height - 3, time.strftime(fmt, time.localtime(tick))))
    inner.append('<path class="p95" d="%s"/><path class="median" d="%s"/>' % (path(2), path(1)))
    return _svg(width, height, inner, "connect time to %s" % label)


def _swatch(css, label):
    return '<span class="key">%s%s</span>' % (
        _svg(12, 12, ['<rect class="%s" x="0" y="0" width="12" height="12"/>' % css], label),
        escape(label))


def _figure_rows(figures):
    return "".join('<tr><th>%s</th><td id="%s">%s</td></tr>' % (escape(name), key, escape(text))
                   for key, name, text in figures)


def _rows_table(rows, left_out=0, half=0, caption_id="interruptions-table"):
    out = ['<table id="%s"><thead><tr><th class="n">#</th><th>start</th><th>end</th>'
           '<th class="n">duration</th><th>kind</th><th>cause</th><th>reason</th>'
           '<th>targets</th></tr></thead><tbody>' % caption_id]
    for number, row in enumerate(rows, 1):
        if left_out and number == half + 1:
            out.append('<tr><td></td><td colspan="7" class="muted">... %s left out here; the CSV '
                       '(--csv) and the event log have every one ...</td></tr>'
                       % plural(left_out, "row"))
        shown_number = number + (left_out if left_out and number > half else 0)
        out.append('<tr class="%s"><td class="n">%d</td><td class="t">%s</td><td class="t">%s</td>'
                   '<td class="n">%s</td><td>%s</td><td>%s</td><td>%s</td><td class="small">%s'
                   '</td></tr>' % (row.kind, shown_number,
                                   local_time(row.start) + _window_words(row.window),
                                   "going on" if row.open else local_time(row.end),
                                   human_duration(row.duration) + (" so far" if row.open else ""),
                                   row.kind,
                                   escape(row.cause or "-"), escape(row.why or "-"),
                                   escape(" ".join(row.targets)) if row.kind == "partial"
                                   else "all"))
    out.append("</tbody></table>")
    return "".join(out)


def _window_words(window):
    """Below a start: when the outage began at the earliest and the latest."""
    if window is None:
        return ""
    return '<br><span class="small muted w">began %s to %s</span>' % tuple(
        "%s.%03d" % (time.strftime("%H:%M:%S", time.localtime(moment)),
                     int(moment * 1000) % 1000) for moment in window)


def _explanation(summary):
    explained = dict(CAUSE_EXPLAINED, **{"not recorded": "not recorded: the log is from a "
                                         "version of the monitor that did not record causes."})
    causes = "".join("<li>%s %s</li>" % (
        _svg(12, 12, ['<rect class="%s" x="0" y="0" width="12" height="12"/>'
                      % _cause_class(cause)], cause).replace(
                          "<svg ", '<svg style="display:inline-block" '),
        escape(explained.get(cause, cause))) for cause in CAUSE_COLOURS)
    return (
        "<h2>How the figures are counted</h2><ul>"
        "<li>Every few seconds (its interval) the monitor tries a TCP connect to each target. "
        "The connection is <b>up</b> while at least one target answers.</li>"
        "<li>An <b>interruption</b> began between the last round in which a target answered and "
        "the first in which none did: its start is the middle of that window, shown below it "
        "(&ldquo;began ... to ...&rdquo;). It ends when a connect got through again. One shorter "
        "than the monitor's --min-interruption is a <b>blip</b>: counted apart, not as "
        "downtime.</li>"
        "<li><b>Monitored</b> time is the time the monitor ran. When it ended without a stop "
        "(a crash, a power cut), the time until it ran again is a <b>gap</b>: it counts as "
        "monitored and as down, since nothing shows the connection was up then. Time the monitor "
        "was stopped is <b>not running</b>: neither up nor down, and left blank.</li>"
        "<li><b>Availability</b> = (monitored time &minus; downtime) / monitored time.</li>"
        "<li>The <b>cause</b> says where the way out broke, as the monitor saw it while it "
        "lasted:<ul>%s</ul></li>"
        "<li>The <b>reason</b> says what the connects saw:<ul>%s</ul></li>"
        "<li>A <b>partial outage</b>: a target, every target of one IP family, or name lookups "
        "failed while another target answered; the connection counts as up. A target's own "
        "availability counts its partial outages too.</li>"
        "<li>A <b>slow period</b>: even the fastest target took the monitor's --slow or longer "
        "to connect, round after round. The <b>connect time per hour</b> comes from the "
        "statistics the monitor logs for each window of time: per hour the median of the "
        "windows' medians and the 95th percentile of their 95th percentiles, each window "
        "weighted by its connects.%s</li>"
        "%s"
        "<li>Each interruption is drawn to scale, at least a hair wide so that a short one "
        "shows. Times are local time of the machine that made this report (%s).</li></ul>"
        % (causes, "".join("<li>%s</li>" % escape(text) for text in REASON_EXPLAINED.values()),
           "" if summary.has_latency else " This log has neither (the monitor that "
           "wrote it did not record them).",
           "<li>A <b>lossy period</b>: the connection stayed up, but lost the monitor's --loss "
           "share of its connect attempts or more (SYNs it had to send again, or that got no "
           "answer), over its last rounds.</li>" if summary.row_counts["lossy"] else "",
           escape(time_zones([summary.start] + [day.start for day in summary.days
                                                 if summary.start < day.start < summary.end]
                             + [max(summary.start, summary.end - 1.0)]))))


REPORT_PROBLEMS_SHOWN = 5        # files the report names as not read in full; the rest counted


def render_report(summary, source, made=None, problems=()):
    """The HTML report of a History: one self-contained page. `problems`: what could not be
    read of the log's files (EventLogFiles.warnings), which the page says too."""
    made = time.time() if made is None else made
    others = len(summary.other_hosts)
    named = ", ".join(summary.hosts) + (" and %s%s more" % (
        others, " or" if others >= OTHER_HOSTS_COUNTED else "") if others else "")
    hosts = named or "not in the log (this report was made on %s)" % (
        printable(socket.gethostname()))
    title = "Internet connection report: %s" % (named or "pyNetConnMon")
    body = ["<h1>%s</h1>" % escape(title),
            '<p class="muted">Made by pyNetConnMon %s on %s from the event log %s.</p>'
            % (VERSION, local_time(made), escape(printable(source)))]
    if problems:
        shown = [escape(printable(problem)) for problem in problems[:REPORT_PROBLEMS_SHOWN]]
        if len(problems) > len(shown):
            shown.append("and %s more" % plural(len(problems) - len(shown), "problem"))
        body.append('<p id="unread" class="muted">Not all of it could be read, so this report '
                    'may lack what those parts held: %s.</p>' % "; ".join(shown))
    info = [("host", "Host", hosts),
            ("targets", "Targets", ", ".join(summary.all_targets) or "not in the log")]
    if summary.since is not None or summary.until is not None:
        info.append(("selected", "Selected", "%s to %s" % (
            "the beginning" if summary.since is None else local_time(summary.since),
            "the end" if summary.until is None else local_time(summary.until))))
    if summary.start is None:
        body.append('<table class="figures">%s</table><p id="nothing">Nothing to report: no '
                    'monitored time %s.</p>' % (_figure_rows(info), "in the log" if
                                                summary.since is None and summary.until is None
                                                else "in the selected time"))
        return _html_page(title, "\n".join(body))
    figures = summary_figures(summary)
    info += [(key, name, figures[key]) for key, name in (
        ("period", "Period"), ("availability", "Availability"), ("interruptions", "Interruptions"),
        ("downtime", "Downtime"), ("blips", "Blips (ignored)"), ("monitored", "Monitored"),
        ("not_running", "Not running"), ("left_out", "Left out")) if key in figures]
    causes = [cause for cause in CAUSES + ("not recorded",) if cause in summary.by_cause]
    if causes not in ([], ["not recorded"]):
        info += [("cause-" + cause.replace(" ", "-"), "down: " + cause, "%s, %s" % (
            plural(summary.by_cause[cause][0], "interruption"),
            human_duration(summary.by_cause[cause][1]))) for cause in causes]
    if summary.partial:
        info.append(("partial", "Partial outages", "%s while the connection stayed up (%s)" % (
            plural(sum(counted[0] for counted in summary.partial.values()), "outage"),
            human_duration(sum(counted[1] for counted in summary.partial.values())))))
    if summary.has_latency:             # the text summary's lines, word for word
        for line in latency_lines(summary):
            name, _, value = line.partition(":")
            info.append((name.lower().replace(" ", "-"), name, value.strip()))
    body.append('<table class="figures">%s</table>' % _figure_rows(info))
    if summary.still_running:
        body.append('<p class="muted">The log ends while the monitor runs%s: counted until its '
                    'last event.</p>' % (" and the network is down" if summary.still_down else ""))

    if summary.period <= REPORT_ZOOM:
        body.append(_period_bar(summary))
    body.append("<h2>Every day at a glance</h2>" + _calendar(summary.days))
    body.append('<p class="small">%s</p>' % " ".join(_swatch(css, words) for css, words in (
        ("a100", "100 %"), ("a999", "99.9 % or more"), ("a99", "99 % or more"),
        ("a95", "95 % or more"), ("alow", "less"), ("off", "not monitored"))))

    body.append(_day_table(summary))
    body.append(_charts(summary))
    rows = sorted(summary.rows, key=lambda row: (row.start, row.end))
    kinds = ["interruption"] + (["gap"] if summary.row_counts["gap"] else [])
    if summary.row_counts["lossy"]:
        kinds += ["partial outage", "slow", "lossy period"]
    elif summary.has_latency or summary.row_counts["partial"]:
        kinds += ["partial outage", "slow period"]
    body.append("<h2>Every %s</h2>" % (kinds[0] if len(kinds) == 1 else "%s and %s" % (
        ", ".join(kinds[:-1]), kinds[-1])))
    if rows:
        body.append(_rows_table(rows, summary.rows.left_out, summary.rows.half))
    else:
        body.append("<p>None.</p>")
    body.append(_target_table(summary))
    body.append(_explanation(summary))
    return _html_page(title, "\n".join(body))


def _period_bar(summary):
    """The whole of a short period as one bar, so that its interruptions show to scale."""
    start, end = summary.start, summary.end
    ticks, fmt = _time_ticks(start, end, most=10)
    scale = 720.0 / (end - start)
    return ("<h2>The whole period</h2>" + _bar(
        start, end, list(summary.monitored_spans), list(summary.rows), ticks, width=720, height=22,
        label="the whole period") + _svg(720, 11, ['<text x="%.1f" y="9">%s</text>' % (
            min(676, max(0, (tick - start) * scale - 12)),
            time.strftime(fmt, time.localtime(tick))) for tick in ticks], "times"))


def _day_table(summary):
    keys = [_swatch(_cause_class(cause), "down: %s" % cause) for cause in CAUSE_COLOURS]
    keys += [_swatch(css, words) for css, words in (
        ("gap", "gap (not running, counted as down)"), ("slow", "slow"))]
    keys += [_swatch("lossy", "lossy")] if summary.row_counts["lossy"] else []
    keys += [_swatch(css, words) for css, words in (
        ("partial", "partial outage"), ("up", "up"), ("off", "not monitored"))]
    out = ["<h2>Day by day</h2>",
           '<p class="small">Each bar is one day, midnight to midnight, local time. Days in a '
           'row with nothing to tell share one line.</p>',
           '<p class="small">%s</p>' % " ".join(keys),
           '<table id="days"><thead><tr><th>day</th><th class="n">available</th>'
           '<th class="n">int.</th><th class="n">downtime</th><th>%s</th></tr></thead><tbody>'
           % _svg(BAR_WIDTH, 10, ['<text x="%d" y="9">%02d</text>'
                                  % (min(BAR_WIDTH - 12, hour * BAR_WIDTH // 24), hour)
                                  for hour in range(0, 25, 3)], "hours of the day")]
    days = summary.days
    spans = _overlapping(days, summary.monitored_spans, key=lambda span: span)
    rows = _overlapping(days, summary.rows, key=lambda row: (row.start, row.end))
    for day, monitored, trouble in zip(days, spans, rows):
        if day.days > 1:
            bar = _bar(day.start, day.end, [(day.start, day.end)] if day.monitored else [], [],
                       label=_day_text(day))
            if day.downtime:
                bar = _bar(day.start, day.end, [], [EvidenceRow("gap" if all(
                    row.kind == "gap" for row in trouble) else "interruption", day.start, day.end,
                    next((row.cause for row in trouble if row.cause), "unknown"))],
                    label=_day_text(day))
        else:
            ticks = [_local_hour(day.start, hour) for hour in (3, 6, 9, 12, 15, 18, 21)]
            bar = _bar(day.start, day.end, monitored, trouble, ticks, label=day.date)
        if day.monitored > 0:
            cells = ('<td class="n">%s</td><td class="n">%d</td><td class="n">%s</td>'
                     % (_percent(day.availability, 2) + "%", day.interruptions,
                        human_duration(day.downtime)))
        else:
            cells = '<td class="n muted">-</td><td class="n muted">-</td><td class="n muted">-</td>'
        out.append('<tr class="%s"><td class="t">%s</td>%s<td>%s</td></tr>'
                   % (_avail_class(day), _day_text(day), cells, bar))
    out.append("</tbody></table>")
    return "".join(out)


def _charts(summary):
    hourly = summary.hourly
    if not hourly.hours:
        return ""
    labels = sorted(hourly.hours, key=lambda label: -hourly.connects[label])[:REPORT_CHARTS]
    windows = summary.period <= REPORT_ZOOM and all(hourly.windows[label] for label in labels)
    per = "per hour"
    if windows:                  # a short period: each statistics window, as it is
        points = sorted(point[0] for label in labels for point in hourly.windows[label])
        step = min([b - a for a, b in zip(points, points[1:]) if b > a] or [60.0])
        per = "per statistics window (%s)" % human_duration(step)
    out = ["<h2>Connect time %s</h2>" % per,
           '<p class="small">%s %s</p>' % (_swatch("median", "median").replace(
               'class="median"', 'style="fill:%s"' % REPORT_COLOURS["median"]),
               _swatch("p95", "95th percentile").replace(
                   'class="p95"', 'style="fill:%s"' % REPORT_COLOURS["p95"]))]
    for label in labels:
        out.append("<p><b>%s</b></p>%s" % (escape(label), _connect_chart(
            label, hourly.windows[label] if windows else hourly.hours[label],
            step if windows else 3600.0, summary.start, summary.end)))
    if len(hourly.hours) > len(labels):
        out.append('<p class="muted">%s more without a chart.</p>'
                   % plural(len(hourly.hours) - len(labels), "target"))
    return "".join(out)


def _target_table(summary):
    """Each target's (and IP family's) availability, as --summary counts it: the connection's
    downtime and the partial outages in which that target alone failed."""
    if summary.targets_changed:
        return ('<h2>Each target</h2><p class="muted">Not shown: the targets changed between '
                'runs.</p>')
    if len(summary.targets) > SUMMARY_TARGETS_KEPT:
        return ('<h2>Each target</h2><p class="muted">Not shown: %d targets; shown for at most '
                '%d.</p>' % (len(summary.targets), SUMMARY_TARGETS_KEPT))
    rows = [(label, label) for label in summary.targets] if len(summary.targets) > 1 else []
    if {"ipv4", "ipv6"} <= {_label_family(label) for label in summary.targets}:
        rows += [("IPv4", "ipv4"), ("IPv6", "ipv6")]
    if not rows:
        return ""
    out = ["<h2>Each target</h2>",
           '<table id="each-target"><thead><tr><th>target or IP family</th><th class="n">available'
           '</th><th class="n">failed alone</th></tr></thead><tbody>']
    for shown, key in rows:
        alone = summary.partial_only.get(key, 0.0)
        out.append('<tr><td>%s</td><td class="n">%s %%</td><td class="n">%s</td></tr>' % (
            escape(shown), _percent(_availability(summary.monitored, summary.downtime + alone), 3),
            human_duration(alone)))
    out.append("</tbody></table>")
    if not summary.partial:
        out.append('<p class="small muted">The log tells no partial outage (one target down '
                   'while another answered), so each target was down when the connection was.'
                   '</p>')
    return "".join(out)


# An open descriptor's name (/dev/stdout, /dev/fd/N and /proc/self/fd/N lead there): a link
# in /proc to whatever the descriptor holds, be it a pipe, a terminal or a file
_DESCRIPTOR_FOLDER = re.compile(r"/proc/([0-9]+)(?:/task/[0-9]+)?/fd")


def _own_descriptor(path):
    """The number of this process's open descriptor that `path` leads to through its links
    (--csv /dev/stdout), or None."""
    for _ in range(40):                  # as many links as the system follows (ELOOP)
        folder = os.path.realpath(os.path.dirname(path))
        found = _DESCRIPTOR_FOLDER.fullmatch(folder)
        name = os.path.basename(path)
        if found and int(found.group(1)) == os.getpid() and name.isdigit():
            return int(name)
        try:
            path = os.path.join(folder, os.readlink(path))
        except OSError:                  # not a link, or not there
            return None
    return None


def _write_report_file(path, what, write):
    """Writes --html or --csv FILE through write(stream). A regular file (or a new one) is
    replaced atomically, at the end of its links, which stay; a descriptor (/dev/stdout) is
    written where it stands, with what else goes there, and so is a FIFO (that a process
    reads) or character device, which a rename would only push aside."""
    def cannot(reason):
        return MonitorError("cannot write %s %s: %s" % (what, path, reason))
    encoding = "utf-8-sig" if what == "CSV" else "utf-8"
    descriptor = _own_descriptor(path)
    try:
        if descriptor is not None:
            stream = os.fdopen(os.dup(descriptor), "w", encoding=encoding, newline="")
        else:
            try:
                mode = os.stat(path).st_mode
            except FileNotFoundError:    # a new file, or a link to one still to be made
                mode = stat.S_IFREG
            if stat.S_ISREG(mode):
                return _write_atomically(os.path.realpath(path), encoding, write, cannot)
            if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
                raise cannot("it is a %s, not a file" % (
                    "folder" if stat.S_ISDIR(mode) else "socket" if stat.S_ISSOCK(mode)
                    else "block device" if stat.S_ISBLK(mode) else "special file"))
            # without waiting, as the event log: a FIFO that no process reads is an error
            try:
                opened = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as error:
                if error.errno == errno.ENXIO:
                    raise cannot(_unopenable_kind(path)) from None
                raise
            os.set_blocking(opened, True)      # ... but a slow reader gets every line
            stream = open(opened, "w", encoding=encoding, newline="")
        with stream:
            write(stream)
    except OSError as error:
        raise cannot(error.strerror or _one_line(error))


def _write_atomically(path, encoding, write, cannot):
    """A new regular file at `path` through write(stream) on a temporary file beside it, then
    put in place: a failure leaves any old file as it was and no half-written one."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".pyNetConnMon-",
                                                 dir=os.path.dirname(path))
    except OSError as error:
        raise cannot(error.strerror or _one_line(error))
    try:
        with os.fdopen(descriptor, "w", encoding=encoding, newline="") as stream:
            write(stream)
        os.chmod(temporary, FILE_MODE & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise cannot(error.strerror or _one_line(error))
        raise


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class ReportFiles:
    """--html and --csv around the replay: the CSV is written row by row as the log is read,
    the HTML once it has been; both appear only when complete."""

    def __init__(self, html_path=None, csv_path=None):
        self.html_path = html_path
        self.csv_path = csv_path

    def summarize(self, files, since, until):
        """The History of EventLogFiles `files`, with the files written."""
        lines = self._reading(files)
        if self.csv_path is None:
            return self._replay(lines, since, until, None, files)
        found = []

        def write(stream):
            import csv
            writer = csv.writer(stream, dialect="excel", lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            found.append(self._replay(lines, since, until,
                                      lambda row: writer.writerow(csv_fields(row)), files))
        _write_report_file(self.csv_path, "CSV", write)
        return found[0]

    @staticmethod
    def _reading(files):
        """The lines; a failure to read the log is told as such, not as one to write a file."""
        try:
            yield from files
        except OSError as error:
            raise MonitorError("cannot read event log %s: %s"
                               % (files.source, error.strerror or _one_line(error)))

    def _replay(self, lines, since, until, on_row, files):
        history = summarize_events(lines, since, until, on_row)
        if self.html_path is not None:
            page = render_report(history, files.source,    # once read: the files that could be
                                 problems=files.warnings)
            _write_report_file(self.html_path, "HTML report",
                               lambda stream: stream.write(page))
        return history


# ---------------------------------------------------------------------------------------------
# Status page: GET / on the metrics server: the same Replay, fed the events the monitor keeps
# ---------------------------------------------------------------------------------------------

STATUS_HISTORY_SECONDS = 24 * 3600.0
STATUS_HISTORY_LIMIT = 1000      # transitions kept; on a day with more, the oldest go first
STATUS_OPEN_PARTS = 256          # partial outages open at once
STATUS_BLIP_REACH = 64           # entries looked back through for what opened a blip
STATUS_ROWS_SHOWN = 10           # last interruptions, and reports waiting, shown
# Events that the page's replay needs in order, and what each opens or closes: an event that
# opened something still open is kept however old (an outage of three days still shows). Of any
# other event only the latest of each name is kept.
STATUS_OPENS = {"start": "run", "down": "down", "slow": "slow", "lossy": "lossy",
                "target_down": "part", "family_down": "part", "dns_down": "part"}
STATUS_CLOSES = {"up": "down", "slow_end": "slow", "lossy_end": "lossy", "target_up": "part",
                 "family_up": "part", "dns_up": "part"}
STATUS_TRANSITIONS = frozenset(("gap",) + tuple(STATUS_OPENS) + tuple(STATUS_CLOSES))


class StatusEvent:
    """An event as the monitor wrote it (`fields`: the dict the Announcer wrote; never changed
    after), numbered in the order written."""

    __slots__ = ("number", "name", "wall", "fields")

    def __init__(self, number, name, wall, fields):
        self.number = number
        self.name = name
        self.wall = wall
        self.fields = fields


def _opened_key(name, fields):
    """What an event opens or closes, as a key: ("down",), ("part", "target", "a:1"), ..."""
    kind = STATUS_OPENS.get(name) or STATUS_CLOSES.get(name)
    if kind != "part":
        return (kind,)
    what = name.split("_")[0]
    field = {"target": "target", "family": "family"}.get(what)
    return ("part", what, "names" if field is None else str(fields.get(field))[:REASON_LIMIT])


class RecentEvents:
    """The events the status page replays: the transitions of the last 24 hours (at most
    STATUS_HISTORY_LIMIT), those that opened what is still open, and the latest event of every
    other kind. The event log hands it each event it writes (EventLog's `listener`), in the
    monitor's thread; snapshot() is all that leaves it. It keeps events; it reads none of them
    but for what each opens or closes."""

    def __init__(self, limit=STATUS_HISTORY_LIMIT, keep=STATUS_HISTORY_SECONDS):
        self.keep = keep
        self.entries = collections.deque(maxlen=limit)
        self.latest = {}            # event name -> StatusEvent, for events not transitions
        self.open = {}              # _opened_key() -> the StatusEvent that opened it
        self.written = 0
        self._frozen = ()

    @property
    def down(self):
        return self.open.get(("down",))

    def record(self, name, wall, fields):
        self.written += 1
        entry = StatusEvent(self.written, name, wall, fields)
        self._frozen = None
        if name not in STATUS_TRANSITIONS:
            self.latest[name] = entry
            return
        if name in STATUS_CLOSES:
            opened = self.open.pop(_opened_key(name, fields), None)
            if opened is not None and fields.get("ignored") is True and self._forget(opened):
                return
        self.entries.append(entry)
        if name == "start":
            self.open.clear()
        if name in STATUS_OPENS:
            key = _opened_key(name, fields)
            if key[0] != "part" or sum(
                    1 for opened in self.open if opened[0] == "part") < STATUS_OPEN_PARTS:
                self.open.setdefault(key, entry)

    def _forget(self, opened):
        """Drops what opened a blip (or a slow or lossy stretch too short to count) that has
        just closed: the page shows neither, and on a lossy line thousands a day would push
        out of the list what it does show. Looked for among the latest entries only."""
        entries = self.entries
        for index in range(len(entries) - 1, max(-1, len(entries) - 1 - STATUS_BLIP_REACH), -1):
            if entries[index] is opened:
                del entries[index]
                return True
        return False

    def snapshot(self, now):
        """The events to replay, in the order written, as a tuple (made anew only after a
        change): transitions since `now` - 24 h, what they need that is older, the latest of
        the others."""
        while self.entries and self.entries[0].wall < now - self.keep:
            self.entries.popleft()
            self._frozen = None
        if self._frozen is None:
            kept = {entry.number: entry for entry in self.entries}
            for entry in list(self.open.values()) + list(self.latest.values()):
                kept.setdefault(entry.number, entry)
            self._frozen = tuple(kept[number] for number in sorted(kept))
        return self._frozen


class StatusSnapshot:
    """What GET / shows, as of the last round; built in the monitor's thread, then only read."""

    __slots__ = ("metrics", "made", "events", "pending_count", "pending", "host", "targets",
                 "interval")

    def __init__(self, metrics, made, events=(), pending_count=(0, 0, 0), pending=(), host="",
                 targets=(), interval=None):
        self.metrics = metrics              # the MetricsSnapshot of the same round
        self.made = made                    # wall clock
        self.events = events                # StatusEvents to replay (RecentEvents.snapshot())
        self.pending_count = pending_count  # (interruptions, partial outages, of the
        #                                     interruptions the gaps); None: --no-mail
        self.pending = pending              # ((start, end, duration, cause, what), ...)
        self.host = host
        self.targets = targets
        self.interval = interval

    def history(self, now):
        """The History of the last 24 hours before `now`: the same replay as --summary, of the
        events this monitor wrote, with what is still open counted to `now`."""
        replay = Replay(History(since=now - STATUS_HISTORY_SECONDS))
        for entry in self.events:
            replay.feed_event(entry.name, entry.wall, entry.fields)
        return replay.finish(now=max(now, replay.last or now))


def _pending_words(item):
    """What a pending interruption or partial outage was, in a few words."""
    if item.kind == "gap":
        return "gap: the monitor was not running"
    if item.kind == "many":
        return "%d folded into one" % item.count
    return "%s (%s)" % (item.part, item.reason) if item.part is not None else item.reason


class StatusBoard(MetricsBoard):
    """The metrics board, which also publishes the status page's snapshot with each metrics
    snapshot: the recent events and the reports waiting (read from `pending` here, in the
    monitor's thread). The HTTP thread only takes the latest of each."""

    def __init__(self, snapshot, recent, settings, pending=None, clock=time.time):
        super().__init__(snapshot)
        self.recent = recent
        self.settings = settings
        self.pending = pending
        self.clock = clock
        self.host = socket.gethostname()
        self._status = self._compose(snapshot)

    def _compose(self, metrics):
        now, pending = self.clock(), self.pending
        waiting = ()
        if pending is not None and len(pending):
            latest = sorted(pending.items[-STATUS_ROWS_SHOWN:] +
                            pending.partials[-STATUS_ROWS_SHOWN:], key=lambda item: item.start)
            waiting = tuple((item.start, item.end, item.duration, item.cause or "-",
                             _pending_words(item)) for item in latest[-STATUS_ROWS_SHOWN:])
        return StatusSnapshot(
            metrics, now, self.recent.snapshot(now),
            None if pending is None else (pending.count, pending.partial_count,
                                          pending.gap_count), waiting,
            self.host, tuple(self.settings.target_labels), self.settings.interval)

    def publish(self, snapshot):
        status = self._compose(snapshot)
        with self._lock:
            self._snapshot, self._status = snapshot, status

    def status(self):
        with self._lock:
            return self._status


STATUS_BADGES = {"STARTING": "#636363", "UP": "#1a9850", "SLOW": "#a6611a", "LOSSY": "#542788"}


def _status_now(status, history, now):
    """(state word, its colour, a sentence on since when and why)."""
    metrics = status.metrics
    if metrics.network_up is None:
        return "STARTING", STATUS_BADGES["STARTING"], "No round of probes has finished yet."
    if not metrics.network_up or history.down_since is not None:
        since = now if history.down_since is None else history.down_since
        cause = _cause_of(history.down_cause) or "unknown"
        return "DOWN", CAUSE_COLOURS.get(cause, CAUSE_COLOURS["unknown"]), (
            "Down since %s (for %s): %s. Cause: <b>%s</b> (%s)." % (
                local_time(since), human_duration(max(0.0, now - since)),
                escape(history.down_reason or "no target answered"), escape(cause),
                escape(CAUSE_WORDS.get(cause, "not recorded"))))
    if history.slow_since is not None:
        since = history.slow_since
        return "SLOW", STATUS_BADGES["SLOW"], (
            "Slow since %s (for %s): the fastest connect took %s." % (
                local_time(since), human_duration(max(0.0, now - since)),
                milliseconds(history.slow_connect_ms or 0.0)))
    if history.lossy_since is not None:
        since = history.lossy_since
        # the log tells the loss that made it lossy; the loss window, how it goes now
        latest = "" if metrics.loss_ratio is None else "; %.1f %% in the last %d rounds" % (
            100.0 * metrics.loss_ratio, LOSS_WINDOW_ROUNDS)
        return "LOSSY", STATUS_BADGES["LOSSY"], (
            "Lossy since %s (for %s): %s of the connect attempts were lost when it began%s." % (
                local_time(since), human_duration(max(0.0, now - since)),
                "-" if history.lossy_percent is None else "%.1f %%" % history.lossy_percent,
                latest))
    if history.last_up is not None:
        since, words = history.last_up, "the last interruption ended"
    else:
        since = history.run_start if history.run_start is not None else status.made
        words = "the monitor started"
    return "UP", STATUS_BADGES["UP"], "Up since %s, when %s (%s ago)." % (
        local_time(since), words, human_duration(max(0.0, now - since)))


def _recent_bar(history, now, ticks, step, every):
    """A bar of the `ticks` * `step` seconds before `now`, a line at each round `step` of local
    time and a label at every `every`th of them."""
    start = now - ticks * step
    monitored = list(history.monitored_spans)
    rows = list(history.rows)
    local = time.localtime(start)
    first = math.floor(start) - (local.tm_min * 60 + local.tm_sec) % step + step
    lines = [first + number * step for number in range(ticks) if first + number * step < now]
    scale = 720.0 / (now - start)
    labels = []
    for tick in lines:
        local = time.localtime(tick)
        if (local.tm_hour * 3600 + local.tm_min * 60) // step % every == 0:
            labels.append('<text x="%.1f" y="9">%s</text>' % (
                min(700, (tick - start) * scale - 6),
                time.strftime("%H" if step >= 3600 else "%H:%M", local)))
    return (_bar(start, now, monitored, rows, lines, width=720, height=22,
                 label="the last %s" % human_duration(now - start))
            + _svg(720, 11, labels, "times"))


def render_status(status, now=None):
    """The status page (HTML text) of a StatusSnapshot."""
    now = status.made if now is None else now
    metrics = status.metrics
    history = status.history(now)
    word, colour, sentence = _status_now(status, history, now)
    refresh = int(min(60, max(5, status.interval or 5)))
    body = ['<h1>%s: <span id="state" class="state" style="background:%s;color:#fff">%s</span>'
            '</h1><p id="since">%s</p>' % (
                escape(printable(status.host)), colour, word, sentence)]
    windows = dict(history.latest_stats)
    span = history.latest_stats_span
    targets = ['<h2>Targets</h2><table id="targets"><thead><tr><th>target</th><th>now</th>'
               '<th class="n">last connect</th>%s</tr></thead><tbody>' % (
                   '<th class="n">median, 95th percentile (%s to %s)</th>' % (
                       local_time(span[0])[11:], local_time(span[1])[11:]) if windows else "")]
    rows = list(metrics.targets)
    gateway = getattr(metrics, "gateway", None)
    if gateway:
        rows.append(("%s (gateway)" % gateway[0], gateway[1], gateway[2] if len(gateway) > 2
                     else None))
    for label, up, seconds in rows:
        figures = windows.get(label)
        window = ""
        if figures is not None:
            window = '<td class="n">%s, %s</td>' % (milliseconds(figures.median),
                                                    milliseconds(figures.p95))
        elif windows:
            window = '<td class="n">-</td>'
        targets.append('<tr><td>%s</td><td>%s</td><td class="n">%s</td>%s</tr>' % (
            escape(label), "up" if up else "<b>down</b>",
            milliseconds(seconds * 1000.0) if up and seconds is not None else "-", window))
    if not rows:
        targets.append('<tr><td colspan="3" class="muted">no round yet</td></tr>')
    targets.append("</tbody></table>")
    body.append("".join(targets))

    recent = list(history.rows)
    body.append("<h2>The last 24 hours</h2>" + _recent_bar(history, now, 24, 3600, 3))
    body.append("<h2>The last hour</h2>" + _recent_bar(history, now, 12, 300, 2))
    body.append('<p class="small">%s</p>' % " ".join(
        [_swatch("up", "up"), _swatch("off", "not monitored by this run"),
         _swatch("slow", "slow"), _swatch("lossy", "lossy"), _swatch("partial", "partial outage"),
         _swatch("gap", "gap")] + [_swatch(_cause_class(cause), cause) for cause in CAUSES]))

    body.append("<h2>Last interruptions</h2>")
    shown = sorted(recent, key=lambda row: row.start)[-STATUS_ROWS_SHOWN:]
    body.append(_rows_table(shown[::-1], caption_id="recent") if shown else
                '<p id="recent">None in the last 24 hours.</p>')

    if status.pending_count is None:
        waiting = "Reports are off (--no-mail)."
    elif not any(status.pending_count):
        waiting = "Nothing."
    else:
        count, partial, gaps = status.pending_count
        waiting = "%s wait%s for a report." % (pending_text(count, partial, gaps=gaps),
                                               "s" if count + partial == 1 else "")
    body.append('<h2>Waiting for a report</h2><p id="pending">%s</p>' % waiting)
    if status.pending:
        body.append('<table><thead><tr><th>start</th><th>end</th><th class="n">duration</th>'
                    '<th>cause</th><th>what</th></tr></thead><tbody>%s</tbody></table>' % "".join(
                        '<tr><td class="t">%s</td><td class="t">%s</td><td class="n">%s</td>'
                        '<td>%s</td><td>%s</td></tr>' % (
                            local_time(begin), local_time(end), human_duration(duration),
                            escape(cause), escape(what))
                        for begin, end, duration, cause, what in status.pending[::-1]))
    notes = []
    if history.report_sent is not None:
        notes.append("Last report sent: %s." % local_time(history.report_sent))
    if history.report_failed is not None:
        notes.append("Last report that failed: %s (%s)." % (
            local_time(history.report_failed[0]), escape(history.report_failed[1])))
    body.append("".join("<p>%s</p>" % note for note in notes))
    body.append('<p class="small muted">pyNetConnMon %s on %s, checking %s every %g s. This page '
                'refreshes every %d s; as of %s. <a href="/metrics">Metrics</a> for Prometheus.'
                '</p>' % (VERSION, escape(printable(status.host)),
                          escape(", ".join(status.targets)), status.interval or 0, refresh,
                          local_time(status.made)))
    return _html_page("%s: %s" % (word, printable(status.host)), "\n".join(body), refresh)


def status_page(board):
    """The route of GET /: (status, content type, body)."""
    if isinstance(board, StatusBoard):
        status = board.status()
    else:
        status = StatusSnapshot(board.latest(), time.time())
    return 200, "text/html; charset=utf-8", render_status(status).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


# Bounds of the numeric options, in seconds: what can work, and what the operating system's
# waits and timers accept (a wait of 2**31 ms overflows poll(); one of 1e300 s any clock)
_DAY = 86400.0
_YEAR = 365 * _DAY
INTERVAL_RANGE = (0.01, _DAY)
TIMEOUT_RANGE = (0.001, 3600.0)
DURATION_RANGE = (0.0, _YEAR)       # -m, -bmin, -bmax, -bstep
HEARTBEAT_RANGE = (1.0, _DAY)       # a save more often than rounds can run would starve them
PING_INTERVAL_RANGE = (0.1, _DAY)    # pings go one at a time, at most one per round
STATS_INTERVAL_RANGE = (1.0, _DAY)   # or 0: no stats events

# Which run uses which option (--once, --test-mail, --summary, or else the monitor). Any other
# run refuses the option instead of silently ignoring it. --metrics-address and --ping-interval
# need --metrics-port and --ping-url, so they go where those go.
RUN_MONITOR, RUN_ONCE = "the monitor", "--once"
RUN_TEST_MAIL, RUN_SUMMARY = "--test-mail", "--summary"
OPTION_RUNS = (
    ("address", "-a/--address", (RUN_MONITOR, RUN_ONCE, RUN_TEST_MAIL)),
    ("port", "-p/--port", (RUN_MONITOR, RUN_ONCE, RUN_TEST_MAIL)),
    ("interval", "-i/--interval", (RUN_MONITOR,)),
    ("timeout", "-t/--timeout", (RUN_MONITOR, RUN_ONCE)),
    ("down_interval", "--down-interval", (RUN_MONITOR,)),
    ("gateway", "--gateway", (RUN_MONITOR, RUN_ONCE)),
    ("min_interruption", "-m/--min-interruption", (RUN_MONITOR,)),
    ("backoff_min", "-bmin/--backoff-min", (RUN_MONITOR,)),
    ("backoff_max", "-bmax/--backoff-max", (RUN_MONITOR,)),
    ("backoff_step", "-bstep/--backoff-step", (RUN_MONITOR,)),
    ("log_file", "--log-file", (RUN_MONITOR, RUN_SUMMARY)),
    ("state_file", "--state-file", (RUN_MONITOR,)),
    ("heartbeat", "--heartbeat", (RUN_MONITOR,)),
    ("slow", "--slow", (RUN_MONITOR,)),
    ("loss", "--loss", (RUN_MONITOR,)),
    ("stats_interval", "--stats-interval", (RUN_MONITOR,)),
    ("metrics_port", "--metrics-port", (RUN_MONITOR,)),
    ("ping_url", "--ping-url", (RUN_MONITOR,)),
    ("pysendmail", "--pysendmail", (RUN_MONITOR, RUN_TEST_MAIL)),
    ("notify_command", "--notify-command", (RUN_MONITOR, RUN_TEST_MAIL)),
    ("no_mail", "--no-mail", (RUN_MONITOR,)),
    ("quiet", "-q/--quiet", (RUN_MONITOR, RUN_ONCE, RUN_TEST_MAIL)),
    ("html", "--html", (RUN_SUMMARY,)),
    ("csv", "--csv", (RUN_SUMMARY,)),
)


class _ParserExit(Exception):
    """--help or --version has printed its text: main() returns `status`."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse quotes an abbreviated option with its value ("--ping=URL could match ..."):
        # keep the value out, it may be a secret
        raise UsageError(re.sub(r"^(ambiguous option: -[^=\s]*)=.* could match ",
                                r"\1=... could match ", message))

    def exit(self, status=0, message=None):
        raise _ParserExit(status)

    def _print_message(self, message, file=None):     # argparse's one writer (--help, --version)
        write_text(file, message, "to standard output")


def _settle_standard_streams():
    """Flushes stdout and stderr before the interpreter does: what a full or gone terminal
    still holds goes to /dev/null instead of ending in 'Exception ignored ...' on stderr."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            _discard(stream)


_DECIMAL = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def _seconds(low, high):
    """An argparse type: a finite number of seconds from `low` to `high`."""
    def convert(text):
        # ASCII digits, a point, an exponent: float() would also take " 1", "1_0", other
        # scripts' digits, "nan" and "inf"
        try:
            value = float(text) if _DECIMAL.fullmatch(text) else float(
                text if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity") else "?")
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError("%r is not a finite number" % text)
        if value < low:
            raise argparse.ArgumentTypeError("%s must be >= %.12g" % (text.strip(), low))
        if value > high:
            raise argparse.ArgumentTypeError("%s must be <= %.12g (%s)"
                                             % (text.strip(), high, human_duration(high)))
        return value
    convert.__name__ = "seconds"
    return convert


def _milliseconds():
    """An argparse type: a finite number of milliseconds, 0 or more (-t bounds it further)."""
    convert = _seconds(0.0, math.inf)
    convert.__name__ = "milliseconds"
    return convert


def _slow_threshold(text):
    """An argparse type for --slow: MS (a number of milliseconds, 0 or more), or Nx (N times
    the usual, N above 1): a float, or ("x", N)."""
    if text.strip().lower().endswith("x"):
        try:
            factor = float(text.strip()[:-1])
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number of milliseconds nor Nx" % text)
        if not (math.isfinite(factor) and 1.0 < factor <= 1000.0):
            raise argparse.ArgumentTypeError("%s: N must be above 1 and at most 1000"
                                             % text.strip())
        return ("x", factor)
    return _milliseconds()(text)


def _share(text):
    """An argparse type: a share in percent, 0 to 100."""
    value = _seconds(0.0, math.inf)(text)
    if value > 100.0:
        raise argparse.ArgumentTypeError("%s must be <= 100" % text.strip())
    return value


def _range(bounds):
    return "%g to %g s" % bounds


def build_parser():
    parser = _Parser(
        prog="pyNetConnMon.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Monitor Internet or network connectivity and report interruptions via "
                    "mail.\n\n"
                    "All time-based arguments are specified in seconds. An option that the chosen\n"
                    "run (the monitor, --once, --test-mail or --summary) does not use is refused.")
    duration = _seconds(*DURATION_RANGE)
    parser.add_argument("-a", "--address", action="append", metavar="ADDRESS",
                        help="target to connect to: HOST, HOST:PORT, [IPV6]:PORT or IPV6; "
                             "give several times for several targets (at most %d), each once "
                             "(default: %s)" % (MAX_TARGETS, DEFAULT_ADDRESS))
    parser.add_argument("-p", "--port",
                        help="port for targets given without one (default: %d)" % DEFAULT_PORT)
    parser.add_argument("-i", "--interval", type=_seconds(*INTERVAL_RANGE),
                        help="check interval, %s (default: %.1f)"
                             % (_range(INTERVAL_RANGE), DEFAULT_INTERVAL))
    parser.add_argument("-t", "--timeout", type=_seconds(*TIMEOUT_RANGE),
                        help="connection timeout, %s (default: %.1f)"
                             % (_range(TIMEOUT_RANGE), DEFAULT_TIMEOUT))
    parser.add_argument("--down-interval", type=_seconds(*INTERVAL_RANGE), metavar="SECONDS",
                        help="while the connection is down, start a round every SECONDS, so that "
                             "its end is known that exactly; at most -i, which turns this off "
                             "(default: a tenth of -i, at least %g)" % DOWN_INTERVAL_MIN)
    parser.add_argument("--gateway", metavar="ADDRESS[:PORT]",
                        help="the router to probe (TCP, port %d unless given) in every round to "
                             "tell where an interruption broke; 'none' turns the probe off "
                             "(default: found in the routing table)" % GATEWAY_PORT)
    parser.add_argument("-m", "--min-interruption", type=duration,
                        help="ignore interruptions shorter than this, up to 1 year (default: %.1f)"
                             % DEFAULT_MIN_INTERRUPTION)
    parser.add_argument("-bmin", "--backoff-min", type=duration,
                        help="minimum time between mail reports, and the retry time after a "
                             "failed one; up to 1 year (default: %.1f)" % DEFAULT_BACKOFF_MIN)
    parser.add_argument("-bmax", "--backoff-max", type=duration,
                        help="maximum time between mail reports; after this long without a report "
                             "the backoff resets; up to 1 year (default: %.1f)"
                             % DEFAULT_BACKOFF_MAX)
    parser.add_argument("-bstep", "--backoff-step", type=duration,
                        help="backoff increment for each further report, up to 1 year "
                             "(default: %.1f)" % DEFAULT_BACKOFF_STEP)
    parser.add_argument("--slow", type=_slow_threshold, metavar="MS|Nx",
                        help="the connection is slow while even the fastest target takes MS "
                             "milliseconds or longer to connect, or with Nx N times its usual "
                             "connect time and %g ms more, in every round (a connect that "
                             "waited for a resent SYN counts without that wait: it is loss); a "
                             "slow stretch of at least -m seconds is reported like an "
                             "interruption; 0: off. "
                             "MS must be below -t: a slower connect is a failure (default: %g "
                             "or %gx; %g only when -t is over %g)"
                             % (SLOW_MARGIN_MS, DEFAULT_SLOW_MS, DEFAULT_SLOW_FACTOR,
                                DEFAULT_SLOW_MS, DEFAULT_SLOW_MS / 1000))
    parser.add_argument("--loss", type=_share, metavar="PCT",
                        help="the connection is lossy while at least PCT %%%% of its connect "
                             "attempts (SYNs) are lost over the last %d rounds up, until under "
                             "half that for as many rounds; a lossy stretch of at least -m "
                             "seconds is reported like an interruption; 0: off (default: %g)"
                             % (LOSS_WINDOW_ROUNDS, DEFAULT_LOSS_PERCENT))
    parser.add_argument("--stats-interval", type=_seconds(0.0, STATS_INTERVAL_RANGE[1]),
                        metavar="SECONDS",
                        help="write each target's probes, failures, losses and connect times "
                             "(min, median, 95th percentile, max) to the event log every "
                             "SECONDS, %s; 0: never (default: %.1f)"
                             % (_range(STATS_INTERVAL_RANGE), DEFAULT_STATS_INTERVAL))
    parser.add_argument("--log-file", metavar="PATH", action="append",
                        help="append every event to PATH as JSON Lines (SIGHUP reopens it); "
                             "--summary reads PATH with its rotated files (PATH.1, PATH.2.gz, "
                             "PATH-DATE.gz ...), and takes several --log-file")
    parser.add_argument("--state-file", metavar="PATH",
                        help="pending reports, backoff and heartbeat (default: "
                             "$XDG_STATE_HOME/pyNetConnMon/state.json or "
                             "~/.local/state/pyNetConnMon/state.json)")
    parser.add_argument("--heartbeat", type=_seconds(*HEARTBEAT_RANGE), metavar="SECONDS",
                        help="how often the state file records that the monitor is alive, which "
                             "bounds how exactly a power cut is reported; %s (default: %.1f)"
                             % (_range(HEARTBEAT_RANGE), DEFAULT_HEARTBEAT))
    parser.add_argument("--metrics-port", metavar="PORT",
                        help="serve Prometheus metrics at http://ADDRESS:PORT/metrics "
                             "(default: no metrics)")
    parser.add_argument("--metrics-address", metavar="ADDRESS",
                        help="IP address the metrics are served on; 0.0.0.0 or :: for all "
                             "(default: %s)" % DEFAULT_METRICS_ADDRESS)
    parser.add_argument("--ping-url", metavar="URL",
                        help="while the network is up, request this http(s) URL every "
                             "--ping-interval seconds: a dead man's switch for Healthchecks, "
                             "Uptime Kuma push monitors and the like; user:password@ in it is "
                             "sent as HTTP basic authentication. Never shown beyond its host; "
                             "$%s gives it out of sight of ps" % PING_URL_VARIABLE)
    parser.add_argument("--ping-interval", type=_seconds(*PING_INTERVAL_RANGE), metavar="SECONDS",
                        help="at most one ping per this many seconds, %s (default: %.1f)"
                             % (_range(PING_INTERVAL_RANGE), DEFAULT_PING_INTERVAL))
    parser.add_argument("--pysendmail", metavar="DIR",
                        help="the pySendMail folder (default: pySendMail/ beside this script, the "
                             "file a symlink points to)")
    parser.add_argument("--notify-command", metavar="CMD",
                        help="deliver reports by running CMD (report on stdin, subject in "
                             "$PYNETCONNMON_SUBJECT; exit status 0 means delivered) instead of "
                             "mail")
    parser.add_argument("--no-mail", action="store_true", help="do not send reports at all")
    parser.add_argument("--test-mail", action="store_true",
                        help="send one test report now; exit 0 if it was accepted, else 1")
    parser.add_argument("--discard-pending", action="store_true",
                        help="forget the interruptions waiting for a report in the state file "
                             "(e.g. after trial runs), say how many, and exit")
    parser.add_argument("--once", action="store_true",
                        help="probe every target once, print the results; exit 0 if up, 1 if "
                        "down, 3 if it cannot probe")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only warnings and errors (with --once: nothing but them)")
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
    summary.add_argument("--html", metavar="FILE",
                         help="also write the summary as one self-contained HTML page to FILE: "
                              "figures, a timeline of every day, every interruption; prints "
                              "on A4")
    summary.add_argument("--csv", metavar="FILE",
                         help="also write one row per interruption, partial outage and slow "
                              "period to FILE (RFC 4180: comma, UTF-8 with BOM, header row)")
    parser.add_argument("--version", action="version", version="pyNetConnMon " + VERSION)
    return parser


def _unrecognized(extra):
    """The message for arguments argparse did not take. A stray value may be a secret that lost
    its option (`--notify-command curl -d TOKEN` unquoted): only option names are shown."""
    names = [word.split("=", 1)[0] + ("=..." if "=" in word else "")
             for word in extra if word.startswith("-") and len(word) > 1]
    values = len(extra) - len(names)
    shown = " ".join(names)
    if values:
        shown += ("%s%s (not shown: it may be a secret; did a value with spaces lose its "
                  "quotes?)" % (" and " if names else "", plural(values, "value")))
    return "unrecognized arguments: " + shown


def parse_arguments(argv):
    """Parses and checks everything before anything runs; raises UsageError, or MonitorError
    when a relative path is given and the current folder is gone."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        raise UsageError(_unrecognized(extra))
    for action in parser._actions:        # argparse turns "--heartbeat=--" into [], unconverted
        if action.nargs is None and action.option_strings and getattr(args, action.dest) == []:
            raise UsageError("argument %s: expected one argument"
                             % "/".join(action.option_strings))
    args.log_files = tuple(path if isinstance(path, str) else "" for path in args.log_file or ())
    if len(args.log_files) > 1 and not args.summary:
        raise UsageError("--log-file: give it once; several only with --summary")
    args.log_file = args.log_files[0] if args.log_files else None
    given = {name for name, _, _ in OPTION_RUNS       # `is`, not ==: -m 0 is given too
             if getattr(args, name) is not None and getattr(args, name) is not False}
    args.slow_factor = None
    if isinstance(args.slow, tuple):            # --slow Nx: the relative threshold alone
        args.slow, args.slow_factor = 0.0, args.slow[1]
    elif args.slow is not None:                 # --slow MS: the absolute one alone, as ever
        args.slow_factor = 0.0
    for name in ("interval", "timeout", "min_interruption", "backoff_min", "backoff_max",
                 "backoff_step", "heartbeat", "stats_interval", "loss"):
        if getattr(args, name) is None:
            setattr(args, name, Settings.DEFAULTS[name])
    args.port = parse_port(args.port if args.port is not None else DEFAULT_PORT)
    if args.backoff_max < args.backoff_min:
        raise UsageError("-bmax/--backoff-max: %g is below -bmin/--backoff-min %g"
                         % (args.backoff_max, args.backoff_min))
    if args.down_interval is not None and args.down_interval > args.interval:
        raise UsageError("--down-interval: %g is above -i/--interval %g"
                         % (args.down_interval, args.interval))
    if 0 < args.stats_interval < STATS_INTERVAL_RANGE[0]:
        raise UsageError("--stats-interval: %g s is too short: give 0 (no stats events) or %s"
                         % (args.stats_interval, _range(STATS_INTERVAL_RANGE)))
    if args.slow and args.slow >= args.timeout * 1000:
        raise UsageError("--slow: %g ms cannot be seen with -t %g: a connect that takes %g ms "
                         "or longer is a failure, not slow; give a longer -t or a lower --slow"
                         % (args.slow, args.timeout, args.timeout * 1000))
    if args.no_mail and (args.test_mail or args.notify_command):
        raise UsageError("--no-mail cannot be combined with --test-mail or --notify-command")
    _check_paths_and_command(args)
    _check_current_folder(args)
    args.ping_url_source = "--ping-url"
    if args.ping_url is None and os.environ.get(PING_URL_VARIABLE) and not (
            args.summary or args.once or args.test_mail or args.discard_pending):
        # out of the command line, which every local user can read (ps)
        args.ping_url, args.ping_url_source = os.environ[PING_URL_VARIABLE], PING_URL_VARIABLE
    _check_metrics_and_ping(args)
    args.targets = _parse_targets(args.address or [DEFAULT_ADDRESS], args.port)
    args.gateway = parse_gateway(args.gateway)
    _check_combinations(args, given)
    if args.summary and not args.log_file:
        raise UsageError("--summary needs --log-file PATH, the event log to read")
    _check_report_paths(args)
    if args.since is not None:
        args.since = parse_summary_date(args.since, "--since")
    if args.until is not None:
        args.until = parse_summary_date(args.until, "--until", end_of_day=True)
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise UsageError("--since must be before --until")
    if args.pysendmail is None:
        # beside the file itself: started through a symlink, not beside the link
        args.pysendmail = os.path.join(os.path.dirname(os.path.realpath(__file__)), "pySendMail")
    args.state_file = args.state_file or default_state_path()
    return Settings(**{name: getattr(args, name) for name in Settings.__slots__})


def _check_paths_and_command(args):
    """An empty path would quietly mean "none" or the default; a NUL character cannot reach the
    system at all, nor can what the locale's encoding cannot write. The command is never
    quoted: it may hold a token."""
    for option, value in _path_options(args):
        if value is not None and not value:
            raise UsageError("%s: empty path" % option)
        if value is not None and "\0" in value:
            raise UsageError("%s: the path contains a NUL character" % option)
        _check_encodable(value, option, "path")
    if args.notify_command is not None and not args.notify_command.strip():
        raise UsageError("--notify-command: empty command")
    if args.notify_command is not None and "\0" in args.notify_command:
        raise UsageError("--notify-command: the command contains a NUL character")
    _check_encodable(args.notify_command, "--notify-command", "command")


def _path_options(args):
    """(option, path as given or None) of every option that names a file or folder."""
    return [("--log-file", path) for path in args.log_files] + [
        ("--state-file", args.state_file), ("--pysendmail", args.pysendmail),
        ("--html", args.html), ("--csv", args.csv)]


def _check_encodable(value, option, what):
    """Python reads the command line with the C library, but hands names to the system with
    its own codec; in some locales (EUC-JP) a UTF-8 name read by one cannot be written by the
    other, and every use of it would fail."""
    try:
        if value is not None:
            os.fsencode(value)
    except UnicodeEncodeError:
        raise UsageError("%s: the %s cannot be handed to the system in this locale's encoding "
                         "(%s): run in a UTF-8 locale (LC_ALL=C.UTF-8) or with PYTHONUTF8=1"
                         % (option, what, sys.getfilesystemencoding())) from None


def _check_current_folder(args):
    """A relative path needs the current folder, which may have been deleted under a shell that
    still stands in it: then the path names nothing (and os.path.abspath raises)."""
    relative = [(option, path) for option, path in _path_options(args)
                if path and not os.path.isabs(path)]
    if not relative:
        return
    try:
        os.getcwd()
    except OSError as error:
        option, path = relative[0]
        raise MonitorError("%s %s is a relative path, and the current folder %s: give an "
                           "absolute path, or start from a folder that exists" % (
                               option, path, "no longer exists" if error.errno == errno.ENOENT
                               else "cannot be told (%s)" % (error.strerror or error)))


def _parse_targets(values, default_port):
    """Every target once: the same host and port given twice (127.0.0.1 and 127.0.0.1:53 with
    -p 53, ::1 and 0::1, Host.Test and host.test.) is refused rather than probed twice."""
    if len(values) > MAX_TARGETS:
        raise UsageError("-a/--address: at most %d targets, %d given" % (MAX_TARGETS, len(values)))
    targets, seen = [], {}
    for value in values:
        # argparse turns "-a=--" into an empty list: an empty address all the same
        target = parse_target(value if isinstance(value, str) else "", default_port)
        address = _ip_literal(target.host)
        if address is None:
            key = (target.host.lower().rstrip("."), target.port)
        else:
            key = (str(address), target.host.partition("%")[2], target.port)
        first = seen.setdefault(key, target)
        if first is not target:
            raise UsageError("-a/--address: " + ("%s is given twice" % target.label
                                                 if first.label == target.label else
                                                 "%s and %s are the same target"
                                                 % (first.label, target.label)))
        targets.append(target)
    return targets


def _check_combinations(args, given):
    runs = [flag for flag, on in ((RUN_ONCE, args.once), (RUN_TEST_MAIL, args.test_mail),
                                  (RUN_SUMMARY, args.summary)) if on]
    if len(runs) > 1:
        raise UsageError("%s cannot be combined with %s" % (runs[0], runs[1]))
    run = runs[0] if runs else RUN_MONITOR
    if run != RUN_SUMMARY and (args.since is not None or args.until is not None):
        raise UsageError("--since and --until only go with --summary")
    options = {name: option for name, option, _ in OPTION_RUNS}
    for name, option, used_by in OPTION_RUNS:
        if name in given and run not in used_by:
            raise UsageError("%s has no effect with %s" % (option, run))
    deliverer = "--no-mail" if args.no_mail else "--notify-command" if args.notify_command else None
    unused = {"--no-mail": ("backoff_min", "backoff_max", "backoff_step", "pysendmail"),
              "--notify-command": ("pysendmail",)}.get(deliverer, ())
    for name in unused:
        if name in given:
            raise UsageError("%s has no effect with %s" % (options[name], deliverer))
    if "port" in given and args.address and all(_names_port(value) for value in args.address):
        raise UsageError("-p/--port has no effect: every -a/--address names its own port")


def _check_report_paths(args):
    """--html and --csv must not overwrite the event log, any of the rotated files --summary
    reads with it, nor each other (by name, or as the same file under another name)."""
    reports = [(option, path, _file_key(path)) for option, path in
               (("--html", args.html), ("--csv", args.csv)) if path is not None]
    for log_file in filter(None, args.log_files):
        for option, path, report in reports:
            if report == _file_key(log_file):
                raise UsageError("%s: %s is the event log itself" % (option, path))
        for rotated in itertools.chain(*rotated_siblings(log_file)) if reports else ():
            rotated_key = _file_key(rotated)
            for option, path, report in reports:
                if report == rotated_key:
                    raise UsageError("%s: %s is a rotated file of the event log %s"
                                     % (option, path, log_file))
    if len(reports) == 2 and reports[0][2] == reports[1][2]:
        raise UsageError("--html and --csv name the same file")


def _names_port(value):
    """Does an -a value name its port (HOST:PORT, [IPV6]:PORT)?"""
    return "]:" in value if value.startswith("[") else value.count(":") == 1


def parse_gateway(value):
    """--gateway: None (not given) -> "auto", "none", or a Gateway at an IP address."""
    if value is None:
        return "auto"
    if value.strip().lower() == "none":
        return "none"
    try:
        target = parse_target(value, GATEWAY_PORT)
    except UsageError:
        target = None
    if target is None or not target.is_literal:
        raise UsageError("--gateway: %r is not ADDRESS[:PORT], [IPV6]:PORT or none; give the "
                         "router's IP address, which needs no name lookup" % value)
    address = _ip_literal(target.host)
    if address.is_unspecified or address.is_multicast or address == _BROADCAST:
        raise UsageError("--gateway: %s is not a router's address (%s)" % (
            target.host, "unspecified" if address.is_unspecified
            else "multicast" if address.is_multicast else "broadcast"))
    return Gateway(target.host, target.port)


_BROADCAST = ipaddress.ip_address("255.255.255.255")


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
            raise UsageError("%s: %s" % (args.ping_url_source, problem))
    elif args.ping_interval is not None:
        raise UsageError("--ping-interval needs --ping-url")
    if args.ping_interval is None:
        args.ping_interval = DEFAULT_PING_INTERVAL


def start_metrics(args, console, recent=None, pending=None):
    """(board, server) serving --metrics-port, or (None, None) without it. With `recent` (the
    RecentEvents the event log feeds) the board is a StatusBoard: GET / shows the status page."""
    if args.metrics_port is None:
        return None, None
    if recent is None:
        board = MetricsBoard(MetricsSnapshot())
    else:
        board = StatusBoard(MetricsSnapshot(), recent, args, pending)
    server = start_metrics_server(args.metrics_address, args.metrics_port, board)
    where = Target(args.metrics_address, args.metrics_port).label
    console.info("serving metrics at http://%s/metrics and a status page at http://%s/"
                 % (where, where))
    return board, server


def make_pinger(args, waker, console):
    """The Pinger for --ping-url, or None without it."""
    if args.ping_url is None:
        return None
    console.info("pinging %s every %s while the network is up"
                 % (ping_url_for_people(args.ping_url), human_duration(args.ping_interval)))
    return Pinger(PingSender(args.ping_url, args.timeout, waker.wake),
                  PingSchedule(args.ping_interval))


def record_for(reporter):
    """Where what a report will tell of goes: the reporter's pending list; with --no-mail,
    nowhere (the event log is the only record)."""
    return reporter.pending.add if reporter is not None else (lambda **interruption: None)


def make_backoff(settings):
    return ReportBackoff(settings.backoff_min, settings.backoff_max, settings.backoff_step)


def make_deliverer(args):
    if args.no_mail:
        return None
    if args.notify_command:
        return CommandDeliverer(args.notify_command)
    return MailDeliverer(args.pysendmail)


ONCE_CANNOT_TELL = 3     # --once's exit status when it cannot probe at all (0: up, 1: down)


def run_once(args, console_out, console=None):
    """--once: one line per target on stdout (none with -q); exit 0 if any is up, else 1, and
    ONCE_CANNOT_TELL when it cannot probe them. A target that the router probably answers for
    is warned about on `console`."""
    if len(args.targets) > 200:
        _raise_file_limit()      # as the monitor does: else a low soft limit reads as EMFILE
    try:
        limit = check_descriptors_for_probes(args.targets, args.gateway, reserve=2)  # no log,
    except MonitorError as error:                                                    # no state
        if console is None:
            raise
        console.error(str(error))
        return ONCE_CANNOT_TELL
    prober = Prober(args.timeout, limit=limit)
    gateway = Surroundings(args.gateway, loopback_only=all(
        target.is_loopback for target in args.targets),
        families=route_families(args.targets)).gateway()               # as the monitor does
    results = prober.probe_round(args.targets, gateway=gateway)
    prober.close()
    lines = []
    for result in results.targets:
        if result.up:
            detail = "up %.1f ms" % (result.connect_time * 1000)
        else:
            detail = "down %s" % result.reason
        lines.append(printable("%s %s" % (result.target.label, detail)) + "\n")
    router = results.gateway
    lines.append(describe_gateway_once(args.gateway, gateway, router,
                                       router_not_needed(args.gateway, args.targets)))
    unresolved = [result.target.host for result in results.targets
                  if not result.up and result.reason == "dns"]
    if unresolved and console is not None:
        console.warning(names_unresolved_warning(unresolved))
    for label, median, router_median in RouterEcho(rounds=1).observe(results.targets,
                                                                     router) or ():
        if console is not None:
            console.warning(router_echo_warning(label, median, router.target.label,
                                                router_median))
    if not args.quiet:
        write_text(console_out, "".join(lines), "to standard output")
    return 0 if any(result.up for result in results.targets) else 1


def describe_gateway_once(setting, gateway, result, not_needed=False):
    """--once's line for the gateway; `not_needed`: every target is a loopback address, so the
    monitor would not look for a router either (see router_not_needed)."""
    if setting == "none":
        return "gateway not probed (--gateway none)\n"
    if not_needed:
        return "gateway not probed: every target is on this machine\n"
    if gateway is None:
        return "gateway: none in the routing table, so not probed\n"
    if result is None:
        return "gateway %s not probed: every target is on this machine\n" % gateway.label
    if result.up:
        detail = "answers (accepted in %.1f ms)" % (result.connect_time * 1000)
    elif gateway_answered(result):
        detail = "answers (refused)"
    else:
        detail = "does not answer (%s)" % result.reason
    return "gateway %s %s\n" % (gateway.label, detail)


def mail_hostname():
    """This machine's name as reports give it: a name may hold any byte (sethostname), and a
    line break in a mail header makes every report fail."""
    return printable(socket.gethostname())[:REASON_LIMIT]


def run_test_mail(args, console):
    deliverer = make_deliverer(args)
    warning = isinstance(deliverer, MailDeliverer) and config_permission_warning(args.pysendmail)
    if warning:
        console.warning(warning)      # as the monitor warns at start
    hostname = mail_hostname()
    subject = "pyNetConnMon on %s: test report" % hostname
    # no targets named: the monitor that sends the reports may watch others than this run's
    # (its default, without -a); each report names its own
    body = ("This is a test report from pyNetConnMon %s on %s.\n"
            "Reports about interruptions will arrive the same way.\n" % (VERSION, hostname))
    # in the background and bounded, as the monitor delivers: pySendMail's "timeout": 0 is no
    # timeout at all
    done = threading.Event()
    worker = OneJobAtATime("delivery", done.set, describe_send_error)
    worker.submit(lambda: deliverer.deliver(subject, body))
    if not done.wait(DELIVERY_LIMIT):
        deliverer.cancel()
        done.wait(2.0)                  # a cut connection fails at once
    results = worker.take_results()
    failure = results[0][1] if results else "no answer within %s" % human_duration(DELIVERY_LIMIT)
    if failure is not None:
        console.error("test report not delivered: %s" % failure)
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
        pending = data["pending"] if data else []
        count = sum(item["count"] for item in pending if item["part"] is None)
        gaps = sum(item["count"] if item["kind"] == "gap" else item["gaps"] for item in pending)
        partial = sum(item["count"] for item in pending if item["part"] is not None)
        slow = sum(item["count"] for item in data["slow_pending"]) if data else 0
        lossy = sum(item["count"] for item in data["lossy_pending"]) if data else 0
        if data:
            data.update(pending=[], slow_pending=[], lossy_pending=[], clean_stop=True,
                        down=None, slow=None, lossy=None)
            try:
                state.save(data)
            except OSError as error:
                raise MonitorError("cannot write state file %s: %s"
                                   % (state.path, _one_line(error)))
        log = EventLog(settings.log_file, warn=console.warning)
        log.write("pending_discarded", time.time(), interruptions=count, partial_outages=partial,
                  slow_periods=slow, lossy_periods=lossy)
        log.close()
    finally:
        state.unlock()
    console.info("discarded %s waiting for a report (state file %s)"
                 % (pending_text(count, partial, slow, lossy, gaps), settings.state_file))
    return 0


def _raise_file_limit():
    """Many targets need many sockets at once; use the hard limit that is already allowed."""
    try:
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
    recent = RecentEvents() if args.metrics_port is not None else None
    event_log = EventLog(args.log_file, warn=console.warning,
                         listener=recent.record if recent is not None else None)
    waker = Waker()
    waker.install()
    metrics_server = None
    try:
        reporter = None
        if deliverer is not None:
            reporter = Reporter(PendingReports(make_backoff(args)), deliverer,
                                mail_hostname(), waker.wake, slow_ms=args.slow_ms,
                                slow_times=args.slow_times)
        metrics_board, metrics_server = start_metrics(
            args, console, recent, reporter.pending if reporter is not None else None)
        announcer = Announcer(console, event_log, args)
        surroundings = Surroundings(args.gateway, loopback_only=all(
            target.is_loopback for target in args.targets),
            families=route_families(args.targets))
        rounds = RoundInterpreter(args, announcer, record_for(reporter), surroundings,
                                  read_syn_schedule())
        prober = Prober(args.timeout, waker.read_fd, limit=check_descriptors_for_probes(
            args.targets, args.gateway))
        monitor = Monitor(args, announcer, waker, prober, rounds,
                          reporter=reporter, state=state, pinger=make_pinger(args, waker, console),
                          metrics_board=metrics_board)
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


# ---------------------------------------------------------------------------------------------
# The start on cached bytecode: the loader that the shell prologue at the top runs, kept here once
# (a test checks that the prologue is this text), and the move onto it of a monitor that Python
# started by compiling the whole file in the process
# ---------------------------------------------------------------------------------------------

# Run by `python3 -c LOADER FILE ARGS...`. It keeps the current folder off the module path (a
# py_compile.py, os.py ... that someone put there must not run as the monitor's user), checks the
# Python version before anything can fail on an older one, compiles FILE in a short-lived child
# in isolated mode when its cache is missing, stale or damaged, and runs FILE as __main__ from
# the cache. No single quote in it: the prologue holds it in one.
LOADER = """\
import sys
if sys.version_info < (3, 9):
    sys.exit("pyNetConnMon needs Python 3.9 or newer; this is Python %d.%d" % sys.version_info[:2])
script_first = sys.path[:1] == [""]
if script_first:
    del sys.path[0]
import os
from importlib.machinery import SourceFileLoader
from importlib.util import MAGIC_NUMBER, cache_from_source, module_from_spec, spec_from_loader
typed = sys.argv.pop(1)
path = os.path.realpath(typed)
sys.argv[0] = typed
if script_first:
    sys.path.insert(0, os.path.dirname(path))
cache = cache_from_source(path)
folder = os.path.dirname(cache)


def compile_cache():
    if sys.dont_write_bytecode or not os.access(
            folder if os.path.isdir(folder) else os.path.dirname(folder), os.W_OK):
        return
    import subprocess
    subprocess.run([sys.executable, "-I", "-c", "import py_compile, sys; py_compile.compile("
                    "sys.argv[1], sys.argv[2], optimize=int(sys.argv[3]))",
                    path, cache, str(sys.flags.optimize)], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


try:
    with open(cache, "rb") as stream:
        head = stream.read(16)
    source = os.stat(path)
    stamp = (int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF)
    fresh = head[:4] == MAGIC_NUMBER and (head[4:8] != bytes(4) or stamp == (
        int.from_bytes(head[8:12], "little"), int.from_bytes(head[12:16], "little")))
except OSError:
    fresh = False
if not fresh:
    compile_cache()
loader = SourceFileLoader("__main__", path)
sys.modules["__main__"] = module = module_from_spec(spec_from_loader("__main__", loader))
try:
    code = loader.get_code("__main__")
except (EOFError, ValueError, TypeError, ImportError):
    compile_cache()
    try:
        code = loader.get_code("__main__")
    except (EOFError, ValueError, TypeError, ImportError):
        code = compile(loader.get_data(path), path, "exec", dont_inherit=True)
exec(code, module.__dict__)
"""


def _interpreter_options():
    """The options of this interpreter's command line that a restart must keep."""
    flags = sys.flags
    options = ["-" + letter for name, letter in (
        ("isolated", "I"), ("ignore_environment", "E"), ("no_user_site", "s"), ("no_site", "S"),
        ("dont_write_bytecode", "B"), ("safe_path", "P")) if getattr(flags, name, 0)]
    options += ["-O"] * flags.optimize + ["-b"] * flags.bytes_warning
    for warning in sys.warnoptions:
        options += ["-W", warning]
    for name, value in getattr(sys, "_xoptions", {}).items():
        options += ["-X", name if value is True else "%s=%s" % (name, value)]
    return options


def compiled_in_process(module_globals):
    """True if Python compiled this file from source in this process: `python3 pyNetConnMon.py`
    always does, `python3 -m pyNetConnMon` does when the cache is missing or stale. The loader
    (a spec named __main__) and anything that hands in code of its own (no file loader) did not."""
    spec = module_globals.get("__spec__")
    loader = module_globals.get("__loader__")
    if not hasattr(loader, "get_filename") or (spec is not None and spec.name == "__main__"):
        return False
    return _cache_can_serve(os.path.realpath(module_globals.get("__file__") or ""))


def _cache_can_serve(path):
    """Can the loader run `path` from its cache: is the cache fresh (used even with -B), or may
    it be written? Else moving onto the loader would only compile the file a second time."""
    try:
        cache = cache_from_source(path)
    except (ValueError, NotImplementedError):
        return False
    try:
        with open(cache, "rb") as stream:
            head = stream.read(16)
        source = os.stat(path)
    except OSError:
        head = b""
    if head[:4] == MAGIC_NUMBER and (head[4:8] != bytes(4) or head[8:16] == struct.pack(
            "<II", int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF)):
        return True              # as LOADER tells a cache that matches the file
    if sys.dont_write_bytecode:
        return False
    folder = os.path.dirname(cache)
    return os.access(folder if os.path.isdir(folder) else os.path.dirname(folder), os.W_OK)


def restart_on_cached_bytecode(script):
    """Replaces this process (same pid) with the loader running `script` from its cache. The
    compile's memory would otherwise stay for as long as the monitor runs (a process keeps its
    peak), more than doubling it. Returns only if the exec failed."""
    if not sys.executable:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        os.execv(sys.executable, [sys.executable, *_interpreter_options(), "-c", LOADER,
                                  script, *sys.argv[1:]])
    except OSError:
        pass


def main(argv=None):
    console = Console()
    try:
        args = parse_arguments(argv)
        console.quiet = args.quiet
        if args.summary:
            return run_summary(args, sys.stdout, console)
        if args.once:
            return run_once(args, sys.stdout, console)
        if args.test_mail:
            return run_test_mail(args, console)
        if args.discard_pending:
            return run_discard_pending(args, console)
        if argv is None and compiled_in_process(globals()):
            restart_on_cached_bytecode(sys.argv[0])
        return run_monitor(args, console)
    except _ParserExit as done:      # --help, --version
        return done.status
    except UsageError as error:
        console.usage_error(str(error))
        return 2
    except MonitorError as error:
        console.error(str(error))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        _settle_standard_streams()


if __name__ == "__main__":
    sys.exit(main())
