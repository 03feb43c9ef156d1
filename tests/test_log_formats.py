"""The event log's formats read the same: a `stats` event with 2.0.0's `end` or without it (the
monitor no longer writes what `time` says), the times the monitor writes read the short way and
every other time the long way, with the same result; 2.0.0's `mail_*` events."""
import os
import random
import subprocess
import sys
import time
from datetime import datetime

import pytest
from hypothesis import given, settings, strategies as st

import pyNetConnMon
from harness import REPO
from reportlog import iso, make_log

BENCH_SUMMARY = REPO / 'tests' / 'tools' / 'bench_summary.py'


@pytest.fixture(params=['UTC', 'Europe/Berlin', 'Asia/Kathmandu', 'America/St_Johns'])
def zone(request):
    previous = os.environ.get('TZ')
    os.environ['TZ'] = request.param
    time.tzset()
    yield request.param
    if previous is None:
        del os.environ['TZ']
    else:
        os.environ['TZ'] = previous
    time.tzset()


def datetime_reading(text):
    """What datetime makes of a time, as the event log's reader took it before the short way."""
    try:
        moment = datetime.fromisoformat(text.replace('Z', '+00:00') if text[-1:] == 'Z'
                                        else text).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return moment if pyNetConnMon._calendar_can_place(moment) else None


def test_times_read_the_short_way_equal_datetimes_reading(zone):
    rng = random.Random(7)
    texts = []
    for _ in range(20000):
        text = '%04d-%02d-%02dT%02d:%02d:%02d.%03d%s%02d:%02d' % (
            rng.choice([1, 1969, 1970, 2025, 2026, 2037, 2038, 9999]), rng.randint(0, 13),
            rng.randint(0, 32), rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61),
            rng.randint(0, 999), rng.choice('+-'), rng.randint(0, 25), rng.choice([0, 30, 45, 60]))
        if rng.random() < 0.1:              # one character off: a separator, a digit, a sign
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice('xZ:.-+ 0\u0663\u00b2') + text[at + 1:]
        texts.append(text)
    texts += ['2026-11-24T01:02:03.456+01:00', '2026-11-24T01:02:03+01:00',
              '2026-11-24T01:02:03.456', '2026-11-24T01:02:03.456Z',
              '2026-02-29T01:02:03.456+01:00',
              '2026-11-24T01:02:60.000+01:00', '2026-11-24T01:60:00.000+01:00',
              '2026-11-24T01:02:03.456-15.60', '2026-11-24T01:02:03.456+24:00']
    wrong = [(text, pyNetConnMon.parse_log_time(text), datetime_reading(text))
             for text in texts if pyNetConnMon.parse_log_time(text) != datetime_reading(text)]
    assert wrong == []


def test_the_local_hour_and_day_of_an_instant_are_those_of_localtime(zone):
    hours = pyNetConnMon.LocalHours()
    moment = datetime(2026, 3, 27).timestamp()       # summer time begins and ends in these weeks
    for _ in range(30000):
        moment += random.Random(moment).uniform(0, 90)
        local = time.localtime(moment)
        hour = int(moment // 1) - local.tm_min * 60 - local.tm_sec
        assert hours.hour_and_day(moment) == (hour, local[:3]), moment
        # an hour whose bounds are given holds its 3600 seconds in one local date and hour
        first, following = hours.bounds(hour)
        if (first, following) != (0, 0):
            assert (first, following) == (hour, hour + 3600), moment
            assert time.localtime(following - 1)[:4] == local[:4], moment


def hourly_one_window_at_a_time(windows):
    """HourlyConnectTimes fed every window the long way (_add_one), as before the usual case
    had a short way."""
    hourly = pyNetConnMon.HourlyConnectTimes()
    for found, moment, end in windows:
        hourly._add_one(found, moment, end, hourly.local.hour_and_day(moment)[0])
    hourly.finish()
    return hourly


def test_the_hours_connect_times_are_those_of_one_window_at_a_time(zone):
    """The usual window (known targets, in the hour they are filling) takes a short way to its
    targets' hours; whatever the labels and order (some windows without a target, labels that
    show alike, a clock set back, summer time), the figures are those of the long way."""
    rng = random.Random(7)
    labels = ['a:53', 'b:53', 'c\x00:53', 'c\x01:53']      # the last two show alike
    moment = datetime(2026, 3, 28, 22).timestamp()      # summer time begins in Europe
    windows = []
    for number in range(6000):
        moment += rng.choice([300.0, 300.0, 300.0, 60.0, 1.5, -4000.0 if number % 997 == 0
                              else 300.0])
        kept = labels[:2] if number % 50 else rng.sample(labels, rng.randint(0, 3))
        windows.append(([(label, pyNetConnMon.WindowFigures(
            rng.uniform(5, 50), rng.uniform(50, 90), rng.randint(1, 30))) for label in kept],
            moment, moment + 300.0))
    batched = pyNetConnMon.HourlyConnectTimes()
    for found, start, end in windows:
        batched.add_window(found, start, end)
    batched.finish()
    alone = hourly_one_window_at_a_time(windows)
    assert batched.hours == alone.hours and batched.connects == alone.connects
    assert batched.windows == alone.windows
    assert sum(len(points) for points in batched.hours.values()) > 500


def test_an_hour_counts_its_first_windows_up_to_the_limit(zone):
    """A log with more windows in one hour than an hour keeps (a hostile or broken log) counts
    the first REPORT_WINDOWS_PER_HOUR of them, the short way as the long way: the memory an
    hour holds stays bounded."""
    limit = pyNetConnMon.REPORT_WINDOWS_PER_HOUR
    hour = datetime(2026, 1, 10, 12).timestamp()
    windows = [([('a:53', pyNetConnMon.WindowFigures(10.0 if number < limit else 900.0, 50.0,
                                                      3))], hour + number * 0.5,
                hour + number * 0.5 + 0.5) for number in range(limit + 1400)]
    hourly = pyNetConnMon.HourlyConnectTimes()
    for found, start, end in windows:
        hourly.add_window(found, start, end)
    assert max(len(target.current) for target in hourly.targets.values()) == limit
    hourly.finish()
    assert hourly.connects == {'a:53': 3.0 * limit}
    assert hourly.hours == {'a:53': [(hour + 1800.0, 10.0, 50.0)]}
    assert hourly_one_window_at_a_time(windows).hours == hourly.hours


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=80),
       st.integers(1, 10 ** 9), st.sampled_from([0.5, 0.95, 0.0, 1.0, 0.3333]))
def test_a_quantile_of_windows_that_weigh_alike_is_the_weighted_one(values, weight, fraction):
    """The hours' quantiles take a short way when every window has as many connects."""
    assert pyNetConnMon._even_quantile(values, fraction, weight) == \
        pyNetConnMon._weighted_quantile(zip(values, [weight] * len(values)), fraction)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e300, 1.0000000000000002e300])),
       st.one_of(st.floats(), st.sampled_from([-1e300, 1e300, 1e301])),
       st.one_of(st.integers(-2, 2 ** 54), st.sampled_from([10 ** 9, 10 ** 9 + 1])),
       st.integers(-2, 40))
def test_a_stats_window_reads_the_same_the_short_way_and_the_long_way(median, p95, probes,
                                                                       failures):
    """The monitor's own types take a short way through stats_figures(); the same figures as
    other types (counts as floats: exact up to 2**53), or beside a target the monitor would not
    write, take the long one, with the same result."""
    def figures(**fields):
        record = {'targets': {'a:53': dict(median_ms=median, p95_ms=p95, **fields)}}
        return pyNetConnMon.stats_figures(record)
    short = figures(probes=probes, failures=failures)
    if probes < 2 ** 53:
        assert short == figures(probes=float(probes), failures=float(failures))
    # a target beside it that is not as the monitor writes it sends the whole line the long way
    mixed = {'targets': {'a:53': dict(median_ms=median, p95_ms=p95, probes=probes,
                                      failures=failures), 'b:53': {'median_ms': 'fast'}}}
    assert pyNetConnMon.stats_figures(mixed) == short
    if short:
        assert type(short[0][1].connects) is int


def test_the_periods_connect_times_are_its_days_together(zone):
    """--summary adds each window to its day's histograms only; the period's are the days'
    merged, and hold what adding every window to them gives: the same counts, the same
    percentiles (the sums in each bucket added in another order, to within a rounding)."""
    made = make_log(days=30, stats_every=300.0)
    history = pyNetConnMon.summarize_events(made.events)
    medians, p95s = pyNetConnMon.ConnectTimes(), pyNetConnMon.ConnectTimes()
    for record in made.events:
        found = pyNetConnMon.stats_figures(record) if record['event'] == 'stats' else []
        if found:
            fastest = min((figures for _, figures in found), key=lambda figures: figures.median)
            medians.add(fastest.median / 1000.0, fastest.connects)
            p95s.add(fastest.p95 / 1000.0, fastest.connects)
    assert len(history.latency_days) >= 30 and history.windows > 8000
    for mine, theirs in ((history.medians, medians), (history.p95s, p95s)):
        assert mine.count == theirs.count
        assert sorted(mine.buckets) == sorted(theirs.buckets)
        for fraction in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99):
            assert mine.percentile(fraction) == pytest.approx(theirs.percentile(fraction),
                                                              rel=1e-12)


def summary_text(events):
    return pyNetConnMon.format_summary(pyNetConnMon.summarize_events(events), 'x')


def test_stats_events_with_and_without_end_read_the_same(utc):
    made = make_log(days=20, stats_every=300.0)
    assert made.stats > 5000
    short = [dict(record) for record in made.events]
    for record in short:
        if record['event'] == 'stats':
            assert record.pop('end') == record['time']
    assert summary_text(short) == summary_text(made.events)
    assert 'Connect time:  median ' in summary_text(short)


def test_a_log_of_2_0_0_reads_as_before(utc):
    """mail_sent and mail_failed are report_sent and report_failed; fields it did not write
    (causes, start windows) are not recorded."""
    made = make_log(days=10, later_fields=False)
    for record in made.events:
        if record['event'] == 'report_sent':
            record['event'] = 'mail_sent'
    made.add(made.last + 60, 'mail_failed', interruptions=1, reason='timeout', retry_in=60.0)
    history = pyNetConnMon.summarize_events(made.events)
    assert history.invalid == 0 and history.unknown == {}
    assert history.report_failed == (made.last, 'timeout')
    assert history.by_cause['not recorded'][0] == len(made.interruptions)
    assert history.interruptions == len(made.interruptions) + len(made.gaps)


def test_the_summary_benchmark_script_stays_runnable():
    result = subprocess.run([sys.executable, str(BENCH_SUMMARY), '--help'], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert (result.returncode, result.stderr) == (0, '')
    for option in ('--only', '--repeat', '--volume-seconds', '--keep', '--program', '--json'):
        assert option in result.stdout
    result = subprocess.run([sys.executable, str(BENCH_SUMMARY), '--only', 'nothing'],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and 'unknown section(s) nothing' in result.stderr


def test_iso_of_the_made_logs_is_what_the_monitor_writes(utc):
    assert iso(1764000000.5) == pyNetConnMon.iso_time(1764000000.5)
