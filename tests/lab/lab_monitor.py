"""The program running inside the fault lab's monitor namespace, and what to read back from it.

Shared by test_faults.py and test_soak.py. The monitor always runs under ``netlab.prefix`` (a
namespace with no default route), with its event log and state file in the test's tmp_path and
TZ=UTC, so the times in a report can be compared with the lab's timeline. Every wait here has a
deadline and polls in small steps.
"""
import os
import re
from datetime import datetime, timezone

import harness
from harness import wait_until
from netlab import read_accepts

# fault kind (also its name on the lab's timeline): (fault, undo, the undo's name on the
# timeline, the reason the monitor gives)
FAULTS = {
    "vanish": (lambda lab: lab.vanish(), lambda lab: lab.unvanish(), "unvanish", "timeout"),
    "link_down": (lambda lab: lab.link_down(), lambda lab: lab.link_up(), "link_up",
                  "unreachable"),
    "stop_listener": (lambda lab: lab.stop_listener(), lambda lab: lab.start_listener(),
                      "start_listener", "refused"),
}

ROW = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  "
                 r" *(\S.*?)  (local|lan|provider|dns|unknown|-) +(\S.*)$")


def start_monitor(netlab, tmp_path, *args, cwd=None):
    """The program in the monitor namespace with ARGS, an event log and a state file in
    tmp_path, and TZ=UTC. Returns the MonitorProcess; its event log is `.log`."""
    return harness.start_monitor(tmp_path, *args, cwd=cwd, prefix=netlab.prefix)


def wait_for_accepts(path, count, timeout, since=0.0, address=None):
    """The listener's accepts after monotonic time `since` (to `address` if given) once there
    are at least `count` of them."""
    def found():
        return [item for item in read_accepts(path)
                if item[0] > since and (address is None or item[1] == address)]
    return wait_until(lambda: len(found()) >= count and found(), timeout,
                      "%d accepted connections%s" % (count, " to %s" % address if address else ""))


def report_time(text):
    """A report's "YYYY-MM-DD HH:MM:SS" (local time, UTC under TZ=UTC) as epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def report_rows(body):
    """The interruption rows of a report body as (start, end, duration text, cause, reason), the
    times in epoch seconds (whole seconds: the report shows no fractions)."""
    rows = []
    for line in body.splitlines():
        match = ROW.match(line)
        if match:
            start, end, duration, cause, reason = match.groups()
            rows.append((report_time(start), report_time(end), duration, cause, reason))
    return rows


def process_figures(pid):
    """(open file descriptors, VmRSS in kB, threads) of the running process `pid`."""
    fds = len(os.listdir("/proc/%d/fd" % pid))
    rss = threads = None
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return fds, rss, threads
