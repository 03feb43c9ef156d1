"""Event logs made by hand for the tests, as the monitor writes them, and hypothesis strategies
that make hostile ones (the fuzzing of --summary and the HTML report)."""
import contextlib
import json
import os
import time
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, settings, strategies as st

import pyNetConnMon as pnm

H = 3600.0
D = 86400.0
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()    # a Sunday, 00:00 UTC


def iso(wall):
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")


def set_tz(name):
    """Local time is `name` from now on (the `utc` fixture puts it back after the test)."""
    os.environ["TZ"] = name
    time.tzset()


@contextlib.contextmanager
def local_zone(name):
    """Local time is `name` inside the block."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


class Log:
    """Builds events the way the monitor writes them (times in UTC, with offset)."""

    def __init__(self):
        self.events = []

    def add(self, wall, name, **fields):
        record = {"time": iso(wall), "event": name}
        record.update(fields)
        self.events.append(record)
        return self

    def start(self, wall, min_interruption=5.0):
        return self.add(wall, "start", version=pnm.VERSION, targets=["192.0.2.1:53"], interval=2.0,
                        timeout=2.0, min_interruption=min_interruption, backoff_min=60.0,
                        backoff_max=3600.0, backoff_step=300.0, pid=4242)

    def down(self, wall):
        return self.add(wall, "down", start=iso(wall), reason="timeout",
                        targets={"192.0.2.1:53": "timeout"})

    def up(self, began, wall, min_interruption=5.0):
        return self.add(wall, "up", start=iso(began), end=iso(wall),
                        duration=round(wall - began, 3), ignored=wall - began < min_interruption)

    def outage(self, began, ended, min_interruption=5.0):
        return self.down(began).up(began, ended, min_interruption)

    def stop(self, wall, down_since=None):
        fields = {"signal": "SIGTERM"}
        if down_since is not None:
            fields["down_since"] = iso(down_since)
        return self.add(wall, "stop", **fields)

    def gap(self, began, ended, logged, ignored=False):
        return self.add(logged, "gap", start=iso(began), end=iso(ended),
                        duration=round(ended - began, 3), ignored=ignored)

    def lines(self):
        return [json.dumps(record) for record in self.events]

    def write(self, path, extra_lines=()):
        path.write_text("\n".join(self.lines() + list(extra_lines)) + "\n", encoding="utf-8")
        return path



# -- fuzzing: any records, any lines ---------------------------------------------------------

ZONES = ["UTC", "CET-1CEST,M3.5.0,M10.5.0/3", "LHST-10:30LHDT-11,M10.1.0,M4.1.0"]
FIELDS = sorted(set().union(*(kind.fields for kind in pnm.EVENTS.values()))
                | {"cause", "start_after", "start_before"})
NAMES = sorted(pnm.EVENTS) + sorted(pnm.RENAMED_EVENTS)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _iso_anywhere(moment, offset_minutes):
    if offset_minutes is not None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    return moment.isoformat()


near_times = st.floats(-5 * D, 40 * D).map(lambda seconds: iso(T0 + seconds))
any_times = st.builds(_iso_anywhere,
                      st.datetimes(min_value=datetime(1, 1, 1),
                                   max_value=datetime(9999, 12, 31, 23, 59, 59)),
                      st.none() | st.integers(-1439, 1439))
times = st.one_of(near_times, near_times, any_times, st.text(max_size=12))
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)
records = st.builds(
    lambda moment, name, fields: dict(fields, time=moment, event=name),
    times, st.sampled_from(NAMES) | st.text(max_size=10),
    st.dictionaries(st.sampled_from(FIELDS), times | json_values | st.floats(-1e6, 1e6),
                    max_size=5))
