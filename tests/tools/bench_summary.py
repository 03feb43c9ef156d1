#!/usr/bin/env python3
"""Benchmark of a year of evidence: how much event log the monitor writes at its defaults, and how
fast and light `--summary --html --csv` reads a year of it back.

    python3 tests/tools/bench_summary.py [--only volume,year,year-short,flapping] [--repeat 3]
                                   [--volume-seconds 120] [--keep DIR] [--program PATH] [--json]

A script, not a test (pytest does not collect it). Every connect goes to loopback.

Sections (all by default):
  volume      a real run of the monitor at its defaults (two loopback listeners as targets,
              --gateway none, --no-mail) for --volume-seconds, stopped with SIGTERM: the bytes
              of each kind of line, and the bytes per hour and per year that follow from them
  year        a year in 2.0's format (tests/tools/reportlog.py --stats-every 60: a stats line every
              minute, about 528,000 lines, 220 MB)
  year-short  the same year as the monitor writes it now (--stats-every 300 --stats-format
              short: a stats line every five minutes, without `end`, each target's eight
              figures as a window of 150 probes gives them; about 108,000 lines, 46 MB)
  flapping    two million events of a connection going down and up all year
For each log: `--summary --html --csv` of the program, started as the README starts it
(`./pyNetConnMon.py`, which runs its bytecode cached in __pycache__; a first run, not counted,
makes the cache, and PYTHONDONTWRITEBYTECODE is left out of the program's environment), and a
plain `json.loads` loop over the same file, each --repeat times in turns; the figures are the
fastest run's CPU time (user + system, from wait4: what the machine's other load disturbs
least), its wall time, and the peak resident memory (ru_maxrss). The goals: the year within
twice the loop's time and under 60 MB, the flapping log within 2.5 times and under 80 MB.

Progress goes to stderr; the results go to stdout as Markdown (or JSON with --json).
"""
import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROGRAM = REPO / "pyNetConnMon.py"
SECTIONS = ("volume", "year", "year-short", "flapping")
HOURS_PER_YEAR = 365.25 * 24
VOLUME_GOAL_MB = 50.0
LOGS = {   # section -> (file name, reportlog.py arguments, time goal, memory goal MB)
    "year": ("year-2.0.jsonl", ["--stats-every", "60"], 2.0, 60.0),
    "year-short": ("year-short.jsonl", ["--stats-every", "300", "--stats-format", "short"],
                   2.0, 60.0),
    "flapping": ("flapping.jsonl", ["--flapping", "2000000"], 2.5, 80.0),
}
JSON_LOOP = "import json, sys\nfor line in open(sys.argv[1], 'rb'):\n    json.loads(line)\n"
LISTENER_READY = 10.0


def log(text):
    sys.stderr.write("[bench_summary %s] %s\n" % (datetime.now().strftime("%H:%M:%S"), text))
    sys.stderr.flush()


def measured(command, env=None):
    """Runs `command` to its end: (wall s, CPU s, peak RSS MB, exit status)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode("utf-8", "replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (command[:3], process.returncode, errors[-500:]))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, process.returncode


def read_back(section, work, program, repeat):
    name, arguments, time_goal, memory_goal = LOGS[section]
    path = work / name
    if not path.exists():
        log("%s: making %s with tests/tools/reportlog.py %s" % (section, name, " ".join(arguments)))
        subprocess.run([sys.executable, str(HERE / "reportlog.py"), str(path)] + arguments,
                       check=True, stdout=subprocess.DEVNULL)
    with open(path, "rb") as stream:
        lines = sum(1 for _ in stream)
    # the program's `exec python3` finds the loop's interpreter first: where python3 on PATH is
    # a wrapper (pyenv's shim is a shell script), each start would cost the wrapper's CPU too
    env = dict(os.environ, TZ="Europe/Berlin",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)        # a user's start uses the cache
    started = [str(program)] if os.access(program, os.X_OK) else [sys.executable, str(program)]
    measured(started + ["--version"], env)          # makes the cache when it is stale
    runs = {"program": [], "loop": []}
    for turn in range(repeat):
        log("%s: turn %d of %d" % (section, turn + 1, repeat))
        runs["loop"].append(measured([sys.executable, "-c", JSON_LOOP, str(path)], env))
        runs["program"].append(measured(
            started + ["--summary", "--log-file", str(path), "--html",
                       str(work / ("%s.html" % section)), "--csv",
                       str(work / ("%s.csv" % section))], env))
    best = {kind: min(found, key=lambda run: run[1]) for kind, found in runs.items()}
    ratio = best["program"][1] / best["loop"][1]
    return {"log": name, "lines": lines, "bytes": path.stat().st_size,
            "program": best["program"][:3], "loop": best["loop"][:3], "ratio": ratio,
            "peak_mb": max(run[2] for run in runs["program"]),
            "time_goal": time_goal, "memory_goal": memory_goal,
            "met": ratio <= time_goal and max(run[2] for run in runs["program"]) < memory_goal,
            "runs": runs}


def listen(count):
    """`count` loopback listeners (tests/lab/listener.py), on 127.0.0.1, 127.0.0.2, ..."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hosts = ["127.0.0.%d" % (number + 1) for number in range(count)]
    command = [sys.executable, str(HERE.parent / "lab" / "listener.py"), hosts[0], str(port),
               "--lifetime", "3600"]
    for host in hosts[1:]:
        command += ["--also", host]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + LISTENER_READY
    line = process.stdout.readline()
    if line.strip() != "READY" or time.monotonic() > deadline:
        process.kill()
        raise RuntimeError("the listener did not start")
    return process, ["%s:%d" % (host, port) for host in hosts]


def volume(work, program, seconds):
    """A real run at the defaults; the bytes it wrote, by kind of line."""
    listener, targets = listen(2)
    folder = work / "volume"
    folder.mkdir(exist_ok=True)
    events = folder / "events.jsonl"
    command = [sys.executable, str(program), "--gateway", "none", "--no-mail", "--log-file",
               str(events), "--state-file", str(folder / "state.json")]
    for target in targets:
        command += ["-a", target]
    log("volume: %s for %g s" % (" ".join(command[1:]), seconds))
    try:
        monitor = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(seconds)       # the run itself is the measurement: no event to wait for
        finally:
            monitor.send_signal(signal.SIGTERM)
            monitor.wait(timeout=30)
            monitor.stderr.close()
    finally:
        listener.terminate()
        listener.wait(timeout=10)
    records = []
    with open(events, "rb") as stream:
        for line in stream:
            records.append((json.loads(line), len(line)))
    start = next(record for record, _ in records if record["event"] == "start")
    window = start.get("stats_interval") or 0
    kinds = {}
    for record, size in records:
        kinds.setdefault(record["event"], []).append(size)
    once = sum(sum(kinds.pop(name, [])) for name in ("start", "stop"))
    stats = kinds.pop("stats", [])
    other = sum(sum(sizes) for sizes in kinds.values())
    per_hour = (max(stats) * 3600.0 / window if stats and window else 0.0)
    return {"seconds": seconds, "targets": targets, "lines": len(records),
            "bytes": events.stat().st_size, "start_stop_bytes": once, "stats_lines": stats,
            "other_bytes": other, "other_kinds": sorted(kinds), "stats_interval": window,
            "per_hour": per_hour, "per_year_mb": per_hour * HOURS_PER_YEAR / 1e6,
            "example": [json.dumps(record) for record, _ in records
                        if record["event"] == "stats"][:1],
            "met": per_hour * HOURS_PER_YEAR / 1e6 <= VOLUME_GOAL_MB}


def machine():
    return {"python": "%s %s" % (platform.python_implementation(), platform.python_version()),
            "kernel": "%s %s" % (platform.system(), platform.release()),
            "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.now().astimezone().isoformat(timespec="seconds")}


def markdown(results):
    lines = ["Machine: %(python)s, %(kernel)s, %(cores)s cores, load average at start "
             "%(load_average)s, %(date)s" % results["machine"], ""]
    found = results.get("volume")
    if found:
        lines += [
            "**Volume** (a %g s run at the defaults, two loopback targets, `--gateway none`): "
            "%d lines, %d bytes; `start` and `stop` %d bytes (once per run); %d `stats` "
            "line(s) of %s bytes (a window every %g s); other lines %d bytes. Bytes per hour "
            "while running: %.0f, so %.1f MB a year (goal at most %g MB): %s." % (
                found["seconds"], found["lines"], found["bytes"], found["start_stop_bytes"],
                len(found["stats_lines"]), "/".join(map(str, found["stats_lines"])) or "no",
                found["stats_interval"], found["other_bytes"], found["per_hour"],
                found["per_year_mb"], VOLUME_GOAL_MB, "met" if found["met"] else "**not met**"),
            ""]
    rows = [(section, results[section]) for section in SECTIONS[1:] if section in results]
    if rows:
        lines += ["| log | lines | MB | json.loads loop: CPU s (wall s) | --summary --html --csv: "
                  "CPU s (wall s) | ratio (goal) | peak MB (goal) | met |",
                  "|---|---|---|---|---|---|---|---|"]
        for section, found in rows:
            lines.append("| %s | %d | %.0f | %.2f (%.2f) | %.2f (%.2f) | %.2f (%g) | %.1f (%g) "
                         "| %s |" % (
                found["log"], found["lines"], found["bytes"] / 1e6, found["loop"][1],
                found["loop"][0], found["program"][1], found["program"][0], found["ratio"],
                found["time_goal"], found["peak_mb"], found["memory_goal"],
                "yes" if found["met"] else "**no**"))
    return "\n".join(lines) + "\n"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, in turns (default 3)")
    parser.add_argument("--volume-seconds", type=float, default=120.0,
                        help="length of the volume run (default 120)")
    parser.add_argument("--keep", metavar="DIR",
                        help="make the logs here and keep them (made logs are reused)")
    parser.add_argument("--program", default=str(PROGRAM), help="the pyNetConnMon.py to measure")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    sections = SECTIONS
    if args.only:
        sections = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            parser.error("--only: unknown section(s) %s" % ", ".join(sorted(unknown)))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    program = Path(args.program).resolve()
    temporary = None
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        temporary = tempfile.TemporaryDirectory(prefix="pynetconnmon-bench-summary-")
        work = Path(temporary.name)
    results = {"machine": machine(), "program": str(program)}
    try:
        for section in sections:
            if section == "volume":
                results[section] = volume(work, program, args.volume_seconds)
            else:
                results[section] = read_back(section, work, program, args.repeat)
            log("%s: done" % section)
    finally:
        if temporary is not None:
            temporary.cleanup()
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(markdown(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
