"""ReportBackoff: the rule for when a report may go out (-bmin, -bstep, -bmax), as a table."""
import pytest

from pyNetConnMon import ReportBackoff

BMIN, BMAX, BSTEP = 60.0, 3600.0, 300.0


def run_table(steps):
    """steps: (now, may_send expected before the action, action).

    action: 'ok' (report accepted), 'fail' (delivery failed), 'quiet' (nothing to report, or the
    network is down, at this instant) or None.
    """
    backoff = ReportBackoff(BMIN, BMAX, BSTEP)
    for now, expected, action in steps:
        assert backoff.may_send(now) is expected, "at t=%s" % now
        if action == "ok":
            backoff.record_success(now)
        elif action == "fail":
            backoff.record_failure(now)
        elif action == "quiet":
            backoff.quiet(now)
    return backoff


def test_first_report_goes_out_at_once():
    backoff = run_table([(0.0, True, "ok")])
    assert backoff.wait == BMIN


def test_wait_starts_at_bmin_and_grows_by_bstep():
    backoff = run_table([
        (0.0, True, "ok"),          # wait now 60
        (59.9, False, None),
        (60.0, True, "ok"),         # wait now 360
        (419.9, False, None),
        (420.0, True, "ok"),        # wait now 660
        (1079.9, False, None),
        (1080.0, True, "ok"),       # wait now 960
    ])
    assert backoff.wait == 960.0


def test_under_a_storm_the_wait_saturates_at_bmax_and_stays_there():
    backoff = ReportBackoff(BMIN, BMAX, BSTEP)
    now = 0.0
    waits = []
    for _ in range(16):
        now = max(now, backoff.next_allowed())   # something is always waiting to be reported
        backoff.record_success(now)
        waits.append(backoff.wait)
    assert waits[:4] == [60.0, 360.0, 660.0, 960.0]
    assert waits[12:] == [BMAX] * 4


def test_quiet_for_bmax_resets_the_wait_so_the_next_report_goes_at_once():
    backoff = run_table([
        (0.0, True, "ok"),
        (60.0, True, "ok"),             # wait 360, last report at 60
        (60.0 + BMAX, True, "quiet"),   # exactly bmax of quiet: not yet forgotten
    ])
    assert backoff.wait == 360.0
    backoff.quiet(60.0 + BMAX + 1)
    assert backoff.wait is None
    backoff.record_success(60.0 + BMAX + 2)
    assert backoff.wait == BMIN


def test_a_long_outage_counts_as_quiet():
    # reports cannot go out while the network is down; after bmax of that the wait is forgotten
    backoff = run_table([
        (0.0, True, "ok"),
        (60.0, True, "ok"),                 # wait 360
        (3000.0, True, "quiet"),            # down
        (3661.0, True, "quiet"),            # still down, 3601 s after the last report
        (3700.0, True, "ok"),               # up again: the report goes at once ...
    ])
    assert backoff.wait == BMIN             # ... and the backoff starts afresh


def test_failed_delivery_does_not_advance_and_is_retried_after_bmin():
    backoff = run_table([
        (0.0, True, "fail"),
        (59.0, False, None),
        (60.0, True, "fail"),
        (119.0, False, None),
        (120.0, True, "ok"),
    ])
    assert backoff.wait == BMIN     # two failures did not grow the wait


def test_failure_during_a_wait_retries_no_earlier_than_the_wait():
    backoff = run_table([
        (0.0, True, "ok"),          # wait 60
        (60.0, True, "ok"),         # wait 360, next allowed at 420
        (420.0, True, "fail"),      # retry at 480
        (479.0, False, None),
        (480.0, True, "ok"),
    ])
    assert backoff.wait == 660.0


def test_backoff_survives_a_restart_through_wall_clock_time():
    before = ReportBackoff(BMIN, BMAX, BSTEP)
    before.record_success(100.0)          # monotonic 100 s = wall 5000 s
    saved = before.to_dict(mono_now=130.0, wall_now=5030.0)
    assert saved == {"wait": 60.0, "last_sent": 5000.0, "last_failed": None}
    after = ReportBackoff(BMIN, BMAX, BSTEP)
    # a new boot: the monotonic clock starts near 0, 50 s of wall time after the report
    after.restore(saved, mono_now=5.0, wall_now=5050.0)
    assert after.may_send(5.0) is False
    assert after.next_allowed() == pytest.approx(15.0)


def test_restart_after_more_than_bmax_starts_afresh():
    after = ReportBackoff(BMIN, BMAX, BSTEP)
    after.restore({"wait": 960.0, "last_sent": 5000.0, "last_failed": None}, mono_now=5.0,
                  wall_now=5000.0 + BMAX + 1)
    assert after.wait is None
    assert after.may_send(5.0) is True


def test_restore_clamps_instants_from_a_clock_that_went_backwards():
    after = ReportBackoff(BMIN, BMAX, BSTEP)
    after.restore({"wait": 60.0, "last_sent": 9000.0, "last_failed": None}, mono_now=3.0,
                  wall_now=5000.0)
    assert after.next_allowed() == 63.0
