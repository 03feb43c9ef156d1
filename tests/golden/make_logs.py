"""How the event logs in golden/logs/ were made (once; they are kept as they are, not remade):
    python tests/golden/make_logs.py tests/golden/logs
"""
import sys
from datetime import datetime, timezone
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tools"))

from reportlog import iso, make_log, Made

out = sys.argv[1]
T = ["198.18.0.2:53", "198.18.0.3:443", "[2001:db8::2]:53", "names.example:53"]

# 1. a quiet week, this version's fields, stats every 10 minutes
quiet = make_log(days=7, seed=3, stats_every=600.0, interruptions_per_day=0.6,
                 start=datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp())
quiet.write(out + "/quiet-week.jsonl")

# 2. a bad week across the start of summer time in Europe, with every event kind
s = datetime(2026, 3, 26, 8, tzinfo=timezone.utc).timestamp()
m = Made()
def start(t, **extra):
    m.add(t, "start", version="2.0.0", targets=T, interval=2.0, down_interval=0.2, timeout=2.0,
          min_interruption=5.0, backoff_min=60.0, backoff_max=3600.0, backoff_step=300.0, pid=41,
          state_file="/home/pi/.pyNetConnMon.state.json", gateway="198.18.0.1", slow_ms=1000.0,
          stats_interval=60.0, host="pi-bad", **extra)
def outage(t, length, cause, reason="timeout", window=True):
    f = {"start": iso(t), "reason": reason, "targets": {x: reason for x in T}, "cause": cause}
    if window:
        f.update(start_after=iso(t - 0.1), start_before=iso(t + 0.1))
    m.add(t + 0.2, "down", **f)
    m.add(t + length, "up", start=iso(t), end=iso(t + length), duration=round(length, 3),
          duration_min=round(length - 0.2, 3), duration_max=round(length + 0.2, 3),
          ignored=length < 5.0, cause=cause,
          **({"start_after": iso(t - 0.1), "start_before": iso(t + 0.1)} if window else {}))
def stats(t, p95=True, jitter=0):
    tg = {}
    for n, x in enumerate(T[:3]):
        f = {"probes": 30, "failures": n, "losses": 0, "min_ms": 5.0 + n,
             "median_ms": 10.0 + n * 7 + jitter, "max_ms": 90.0}
        if p95:
            f["p95_ms"] = 40.0 + n
        tg[x] = f
    tg[T[3]] = {"probes": 30, "failures": 30, "losses": 0}
    m.add(t, "stats", start=iso(t - 60), end=iso(t), targets=tg)

t = s
start(t)
for k in range(1, 30):
    stats(t + 60 * k, p95=(k % 7 != 0), jitter=k % 5)
outage(t + 300, 42.5, "provider")
outage(t + 900, 2.0, "lan", "refused")                  # a blip
m.add(t + 1000, "report_sent", interruptions=1, partial_outages=0, slow_periods=0, via="mail",
      next_wait=60.0)
m.add(t + 1200, "target_down", target=T[1], reason="refused")
m.add(t + 1500, "target_up", target=T[1], start=iso(t + 1200), end=iso(t + 1500), duration=300.0,
      ignored=False)
m.add(t + 1600, "family_down", family="ipv6", reason="unreachable")
m.add(t + 1700, "dns_down", targets=[T[3]], reason="name lookup failed")
outage(t + 1650, 20.0, "local", "unreachable")           # inside partial outages
m.add(t + 1800, "family_up", family="ipv6", start=iso(t + 1600), end=iso(t + 1800),
      duration=200.0, ignored=False)
m.add(t + 1900, "dns_up", targets=[T[3]], start=iso(t + 1700), end=iso(t + 1900), duration=200.0,
      ignored=False)
m.add(t + 2000, "gateway_changed", gateway="198.18.0.254")
m.add(t + 2100, "slow", start=iso(t + 2100), connect_ms=1500.0)
m.add(t + 2400, "slow_end", start=iso(t + 2100), end=iso(t + 2400), duration=300.0,
      ignored=False, median_ms=1400.0, max_ms=2900.0)
m.add(t + 2500, "slow", start=iso(t + 2500), connect_ms=1200.0)
m.add(t + 2502, "slow_end", start=iso(t + 2500), end=iso(t + 2502), duration=2.0,
      ignored=True, median_ms=1100.0, max_ms=1300.0)
m.add(t + 2600, "report_failed", interruptions=2, partial_outages=3, slow_periods=1, via="mail",
      reason="SMTP server smtp.example:587: connection refused", retry_in=60.0)
m.add(t + 2700, "ping_failed", url="https://hc.example/ping/abc", reason="timeout")
m.add(t + 2760, "ping_ok", url="https://hc.example/ping/abc")
m.add(t + 2800, "pending_discarded", interruptions=1, partial_outages=0, slow_periods=0)
m.add(t + 2900, "speedtest", mbps=12)                    # an unknown event
outage(t + 3000, 3 * 3600.0, "dns", "name lookup failed", window=False)   # hours long
outage(t + 86400 * 1.5, 600.0, "unknown")
# stop while down
m.add(t + 86400 * 2, "down", start=iso(t + 86400 * 2 - 4), reason="timeout",
      targets={x: "timeout" for x in T}, cause="provider")
m.add(t + 86400 * 2 + 90, "stop", signal="SIGTERM", down_since=iso(t + 86400 * 2 - 4),
      cause="provider")
# restart, slow at a crash, crash without gap
t2 = t + 86400 * 2 + 3600
start(t2)
m.add(t2 + 100, "slow", start=iso(t2 + 100), connect_ms=1100.0)
m.add(t2 + 400, "report_sent", interruptions=0, partial_outages=0, slow_periods=0, via="command",
      next_wait=60.0)
# crash: a start with no stop before it, then a gap
t3 = t2 + 7200
start(t3)
m.add(t3 + 0.01, "gap", start=iso(t2 + 400), end=iso(t3), duration=round(t3 - t2 - 400, 3),
      ignored=False)
outage(t3 + 86400 - 30, 7200.0, "lan", "unreachable")   # across the DST change night
# log rotated: log_reopened, then an up with no down seen
t4 = t3 + 86400 * 1.2
m.add(t4, "log_reopened")
m.add(t4 + 50, "up", start=iso(t4 - 20), end=iso(t4 + 50), duration=70.0, ignored=False,
      cause="provider")
# crash with no gap, then a new start
m.add(t4 + 200, "target_down", target=T[0], reason="timeout")
t5 = t4 + 4000
start(t5)
outage(t5 + 500, 15.0, "provider")
m.events.append({"time": "not a time", "event": "down"})
m.events.append({"event": "up"})
m.events.append(["a", "list"])
# ends while down
m.add(t5 + 86400, "down", start=iso(t5 + 86400 - 2), reason="timeout",
      targets={x: "timeout" for x in T}, cause="local")
m.add(t5 + 86400 + 40, "ping_failed", url="https://hc.example/ping/abc", reason="unreachable")
m.write(out + "/bad-week.jsonl")
with open(out + "/bad-week.jsonl", "a") as f:
    f.write("this line is not JSON\n{\"time\": \n")

# 3. hostile fields
h = Made()
t = datetime(2026, 9, 1, 12, tzinfo=timezone.utc).timestamp()
evil = '<script>alert(1)</script>"&\'=cmd|\' /C calc\'!A0\u202e\u2066\x1b[31m'
h.add(t, "start", version=evil, targets=[evil, "=1+1:53", "198.18.0.2:53", 7, None],
      interval="x", min_interruption=-5, host=evil, slow_ms=1e308)
h.add(t + 10, "down", start=iso(t + 10), reason=evil * 30, targets={evil: evil}, cause=evil)
h.add(t + 70, "up", start=iso(t + 10), end=iso(t + 70), duration=1e309 if False else 60.0,
      ignored="no", reason=evil, cause="<b>x</b>")
h.add(t + 80, "down", start="9999-12-31T23:59:59", reason=12, cause=None)
h.add(t + 90, "up", start="0001-01-01T00:00:00", duration=-1e300, ignored=None)
h.add(t + 100, "target_down", target=evil, reason=evil)
h.add(t + 130, "target_up", target=evil, start=iso(t + 100), ignored=False)
h.add(t + 140, "target_down", target="=1+1:53", reason="-2+3")
h.add(t + 190, "target_up", target="=1+1:53", ignored=False)
h.add(t + 200, "family_down", family=evil)
h.add(t + 210, "family_up", family=evil)
h.add(t + 220, "slow", start=evil, connect_ms="fast")
h.add(t + 300, "slow_end", start=iso(t + 220), median_ms=-3, max_ms=float("1e308"),
      ignored=False)
h.add(t + 320, "stats", start=iso(t + 260), end=iso(t + 320),
      targets={evil: {"probes": 10, "failures": 2, "median_ms": 12.5, "p95_ms": "x"},
               "=1+1:53": {"probes": 1e300, "failures": -1, "median_ms": 1e12, "p95_ms": 1e13},
               "198.18.0.2:53": {"probes": 20, "failures": 0, "median_ms": 8.0, "p95_ms": 30.0},
               "bad": "figures"})
h.add(t + 330, "stats", start=iso(t + 320), end=iso(t + 330), targets=[1, 2])
h.add(t + 340, "gap", start=iso(t + 335), end=iso(t + 200), ignored=False)
h.add(t + 350, "report_failed", reason=evil, via=evil)
h.add(t + 360, evil, x=1)
h.add(t + 400, "stop", signal=evil, cause=evil)
h.events.append({"time": iso(t + 500), "event": "start", "targets": "198.18.0.2:53",
                 "host": ["list"], "min_interruption": True})
h.events.append({"time": "2026-09-01T14:00:00+14:00", "event": "down", "start": "2026-09-01"})
h.events.append({"time": iso(t + 700), "event": "up", "start": iso(t + 600), "ignored": False})
h.events.append({"time": iso(t + 800), "event": "stop"})
h.write(out + "/hostile.jsonl")

# 4. 2.0.0's first days: no causes, mail_* events, no stats
old = make_log(days=4, seed=7, later_fields=False,
               start=datetime(2025, 10, 24, 6, tzinfo=timezone.utc).timestamp())
ev = []
for r in old.events:
    if r["event"] == "report_sent":
        r = {"time": r["time"], "event": "mail_sent", "interruptions": r["interruptions"]}
    ev.append(r)
# a failed mail and one crash with its gap
ev.insert(20, {"time": ev[19]["time"], "event": "mail_failed", "interruptions": 2,
               "reason": "SMTPAuthenticationError: (535, b'5.7.8 bad')", "retry_in": 60.0})
old.events = ev
old.write(out + "/first-days-2.0.0.jsonl")
for name in ("quiet-week", "bad-week", "hostile", "first-days-2.0.0"):
    print(name, sum(1 for _ in open(out + "/" + name + ".jsonl")))
