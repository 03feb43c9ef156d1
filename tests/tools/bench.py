#!/usr/bin/env python3
"""Benchmark of pyNetConnMon: how exact, how fast and how light it is, measured on this machine.

    python3 tests/tools/bench.py [--quick] [--json] [--only SECTION,...] [--seed N] [--program PATH]
                           [--compare PATH]

A script, not a test (pytest does not collect it): a full run takes about 11 minutes, --quick
about 1.5. It needs root, iproute2's `ip` and openssl for the fault lab (tests/lab/netlab.py) and
the mail lab (tests/lab/smtp_lab.py); without them only the CPU and memory figures are measured.
Every connect goes to loopback or to the lab's own namespaces (198.18.0.0/24); the monitor runs in
the lab's monitor namespace, which has no default route.

Sections (all by default):
  duration  outages of known, uneven lengths at -i 1 -t 1: |reported - injected| duration
  rounds    time of one probe round with N = 1, 10, 100, 1000 blackholed targets at -t 1, and
            what the open-file limit does to a round of 1000 targets
  cpu       CPU seconds per 1000 probes and peak memory (VmHWM) at -i 0.05 against one healthy
            loopback target, beside a plain blocking loop run the same way; with --compare,
            also this program and another copy at the same time; and the connect-time
            statistics' own cost per probe, in process
  mail      time from connectivity back to the report accepted by the lab's SMTP server
  slow      congestions of known, uneven lengths in the home lab (tbf) at -i 1 -t 3 --slow 1000:
            |reported - injected| duration of the slow periods

Progress goes to stderr; the results go to stdout as Markdown (or JSON with --json).
"""
import argparse
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROGRAM = REPO / "pyNetConnMon.py"
SECTIONS = ("duration", "rounds", "cpu", "mail", "slow")

# -- settings ---------------------------------------------------------------------------------
# Outage lengths (s): uneven, their fractional parts spread evenly over [0, 1) (one in each
# 24th), so that the error of a 1 s grid of rounds averages out to its floor (about i/3) and is
# not an artefact of a few lengths. Each kind of fault is held for each of these lengths once.
OUTAGE_LENGTHS = (4.146, 3.229, 5.604, 2.646, 2.438, 6.396, 2.479, 4.688,
                  6.562, 2.729, 6.271, 3.188, 2.104, 2.354, 5.021, 5.979,
                  2.812, 3.521, 2.896, 6.062, 5.771, 2.938, 6.854, 2.312)
QUICK_OUTAGE_LENGTHS = (2.375, 3.875, 2.125, 3.625)
LATTICE_STEP = 7             # see fault_phases(): 7/24 spreads the points best (simulated)
DURATION_FAULTS = (("vanish", "unvanish", "packets vanish (timeouts)"),
                   ("link_down", "link_up", "own link down (unreachable)"))
INTERVAL = 1.0               # -i for the duration and mail figures
TIMEOUT = 1.0                # -t for the duration, round and mail figures
MIN_INTERRUPTION = 1.0       # -m: below the shortest outage, so every outage is reported
UP_GAP = 2.0                 # seconds up between outages, plus the wait for the next fault's phase

ROUND_COUNTS = (1, 10, 100, 1000)
ROUND_REPEAT, QUICK_ROUND_REPEAT = 3, 1
FIRST_PORT = 20000           # blackholed targets are 198.18.0.2:FIRST_PORT+k
LOW_FILE_LIMIT = 256         # soft RLIMIT_NOFILE for the "too few file descriptors" runs

CPU_INTERVAL = "0.05"
CPU_SECONDS, QUICK_CPU_SECONDS = 30.0, 5.0
CALLGRIND_WARMUP, CALLGRIND_SECONDS = 15.0, 20.0   # under valgrind: start-up, then counted
SYSCALL_SECONDS = 10.0       # under strace, after CPU_WARMUP
CPU_WARMUP = 2.0             # the steady-state figure leaves out the first seconds (start-up)
SEED_QUOTED = {"cpu_seconds": 0.3, "vmhwm_mb": 21.3}   # the original 1.x program's figures as
                                                       # reported (same target and interval, 30 s)

CPU_PAIRS, QUICK_CPU_PAIRS = 6, 2   # with --compare: runs of each program, in turns
STATS_ROUNDS = 200000        # rounds of RoundInterpreter._measure timed in process

# Congestion lengths (s) for the slow periods: uneven, their fractional parts spread over [0, 1)
CONGESTION_LENGTHS = (4.6875, 7.3125, 3.0625, 8.1875, 5.4375, 6.5625, 3.9375, 7.8125)
QUICK_CONGESTION_LENGTHS = (4.6875, 6.3125)
SLOW_TIMEOUT = 3.0           # -t: congested connects take 1.3 to 2 s
SLOW_MS = 1000               # --slow
CONGESTION_GAP = 4.0         # seconds of a normal line between congestions, at least

MAIL_REPEAT, QUICK_MAIL_REPEAT = 6, 2
MAIL_OUTAGE = 2.5
MAIL_WAIT = 20.0             # at most this long for one report to arrive

# The goals each figure is printed beside (faster probing while down)
DURATION_GOAL = (0.27, 0.65)     # mean and max |reported - injected| at -i 1 -t 1, seconds
MAIL_GOAL = 0.3                  # mean seconds from connectivity back to the report accepted
SCRIPT_ROW = ("pyNetConnMon as `python3 pyNetConnMon.py` (compiled at start, then moved onto "
              "the cache)")
MEMORY_GOAL_MB = 20.6            # VmHWM as a script in the README's run of 2.0.0 (and no more
                                 # than the --compare copy's in the same run): of the program
                                 # started as ./pyNetConnMon.py, its first start in a folder

# A stand-in for a seed-style monitor loop (written here, not taken from the seed): a blocking
# connect with settimeout, close, sleep, for ever; the same imports a minimal monitor has.
BASELINE_LOOP = r'''
import argparse
import datetime
import socket
import time

parser = argparse.ArgumentParser(description="plain blocking connect loop (benchmark baseline)")
parser.add_argument("-a", "--address", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=53)
parser.add_argument("-i", "--interval", type=float, default=2.0)
parser.add_argument("-t", "--timeout", type=float, default=2.0)
args = parser.parse_args()
was_up = None
while True:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(args.timeout)
    try:
        sock.connect((args.address, args.port))
        up = True
    except OSError:
        up = False
    finally:
        sock.close()
    if up != was_up:
        print("%s %s" % (datetime.datetime.now(), "up" if up else "down"), flush=True)
        was_up = up
    time.sleep(args.interval)
'''

# Runs inside the monitor namespace: times Prober.probe_round for N targets, one JSON line each.
ROUND_SNIPPET = r'''
import importlib.util, json, resource, sys, time
spec = importlib.util.spec_from_file_location("pyNetConnMon", sys.argv[1])
pyNetConnMon = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pyNetConnMon)
cfg = json.loads(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if cfg["soft_limit"]:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(cfg["soft_limit"], hard), hard))
limits = resource.getrlimit(resource.RLIMIT_NOFILE)
prober = pyNetConnMon.Prober(cfg["timeout"])
for n in cfg["counts"]:
    targets = [pyNetConnMon.Target(cfg["host"], cfg["first_port"] + k) for k in range(n)]
    for rep in range(cfg["repeat"]):
        start = time.monotonic()
        results = prober.probe_round(targets).targets
        took = time.monotonic() - start
        reasons = {}
        for result in results:
            key = "up" if result.up else result.reason
            reasons[key] = reasons.get(key, 0) + 1
        print(json.dumps({"n": n, "rep": rep, "seconds": took, "reasons": reasons,
                          "nofile": list(limits)}), flush=True)
prober.close()
'''


def log(text):
    sys.stderr.write("[bench %s] %s\n" % (datetime.now().strftime("%H:%M:%S"), text))
    sys.stderr.flush()


class Stop(Exception):
    """SIGTERM: unwind through every finally (labs, servers, monitors)."""


def _on_sigterm(signum, frame):
    raise Stop()


# -- the machine --------------------------------------------------------------------------------
def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if value.strip() and key.strip() in ("model name", "Model", "Hardware"):
                    model = value.strip()
                    break
    except OSError:
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": "%s %s" % (platform.python_implementation(), platform.python_version()),
        "python_executable": sys.executable,
        "kernel": "%s %s %s" % (platform.system(), platform.release(), platform.machine()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "nofile_limit": [soft, hard],
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def site_note():
    """The .pth files of this interpreter's site-packages: they run at every interpreter start."""
    import site
    found = []
    for folder in site.getsitepackages() + [site.getusersitepackages()]:
        try:
            found += sorted(name for name in os.listdir(folder) if name.endswith(".pth"))
        except OSError:
            pass
    return found


# -- helpers ----------------------------------------------------------------------------------
def wall_minus_mono():
    """time.time() - time.monotonic(), from the tightest of a few brackets."""
    best = None
    for _ in range(5):
        m0 = time.monotonic()
        wall = time.time()
        m1 = time.monotonic()
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, wall - (m0 + m1) / 2)
    return best[1]


def iso_to_wall(text):
    return datetime.fromisoformat(text).timestamp()


def read_events(path):
    events = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return events
    for line in text.split("\n")[:-1]:        # the last piece is "" or a line being written
        if line.strip():
            events.append(json.loads(line))
    return events


def wait_for(condition, timeout, step=0.05):
    """condition()'s first true value, or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return None


def sleep_until(instant):
    left = instant - time.monotonic()
    if left > 0:
        time.sleep(left)


def stop_process(proc, timeout=10.0):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def summary(values):
    values = list(values)
    if not values:
        return {"n": 0}
    return {"n": len(values), "mean": statistics.mean(values), "max": max(values),
            "min": min(values)}


def lab_or_reason(name="netlab", support="lab_support", what="the fault lab"):
    """(lab module, None) if that lab works here, else (None, reason)."""
    import importlib
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        return None, ("%s cannot be imported (%s): pip install -r requirements-dev.txt"
                      % (what, error))
    ok, reason = getattr(module, support)()
    return (module, None) if ok else (None, reason)


def monitor_argv(script, *args):
    return [sys.executable, "-u", str(script), *map(str, args)]


def start_lab_monitor(lab, folder, script, *args, cwd=None):
    """The monitor `script` with ARGS in the lab's monitor namespace, its state file, event log
    and output (monitor.out) in `folder`; returns the Popen once it has logged its start."""
    events_path = folder / "events.jsonl"
    with open(folder / "monitor.out", "wb") as out:
        monitor = lab.popen(monitor_argv(script, *args, "--state-file", folder / "state.json",
                                         "--log-file", events_path),
                            cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT)
    if not wait_for(lambda: any(e["event"] == "start" for e in read_events(events_path)), 15):
        raise RuntimeError("the monitor did not start: %s" % (folder / "monitor.out"))
    return monitor


# -- duration error -----------------------------------------------------------------------------
def bench_duration(netlab, work, rng, lengths):
    outages = []
    for fault, undo, description in DURATION_FAULTS:
        log("duration: %d outages, %s" % (len(lengths), description))
        outages += duration_run(netlab, work / fault, rng, lengths, fault, undo)
    result = {"interval": INTERVAL, "timeout": TIMEOUT, "min_interruption": MIN_INTERRUPTION,
              "down_interval": outages[0]["down_interval"] if outages else None,
              "outages": outages, "by_fault": {}}
    groups = [(fault, [o for o in outages if o["fault"] == fault])
              for fault, _, _ in DURATION_FAULTS]
    for name, group in groups + [("all", outages)]:
        errors = [abs(o["error"]) for o in group if o["error"] is not None]
        stats = summary(errors)
        stats["bias"] = statistics.mean([o["error"] for o in group if o["error"] is not None]) \
            if errors else None
        stats["missed"] = sum(1 for o in group if o["error"] is None)
        for floor in ("floor", "grid_floor"):
            stats[floor] = statistics.mean([o[floor] for o in group]) if group else None
        for lag in ("detect_down", "detect_up", "own"):
            values = [o[lag] for o in group if o.get(lag) is not None]
            stats[lag] = summary(values)
        for ideal in ("grid_error", "ideal_error"):
            stats[ideal] = summary(abs(o[ideal]) for o in group if o.get(ideal) is not None)
        result["by_fault"][name] = stats
    return result


def duration_run(netlab, folder, rng, lengths, fault, undo):
    folder.mkdir(parents=True)
    events_path = folder / "events.jsonl"
    lab = netlab.NetLab()
    try:
        lab.start_listener()
        monitor = start_lab_monitor(
            lab, folder, PROGRAM, "-a", "%s:%d" % (netlab.TARGET_IP, netlab.TARGET_PORT),
            "-i", INTERVAL, "-t", TIMEOUT, "-m", MIN_INTERRUPTION, "--no-mail", "-q")
        offset = wall_minus_mono()
        # The rounds keep a fixed grid on the monotonic clock (RoundSchedule), so faults at
        # base + k*i + phase*i meet it at the phases chosen, shifted by one unknown constant.
        base = time.monotonic()
        earliest = base + UP_GAP
        spans = []
        for length, phase in fault_schedule(lengths, rng):
            sleep_until_phase(base, earliest, phase)
            getattr(lab, fault)()
            began = lab.log[-1][1]
            sleep_until(began + length)
            getattr(lab, undo)()
            spans.append((began, lab.log[-1][1], phase))
            earliest = lab.log[-1][1] + UP_GAP
        time.sleep(INTERVAL + TIMEOUT + 0.5)     # the last outage's first good round
        wait_for(lambda: len([e for e in read_events(events_path) if e["event"] == "up"])
                 >= len(lengths), 5.0)
        stop_process(monitor)
        events = read_events(events_path)
    finally:
        lab.destroy()
    # the start event says how often the monitor probes while down (older copies: -i)
    down_interval = next(e.get("down_interval") or INTERVAL
                         for e in events if e["event"] == "start")
    return match_outages(spans, [e for e in events if e["event"] == "up"], fault, offset,
                         down_interval)


def fault_phases(lengths, rng):
    """The phase (a fraction of the interval) at which each outage starts: a randomly shifted
    rank-1 lattice over (fractional part of the length, phase of the fault). Each length meets a
    different phase, all phases are covered evenly, and the shift comes from the seed. Random
    phases would do too, but the mean error would then scatter about twice as much between seeds
    (simulated: standard deviation 0.043 s for 16 outages, 0.016 s for this lattice of 24)."""
    n = len(lengths)
    by_fraction = sorted(range(n), key=lambda j: (lengths[j] / INTERVAL) % 1.0)
    step = LATTICE_STEP if math.gcd(LATTICE_STEP, n) == 1 else 1
    shift = rng.random()
    phases = [0.0] * n
    for rank, j in enumerate(by_fraction):
        phases[j] = (rank * step / n + shift) % 1.0
    return phases


def fault_schedule(lengths, rng):
    """[(length, phase)]: every length once, in a random order, each at its phase from
    fault_phases()."""
    phases = fault_phases(lengths, rng)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    return [(lengths[j], phases[j]) for j in order]


def sleep_until_phase(base, earliest, phase):
    """Sleeps until the first instant base + (k + phase) * INTERVAL not before `earliest`."""
    steps = math.ceil((earliest - base) / INTERVAL - phase)
    sleep_until(base + (steps + phase) * INTERVAL)


def grid_phase(walls, interval=INTERVAL):
    """Where the rounds start within the interval (0..interval), from round-start times: their
    circular mean, so that a grid near 0 is not averaged with one near 1."""
    angles = [2 * math.pi * ((wall / interval) % 1.0) for wall in walls]
    mean = math.atan2(sum(map(math.sin, angles)), sum(map(math.cos, angles)))
    return (mean / (2 * math.pi) % 1.0) * interval


def grid_floor(injected, interval=INTERVAL):
    """Mean |reported - injected| that rounds on a grid alone make for an outage of this length,
    over a uniformly random phase: 2x(1-x)*i, x the fractional part of length/i. Its mean over
    evenly spread fractional parts is i/3."""
    x = (injected / interval) % 1.0
    return 2 * x * (1 - x) * interval


def fast_floor(injected, down_interval, interval=INTERVAL, steps=2000):
    """The same floor for rounds on the interval's grid while up and on the down interval's grid
    while down, the start taken in the middle between the last good round and the first failed
    one: over a uniformly random phase p of the fault (the first failed round p*i after it), the
    mean of |end lag - (p - 1/2)*i|, the end lag being the time from the undo to the next
    instant of the down grid. About i/4 + d*d/(3i) when d divides i (0.253 s at -i 1, d 0.1)."""
    total = 0.0
    for k in range(steps):
        p = (k + 0.5) / steps
        first_failed = p * interval                       # the fault is at 0
        lag = -(injected - first_failed) % down_interval  # the undo to the next fast round
        total += abs(lag - (p - 0.5) * interval)
    return total / steps


def first_failed_round(event):
    """The wall-clock start of an outage's first failed round: start_before since the start
    window; before it, an outage's start was that round."""
    return iso_to_wall(event.get("start_before") or event["start"])


def match_outages(spans, ups, fault, offset, down_interval):
    """Pairs each injected outage with the `up` event whose first failed round is nearest its
    fault.

    Also the error that rounds exactly on the monitor's grid would make at the same instants
    (`grid_error`): the grid is where the first failed rounds started. With a start window
    (start_before in the events) and a down interval shorter than the interval, the rounds of
    that design (`ideal_error`): the start in the middle between the last good round and the
    first failed one, the end at the next instant of the down grid (from the same origin). What
    is left, error - ideal_error, is the program's own share (late rounds, slow detection)."""
    grid = grid_phase([first_failed_round(event) for event in ups]) if ups else None
    windowed = any("start_before" in event for event in ups)

    def to_next_round(wall, step=INTERVAL):
        return (grid - wall) % step

    rows = []
    for began, ended, phase in spans:
        injected = ended - began
        fault_wall = began + offset
        best = None
        for event in ups:
            lag = first_failed_round(event) - fault_wall     # 0..i (+ a few ms)
            if -0.5 <= lag <= INTERVAL + TIMEOUT + 0.5 and (best is None or abs(lag) < best[0]):
                best = (abs(lag), event)
        row = {"fault": fault, "phase": round(phase, 4), "injected": round(injected, 4),
               "reported": None, "error": None, "grid_floor": round(grid_floor(injected), 4),
               "floor": round(fast_floor(injected, down_interval) if windowed
                              else grid_floor(injected), 4)}
        rows.append(row)
        if best is None:
            continue
        event = best[1]
        ups.remove(event)
        grid_error = to_next_round(ended + offset) - to_next_round(fault_wall)
        ideal_error = grid_error
        if windowed:
            ideal_error = (to_next_round(ended + offset, down_interval)
                           - (to_next_round(fault_wall) - INTERVAL / 2))
        row.update(reported=event["duration"], error=round(event["duration"] - injected, 4),
                   # from the fault to the first failed round, from the undo to the first good one
                   detect_down=round(first_failed_round(event) - fault_wall, 4),
                   detect_up=round(iso_to_wall(event["end"]) - (ended + offset), 4),
                   grid_error=round(grid_error, 4), ideal_error=round(ideal_error, 4),
                   own=round(event["duration"] - injected - ideal_error, 4))
    for row in rows:
        row["down_interval"] = down_interval if windowed else None
    if ups:
        log("duration: %d unexpected up events (flaps?): %s" % (len(ups), ups))
    return rows


# -- round time with blackholed targets ---------------------------------------------------------
def bench_rounds(netlab, work, repeat):
    lab = netlab.NetLab()
    result = {"timeout": TIMEOUT, "rounds": [], "low_limit": {}}
    try:
        lab.vanish()          # every packet to 198.18.0.2 vanishes: each connect times out
        log("rounds: N = %s blackholed targets, %d round(s) each" % (list(ROUND_COUNTS), repeat))
        result["rounds"] = run_round_snippet(lab, list(ROUND_COUNTS), repeat, None)
        counts = max(ROUND_COUNTS)
        log("rounds: %d targets with the soft open-file limit at %d" % (counts, LOW_FILE_LIMIT))
        low = run_round_snippet(lab, [counts], 1, LOW_FILE_LIMIT)
        result["low_limit"]["probe_round"] = low[0] if low else None
        result["low_limit"]["once"] = low_limit_once(lab, netlab, counts)
        result["low_limit"]["monitor"] = low_limit_monitor(lab, netlab, work / "low-limit", counts)
    finally:
        lab.destroy()
    for row in result["rounds"]:
        row["seconds"] = round(row["seconds"], 4)
    return result


def run_round_snippet(lab, counts, repeat, soft_limit):
    config = {"counts": counts, "repeat": repeat, "timeout": TIMEOUT, "host": lab.TARGET_IP,
              "first_port": FIRST_PORT, "soft_limit": soft_limit}
    proc = lab.run([sys.executable, "-B", "-c", ROUND_SNIPPET, str(PROGRAM), json.dumps(config)],
                   capture_output=True, text=True,
                   timeout=30 + len(counts) * repeat * (TIMEOUT + 5))
    if proc.returncode != 0:
        raise RuntimeError("round snippet failed: %s" % proc.stderr.strip()[-2000:])
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _low_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(LOW_FILE_LIMIT, hard), hard))


def _target_args(netlab, count):
    args = []
    for k in range(count):
        args += ["-a", "%s:%d" % (netlab.TARGET_IP, FIRST_PORT + k)]
    return args


def low_limit_once(lab, netlab, count):
    """`--once` with `count` targets and a low soft limit: which reasons does it print?"""
    start = time.monotonic()
    proc = lab.run(monitor_argv(PROGRAM, "--once", "-t", TIMEOUT, *_target_args(netlab, count)),
                   capture_output=True, text=True, preexec_fn=_low_limit, timeout=60)
    reasons = {}
    for line in proc.stdout.splitlines():
        key = line.split(" ", 2)[-1] if " down " in line else "up"
        reasons[key] = reasons.get(key, 0) + 1
    return {"exit": proc.returncode, "seconds": round(time.monotonic() - start, 3),
            "reasons": reasons, "stderr": proc.stderr.strip()[-500:]}


def low_limit_monitor(lab, netlab, folder, count):
    """The monitor with `count` targets and a low soft limit (it raises it when > 200 targets)."""
    folder.mkdir(parents=True)
    events_path = folder / "events.jsonl"
    with open(folder / "monitor.out", "wb") as out:
        monitor = lab.popen(monitor_argv(
            PROGRAM, "-i", INTERVAL, "-t", TIMEOUT, "--no-mail", "-q", *_target_args(netlab, count),
            "--state-file", folder / "state.json", "--log-file", events_path),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_low_limit)
    try:
        down = wait_for(lambda: [e for e in read_events(events_path) if e["event"] == "down"], 15)
        limits = None
        try:
            with open("/proc/%d/limits" % monitor.pid) as stream:
                for line in stream:
                    if line.startswith("Max open files"):
                        limits = [int(x) for x in line.split()[3:5]]
        except (OSError, ValueError):
            pass
    finally:
        stop_process(monitor)
    reasons = {}
    if down:
        for reason in down[0]["targets"].values():
            reasons[reason] = reasons.get(reason, 0) + 1
    return {"started_with_soft_limit": LOW_FILE_LIMIT, "limit_while_running": limits,
            "reasons": reasons}


# -- CPU and memory -----------------------------------------------------------------------------
class CountingListener:
    """A loopback TCP listener in a thread of this process: accepts, closes, counts."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.close()
            self.count += 1

    def close(self):
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()


def _schedstat_seconds(pid):
    try:
        with open("/proc/%d/schedstat" % pid) as stream:
            return int(stream.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _status_kb(pid, field):
    """A memory figure of /proc/PID/status in KiB: VmHWM (the peak), VmRSS (now)."""
    try:
        with open("/proc/%d/status" % pid) as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cpu_run(argv, seconds, listener, cwd=None, env=None):
    """Runs argv for `seconds`; CPU from getrusage(RUSAGE_CHILDREN) around its wait."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_count = listener.count
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=cwd, env=env)
    try:
        started = time.monotonic()
        time.sleep(CPU_WARMUP)
        warm_cpu, warm_count = _schedstat_seconds(proc.pid), listener.count
        sleep_until(started + seconds)
        end_cpu, end_count = _schedstat_seconds(proc.pid), listener.count
        vmhwm, vmrss = _status_kb(proc.pid, "VmHWM"), _status_kb(proc.pid, "VmRSS")
        alive = proc.poll() is None
    finally:
        stop_process(proc)
        stderr = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not alive:
        raise RuntimeError("%s ended early: %s" % (" ".join(argv), stderr.strip()[-1000:]))
    probes = end_count - start_count
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    steady = None
    if None not in (warm_cpu, end_cpu) and end_count > warm_count:
        steady = (end_cpu - warm_cpu) / (end_count - warm_count) * 1000
    return {"seconds": seconds, "probes": probes, "cpu": round(user + system, 4),
            "user": round(user, 4), "system": round(system, 4),
            "cpu_per_1000": round((user + system) / probes * 1000, 4) if probes else None,
            "steady_cpu_per_1000": round(steady, 4) if steady is not None else None,
            "vmhwm_mb": round(vmhwm / 1024, 1) if vmhwm else None,
            "vmrss_mb": round(vmrss / 1024, 1) if vmrss else None}


def cpu_together(runs, seconds):
    """Runs several programs at the same time, each against its own CountingListener, for
    `seconds`: `runs` is [(name, argv, listener)]. Each sees the same load on the machine at the
    same moments. Returns a row per run: probes, and CPU (schedstat) per 1000 probes over the
    whole run and from second CPU_WARMUP on."""
    started, procs = time.monotonic(), []
    try:
        for name, argv, listener in runs:
            procs.append((name, listener, listener.count, subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)))
        sleep_until(started + CPU_WARMUP)
        warm = [(_schedstat_seconds(proc.pid), listener.count)
                for _, listener, _, proc in procs]
        sleep_until(started + seconds)
        end = [(_schedstat_seconds(proc.pid), listener.count, proc.poll() is None)
               for _, listener, _, proc in procs]
        vmhwm = [_status_kb(proc.pid, "VmHWM") for _, _, _, proc in procs]
    finally:
        for _, _, _, proc in procs:
            stop_process(proc)
    rows = []
    for (name, _, first, _), (warm_cpu, warm_count), (end_cpu, end_count, alive), peak in zip(
            procs, warm, end, vmhwm):
        if not alive or None in (warm_cpu, end_cpu) or end_count <= warm_count:
            raise RuntimeError("%s did not run for %g s" % (name, seconds))
        rows.append({"program": name, "seconds": seconds, "probes": end_count - first,
                     "cpu_per_1000": round(end_cpu / (end_count - first) * 1000, 4),
                     "steady_cpu_per_1000": round((end_cpu - warm_cpu) / (end_count - warm_count)
                                                  * 1000, 4),
                     "vmhwm_mb": round(peak / 1024, 1) if peak else None})
    return rows


# Runs in a child: times RoundInterpreter._measure (statistics window, slow tracking) per
# round of one target, and the end of a window of 1200 probes (60 s at -i 0.05). One JSON line.
STATS_SNIPPET = r'''
import importlib.util, json, random, sys, time
spec = importlib.util.spec_from_file_location("pyNetConnMon", sys.argv[1])
p = importlib.util.module_from_spec(spec)
spec.loader.exec_module(p)
rounds = int(sys.argv[2])
target = p.Target("127.0.0.1", 53)
settings = p.Settings(targets=[target])
announcer = p.Announcer(p.Console(quiet=True), p.EventLog(None), settings)
if hasattr(p, "RoundInterpreter"):      # what the rounds mean has a class of its own
    monitor = p.RoundInterpreter(settings, announcer, lambda **interruption: None)
else:
    monitor = p.Monitor(settings, announcer, None, None)
rng = random.Random(1)
results = [[p.ProbeResult(target, True, None, rng.uniform(0.0001, 0.0003))] for _ in range(1000)]
monitor.stats.length = float("inf")        # no window ends while timing the rounds
started = time.process_time()
for number in range(rounds):
    monitor._measure(results[number % 1000], number * 0.05, 1e9 + number * 0.05)
per_round = (time.process_time() - started) / rounds
window = p.StatisticsWindow(60.0)
for number in range(1200):
    window.add(results[number % 1000], number * 0.05, 1e9 + number * 0.05)
started = time.process_time()
for _ in range(100):
    window.close(60.0)
    for number in range(1200):
        window.add(results[number % 1000], number * 0.05, 1e9 + number * 0.05)
close = time.process_time() - started
started = time.process_time()
for _ in range(100):
    for number in range(1200):
        window.add(results[number % 1000], number * 0.05, 1e9 + number * 0.05)
refill = time.process_time() - started
print(json.dumps({"per_round": per_round, "window_close": (close - refill) / 100}))
'''


def instructions_per_probe(script, work, seconds=CALLGRIND_SECONDS):
    """User-space instructions per probe in the steady state, counted by valgrind's callgrind
    (None without valgrind): instrumentation is switched on after a warm-up and off after
    `seconds`; the probes are the connections a counting listener accepted in between. Unlike
    CPU time, the count does not depend on what else the machine does."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        return None
    listener = CountingListener()
    out = work / ("callgrind-%d.out" % len(list(work.glob("callgrind-*.out"))))
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                             "--callgrind-out-file=%s" % out, sys.executable, str(script),
                             "-a", "127.0.0.1:%d" % listener.port, "-i", CPU_INTERVAL, "-t", "2",
                             "--no-mail", "-q", "--state-file", str(out) + ".state"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(CALLGRIND_WARMUP)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], capture_output=True,
                       timeout=30)
        first = listener.count
        time.sleep(seconds)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], capture_output=True,
                       timeout=30)
        probes = listener.count - first
    finally:
        stop_process(proc, timeout=60)
        listener.close()
    total = 0
    for path in work.glob(out.name + "*"):
        if path.suffix == ".state" or path.name.endswith((".state", ".lock")):
            continue
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return {"probes": probes, "instructions": total,
            "per_probe": round(total / probes) if probes else None}


def syscalls_per_probe(script, work, seconds=SYSCALL_SECONDS):
    """System calls per probe (per connect) in the steady state, counted by `strace -c`
    attached after a warm-up (None without strace): what the kernel is asked to do, which CPU
    time on a shared machine cannot show apart from its noise. Returns {"probes", "calls",
    "per_probe",
    "by_call": {name: calls}}."""
    if not shutil.which("strace"):
        return None
    listener = CountingListener()
    out = work / ("strace-%d.txt" % len(list(work.glob("strace-*.txt"))))
    proc = subprocess.Popen([sys.executable, str(script), "-a", "127.0.0.1:%d" % listener.port,
                             "-i", CPU_INTERVAL, "-t", "2", "--no-mail", "-q",
                             "--state-file", str(out) + ".state"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(CPU_WARMUP)
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", str(out), "-p", str(proc.pid)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
    finally:
        stop_process(proc)
        listener.close()
    by_call = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] != "total" and fields[3].isdigit():
            by_call[fields[-1]] = int(fields[3])
    calls = sum(by_call.values())
    probes = by_call.get("connect", 0)      # one connect per probe, each traced whole
    return {"probes": probes, "calls": calls, "by_call": by_call,
            "per_probe": round(calls / probes, 2) if probes else None}


def bench_cpu(work, seconds, compare=None, pairs=CPU_PAIRS):
    baseline = work / "baseline_loop.py"
    baseline.write_text(BASELINE_LOOP)
    # Started by its shebang (./pyNetConnMon.py, as users do), the program runs its cached
    # bytecode, compiled in a child at this first start in a fresh folder. `python3
    # pyNetConnMon.py` compiles the whole file in the monitor at every start; `python3 -m
    # pyNetConnMon`, from its folder, loads the cached bytecode too.
    script_dir, bin_dir = work / "script", work / "bin"
    script_dir.mkdir()
    bin_dir.mkdir()
    shutil.copy(PROGRAM, script_dir / "pyNetConnMon.py")
    os.symlink(sys.executable, bin_dir / "python3")        # what the shebang's `python3` finds
    shebang_env = dict(os.environ, PATH="%s%s%s" % (bin_dir, os.pathsep, os.environ["PATH"]))
    shebang_env.pop("PYTHONDONTWRITEBYTECODE", None)
    module_dir = work / "module"
    module_dir.mkdir()
    shutil.copyfile(PROGRAM, module_dir / "pyNetConnMon.py")
    module_env = dict(os.environ)
    module_env.pop("PYTHONDONTWRITEBYTECODE", None)
    as_script = {}               # a fresh folder for each interpreter: the first start
    for flags in ((), ("-S",)):
        folder = work / ("as-script%s" % "".join(flags))
        folder.mkdir()
        shutil.copyfile(PROGRAM, folder / "pyNetConnMon.py")
        as_script[flags] = folder / "pyNetConnMon.py"
    subprocess.run([sys.executable, "-m", "pyNetConnMon", "--version"], cwd=str(module_dir),
                   env=module_env, check=True, capture_output=True, timeout=60)   # writes the .pyc
    listener = CountingListener()
    # -t 2, the default: with it the default --slow 1000 is in effect (-t 1 would turn it off)
    options = ["-i", CPU_INTERVAL, "-t", "2", "--no-mail", "-q"]
    rows = []
    compared = []
    try:
        for flags, interpreter in (((), "python3"), (("-S",), "python3 -S")):
            target = "127.0.0.1:%d" % listener.port
            state = str(work / ("state%s.json" % "".join(flags)))
            started = [("pyNetConnMon", [str(script_dir / "pyNetConnMon.py"), "-a", target,
                                         *options, "--state-file", state], None, shebang_env)]
            for name, argv, cwd, env in (
                    *(started if not flags else ()),          # a shebang takes no -S
                    (SCRIPT_ROW,
                     [sys.executable, *flags, str(as_script[flags]), "-a", target, *options,
                      "--state-file", state], None, module_env),
                    ("pyNetConnMon as a module (`-m`, cached bytecode)",
                     [sys.executable, *flags, "-m", "pyNetConnMon", "-a", target, *options,
                      "--state-file", state], str(module_dir), module_env),
                    ("plain blocking loop", [sys.executable, *flags, str(baseline),
                                             "-a", "127.0.0.1", "-p", str(listener.port),
                                             "-i", CPU_INTERVAL, "-t", "1"], None, None)):
                log("cpu: %s under %s for %g s at -i %s"
                    % (name, interpreter, seconds, CPU_INTERVAL))
                row = cpu_run(argv, seconds, listener, cwd, env)
                row.update(program=name, interpreter=interpreter)
                rows.append(row)
        if compare is not None:
            # both at the same time, each against its own listener: on a machine shared with
            # other work, runs one after the other meet different loads
            listeners = {"this": CountingListener(), "compared": CountingListener()}
            try:
                for turn in range(pairs):
                    log("cpu: this program and %s at the same time, turn %d of %d, %g s"
                        % (compare, turn + 1, pairs, seconds))
                    runs = [(which, [sys.executable, str(script), "-a",
                                     "127.0.0.1:%d" % listeners[which].port, *options,
                                     "--state-file", str(work / ("state-%s.json" % which))],
                             listeners[which])
                            for which, script in (("this", PROGRAM), ("compared", compare))]
                    for row in cpu_together(runs if turn % 2 == 0 else runs[::-1], seconds):
                        row.update(turn=turn)
                        compared.append(row)
            finally:
                for counting in listeners.values():
                    counting.close()
    finally:
        listener.close()
    counted, traced = {}, {}
    for which, script in (("this", PROGRAM), ("compared", compare)):
        if script is not None:
            log("cpu: instructions per probe of %s under callgrind (%g s)"
                % (script, CALLGRIND_WARMUP + CALLGRIND_SECONDS))
            counted[which] = instructions_per_probe(script, work)
            log("cpu: system calls per probe of %s under strace (%g s)"
                % (script, CPU_WARMUP + SYSCALL_SECONDS))
            traced[which] = syscalls_per_probe(script, work)
    log("cpu: the statistics' own cost, %d rounds in process" % STATS_ROUNDS)
    own = json.loads(subprocess.run(
        [sys.executable, "-B", "-c", STATS_SNIPPET, str(PROGRAM), str(STATS_ROUNDS)],
        capture_output=True, text=True, check=True, timeout=600).stdout)
    return {"interval": float(CPU_INTERVAL), "seconds": seconds, "warmup": CPU_WARMUP,
            "rows": rows, "site_pth": site_note(), "seed_quoted": SEED_QUOTED,
            "compare": None if compare is None else str(compare), "compared": compared,
            "statistics": own, "instructions": counted, "syscalls": traced}


def compared_figures(cpu):
    """Median steady CPU per 1000 probes of this program and the compared one, and their ratio
    (the median of the ratios of each turn's pair)."""
    by_turn = {}
    for row in cpu["compared"]:
        if row["steady_cpu_per_1000"] is not None:
            by_turn.setdefault(row["turn"], {})[row["program"]] = row["steady_cpu_per_1000"]
    pairs = [turn for turn in by_turn.values() if len(turn) == 2]
    if not pairs:
        return None
    return {"this": statistics.median(turn["this"] for turn in pairs),
            "compared": statistics.median(turn["compared"] for turn in pairs),
            "ratio": statistics.median(turn["this"] / turn["compared"] for turn in pairs),
            "ratios": [round(turn["this"] / turn["compared"], 3) for turn in pairs]}


# -- slow periods against injected congestion ---------------------------------------------------
def bench_slow(homelab, work, rng, lengths):
    """Congestions of the given stream lengths, each begun at a chosen phase of the monitor's
    grid; each slow period's duration against the lab's timeline (queue full .. queue gone)."""
    work.mkdir(parents=True)
    events_path = work / "events.jsonl"
    lab = homelab.HomeLab()
    spans = []
    try:
        lab.start_listener()
        monitor = start_lab_monitor(
            lab, work, PROGRAM, "-a", "%s:%d" % (homelab.TARGET_IP, homelab.TARGET_PORT),
            "-i", INTERVAL, "-t", SLOW_TIMEOUT, "-m", MIN_INTERRUPTION, "--slow", SLOW_MS,
            "--no-mail", "-q")
        offset = wall_minus_mono()
        base = time.monotonic()
        earliest = base + CONGESTION_GAP
        for count, (length, phase) in enumerate(fault_schedule(lengths, rng), 1):
            log("slow: congestion %d of %d, %.3f s" % (count, len(lengths), length))
            sleep_until_phase(base, earliest, phase)
            lab.congestion(length)
            began = lab.log[-1][1]
            lab.congestion_end()
            spans.append((began, lab.log[-1][1], phase))
            wait_for(lambda: len([e for e in read_events(events_path)
                                  if e["event"] == "slow_end"]) >= count, SLOW_TIMEOUT + 5)
            earliest = lab.log[-1][1] + CONGESTION_GAP
        stop_process(monitor)
        logged = read_events(events_path)
    finally:
        lab.destroy()
    rows = []
    ends = [e for e in logged if e["event"] == "slow_end"]
    for began, ended, phase in spans:
        injected = ended - began
        best = None
        for event in ends:
            lag = iso_to_wall(event["start"]) - (began + offset)
            if -INTERVAL - 1.0 <= lag <= INTERVAL + SLOW_TIMEOUT and (
                    best is None or abs(lag) < best[0]):
                best = (abs(lag), event)
        row = {"injected": round(injected, 4), "phase": round(phase, 4), "reported": None,
               "error": None}
        rows.append(row)
        if best is None:
            continue
        event = best[1]
        ends.remove(event)
        row.update(reported=event["duration"], error=round(event["duration"] - injected, 4),
                   ignored=event["ignored"], median_ms=event["median_ms"],
                   max_ms=event["max_ms"],
                   detect_slow=round(iso_to_wall(event["start"]) - (began + offset), 4),
                   detect_end=round(iso_to_wall(event["end"]) - (ended + offset), 4))
    errors = [row["error"] for row in rows if row["error"] is not None]
    return {"interval": INTERVAL, "timeout": SLOW_TIMEOUT, "slow_ms": SLOW_MS,
            "min_interruption": MIN_INTERRUPTION, "rows": rows,
            "abs_error": summary(abs(error) for error in errors),
            "bias": statistics.mean(errors) if errors else None,
            "missed": sum(1 for row in rows if row["error"] is None),
            "extra": len(ends), "downs": sum(1 for e in logged if e["event"] == "down"),
            "detect_slow": summary(row["detect_slow"] for row in rows if "detect_slow" in row),
            "detect_end": summary(row["detect_end"] for row in rows if "detect_end" in row)}


# -- from connectivity back to the report accepted ----------------------------------------------
def bench_mail(netlab, work, rng, repeat):
    from smtp_lab import SmtpServer, make_certificate, make_program_dir
    work.mkdir(parents=True)
    cert, key = make_certificate(work)
    lab = netlab.NetLab()
    server = None
    rows = []
    try:
        lab.start_listener()
        server = SmtpServer(work, cert, key, prefix=lab.prefix).start()
        app = make_program_dir(work / "app", smtp_port=server.port)
        shutil.copyfile(PROGRAM, app.script)      # the copy under test (see --program)
        events_path = work / "events.jsonl"
        monitor = start_lab_monitor(
            lab, work, app.script, "-a", "%s:%d" % (netlab.TARGET_IP, netlab.TARGET_PORT),
            "-i", INTERVAL, "-t", TIMEOUT, "-m", MIN_INTERRUPTION, "-bmin", "0", "-bstep", "0",
            "-q", cwd=str(app.root))
        offset = wall_minus_mono()
        log("mail: %d outages of %g s, each reported at once (-bmin 0 -bstep 0)"
            % (repeat, MAIL_OUTAGE))
        for index in range(repeat):
            time.sleep(UP_GAP + rng.uniform(0.0, INTERVAL))
            before = len(server.message_files())
            lab.vanish()
            sleep_until(lab.log[-1][1] + MAIL_OUTAGE)
            lab.unvanish()
            back = lab.log[-1][1]
            files = wait_for(lambda: server.message_files()[before:], MAIL_WAIT)
            sent = wait_for(lambda: [e for e in read_events(events_path)
                                     if e["event"] in ("report_sent", "mail_sent")][index:], 5.0)
            if not files:
                rows.append({"back_to_accepted": None})
                log("mail: report %d did not arrive within %g s" % (index + 1, MAIL_WAIT))
                continue
            arrived = int(files[0].name.split("-")[0]) / 1e9     # the server's monotonic ns
            # the up event's time: the first connect that got through (older copies: the
            # first good round's start)
            ups = [e for e in read_events(events_path) if e["event"] == "up"]
            round_start = iso_to_wall(ups[-1]["time"]) - offset if ups else None
            rows.append({
                "back_to_accepted": round(arrived - back, 4),
                "back_to_round": round(round_start - back, 4) if round_start else None,
                "round_to_accepted": round(arrived - round_start, 4) if round_start else None,
                "mail_sent_logged": bool(sent)})
        stop_process(monitor)
    finally:
        if server is not None:
            server.stop()
        lab.destroy()
    return {"interval": INTERVAL, "timeout": TIMEOUT, "outage": MAIL_OUTAGE, "rows": rows,
            "back_to_accepted": summary(r["back_to_accepted"] for r in rows
                                        if r["back_to_accepted"] is not None),
            "back_to_round": summary(r["back_to_round"] for r in rows
                                     if r.get("back_to_round") is not None),
            "round_to_accepted": summary(r["round_to_accepted"] for r in rows
                                         if r.get("round_to_accepted") is not None)}


# -- output -----------------------------------------------------------------------------------
def _s(value, digits=2):
    return "—" if value is None else "%.*f s" % (digits, value)


def _met(ok):
    return "yes" if ok else "**no**"


def markdown(results):
    lines = []
    machine = results["machine"]
    lines += ["### Machine", "",
              "- CPU: %s, %s cores" % (machine["cpu"], machine["cores"]),
              "- Python: %s (`%s`)" % (machine["python"], machine["python_executable"]),
              "- Kernel: %s" % machine["kernel"],
              *(["- Program measured: `%s`" % results["program"]]
                if results["program"] != str(REPO / "pyNetConnMon.py") else []),
              "- Open files (RLIMIT_NOFILE soft/hard): %d/%d" % tuple(machine["nofile_limit"]),
              "- Load average at start: %s; run: %s, %s" % (
                  ", ".join("%.2f" % x for x in machine["load_average"]), machine["date"],
                  "quick" if results["quick"] else "full"),
              ""]
    lines += ["### Results", "", "| figure | measured | goal | met |", "|---|---|---|---|"]
    duration = results.get("duration")
    if duration:
        names = dict((fault, text) for fault, _, text in DURATION_FAULTS)
        names["all"] = "both kinds"
        goal_mean, goal_max = DURATION_GOAL
        for key, stats in duration["by_fault"].items():
            if not stats["n"]:
                continue
            missed = " (%d not reported)" % stats["missed"] if stats["missed"] else ""
            lines.append("| outage duration error at `-i 1 -t 1`, %s, %d outages | mean %s, max "
                         "%s%s | mean ≤ %g s, max ≤ %g s; floor %s (rounds on a fixed grid: %s) "
                         "| %s |" % (
                             names[key], stats["n"], _s(stats["mean"], 3), _s(stats["max"], 3),
                             missed, goal_mean, goal_max, _s(stats["floor"], 3),
                             _s(stats["grid_floor"], 3),
                             _met(stats["mean"] <= goal_mean and stats["max"] <= goal_max
                                  and not stats["missed"])))
    rounds = results.get("rounds")
    if rounds:
        by_n = {}
        for row in rounds["rounds"]:
            by_n.setdefault(row["n"], []).append(row)
        for n, rows in sorted(by_n.items()):
            seconds = [r["seconds"] for r in rows]
            reasons = {}
            for r in rows:
                for k, v in r["reasons"].items():
                    reasons[k] = reasons.get(k, 0) + v
            outcome = ", ".join("%d %s" % (v, k) for k, v in sorted(reasons.items()))
            lines.append("| round time, %d blackholed target%s at `-t 1` | %s (max of %d: %s; %s) "
                         "| ≤ 1.2 s | %s |" % (n, "" if n == 1 else "s",
                                               _s(statistics.mean(seconds)), len(seconds),
                                               _s(max(seconds)), outcome,
                                               _met(max(seconds) <= 1.2)))
    cpu = results.get("cpu")
    compared = cpu.get("compare") and Path(cpu["compare"]).name if cpu else None
    if cpu:
        for row in cpu["rows"]:
            if row["interpreter"] != "python3":
                continue
            lines.append("| CPU per 1000 probes at `-i %g`, %s | %s (steady state %s) | — | |" % (
                cpu["interval"], row["program"], _s(row["cpu_per_1000"], 3),
                _s(row["steady_cpu_per_1000"], 3)))
        # counts that do not scatter: user-space instructions (callgrind), system calls (strace)
        for key, what, tool in (("instructions", "instructions", "callgrind, user space"),
                                ("syscalls", "system calls", "strace -c")):
            counts = cpu.get(key) or {}
            old = counts.get("compared")
            for which, count in counts.items():
                if not count:
                    continue
                goal, met = "—", ""
                if which == "this" and old:
                    goal = "≤ `%s`'s (%s)" % (compared, format(old["per_probe"], ","))
                    met = _met(count["per_probe"] <= old["per_probe"])
                shown = format(count["per_probe"], ",")
                if "by_call" in count:
                    shown += " (%s)" % ", ".join(
                        "%s %g" % (name, round(calls / count["probes"], 2)) for name, calls in
                        sorted(count["by_call"].items(), key=lambda item: -item[1]))
                lines.append("| %s per probe at `-i %g` (%s, %d probes), %s | %s | %s | %s |" % (
                    what, cpu["interval"], tool, count["probes"],
                    "pyNetConnMon" if which == "this" else "`%s`" % compared, shown, goal, met))
        peaks = [row["vmhwm_mb"] for row in cpu.get("compared") or ()
                 if row["program"] == "compared" and row.get("vmhwm_mb")]
        original = cpu.get("seed_quoted", SEED_QUOTED)["vmhwm_mb"]
        for row in cpu["rows"]:
            goal, met = "—", ""
            if row["program"].startswith("pyNetConnMon"):
                # every way to start it: no higher than the original 1.x program's peak
                goal = "≤ %g MB (the original 1.x, as reported)" % original
                ok = row["vmhwm_mb"] <= original
                if row["program"] == "pyNetConnMon":
                    goal += ", ≤ %g MB (2.0.0 in the README)" % MEMORY_GOAL_MB
                    ok = ok and row["vmhwm_mb"] <= MEMORY_GOAL_MB
                    if peaks:
                        goal += " and ≤ `%s`'s (%s MB, run with it)" % (compared, max(peaks))
                        ok = ok and row["vmhwm_mb"] <= max(peaks)
                met = _met(ok)
            lines.append("| peak memory (VmHWM), %s, `%s` | %s MB | %s | %s |"
                         % (row["program"], row["interpreter"], row["vmhwm_mb"], goal, met))
    slow = results.get("slow")
    if slow and slow["abs_error"]["n"]:
        lines.append("| slow period duration error at `-i 1 -t 3 --slow 1000`, %d congestions "
                     "(home lab, tbf) | mean %s, max %s (mean error %+.2f s)%s | — | |" % (
                         slow["abs_error"]["n"], _s(slow["abs_error"]["mean"]),
                         _s(slow["abs_error"]["max"]), slow["bias"],
                         "; %d not reported" % slow["missed"] if slow["missed"] else ""))
    if cpu and cpu.get("compared"):
        figures = compared_figures(cpu)
        if figures:
            lines.append("| steady CPU per 1000 probes at `-i %g`, this program against `%s`, "
                         "both at once, %d turns | %.3f s against %.3f s: %+.1f %% (median of the "
                         "turns' ratios) | at most +10 %% against the program before the "
                         "statistics; no higher than 2.0.0's | |" % (
                             cpu["interval"], compared, len(figures["ratios"]),
                             figures["this"], figures["compared"],
                             100 * (figures["ratio"] - 1)))
    if cpu and cpu.get("statistics"):
        own = cpu["statistics"]
        lines.append("| the connect-time statistics' own CPU (`RoundInterpreter._measure`, in "
                     "process), one target | %.1f µs per round; %.2f ms per window end (1200 "
                     "probes) | — | |"
                     % (own["per_round"] * 1e6, own["window_close"] * 1e3))
    mail = results.get("mail")
    if mail and mail["back_to_accepted"]["n"]:
        stats = mail["back_to_accepted"]
        lines.append("| connectivity back → report accepted by the SMTP server, `-i 1 -t 1`, "
                     "%d outages | mean %s, max %s | mean ≤ %g s | %s |" % (
                         stats["n"], _s(stats["mean"]), _s(stats["max"]), MAIL_GOAL,
                         _met(stats["mean"] <= MAIL_GOAL)))
    lines.append("")
    if duration:
        down = duration["down_interval"]
        lines += ["### Outage duration error at `-i %g -t %g -m %g`%s" % (
                      duration["interval"], duration["timeout"], duration["min_interruption"],
                      ", rounds every %g s while down" % down if down else ""), "",
                  "| fault | outages | mean abs error | max abs error | mean error | "
                  "rounds exactly on the program's grids, same instants: mean abs error | "
                  "the program's own share: mean, max | floor for these lengths | "
                  "floor of rounds on a fixed grid |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for key, stats in duration["by_fault"].items():
            if not stats["n"]:
                continue
            own = stats["own"]
            lines.append("| %s | %d | %s | %s | %+.3f s | %s | %s | %s | %s |" % (
                names[key], stats["n"], _s(stats["mean"], 3), _s(stats["max"], 3), stats["bias"],
                _s(stats["ideal_error"].get("mean"), 3),
                "%+.3f s, %+.3f s" % (own["mean"], max(own["max"], -own["min"], key=abs))
                if own["n"] else "—", _s(stats["floor"], 3), _s(stats["grid_floor"], 3)))
        lines.append("")
    if cpu:
        lines += ["### CPU and memory, %g s at `-i %g`, one healthy loopback target" % (
                      cpu["seconds"], cpu["interval"]), "",
                  "| program | interpreter | probes | CPU s (user+sys) | CPU s / 1000 probes | "
                  "steady CPU s / 1000 probes | VmHWM MB | VmRSS MB at the end |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in cpu["rows"]:
            lines.append("| %s | `%s` | %d | %.3f (%.3f+%.3f) | %s | %s | %s | %s |" % (
                row["program"], row["interpreter"], row["probes"], row["cpu"], row["user"],
                row["system"], _s(row["cpu_per_1000"], 3).replace(" s", ""),
                _s(row["steady_cpu_per_1000"], 3).replace(" s", ""), row["vmhwm_mb"],
                row.get("vmrss_mb")))
        if cpu["seconds"] == CPU_SECONDS:
            lines.append("| the original pyNetConnMon 1.x (figures as reported, not measured "
                         "here) | | ~600 | ~%.1f | | | ~%g | |"
                         % (SEED_QUOTED["cpu_seconds"], SEED_QUOTED["vmhwm_mb"]))
        if cpu["site_pth"]:
            lines += ["", "`python3` runs the .pth files of its site-packages at start-up (%s); "
                      "`python3 -S` leaves site-packages out." % ", ".join(cpu["site_pth"])]
        lines.append("")
    if cpu and cpu.get("compared"):
        lines += ["### CPU per 1000 probes, this program and `%s` at the same time, %g s per "
                  "turn" % (cpu["compare"], cpu["seconds"]), "",
                  "| turn | program | probes | CPU s / 1000 probes | steady CPU s / 1000 probes |",
                  "|---|---|---|---|---|"]
        for row in cpu["compared"]:
            lines.append("| %d | %s | %d | %s | %s |" % (
                row["turn"] + 1, row["program"], row["probes"],
                _s(row["cpu_per_1000"], 3).replace(" s", ""),
                _s(row["steady_cpu_per_1000"], 3).replace(" s", "")))
        figures = compared_figures(cpu)
        if figures:
            lines += ["", "Ratio this/compared per turn: %s; median %.3f." % (
                ", ".join("%.3f" % ratio for ratio in figures["ratios"]), figures["ratio"])]
        lines.append("")
    if slow and slow["rows"]:
        lines += ["### Slow periods against congestion at `-i %g -t %g -m %g --slow %d`" % (
                      slow["interval"], slow["timeout"], slow["min_interruption"],
                      slow["slow_ms"]), "",
                  "| congestion (queue full .. removed) | slow period | error | slow noticed "
                  "after | end noticed after | median | max |", "|---|---|---|---|---|---|---|"]
        for row in sorted(slow["rows"], key=lambda row: row["injected"]):
            if row["error"] is None:
                lines.append("| %s | not reported | | | | | |" % _s(row["injected"], 3))
                continue
            lines.append("| %s | %s%s | %+.3f s | %s | %s | %.0f ms | %.0f ms |" % (
                _s(row["injected"], 3), _s(row["reported"], 3),
                " (ignored)" if row["ignored"] else "", row["error"],
                _s(row["detect_slow"], 3), _s(row["detect_end"], 3), row["median_ms"],
                row["max_ms"]))
        lines += ["", "Interruptions during the run: %d; slow periods matching no congestion: %d."
                  % (slow["downs"], slow["extra"]), ""]
    if rounds and rounds["low_limit"]:
        low = rounds["low_limit"]
        lines += ["### %d targets with a soft open-file limit of %d" % (
            max(ROUND_COUNTS), LOW_FILE_LIMIT), ""]
        probe = low.get("probe_round")
        if probe:
            lines.append("- `Prober.probe_round` alone: %s in %s" % (
                ", ".join("%d %s" % (v, k) for k, v in sorted(probe["reasons"].items())),
                _s(probe["seconds"])))
        once = low.get("once")
        if once:
            outcome = ", ".join("%d %s" % (v, k) for k, v in sorted(once["reasons"].items()))
            lines.append("- `--once`: exit %d, %s in %s" % (once["exit"], outcome,
                                                           _s(once["seconds"])))
        monitor = low.get("monitor")
        if monitor:
            lines.append("- the monitor: limit while running %s (soft/hard), first `down` event: %s"
                         % ("/".join(map(str, monitor["limit_while_running"] or ["?"])),
                            ", ".join("%d %s" % (v, k)
                                      for k, v in sorted(monitor["reasons"].items())) or "none"))
        lines.append("")
    if mail and mail["rows"]:
        lines += ["### Report latency, %d outages of %g s" % (len(mail["rows"]), mail["outage"]),
                  "",
                  "| step | mean | max |", "|---|---|---|"]
        for key, text in (("back_to_round", "connectivity back → the first connect that got "
                                            "through (the `up` event's time)"),
                          ("round_to_accepted", "that connect → report accepted"),
                          ("back_to_accepted", "connectivity back → report accepted")):
            stats = mail[key]
            if stats["n"]:
                lines.append("| %s | %s | %s |" % (text, _s(stats["mean"]), _s(stats["max"])))
        lines.append("")
    for name, error in results.get("errors", {}).items():
        lines.append("- %s: not measured: %s" % (name, error))
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(
        prog="bench.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--quick", action="store_true",
                        help="short runs, for a smoke check (the figures are then rough)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only", metavar="SECTION,...",
                        help="run only these sections: %s" % ", ".join(SECTIONS))
    parser.add_argument("--seed", type=int, default=1,
                        help="seed for the phase of the faults against the rounds (default: 1)")
    parser.add_argument("--program", metavar="PATH", default=str(PROGRAM),
                        help="the pyNetConnMon.py to measure, e.g. an older copy to compare with "
                             "(default: the repository's)")
    parser.add_argument("--cpu-seconds", type=float, metavar="SECONDS",
                        help="length of each CPU run (default: %g, %g with --quick)"
                             % (CPU_SECONDS, QUICK_CPU_SECONDS))
    parser.add_argument("--compare", metavar="PATH",
                        help="cpu: also run this other pyNetConnMon.py (e.g. `git show "
                             "main:pyNetConnMon.py > /tmp/before.py`) and the program at the "
                             "same time, in %d turns (%d with --quick), and compare their steady "
                             "CPU" % (CPU_PAIRS, QUICK_CPU_PAIRS))
    parser.add_argument("--keep", metavar="DIR",
                        help="work in DIR (new or empty) and keep it: the event logs and state "
                             "files of every run, to look into a figure afterwards")
    return parser


def main(argv=None):
    global PROGRAM
    args = build_parser().parse_args(argv)
    PROGRAM = Path(args.program).resolve()
    sections = SECTIONS
    if args.only:
        sections = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            build_parser().error("--only: unknown section(s) %s" % ", ".join(sorted(unknown)))
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.path[:0] = [str(HERE), str(HERE.parent / "lab"), str(HERE.parent)]
    rng = random.Random(args.seed)
    results = {"quick": args.quick, "seed": args.seed, "program": str(PROGRAM),
               "machine": machine_info(), "errors": {}}
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        if any(work.iterdir()):
            build_parser().error("--keep: %s is not empty" % work)
    else:
        work = Path(tempfile.mkdtemp(prefix="pynetconnmon-bench-"))
    netlab, reason = (None, None)
    if set(sections) & {"duration", "rounds", "mail"}:
        netlab, reason = lab_or_reason()
    homelab, home_reason = (None, None)
    if "slow" in sections:
        homelab, home_reason = lab_or_reason("homelab", "homelab_support", "the home lab")
    try:
        for name in sections:
            if name == "slow" and homelab is None:
                results["errors"][name] = home_reason
                log("%s: skipped: %s" % (name, home_reason))
                continue
            if name not in ("cpu", "slow") and netlab is None:
                results["errors"][name] = reason
                log("%s: skipped: %s" % (name, reason))
                continue
            started = time.monotonic()
            if name == "duration":
                lengths = QUICK_OUTAGE_LENGTHS if args.quick else OUTAGE_LENGTHS
                results[name] = bench_duration(netlab, work / name, rng, lengths)
            elif name == "rounds":
                results[name] = bench_rounds(netlab, work / name,
                                             QUICK_ROUND_REPEAT if args.quick else ROUND_REPEAT)
            elif name == "cpu":
                (work / name).mkdir()
                seconds = args.cpu_seconds or (QUICK_CPU_SECONDS if args.quick else CPU_SECONDS)
                results[name] = bench_cpu(
                    work / name, seconds, args.compare and Path(args.compare).resolve(),
                    QUICK_CPU_PAIRS if args.quick else CPU_PAIRS)
            elif name == "mail":
                results[name] = bench_mail(netlab, work / name, rng,
                                           QUICK_MAIL_REPEAT if args.quick else MAIL_REPEAT)
            elif name == "slow":
                lengths = QUICK_CONGESTION_LENGTHS if args.quick else CONGESTION_LENGTHS
                results[name] = bench_slow(homelab, work / name, rng, lengths)
            log("%s: done in %.0f s" % (name, time.monotonic() - started))
    except (KeyboardInterrupt, Stop):
        log("interrupted; cleaned up")
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(markdown(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
