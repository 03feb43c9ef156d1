"""Event logs made up for the report tests: long ones, with or without the fields and events of
later versions (causes, partial outages, statistics, slow periods).

    python tests/tools/reportlog.py OUT.jsonl [--days 365] [--stats-every 10800] [--plain]
        [--seed 1] [--stats-format 2.0|short] [--flapping EVENTS]

writes a log of a year with a few thousand events, as the monitor writes them (times in UTC with
their offset). The Made that make_log() returns tells what the log holds, for exact assertions.
`--stats-format short` writes `stats` events as the monitor does now, without the `end` that
repeated `time`; `--flapping N` writes N events of a connection that goes down and up all year
instead (streamed, never held in memory).
"""
import argparse
import json
import random
from datetime import datetime, timezone

CAUSES = ("local", "lan", "provider", "dns", "unknown")
TARGETS = ["198.18.0.2:53", "198.18.0.3:53", "[2001:db8::2]:53"]
YEAR_START = datetime(2025, 1, 6, tzinfo=timezone.utc).timestamp()   # a Monday


def iso(wall):
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")


class Made:
    """What a made-up log holds: its events and what a reader must find in them."""

    def __init__(self):
        self.events = []
        self.interruptions = []      # (start, end) of every counted interruption
        self.gaps = []               # (start, end)
        self.slow = []               # (start, end)
        self.partial = []            # (start, end, target)
        self.stats = 0
        self.last = None             # the time of the latest event

    def add(self, wall, name, **fields):
        self.last = wall
        record = {"time": iso(wall), "event": name}
        record.update(fields)
        self.events.append(record)

    def write(self, path):
        with open(path, "w", encoding="utf-8") as stream:
            for record in self.events:
                stream.write(json.dumps(record) + "\n")
        return path


def window_figures(rng, more, stats_format):
    """One target's figures of a `stats` window. The short format is a window of 300 s at the
    default interval, as the monitor writes it now: 150 probes, every time to the millisecond's
    thousandth, and `jitter_ms`."""
    median, p95 = round(rng.uniform(10, 20), 3), round(rng.uniform(25, 90), 3)
    if stats_format == "2.0":
        return {"probes": 30, "failures": 0, "losses": 0, "min_ms": 8.0, "median_ms": median,
                "p95_ms": p95, "max_ms": 120.0}
    return {"probes": 150, "failures": 0, "losses": 0, "min_ms": round(more.uniform(7, 10), 3),
            "median_ms": median, "p95_ms": p95, "max_ms": round(more.uniform(90, 300), 3),
            "jitter_ms": round(more.uniform(0.5, 9), 3)}


def make_log(days=365, seed=1, stats_every=3 * 3600.0, later_fields=True, start=YEAR_START,
             interruptions_per_day=3.3, min_interruption=5.0, stats_format="2.0"):
    """A log of `days` days: runs of a week or so, each ended by a stop or (sometimes) a crash
    followed by a gap; interruptions of 5 s to 2 h, blips; with `later_fields` also causes,
    partial outages, slow periods and a `stats` event every `stats_every` seconds."""
    rng = random.Random(seed)
    more = random.Random(seed + 1)     # the short format's further figures; rng's draws stay
    made = Made()
    end = start + days * 86400.0
    now = start
    next_stats = start + stats_every
    while now < end - 3600:
        run_end = min(end, now + rng.uniform(4, 12) * 86400.0)
        crashed = rng.random() < 0.2 and run_end < end
        made.add(now, "start", version="2.0.0", targets=TARGETS, interval=2.0, timeout=2.0,
                 min_interruption=min_interruption, backoff_min=60.0, backoff_max=3600.0,
                 backoff_step=300.0, pid=rng.randrange(100, 30000), state_file="/var/state.json",
                 host="pi.example", **({"slow_ms": 1000.0, "stats_interval": stats_every}
                                       if later_fields else {}))
        moment = now + 60
        while True:
            moment += rng.expovariate(interruptions_per_day / 86400.0)
            if later_fields:
                while next_stats < min(moment, run_end):
                    span = {"start": iso(next_stats - stats_every)}
                    if stats_format == "2.0":
                        span["end"] = iso(next_stats)
                    made.add(next_stats, "stats", **span, targets={
                                 label: window_figures(rng, more, stats_format)
                                 for label in TARGETS[:2]})
                    made.stats += 1
                    next_stats += stats_every
            choice = rng.random()
            length = (rng.uniform(1, 4.5) if choice < 0.15
                      else min(7200.0, rng.lognormvariate(4.0, 1.3) + 5.0))
            if moment + length + 60 >= run_end:
                break
            if later_fields and choice > 0.9:
                made.add(moment, "slow", start=iso(moment), connect_ms=1500.0)
                made.add(moment + length, "slow_end", start=iso(moment), end=iso(moment + length),
                         duration=round(length, 3), ignored=length < min_interruption,
                         median_ms=1400.0, max_ms=2900.0)
                if length >= min_interruption:
                    made.slow.append((moment, moment + length))
            elif later_fields and choice > 0.82:
                target = TARGETS[2]
                made.add(moment, "target_down", target=target, reason="timeout")
                made.add(moment + length, "target_up", target=target, start=iso(moment),
                         end=iso(moment + length), duration=round(length, 3),
                         ignored=length < min_interruption)
                if length >= min_interruption:
                    made.partial.append((moment, moment + length, target))
            else:
                reason = rng.choice(["timeout", "refused", "unreachable"])
                cause = rng.choice(CAUSES)
                extra = {"cause": cause} if later_fields else {}
                made.add(moment, "down", start=iso(moment), reason=reason,
                         targets={label: reason for label in TARGETS}, **extra)
                made.add(moment + length, "up", start=iso(moment), end=iso(moment + length),
                         duration=round(length, 3), ignored=length < min_interruption, **extra)
                if length >= min_interruption:
                    made.interruptions.append((moment, moment + length))
                if rng.random() < 0.2:
                    made.add(moment + length + 1, "report_sent", interruptions=1, via="mail",
                             next_wait=60.0)
            moment += length
        if crashed:
            last = made.last + 30
            made.add(last, "report_sent", interruptions=0, via="mail", next_wait=60.0)
            restart = run_end + rng.uniform(600, 7200)
            made.add(restart, "start", version="2.0.0", targets=TARGETS, interval=2.0,
                     timeout=2.0, min_interruption=min_interruption, backoff_min=60.0,
                     backoff_max=3600.0, backoff_step=300.0, pid=1, state_file="/var/state.json",
                     host="pi.example")
            made.add(restart + 0.01, "gap", start=iso(last), end=iso(restart),
                     duration=round(restart - last, 3), ignored=False)
            made.gaps.append((last, restart))
            made.add(restart + 1, "stop", signal="SIGTERM")
            now = restart + rng.uniform(60, 600)
        else:
            made.add(run_end, "stop", signal="SIGTERM")
            now = run_end + rng.uniform(60, 3600)
    return made


def write_flapping(path, events=2000000, seed=1, start=YEAR_START, every=15.0):
    """A connection that goes down and up every `every` seconds on average, for `events` events
    (one run: a start, down/up pairs, a stop), written as the monitor writes them. Most outages
    are blips shorter than -m 5; a fifth count. Returns (interruptions, blips)."""
    rng = random.Random(seed)
    counted = blips = 0
    with open(path, "w", encoding="utf-8") as stream:
        write = stream.write
        write(json.dumps({"time": iso(start), "event": "start", "version": "2.1.0",
                          "targets": TARGETS[:2], "interval": 2.0, "down_interval": 0.2,
                          "timeout": 2.0, "min_interruption": 5.0, "backoff_min": 60.0,
                          "backoff_max": 3600.0, "backoff_step": 300.0, "pid": 4242,
                          "state_file": "/var/state.json", "gateway": "auto", "slow_ms": 1000.0,
                          "stats_interval": 300.0, "host": "pi.example"}) + "\n")
        moment = start + 60.0
        for _ in range((events - 2) // 2):
            moment += rng.uniform(0.5, 1.5) * every
            length = rng.uniform(1.0, 4.5) if rng.random() < 0.8 else rng.uniform(5.0, 40.0)
            reason = rng.choice(["timeout", "refused", "unreachable"])
            cause = rng.choice(CAUSES)
            window = {"start": iso(moment), "start_after": iso(moment - 1.0),
                      "start_before": iso(moment + 1.0)}
            write(json.dumps(dict({"time": iso(moment + 1.0), "event": "down"}, **window,
                                  reason=reason, targets={label: reason for label in TARGETS[:2]},
                                  cause=cause)) + "\n")
            end = moment + length
            write(json.dumps(dict({"time": iso(end), "event": "up"}, **window, end=iso(end),
                                  duration=round(length, 3), duration_min=round(length - 1.0, 3),
                                  duration_max=round(length + 1.0, 3), ignored=length < 5.0,
                                  cause=cause)) + "\n")
            counted += length >= 5.0
            blips += length < 5.0
            moment = end
        write(json.dumps({"time": iso(moment + 30.0), "event": "stop", "signal": "SIGTERM"})
              + "\n")
    return counted, blips


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--stats-every", type=float, default=3 * 3600.0)
    parser.add_argument("--plain", action="store_true", help="without the fields of later versions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats-format", choices=("2.0", "short"), default="2.0")
    parser.add_argument("--flapping", type=int, metavar="EVENTS")
    args = parser.parse_args()
    if args.flapping:
        counted, blips = write_flapping(args.out, args.flapping, args.seed)
        print("%d events, %d interruptions, %d blips" % (args.flapping, counted, blips))
        return
    made = make_log(args.days, args.seed, args.stats_every, not args.plain,
                    stats_format=args.stats_format)
    made.write(args.out)
    print("%d events, %d interruptions, %d gaps, %d slow periods, %d partial outages, %d stats"
          % (len(made.events), len(made.interruptions), len(made.gaps), len(made.slow),
             len(made.partial), made.stats))


if __name__ == "__main__":
    main()
