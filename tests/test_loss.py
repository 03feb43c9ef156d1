"""Loss and latency against the usual: the SYNs a round lost, the loss window and its lossy
periods, each target's usual connect time, relative slow periods, honest probe counts. Pure
logic and the loop with a fake clock: no sockets (but the Prober's own test of its in-flight
limit, on loopback), no sleeping.
"""
import json
import random

import pytest

import pyNetConnMon
from pyNetConnMon import (RESENT_SYN_AFTER, LossWindow, MetricsBoard, MetricsSnapshot,
                          ProbeResult, RoundInterpreter, SlowRule, SynCounter, UsualTimes,
                          check_state, failed_connect_syns, fitting_resent_syns, parse_target,
                          read_syn_schedule, render_metrics, syn_resend_schedule)
from fakes import WALL_OFFSET, Run, scripted_prober
from harness import listening_socket, run_main

A = parse_target("198.18.1.2:53", 53)
B = parse_target("198.18.1.3:53", 53)
LINEAR = syn_resend_schedule(4)          # this kernel's (tcp_syn_linear_timeouts = 4)


def up(seconds, target=A):
    return ProbeResult(target, True, None, seconds)


def down(target=A, reason="timeout"):
    return ProbeResult(target, False, reason)


# -- when a lost SYN is sent again ----------------------------------------------------------------

def test_the_resend_schedule_is_linear_for_the_kernels_count_then_doubles():
    assert LINEAR[:7] == (1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 18.0)
    assert syn_resend_schedule(None) == RESENT_SYN_AFTER == (1.0, 3.0, 7.0, 15.0, 31.0, 63.0)
    assert syn_resend_schedule(0) == RESENT_SYN_AFTER
    assert syn_resend_schedule(1)[:3] == (1.0, 3.0, 7.0)


def test_the_schedule_is_read_from_the_kernel_setting_and_falls_back_when_absent(tmp_path):
    setting = tmp_path / "tcp_syn_linear_timeouts"
    assert read_syn_schedule(str(setting)) == RESENT_SYN_AFTER        # older kernel: no file
    setting.write_text("4\n")
    assert read_syn_schedule(str(setting)) == LINEAR
    setting.write_text("many\n")
    assert read_syn_schedule(str(setting)) == RESENT_SYN_AFTER


def test_a_timed_out_connect_sent_the_syns_before_its_timeout():
    assert [failed_connect_syns(timeout, LINEAR) for timeout in (0.5, 1.0, 2.0, 3.5, 5.0)] == [
        1, 1, 2, 4, 5]
    assert failed_connect_syns(2.0, RESENT_SYN_AFTER) == 2
    assert failed_connect_syns(5.0, RESENT_SYN_AFTER) == 3


def test_only_a_connect_near_a_resend_counts_one_later_waited_in_a_queue():
    assert [fitting_resent_syns(extra, LINEAR) for extra in (
        0.0, 0.5, 0.95, 1.0, 1.2, 1.3, 1.5, 1.95, 2.1, 2.4, 3.05, 4.2)] == [
        0, 0, 1, 1, 1, 0, 0, 2, 2, 0, 3, 4]


# -- the SYNs of a round ------------------------------------------------------------------------

def baseline(label):
    return 0.02


def test_a_round_where_every_target_answered_its_first_syn_is_clean():
    counter = SynCounter(2.0, LINEAR)
    assert counter.count([up(0.021), up(0.019, B)], baseline) == (2, 0, None)


def test_resent_syns_refusals_and_other_failures():
    counter = SynCounter(2.0, LINEAR)
    # 1.02 s: one SYN sent again; 2.03 s: two; 0.9 s on a 20 ms line: a queue, no loss
    assert counter.count([up(1.02), up(2.03, B)], baseline) == (5, 3, ((2, 1), (3, 2)))
    assert counter.count([up(0.9), down(B, "refused")], baseline) == (2, 0, None)
    assert counter.count([up(0.02), down(B, "unreachable")], baseline) == (1, 0, ((1, 0), (0, 0)))


def test_a_timeout_counts_once_its_target_answers_again():
    counter = SynCounter(2.0, LINEAR)           # a timeout after 2 s: two SYNs, both lost
    assert counter.count([down(A), up(0.02, B)], baseline) == (1, 0, ((0, 0), (1, 0)))
    assert counter.count([down(A), up(0.02, B)], baseline) == (1, 0, ((0, 0), (1, 0)))
    assert counter.count([up(1.02), up(0.02, B)], baseline) == (7, 5, ((6, 5), (1, 0)))


def test_a_target_silent_for_five_rounds_is_down_not_lossy():
    counter = SynCounter(2.0, LINEAR)
    for _ in range(pyNetConnMon.LOSS_RUN_LIMIT):
        counter.count([down(A), up(0.02, B)], baseline)
    assert counter.count([up(0.02), up(0.02, B)], baseline) == (2, 0, None)


# -- the loss window and its hysteresis ----------------------------------------------------------

LOSSY_ROUND = (3, 1, ((2, 1), (1, 0)))      # A lost one of its two SYNs, B none
CLEAN_ROUND = (2, 0, None)


def feed(window, rounds, first=0):
    """Rounds one second apart from `first`; [(round number, transition)] where one happened."""
    changes = []
    for number, entry in enumerate(rounds, first):
        change = window.add(float(number), WALL_OFFSET + number, *entry)
        if change is not None:
            changes.append((number, change))
    return changes


def test_lossy_from_its_first_loss_once_the_window_says_so_until_under_half_the_threshold():
    window = LossWindow([A.label, B.label], 20.0, 5.0, rounds=10)
    assert feed(window, [CLEAN_ROUND] * 10) == []
    # rounds 10 on lose a SYN each; after round 14 the window (rounds 5-14) holds 5 of 25
    [(number, began)] = feed(window, [LOSSY_ROUND] * 5, first=10)
    lossy = began.period
    assert (number, began.kind, lossy.start_wall) == (14, "lossy", WALL_OFFSET + 10)
    # (the window held 5 of 25 SYNs lost; from its start, 5 of 15)
    assert (lossy.sent, lossy.lost, lossy.targets) == (15, 5, [[10, 5], [5, 0]])
    assert feed(window, [LOSSY_ROUND] * 5, first=15) == []
    # clean from round 20: the window's loss is above half of 20 % with 7 of 10 rounds clean
    # (3 of 27: 11.1 %), below with 8 (2 of 22: 9.1 %); once it has stayed below for a window's
    # rounds (27 to 36), the period has ended: at round 20, after its last loss
    [(number, ended)] = feed(window, [CLEAN_ROUND] * 20, first=20)
    assert (number, ended.kind) == (36, "lossy_end")
    assert (ended.end, ended.duration, ended.ignored, ended.loss_percent, ended.sent,
            ended.lost, ended.targets) == (
        WALL_OFFSET + 20, 10.0, False, 33.3, 30, 10,
        {A.label: {"sent": 20, "lost": 10, "loss_percent": 50.0},
         B.label: {"sent": 10, "lost": 0, "loss_percent": 0.0}})


def test_a_line_just_under_the_threshold_never_turns_lossy_and_one_just_over_does_not_flap():
    window = LossWindow([A.label], 10.0, 5.0, rounds=30)
    # 1 lost in 11 (9.1 %), for ten minutes: never lossy
    rounds = [(2, 1, ((2, 1),)) if number % 10 == 9 else (1, 0, None) for number in range(600)]
    assert feed(window, rounds) == []
    # 1 in 6 lost (16.7 %) for a while, then 1 in 13 (7.7 %), between off (5 %) and on (10 %):
    # it turns lossy once and stays so
    window = LossWindow([A.label], 10.0, 5.0, rounds=30)
    rounds = [(2, 1, ((2, 1),)) if number % 5 == 0 else (1, 0, None) for number in range(60)]
    rounds += [(2, 1, ((2, 1),)) if number % 12 == 0 else (1, 0, None) for number in range(600)]
    assert [change.kind for _, change in feed(window, rounds)] == ["lossy"]


def test_too_few_syns_or_losses_tell_nothing():
    window = LossWindow([A.label], 10.0, 5.0, rounds=30)
    # two of two SYNs lost in a round: 100 %, but two losses alone are noise
    assert feed(window, [(3, 2, ((3, 2),))] + [(1, 0, None)] * 29) == []
    window = LossWindow([A.label], 10.0, 5.0, rounds=30)
    assert feed(window, [(2, 1, ((2, 1),))] * 9) == []         # 9 of 18: under 20 SYNs
    assert feed(window, [(2, 1, ((2, 1),))], first=9)[0][1].kind == "lossy"


def test_a_short_lossy_stretch_is_ignored():
    window = LossWindow([A.label, B.label], 20.0, 5.0, rounds=10)
    feed(window, [CLEAN_ROUND] * 10)
    changes = feed(window, [(4, 3, ((3, 2), (1, 1)))] * 3 + [CLEAN_ROUND] * 25, first=10)
    # lossy once 6 of 24 SYNs were lost; calm from round 22, when its last lossy round left the
    # window, for ten rounds
    assert [(number, change.kind) for number, change in changes] == [
        (11, "lossy"), (31, "lossy_end")]
    ended = changes[1][1]
    assert (ended.duration, ended.ignored, ended.sent, ended.lost) == (3.0, True, 12, 9)


def test_an_interruption_ends_a_lossy_period_where_it_began_and_starts_the_window_afresh():
    window = LossWindow([A.label, B.label], 20.0, 5.0, rounds=10)
    feed(window, [CLEAN_ROUND] * 10 + [LOSSY_ROUND] * 8)
    ended = window.interrupted(17.5, WALL_OFFSET + 17.5)
    assert (ended.end, ended.duration, ended.sent, ended.lost) == (
        WALL_OFFSET + 17.5, 7.5, 24, 8)
    assert (window.sent, window.lost, window.ratio, window.lossy) == (0, 0, None, None)
    assert window.interrupted(30.0, WALL_OFFSET + 30) is None


# -- each target's usual connect time -------------------------------------------------------------

def test_the_usual_is_the_lower_median_of_minute_medians():
    usual = UsualTimes(slot=60.0, slots=3)
    for second in range(60):                  # a minute at 20 ms, one connect at 900 ms
        usual.add([up(0.9 if second == 30 else 0.02), down(B)], float(second))
    assert usual.usual == {}                  # no minute has ended yet
    assert usual.baseline(A.label) == pytest.approx(0.02) and usual.baseline(B.label) == 0.0
    for second in range(60, 180):             # then two minutes at 200 ms
        usual.add([up(0.2)], float(second))
    assert usual.history[A.label] == [20.0, 200.0]
    assert usual.usual[A.label] == pytest.approx(0.02)         # the lower of the two
    usual.add([up(0.2)], 180.0)
    assert usual.usual[A.label] == pytest.approx(0.2)          # 20, 200, 200
    for second in range(181, 360):
        usual.add([up(0.2)], float(second))
    assert usual.history[A.label] == [200.0, 200.0, 200.0]     # the last three minutes only


def test_the_usual_survives_a_restart_for_the_targets_still_watched():
    usual = UsualTimes(slots=3)
    usual.restore({A.label: [30.0, 10.0, 20.0, 25.0], "gone:53": [5.0]}, [A.label, B.label])
    assert usual.history == {A.label: [10.0, 20.0, 25.0]}
    assert usual.usual == {A.label: 0.02}
    assert usual.to_dict() == {A.label: [10.0, 20.0, 25.0]}


# -- slow against the usual -----------------------------------------------------------------------

def test_slow_at_n_times_the_usual_and_the_margin_above_it():
    rule = SlowRule(0.0, 4.0, {A.label: 0.02, B.label: 0.03, "lan:53": 0.001})
    lan = parse_target("lan:53", 53)
    assert rule.judge([up(0.2)], 0.2) is True
    assert rule.judge([up(0.079)], 0.079) is False          # under 4 x 20 ms
    assert rule.judge([up(0.2), up(0.1, B)], 0.1) is False  # B at 3.3 x its usual
    assert rule.judge([up(0.2), up(0.2, B), down(parse_target("198.18.1.4:53", 53))],
                      0.2) is True                          # a failed target does not count
    assert rule.judge([up(0.004, lan)], 0.004) is False     # 4 x, but only 3 ms more
    assert rule.judge([up(0.2, parse_target("new:53", 53))], 0.2) is False   # no usual yet


def test_the_absolute_threshold_needs_no_usual_and_either_makes_it_slow():
    assert SlowRule(1000.0, 0.0, {}).judge([up(1.2)], 1.2) is True
    assert SlowRule(1000.0, 0.0, {A.label: 0.02}).judge([up(0.5)], 0.5) is False
    assert SlowRule(1000.0, 4.0, {A.label: 0.02}).judge([up(0.5)], 0.5) is True


@pytest.mark.parametrize("args, slow_ms, slow_times", [
    ([], 1000.0, 4.0), (["-t", "1"], 0.0, 4.0), (["--slow", "1000"], 1000.0, 0.0),
    (["--slow", "3x"], 0.0, 3.0), (["--slow", "2.5X"], 0.0, 2.5), (["--slow", "0"], 0.0, 0.0)])
def test_slow_takes_milliseconds_or_times_the_usual(args, slow_ms, slow_times):
    settings = pyNetConnMon.parse_arguments(["-a", "127.0.0.1", *args])
    assert (settings.slow_ms, settings.slow_times) == (slow_ms, slow_times)


@pytest.mark.parametrize("args, loss", [([], 10.0), (["--loss", "0"], 0.0),
                                        (["--loss", "25.5"], 25.5)])
def test_loss_takes_a_percentage(args, loss):
    assert pyNetConnMon.parse_arguments(["-a", "127.0.0.1", *args]).loss == loss


BAD_INPUT = [
    (["--slow", "1x"], "argument --slow: 1x: N must be above 1 and at most 1000"),
    (["--slow", "nanx"], "argument --slow: nanx: N must be above 1 and at most 1000"),
    (["--slow", "fastx"], "argument --slow: 'fastx' is not a number of milliseconds nor Nx"),
    (["--loss", "101"], "argument --loss: 101 must be <= 100"),
    (["--loss", "-1"], "argument --loss: -1 must be >= 0"),
    (["--loss", "lots"], "argument --loss: 'lots' is not a number"),
    (["--loss", "20", "--once"], "--loss has no effect with --once"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_slow_and_loss_options_are_refused_with_one_line_and_status_2(tmp_path, args,
                                                                         message):
    own_state = [] if "--once" in args else ["--state-file", str(tmp_path / "state.json")]
    assert run_main("-a", "127.0.0.1", *args, *own_state) == (
        2, "", "pyNetConnMon.py: error: %s\n" % message)


# -- honest counts: a round that started no connect counts for no probe ---------------------------

def test_rounds_over_the_in_flight_limit_count_for_no_probe_and_are_counted_themselves(tmp_path):
    with listening_socket() as port:
        target = parse_target("127.0.0.1:%d" % port, 53)
        prober, clock = scripted_prober(limit=3, timeout=1.0)
        settings = pyNetConnMon.Settings(targets=[target], metrics_port=9100, stats_interval=60.0)
        log = pyNetConnMon.EventLog(None)
        rounds = RoundInterpreter(settings, pyNetConnMon.Announcer(
            pyNetConnMon.Console(quiet=True), log, settings), lambda **item: None)
        for _ in range(12):      # fast rounds every 0.25 s: every fourth finds 3 in flight
            results = prober.probe_round([target], wait=0.25)
            rounds.round(results.targets, clock.now, WALL_OFFSET + clock.now)
        prober.close()
    snapshot = rounds.metrics(0)
    [(label, probes, failures, _, _)] = snapshot.connect
    assert (probes, failures, snapshot.rounds_not_started) == (9, 9, 3)
    assert "pynetconnmon_rounds_not_started_total 3\n" in render_metrics(snapshot)
    _, _, figures = rounds.stats.close(clock.now)
    assert (figures[label]["probes"], figures[label]["failures"]) == (9, 9)


# -- the loop: SYNs lost at random, outages, latency ----------------------------------------------

class LineProber:
    """Each target's connect in a round, from `line(now, label)`: the time it takes when its
    first SYN gets through (None: nothing gets through), and the share of SYNs lost. A connect
    sends its SYN at 0 and again at each instant of `schedule`, each lost at random, and takes
    that instant plus the line's time; past the timeout it fails. Every SYN is logged (the
    independent count, as lossywire's --syn-log). A round lasts as long as its slowest connect."""

    def __init__(self, clock, line, timeout, schedule=RESENT_SYN_AFTER, seed=1):
        self.clock = clock
        self.line = line
        self.timeout = timeout
        self.schedule = schedule
        self.rng = random.Random(seed)
        self.syns = []              # (instant, label, lost)

    def probe_round(self, targets, interrupted=lambda: False, gateway=None, wait=None):
        now = self.clock.now
        limit = self.timeout if wait is None else min(wait, self.timeout)
        results, longest = [], 0.0
        for target in targets:
            seconds, loss = self.line(now, target.label)
            result = ProbeResult(target, False, "timeout")
            for sent_at in (0.0,) + self.schedule:
                if sent_at >= limit:
                    break
                lost = seconds is None or self.rng.random() < loss
                self.syns.append((now + sent_at, target.label, lost))
                if not lost and sent_at + seconds < limit:
                    result = ProbeResult(target, True, None, sent_at + seconds)
                    break
            results.append(result)
            longest = max(longest, result.connect_time if result.up else limit)
        self.clock.now += longest
        return pyNetConnMon.RoundResults(results)

    def close(self):
        pass

    def loss_between(self, start, end):
        """% of the SYNs sent in [start, end) (monotonic) that were lost, and how many."""
        syns = [lost for instant, _, lost in self.syns if start <= instant < end]
        return 100.0 * sum(syns) / len(syns), len(syns)


class LineRun(Run):
    """The monitor at -i 1 -t 2 -m 5 with two targets and the default --slow and --loss, on a
    LineProber."""

    def __init__(self, tmp_path, line, stop_at, seed=1, **overrides):
        values = dict(targets=[A, B], timeout=2.0, slow=None, stats_interval=60.0)
        values.update(overrides)
        super().__init__(tmp_path, [], stop_at, metrics_board=MetricsBoard(MetricsSnapshot()),
                         **values)
        self.settings = self.monitor.settings
        self.prober = self.monitor.prober = LineProber(self.clock, line, 2.0, seed=seed)
        self.monitor.reporter.slow_ms = self.settings.slow_ms    # as run_monitor() makes it
        self.monitor.reporter.slow_times = self.settings.slow_times

    def run(self):
        super().run()
        return self

    def mono(self, text):
        return pyNetConnMon.parse_log_time(text) - WALL_OFFSET


def lossy_between(start, end, loss, fast=0.02, outages=()):
    def line(now, label):
        if any(begin <= now < until for begin, until in outages):
            return None, 1.0
        return fast, (loss if start <= now < end else 0.0)
    return line


@pytest.mark.parametrize("loss", [0.3, 0.6])
def test_syn_loss_for_80_s_is_one_lossy_period_measured_as_lost(tmp_path, utc, loss):
    run = LineRun(tmp_path, lossy_between(30, 110, loss), stop_at=200, seed=7,
                  backoff_step=0.0).run()
    [began] = run.events("lossy")
    [ended] = run.events("lossy_end")
    start, end = run.mono(ended["start"]), run.mono(ended["end"])
    # every SYN counts, also those of a target silent for -m or longer (3 rounds of 2 s at 60 %
    # loss), which is a partial outage as well: on a lossy line that is loss too
    truth, syns = run.prober.loss_between(start, end)
    print("%d %% lost: lossy %.0f-%.0f s, %s %% of %d SYNs (independently %.1f %% of %d)" % (
        loss * 100, start, end, ended["loss_percent"], ended["sent"], truth, syns))
    assert began["start"] == ended["start"] and not ended["ignored"]
    assert began["sent"] < ended["sent"] and began["lost"] < ended["lost"]
    assert "LOSSY %.1f %% of %d connect attempts lost since " % (
        began["loss_percent"], began["sent"]) in "\n".join(run.console_lines())
    # the end: the round after the last one with a loss, which may be that of a timeout told
    # by its target's next answer
    assert 30 <= start <= 35 and 105 <= end <= 113
    assert abs(ended["loss_percent"] - truth) <= 5
    assert ended["lost"] == sum(figures["lost"] for figures in ended["targets"].values())
    assert sorted(ended["targets"]) == [A.label, B.label]
    # reported like a slow period: in the report, and as seconds lossy in the metrics
    [(_, subject, body)] = [sent for sent in run.deliverer.sent if "lossy" in sent[1]]
    assert ": 1 lossy period, %s lossy" % pyNetConnMon.human_duration(ended["duration"]) in subject
    assert "Lossy periods: the connection was up, but lost connect attempts (SYNs)" in body
    assert "  %.1f %%  %9s" % (ended["loss_percent"], "%d/%d" % (ended["lost"], ended["sent"])) \
        in body
    snapshot = run.monitor.metrics_board.latest()
    assert (snapshot.lossy, snapshot.lossy_seconds, snapshot.loss_ratio) == (
        False, ended["duration"], 0.0)
    # rounds where both connects waited for a resent SYN are slow by the absolute 1000 ms, for
    # a round or two: never a slow period that counts
    assert all(event["ignored"] for event in run.events("slow_end"))


def test_a_clean_line_with_jitter_is_neither_lossy_nor_slow(tmp_path):
    rng = random.Random(3)
    run = LineRun(tmp_path, lambda now, label: (rng.uniform(0.015, 0.025), 0.0),
                  stop_at=600).run()
    assert run.events("lossy") == run.events("slow") == run.events("down") == []
    stats = run.events("stats")
    jitter = [event["targets"][A.label]["jitter_ms"] for event in stats]
    # nine whole windows, and the one the stop cut short
    assert len(stats) == 10 and all(2.5 <= value <= 4.5 for value in jitter)   # ~ 10/3 ms
    assert run.monitor.metrics_board.latest().loss_ratio == 0.0


def test_20_ms_to_200_ms_for_a_minute_is_one_slow_period_600_ms_from_the_start_none(tmp_path,
                                                                                    utc):
    jump = LineRun(tmp_path, lambda now, label: (0.2 if 150 <= now < 210 else 0.02, 0.0),
                   stop_at=300).run()
    [slow] = jump.events("slow")
    [end] = jump.events("slow_end")
    assert (jump.mono(slow["start"]), end["ignored"], end["median_ms"]) == (150.0, False, 200.0)
    assert 59 <= end["duration"] <= 61
    assert "SLOW the fastest connect took 200 ms (198.18.1.2:53, 10.0 times its usual 20.0 ms)" \
        in jump.console_lines()[-5:] + jump.console_lines()
    _, _, body = jump.deliverer.sent[-1]
    assert ("even the fastest target took 1000 ms or longer, or 4 times its usual time and "
            "50.0 ms more or longer to connect") in body
    (tmp_path / "satellite").mkdir()
    satellite = LineRun(tmp_path / "satellite", lambda now, label: (0.6, 0.0), stop_at=600,
                        state=False).run()
    assert satellite.events("slow") == [] and satellite.events("lossy") == []


def test_an_outage_inside_a_lossy_stretch_is_one_interruption_and_not_loss(tmp_path, utc):
    run = LineRun(tmp_path, lossy_between(20, 110, 0.3, outages=[(60, 72)]), stop_at=200,
                  seed=11).run()
    [up] = [event for event in run.events("up") if not event["ignored"]]
    outage_start, outage_end = run.mono(up["start"]), run.mono(up["end"])
    assert 59 <= outage_start <= 61 and 72 <= outage_end <= 73.5
    periods = [(run.mono(e["start"]), run.mono(e["end"]), e) for e in run.events("lossy_end")
               if not e["ignored"]]
    # the one before ends where the interruption began; the one after begins after it
    assert len(periods) == 2
    (first_start, first_end, first), (second_start, second_end, second) = periods
    assert first_end == outage_start and first["end"] == up["start"]
    assert second_start >= outage_end and 105 <= second_end <= 111
    for start, end, event in periods:
        truth, _ = run.prober.loss_between(start, end)
        assert abs(event["loss_percent"] - truth) <= 8, (event, truth)
    # the outage's failed connects (every SYN lost for 12 s) are in neither
    assert all(event["loss_percent"] < 50 for _, _, event in periods)
    [(_, subject, body)] = [sent for sent in run.deliverer.sent if "interruption" in sent[1]]
    assert subject.startswith("pyNetConnMon on pi: 1 interruption, ")
    assert "  an interruption followed" in body



def test_one_target_gone_for_a_partial_outage_that_counts_is_not_loss(tmp_path, utc):
    # 8 s of timeouts are 4 rounds (each waits -t 2 s), fewer than LOSS_RUN_LIMIT: the same
    # silence was reported as a partial outage and, once the target answered, as 8 lost SYNs
    gone = (40, 48)
    run = LineRun(tmp_path, lambda now, label: (None, 1.0) if label == B.label and
                  gone[0] <= now < gone[1] else (0.02, 0.0), stop_at=120).run()
    [partial] = [event for event in run.events("target_up") if not event["ignored"]]
    assert partial["target"] == B.label and 7 <= partial["duration"] <= 10
    assert run.events("lossy") == [] and run.events("lossy_end") == []
    assert run.monitor.metrics_board.latest().loss_ratio == 0.0


def test_one_target_silent_for_a_blip_shorter_than_m_is_loss(tmp_path, utc):
    # the same silence shorter than -m (ignored as a partial outage) is loss, as before
    def line(now, label):
        silent = label == B.label and any(start <= now < start + 2.5 for start in (30, 45, 60))
        return (None, 1.0) if silent else (0.02, 0.0)
    run = LineRun(tmp_path, line, stop_at=120).run()
    assert [event["ignored"] for event in run.events("target_up")] == [True, True, True]
    [ended] = run.events("lossy_end")
    assert ended["lost"] > 0 and ended["targets"][B.label]["lost"] == ended["lost"]


def test_a_blip_inside_a_lossy_period_leaves_the_lossy_metric_at_1(tmp_path, utc):
    # on a very lossy line blips are frequent; a 0 at each would restart the wait of an alert
    # on pynetconnmon_lossy (the shipped rule waits 10 minutes), so it would never fire
    run = LineRun(tmp_path, lossy_between(20, 110, 0.3, outages=[(60, 62)]), stop_at=120,
                  seed=11)
    seen = []                      # (instant, network up, lossy) of each snapshot published
    publish = run.monitor.metrics_board.publish
    run.monitor.metrics_board.publish = lambda snapshot: (
        seen.append((run.clock.now, snapshot.network_up, snapshot.lossy)), publish(snapshot))
    run.run()
    assert [event["ignored"] for event in run.events("up")] == [True]     # the blip
    assert len([event for event in run.events("lossy_end") if not event["ignored"]]) == 1
    during_blip = [lossy for now, up, lossy in seen if 60 <= now <= 64 and up is False]
    assert during_blip and all(during_blip), seen

# -- across a restart, and the state file ---------------------------------------------------------

def test_a_lossy_period_pending_report_and_the_usual_survive_a_restart(tmp_path, utc):
    first = LineRun(tmp_path, lossy_between(30, 110, 0.3), stop_at=170,
                    fail_during=[(0, 1000)]).run()
    saved = first.saved_state()
    [kept] = saved["lossy_pending"]
    [ended] = first.events("lossy_end")
    assert (kept["kind"], kept["loss_percent"], kept["sent"], kept["lost"]) == (
        "lossy", ended["loss_percent"], ended["sent"], ended["lost"])
    assert len(saved["usual"][A.label]) == 2 and saved["usual"][A.label][0] == pytest.approx(
        20.0, abs=0.3)
    second = LineRun(tmp_path, lossy_between(0, 0, 0.0), stop_at=70)
    second.run()
    assert "1 lossy period from the previous run still to report" in "\n".join(
        second.console_lines())
    _, subject, _ = second.deliverer.sent[-1]
    assert ": 1 lossy period, " in subject
    assert second.rounds.usual.usual[A.label] == pytest.approx(0.02, rel=0.02)


def test_a_run_that_died_while_lossy_reports_the_period_cut_short(tmp_path):
    state = check_state({"format": 1, "heartbeat": WALL_OFFSET, "clean_stop": False,
                         "targets": [A.label], "lossy": {"start": WALL_OFFSET - 40, "sent": 90,
                                                         "lost": 27}})
    assert pyNetConnMon.recover_lossy_period(state, 5.0) == dict(
        start=WALL_OFFSET - 40, end=WALL_OFFSET, duration=40.0, reason="", targets=[A.label],
        kind="lossy", cut_short=True, sent=90, lost=27, loss_percent=30.0)
    assert pyNetConnMon.recover_lossy_period(dict(state, clean_stop=True), 5.0) is None


def test_a_stop_during_an_interruption_that_counts_keeps_the_lossy_period_it_ended(tmp_path,
                                                                                 utc):
    # the interruption ended the period, not the stop: its report must not say "cut short"
    run = LineRun(tmp_path, lossy_between(20, 200, 0.3, outages=[(90, 200)]), stop_at=100,
                  seed=11).run()
    [down] = run.events("down")
    [ended] = [event for event in run.events("lossy_end") if not event["ignored"]]
    assert ended["end"] == down["start"]
    [waiting] = run.monitor.reporter.pending.lossy_items
    assert (waiting.reason, waiting.cut_short) == ("an interruption followed", False)


@pytest.mark.parametrize("bad, message", [
    ({"lossy": {"start": 1.0, "sent": -1, "lost": 0}}, "lossy sent is out of range"),
    ({"usual": {A.label: [1.0] * 181}}, "usual times is not a list of at most 180 entries"),
    ({"usual": {A.label: ["20"]}}, "usual time is not a number"),
    ({"lossy_pending": [{"kind": "slow"}]}, "lossy_pending entry 1 is not a lossy period")])
def test_a_state_file_with_bad_loss_figures_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        check_state(dict({"format": 1}, **bad))


def test_the_metrics_of_loss_and_jitter(tmp_path):
    snapshot = MetricsSnapshot(lossy=True, lossy_seconds=75.5, loss_ratio=0.3125,
                               jitter=((A.label, 0.004),))
    text = render_metrics(snapshot)
    assert text[text.index("# HELP pynetconnmon_loss_ratio"):] == (
        "# HELP pynetconnmon_loss_ratio Share of the connect attempts (SYNs) lost while up, over "
        "the last 30 rounds; absent while they hold none.\n"
        "# TYPE pynetconnmon_loss_ratio gauge\n"
        "pynetconnmon_loss_ratio 0.3125\n"
        "# HELP pynetconnmon_lossy 1 while the connection is lossy: at least --loss % of its "
        "SYNs lost over the last 30 rounds, until under half that for as many.\n"
        "# TYPE pynetconnmon_lossy gauge\n"
        "pynetconnmon_lossy 1\n"
        "# HELP pynetconnmon_lossy_seconds_total Seconds in lossy periods of at least "
        "--min-interruption, an ongoing one included.\n"
        "# TYPE pynetconnmon_lossy_seconds_total counter\n"
        "pynetconnmon_lossy_seconds_total 75.5\n"
        "# HELP pynetconnmon_target_jitter_seconds Mean difference between consecutive connect "
        "times of the target in the latest --stats-interval window.\n"
        "# TYPE pynetconnmon_target_jitter_seconds gauge\n"
        'pynetconnmon_target_jitter_seconds{target="198.18.1.2:53"} 0.004\n')
    from prometheus_client.parser import text_string_to_metric_families
    assert {family.name for family in text_string_to_metric_families(text)} >= {
        "pynetconnmon_loss_ratio", "pynetconnmon_lossy", "pynetconnmon_lossy_seconds",
        "pynetconnmon_target_jitter_seconds"}


def test_loss_off_watches_nothing(tmp_path):
    run = LineRun(tmp_path, lossy_between(30, 110, 0.6), stop_at=150, loss=0.0).run()
    assert run.events("lossy") == []
    assert "pynetconnmon_lossy" not in render_metrics(run.monitor.metrics_board.latest())
    start, = run.events("start")
    assert (start["loss_percent"], start["slow_factor"]) == (0.0, 4.0)
    json.dumps(run.saved_state())


def test_lossy_periods_beyond_the_pending_limit_fold_into_one_counted_entry():
    pending = pyNetConnMon.PendingReports(pyNetConnMon.ReportBackoff(60, 3600, 300), limit=4)
    for number in range(6):
        pending.add(WALL_OFFSET + number * 100, WALL_OFFSET + number * 100 + 30, 30.0, "",
                    [A.label], kind="lossy", loss_percent=25.0, sent=40, lost=10)
    assert (len(pending.lossy_items), pending.lossy_count, len(pending)) == (4, 6, 4)
    folded = pending.lossy_items[2]
    assert (folded.kind, folded.count, folded.sent, folded.lost, folded.loss_percent,
            folded.duration) == ("lossy", 3, 120, 30, 25.0, 90.0)
    subject, body = pyNetConnMon.format_report(pending.due(0.0, False), "pi")
    assert subject == "pyNetConnMon on pi: 6 lossy periods, 3 min lossy"
    assert "3 lossy periods between these times, added up here (the event log has each)" in body
    restored = pyNetConnMon.PendingReports(pyNetConnMon.ReportBackoff(60, 3600, 300), limit=4)
    restored.restore(check_state(dict(pending.to_dict(0.0, WALL_OFFSET), format=1)), 0.0,
                     WALL_OFFSET)
    assert [(item.count, item.sent, item.lost) for item in restored.lossy_items] == [
        (1, 40, 10), (1, 40, 10), (3, 120, 30), (1, 40, 10)]


def test_discard_pending_forgets_lossy_periods_too(tmp_path):
    from harness import run_program
    path, log = tmp_path / "state.json", tmp_path / "events.jsonl"
    path.write_text(json.dumps({"format": 1, "heartbeat": WALL_OFFSET, "clean_stop": False,
                                "targets": [A.label], "lossy": {"start": WALL_OFFSET - 40,
                                                                "sent": 90, "lost": 27},
                                "lossy_pending": [{"id": 3, "start": WALL_OFFSET - 500,
                                                   "end": WALL_OFFSET - 400, "duration": 100.0,
                                                   "reason": "", "kind": "lossy",
                                                   "targets": [A.label], "loss_percent": 30.0,
                                                   "sent": 300, "lost": 90}]}))
    result = run_program("-a", "127.0.0.1", "--discard-pending", "--state-file", path,
                         "--log-file", log, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(" discarded 1 lossy period waiting for a report (state file "
                                  "%s)\n" % path)
    saved = json.loads(path.read_text())
    assert (saved["lossy_pending"], saved["lossy"], saved["clean_stop"]) == ([], None, True)
    [event] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (event["event"], event["interruptions"], event["lossy_periods"]) == (
        "pending_discarded", 0, 1)
