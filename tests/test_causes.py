"""Where an interruption broke (local, lan, provider, dns, unknown) and partial outages: the pure
judge and trackers, then the monitor loop on a scripted network with a fake clock.

In the scripted network every probe's outcome is given per target (and for the gateway) as
[start, end) spans of failure; rounds start every second, so a fault from 10.5 to 20.5 is seen
first by the round at 11 and last by the round at 20.
"""
import json

import pytest

from fakes import (ALWAYS, NO_OUTCOME, ROUTER, WALL_OFFSET, Crash, ScriptedRun, outage,
                   result)
from pyNetConnMon import (LAN_MISSES, ROUTER_SILENT_ROUNDS, CauseJudge, Gateway,
                          InterruptionTracker, PartialOutages, closer_cause, parse_target)

A = parse_target("198.18.1.2:80", 53)
B = parse_target("198.18.1.3:80", 53)
V6 = parse_target("[2001:db8:0:2::2]:80", 53)
V6B = parse_target("[2001:db8:0:2::3]:80", 53)
NAME = parse_target("target.lab.test:80", 53)


# -- the judge: one round in which no target answered ----------------------------------------------

def judged(local=None, gateway="198.18.0.1:53", answered_before=True, answers_now=True,
           reasons=None):
    judge = CauseJudge()
    if gateway is not None and answered_before:
        judge.gateway_probed(gateway, True)
    judge.gateway_probed(gateway, answers_now)
    return judge.judge(local, answers_now, reasons or {"198.18.1.2:80": "timeout"})


@pytest.mark.parametrize("situation, expected", [
    (dict(local="this machine has no default route"),
     ("local", "this machine has no default route")),
    (dict(local="eth0 has no link", answers_now=False), ("local", "eth0 has no link")),
    (dict(answers_now=False), ("lan", "the router 198.18.0.1:53 did not answer either")),
    (dict(), ("provider", "the router 198.18.0.1:53 answered")),
    (dict(reasons={"a.test:80": "dns", "b.test:80": "dns"}),
     ("dns", "the router 198.18.0.1:53 answered, no name resolved")),
    (dict(reasons={"a.test:80": "dns", "198.18.1.2:80": "timeout"}),
     ("provider", "the router 198.18.0.1:53 answered")),
    (dict(gateway=None, answers_now=False), ("unknown", "no router known to check")),
    (dict(answered_before=False, answers_now=False),
     ("unknown", "the router 198.18.0.1:53 has not answered since the start")),
])
def test_the_cause_of_a_failed_round(situation, expected):
    assert judged(**situation) == expected


def test_a_gateway_that_answers_now_for_the_first_time_counts():
    assert judged(answered_before=False, answers_now=True)[0] == "provider"


def test_a_new_gateway_must_answer_before_it_can_tell_lan():
    judge = CauseJudge()
    assert judge.gateway_probed("198.18.0.1:53", True) is True
    assert judge.gateway_probed("198.18.0.1:53", False) is False
    assert judge.judge(None, False, {"x": "timeout"})[0] == "lan"
    assert judge.gateway_probed("198.18.0.254:53", False) is True    # DHCP: another router
    assert judge.judge(None, False, {"x": "timeout"})[0] == "unknown"


def test_a_router_that_fails_while_the_targets_answer_is_no_witness_until_it_answers():
    # a firewall change: the router drops connects to itself, and still forwards
    judge = CauseJudge()
    judge.gateway_probed("198.18.0.1:53", True, targets_answered=True)
    for _ in range(ROUTER_SILENT_ROUNDS):
        judge.gateway_probed("198.18.0.1:53", False, targets_answered=True)
    judge.gateway_probed("198.18.0.1:53", False)            # then the line fails
    assert judge.judge(None, False, {"x": "unreachable"}) == (
        "unknown", "the router 198.18.0.1:53 stopped answering while the targets still did")
    judge.gateway_probed("198.18.0.1:53", True, targets_answered=True)
    judge.gateway_probed("198.18.0.1:53", False)
    assert judge.judge(None, False, {"x": "timeout"})[0] == "lan"


def test_one_probe_the_router_missed_just_before_it_failed_leaves_it_a_witness():
    # a lost SYN in the round before the router went down made the whole outage `unknown`
    judge = CauseJudge()
    judge.gateway_probed("198.18.0.1:53", True, targets_answered=True)
    for _ in range(ROUTER_SILENT_ROUNDS - 1):
        judge.gateway_probed("198.18.0.1:53", False, targets_answered=True)
    for _ in range(LAN_MISSES):             # then the router goes, and the line
        judge.gateway_probed("198.18.0.1:53", False)
    assert judge.judge(None, False, {"x": "timeout"}, ongoing=True) == (
        "lan", "the router 198.18.0.1:53 did not answer either")


def test_a_router_that_stops_answering_before_an_outage_of_the_line_is_not_lan(tmp_path):
    fails = dict(outage(A.label, "unreachable"), gateway=[(5.5, 1e9, "timeout")])
    run = ScriptedRun(tmp_path, [A], fails).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"]) == ("unknown", "unknown")
    assert run.lines("DOWN") == ["DOWN 198.18.1.2:80 unreachable (unknown: the router "
                                 "198.18.0.1:53 stopped answering while the targets still did)"]


@pytest.mark.parametrize("first, second, closer", [
    ("provider", "lan", "lan"), ("lan", "provider", "lan"), ("local", "lan", "local"),
    ("dns", "provider", "provider"), ("unknown", "dns", "dns"), ("lan", "unknown", "lan"),
    ("unknown", "unknown", "unknown"), (None, "provider", "provider"), (None, None, None),
])
def test_the_cause_closer_to_this_machine_wins(first, second, closer):
    assert closer_cause(first, second) == closer


def test_the_tracker_keeps_the_first_cause_for_down_and_the_closest_for_up():
    tracker = InterruptionTracker(min_interruption=5.0)
    outage = tracker.observe(False, 10.0, 1010.0, "timeout", {}, cause="provider").outage
    assert outage.cause == "provider"
    tracker.observe(False, 11.0, 1011.0, "timeout", {}, cause="lan")
    tracker.observe(False, 12.0, 1012.0, "timeout", {}, cause="provider")
    tracker.observe(False, 13.0, 1013.0, "timeout", {}, cause="unknown")
    assert tracker.observe(True, 14.0, 1014.0).outage.cause == "lan"


# -- partial outages -------------------------------------------------------------------------------

def observe(partials, mono, outcomes):
    """One round: `outcomes` maps a target to its failure reason (None: it answered)."""
    return [(change.kind, change.key, round(change.duration, 3), change.ignored)
            if change.kind == "up" else (change.kind, change.key)
            for change in partials.observe([result(target, reason)
                                            for target, reason in outcomes.items()],
                                           mono, 1000.0 + mono)]


def test_one_target_failing_while_another_answers():
    partials = PartialOutages([A, B], min_interruption=5.0)
    assert observe(partials, 10, {A: "timeout", B: None}) == [("down", ("target", A.label))]
    assert observe(partials, 11, {A: "timeout", B: None}) == []
    assert observe(partials, 20, {A: None, B: None}) == [
        ("up", ("target", A.label), 10.001, False)]


def test_a_partial_outage_shorter_than_m_is_ignored():
    partials = PartialOutages([A, B], min_interruption=5.0)
    observe(partials, 10, {A: None, B: "refused"})
    assert observe(partials, 12, {A: None, B: None}) == [("up", ("target", B.label), 2.001, True)]


def test_a_round_with_no_answer_changes_no_partial_outage():
    partials = PartialOutages([A, B], min_interruption=5.0)
    observe(partials, 10, {A: "timeout", B: None})
    assert observe(partials, 11, {A: "timeout", B: "timeout"}) == []   # an interruption
    assert observe(partials, 12, {A: "timeout", B: None}) == []
    assert observe(partials, 13, {A: None, B: None}) == [("up", ("target", A.label), 3.001, True)]
    assert observe(partials, 14, {A: "timeout", B: "timeout"}) == []   # nothing new opens


def test_one_family_failing_while_the_other_answers_is_one_family_outage():
    partials = PartialOutages([A, V6, V6B], min_interruption=5.0)
    assert observe(partials, 10, {A: None, V6: "timeout", V6B: "unreachable"}) == [
        ("down", ("family", "ipv6"))]
    assert partials.open[("family", "ipv6")].reason == "timeout"
    assert observe(partials, 20, {A: None, V6: None, V6B: "timeout"}) == [
        ("up", ("family", "ipv6"), 10.001, False), ("down", ("target", V6B.label))]


def test_a_targets_own_outage_stays_when_its_whole_family_follows():
    partials = PartialOutages([A, V6, V6B], min_interruption=5.0)
    assert observe(partials, 10, {A: None, V6: "timeout", V6B: None}) == [
        ("down", ("target", V6.label))]
    assert observe(partials, 11, {A: None, V6: "timeout", V6B: "timeout"}) == [
        ("down", ("family", "ipv6"))]
    assert observe(partials, 20, {A: None, V6: None, V6B: None}) == [
        ("up", ("target", V6.label), 10.001, False), ("up", ("family", "ipv6"), 9.001, False)]


def test_families_need_targets_of_both():
    partials = PartialOutages([A, B], min_interruption=5.0)
    assert observe(partials, 10, {A: "timeout", B: None}) == [("down", ("target", A.label))]


def test_names_failing_while_addresses_answer_is_a_dns_partial_outage():
    other = parse_target("target2.lab.test:80", 53)
    partials = PartialOutages([NAME, other, A], min_interruption=5.0)
    assert observe(partials, 10, {NAME: "dns", other: "dns", A: None}) == [
        ("down", ("dns", "names"))]
    # one name back (its address times out) is DNS back: that target's own outage starts
    assert observe(partials, 20, {NAME: "timeout", other: "dns", A: None}) == [
        ("up", ("dns", "names"), 10.0, False), ("down", ("target", NAME.label)),
        ("down", ("target", other.label))]


def test_one_name_that_does_not_resolve_among_names_that_do_is_that_targets_outage():
    other = parse_target("target2.lab.test:80", 53)
    partials = PartialOutages([NAME, other], min_interruption=5.0)
    assert observe(partials, 10, {NAME: "dns", other: None}) == [("down", ("target", NAME.label))]


# -- the monitor on a scripted network -------------------------------------------------------------

CASES = {
    # cause: (targets, faults, local spans, the DOWN line's words)
    "local": ([A], dict(outage(A.label, "unreachable"), gateway=[(10.5, 20.5, "unreachable")]),
              [(10.5, 20.5)], "this machine has no default route"),
    "lan": ([A], dict(outage(A.label), gateway=[(10.5, 20.5, "timeout")]), (),
            "the router 198.18.0.1:53 did not answer either"),
    "provider": ([A], dict(outage(A.label, "unreachable"), gateway=[ALWAYS + ("refused",)]), (),
                 "the router 198.18.0.1:53 answered"),
    "dns": ([NAME], dict(outage(NAME.label, "dns")), (),
            "the router 198.18.0.1:53 answered, no name resolved"),
    "unknown": ([A], dict(outage(A.label), gateway=[ALWAYS + ("timeout",)]), (),
                "the router 198.18.0.1:53 has not answered since the start"),
}


@pytest.mark.parametrize("cause", list(CASES))
def test_each_cause_in_the_events_the_console_the_report_and_the_metrics(tmp_path, cause, utc):
    targets, fails, local, words = CASES[cause]
    run = ScriptedRun(tmp_path, targets, fails, local=local).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"], up["duration"]) == (cause, cause, 10.001)
    reason = down["reason"]
    assert run.lines("DOWN", "UP") == [
        "DOWN %s %s (%s: %s)" % (targets[0].label, reason, cause, words),
        "UP after 10.0 s (down since 2026-11-18 11:06:50, %s; %s: %s)" % (
            reason, cause, {"local": "this machine had no link or no route",
                            "lan": "the router did not answer either",
                            "provider": "the router answered, so the line or the provider failed",
                            "dns": "the router answered, only names did not resolve",
                            "unknown": "no router probed that answered, so no telling "
                                       "where"}[cause])]
    _, body = run.report()
    assert "2026-11-18 11:07:00        10.0 s  %-8s  %s\n" % (cause, reason) in body
    explained = [line for line in body.splitlines() if line.startswith(cause + ": ")]
    assert len(explained) == 1
    causes = {name: (count, downtime) for name, count, downtime in run.board.latest().causes}
    assert causes == {name: (1, 10.001) if name == cause else (0, 0.0)
                      for name in ("local", "lan", "provider", "dns", "unknown")}


@pytest.mark.parametrize("gateway, line", [
    ("auto", "gateway (router) from the routing table, probed on TCP port 53 in every round to "
             "tell where an interruption broke"),
    (Gateway("198.18.0.254", 80), "gateway (router) 198.18.0.254:80, probed on TCP port 80 in "
                                  "every round to tell where an interruption broke"),
    ("none", "gateway not probed (--gateway none): a cause other than local reads unknown"),
])
def test_the_start_says_which_gateway_is_probed(tmp_path, gateway, line):
    run = ScriptedRun(tmp_path, [A], {}, stop_at=0.5, gateway=gateway).run()
    assert run.console_lines()[1] == line
    assert run.events("start")[0]["gateway"] == {"auto": "auto", "none": "none"}.get(
        gateway, "198.18.0.254:80")


def test_without_any_gateway_the_cause_is_unknown(tmp_path):
    run = ScriptedRun(tmp_path, [A], outage(A.label), router=None).run()
    [down] = run.events("down")
    assert down["cause"] == "unknown"
    assert run.lines("DOWN") == ["DOWN 198.18.1.2:80 timeout (unknown: no router known to check)"]
    assert run.board.latest().gateway is None


def test_the_gateway_is_probed_in_every_round_with_the_targets(tmp_path):
    run = ScriptedRun(tmp_path, [A], {}, stop_at=3.5).run()
    assert run.network.rounds == [(0.0, ROUTER), (1.0, ROUTER), (2.0, ROUTER), (3.0, ROUTER)]
    assert run.board.latest().gateway == ("198.18.0.1:53", True)
    assert run.events("gateway_changed") == [
        {"time": run.events("gateway_changed")[0]["time"], "event": "gateway_changed",
         "gateway": "198.18.0.1:53"}]


def test_a_router_that_stops_answering_during_the_outage_makes_it_lan(tmp_path):
    fails = dict(outage(A.label, start=10.5, end=30.5), gateway=[(15.5, 30.5, "timeout")])
    run = ScriptedRun(tmp_path, [A], fails, stop_at=50).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"]) == ("provider", "lan")
    _, body = run.report()
    assert "        20.0 s  lan       timeout\n" in body
    assert "provider:" not in body


def test_one_missed_router_probe_does_not_make_a_provider_outage_lan(tmp_path):
    """A lost SYN to the router (or a busy router) now and then: the outage stays the
    provider's; two misses in a row are the router's. (While down, rounds come every 0.1 s.)"""
    fails = dict(outage(A.label, start=10.5, end=30.5),
                 gateway=[(15.46, 15.54, "timeout"), (20.46, 20.54, "timeout")])
    run = ScriptedRun(tmp_path, [A], fails, stop_at=50).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"]) == ("provider", "provider")


def test_a_router_missing_from_the_first_failed_round_is_lan_at_once(tmp_path):
    fails = dict(outage(A.label), gateway=[(10.5, 20.5, "timeout")])
    run = ScriptedRun(tmp_path, [A], fails).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"]) == ("lan", "lan")


def test_the_judge_wants_two_misses_in_a_row_while_an_outage_lasts():
    judge = CauseJudge()
    judge.gateway_probed("198.18.0.1:53", True)
    judge.gateway_probed("198.18.0.1:53", False)
    assert judge.judge(None, False, {"x": "timeout"}, ongoing=True)[0] == "unknown"
    assert judge.judge(None, False, {"x": "timeout"}, ongoing=False)[0] == "lan"
    judge.gateway_probed("198.18.0.1:53", False)
    assert judge.judge(None, False, {"x": "timeout"}, ongoing=True)[0] == "lan"


def test_a_gateway_that_answers_late_in_the_outage_makes_unknown_precise(tmp_path):
    # it never answered before the outage; from 13.5 on it refuses: it is there
    fails = dict(outage(A.label), gateway=[(0.0, 13.5, "timeout")] + [(13.5, 1e9, "refused")])
    run = ScriptedRun(tmp_path, [A], fails).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"]) == ("unknown", "provider")


def test_a_round_that_fails_just_after_dhcp_named_a_dead_router_is_not_judged_by_the_old(
        tmp_path):
    # the table is read once a second: at -i 0.5 the first failed round would probe the old
    # router, which still answers; it is read again before that round is judged
    new = Gateway("198.18.0.254", 53, found=True)
    fails = dict(outage(A.label, start=10.3, end=20.3), **{new.label: [ALWAYS + ("timeout",)]})
    run = ScriptedRun(tmp_path, [A], fails, router=[(0.0, ROUTER), (10.3, new), (20.3, ROUTER)],
                      interval=0.5).run()
    down, up = run.events("down", "up")
    assert (down["cause"], up["cause"]) == ("unknown", "unknown")
    assert run.lines("DOWN", "gateway now") == [
        "gateway now 198.18.0.1:53", "gateway now 198.18.0.254:53",
        "DOWN 198.18.1.2:80 timeout (unknown: the router 198.18.0.254:53 has not answered "
        "since it became the gateway)", "gateway now 198.18.0.1:53"]


def test_a_round_without_an_outcome_of_the_gateway_is_no_change_of_gateway(tmp_path):
    # while the router is down, fast rounds may end before any connect to it does
    fails = dict(outage(A.label), gateway=[(10.5, 12.5, "timeout"), (12.5, 20.5, NO_OUTCOME)])
    run = ScriptedRun(tmp_path, [A], fails).run()
    assert [event["gateway"] for event in run.events("gateway_changed")] == ["198.18.0.1:53"]
    assert run.lines("gateway now") == ["gateway now 198.18.0.1:53"]
    assert [event["cause"] for event in run.events("down", "up")] == ["lan", "lan"]


def test_a_gateway_given_is_not_named_again_once_it_is_probed(tmp_path):
    # the start line names a --gateway; "gateway now" repeated it at the first round
    given = Gateway("198.18.0.254", 53)
    run = ScriptedRun(tmp_path, [A], outage(A.label), router=given, gateway=given).run()
    assert [event["gateway"] for event in run.events("gateway_changed")] == ["198.18.0.254:53"]
    assert run.lines("gateway") == [
        "gateway (router) 198.18.0.254:53, probed on TCP port 53 in every round to tell where an "
        "interruption broke"]


def test_a_router_the_prober_leaves_out_is_neither_named_nor_judged_by(tmp_path):
    # a name such as localhost: every address on this machine, the router never probed; it was
    # named ("gateway now ...") and judged as one that had not answered since the start
    run = ScriptedRun(tmp_path, [A], outage(A.label, "refused"))
    run.network.router_needed = False
    run.run()
    assert run.events("gateway_changed") == [] and run.lines("gateway now") == []
    assert run.lines("DOWN") == ["DOWN 198.18.1.2:80 refused (unknown: no router known to check)"]


def test_a_stop_while_down_keeps_the_cause_in_the_state_file_and_the_report(tmp_path, utc):
    fails = dict(outage(A.label, start=10.5, end=1e9), gateway=[(15.5, 1e9, "timeout")])
    run = ScriptedRun(tmp_path, [A], fails, stop_at=30).run()
    state = json.loads(run.state_path.read_text())
    [pending] = state["pending"]
    assert (pending["cause"], pending["cut_short"], pending["part"]) == ("lan", True, None)
    assert state["down"] is None                 # a clean stop: nothing is still down
    # the next run reports it, with its cause
    again = ScriptedRun(tmp_path, [A], {}, stop_at=2).run()
    _, body = again.report()
    assert "  lan       timeout (the monitor stopped while still down)\n" in body


def test_the_state_file_saved_while_down_holds_the_cause_so_far(tmp_path):
    fails = dict(outage(A.label, start=10.5, end=1e9), gateway=[(15.5, 1e9, "timeout")])
    run = ScriptedRun(tmp_path, [A], fails, stop_at=30)
    saved = []
    original = run.monitor.state.save
    run.monitor.state.save = lambda data: saved.append(json.loads(json.dumps(data))) or \
        original(data)
    run.run()
    causes = [data["down"]["cause"] for data in saved if data["down"]]
    assert causes[0] == "provider" and causes[-1] == "lan"


def test_one_target_of_two_failing_is_a_partial_outage_not_an_interruption(tmp_path, utc):
    run = ScriptedRun(tmp_path, [A, B], outage(A.label)).run()
    assert run.events("down", "up") == []
    target_down, target_up = run.events("target_down", "target_up")
    assert (target_down["target"], target_down["reason"]) == ("198.18.1.2:80", "timeout")
    assert (target_up["target"], target_up["duration"], target_up["ignored"]) == (
        "198.18.1.2:80", 10.001, False)
    assert target_up["start"] == target_down["time"]
    assert run.lines("PARTIAL") == [
        "PARTIAL DOWN target 198.18.1.2:80 (timeout); the connection stays up",
        "PARTIAL UP target 198.18.1.2:80 after 10.0 s"]
    subject, body = run.report()
    assert subject == "pyNetConnMon on pi: 1 partial outage, the connection stayed up"
    assert body == (
        "pyNetConnMon on pi saw 1 partial outage and no interruption: the connection stayed up.\n"
        "\n"
        "Host:    pi\n"
        "Targets: 198.18.1.2:80, 198.18.1.3:80\n"
        "Times:   local time of pi (UTC)\n"
        "\n"
        "Partial outages: the connection stayed up (another target answered), but these failed:\n"
        "start                end                      duration  what failed\n"
        "2026-11-18 11:06:51  2026-11-18 11:07:01        10.0 s  target 198.18.1.2:80 (timeout)\n"
        "\n"
        "Total: 1 partial outage, 10.0 s in all.\n"
        "\n"
        "What the reasons mean:\n"
        "- timeout: no answer at all within the timeout (-t): the packets were lost on the way, or "
        "the far end was switched off or gone.\n")
    [sent] = run.events("report_sent")
    assert (sent["interruptions"], sent["partial_outages"]) == (0, 1)


def test_a_partial_outage_shorter_than_m_is_logged_and_not_reported(tmp_path):
    run = ScriptedRun(tmp_path, [A, B], outage(A.label, start=10.5, end=12.5)).run()
    [target_up] = run.events("target_up")
    assert (target_up["duration"], target_up["ignored"]) == (2.001, True)
    assert run.lines("PARTIAL UP") == [
        "PARTIAL UP target 198.18.1.2:80 after 2.0 s: shorter than 5 s, ignored"]
    assert run.deliverer.sent == []


def test_ipv6_failing_while_ipv4_answers_is_a_family_outage(tmp_path):
    run = ScriptedRun(tmp_path, [A, V6], outage(V6.label)).run()
    assert run.events("down", "target_down") == []
    family_down, family_up = run.events("family_down", "family_up")
    assert (family_down["family"], family_down["reason"]) == ("ipv6", "timeout")
    assert (family_up["family"], family_up["duration"]) == ("ipv6", 10.001)
    assert run.lines("PARTIAL") == [
        "PARTIAL DOWN every IPv6 target (timeout); the connection stays up",
        "PARTIAL UP every IPv6 target after 10.0 s"]
    _, body = run.report()
    assert "        10.0 s  every IPv6 target (timeout)\n" in body


def test_the_loop_logs_and_reports_a_dns_partial_outage(tmp_path):
    run = ScriptedRun(tmp_path, [NAME, A], outage(NAME.label, "dns")).run()
    dns_down, dns_up = run.events("dns_down", "dns_up")
    assert (dns_down["targets"], dns_down["reason"]) == (["target.lab.test:80"], "dns")
    assert (dns_up["targets"], dns_up["duration"]) == (["target.lab.test:80"], 10.001)
    _, body = run.report()
    assert "        10.0 s  every target given by name (dns)\n" in body


def test_what_still_fails_when_the_connection_is_back_is_told_after_it(tmp_path):
    # everything down 10.5-15.5; IPv4 stays down to 30.5: "the connection stays up" came before
    # the UP that ended the interruption
    fails = dict(outage(A.label, "refused", end=30.5), **outage(V6.label, "refused", end=15.5))
    fails["gateway"] = [ALWAYS + ("refused",)]
    run = ScriptedRun(tmp_path, [A, V6], fails).run()
    told = run.lines("DOWN", "UP", "PARTIAL")
    assert [line.split(" (")[0].split(";")[0] for line in told] == [
        "DOWN 198.18.1.2:80 refused, [2001:db8:0:2::2]:80 refused", "UP after 5.0 s",
        "PARTIAL DOWN every IPv4 target", "PARTIAL UP every IPv4 target after 15.5 s"]
    assert [event["event"] for event in run.events("up", "family_down")] == ["up", "family_down"]


def test_a_name_that_never_resolved_asks_once_how_it_is_spelled(tmp_path):
    # "-a 127.0.0.l" (a typo) was told as DOWN ... dns every round, and nothing more
    run = ScriptedRun(tmp_path, [NAME, A], outage(NAME.label, "dns", start=0.0, end=1e9)).run()
    assert run.lines("WARNING the name") == [
        "WARNING the name target.lab.test has not resolved since the start: check how it is "
        "spelled, or that DNS works here (it is probed every round all the same)"]
    (tmp_path / "again").mkdir()
    resolved_first = ScriptedRun(tmp_path / "again", [NAME, A], outage(NAME.label, "dns")).run()
    assert resolved_first.lines("WARNING the name") == []
    # at boot, before the network, every name fails: one line, not one per name
    names = [parse_target("n%d.lab.test:80" % number, 53) for number in range(7)]
    (tmp_path / "boot").mkdir()
    boot = ScriptedRun(tmp_path / "boot", names, {name.label: [(0.0, 5.5, "dns")]
                                                  for name in names}).run()
    assert boot.lines("WARNING the name") == [
        "WARNING the names n0.lab.test, n1.lab.test, n2.lab.test, n3.lab.test, n4.lab.test and "
        "2 more have not resolved since the start: check how they are spelled, or that DNS "
        "works here (they are probed every round all the same)"]


def test_a_report_with_both_lists_interruptions_first(tmp_path, utc):
    fails = dict(outage(A.label, start=10.5, end=20.5), **outage(B.label, start=5.5, end=20.5))
    fails["gateway"] = [ALWAYS + ("refused",)]
    run = ScriptedRun(tmp_path, [A, B], fails).run()
    subject, body = run.report()
    assert subject == "pyNetConnMon on pi: 1 interruption, 10.0 s of downtime; 1 partial outage"
    assert body.startswith("pyNetConnMon on pi saw 1 interruption (10.0 s of downtime in total) "
                           "and 1 partial outage.\n")
    assert body.index("provider: your router answered throughout") < body.index(
        "Partial outages:") < body.index("target 198.18.1.3:80 (timeout)")
    assert run.lines("report sent") == [
        "report sent (1 interruption, 1 partial outage) by mail; next report no sooner than in "
        "1 min"]


def test_a_partial_outage_at_a_stop_is_kept_as_cut_short_and_reported_after_a_restart(tmp_path):
    run = ScriptedRun(tmp_path, [A, B], outage(A.label, start=10.5, end=1e9), stop_at=30).run()
    [pending] = json.loads(run.state_path.read_text())["pending"]
    assert (pending["kind"], pending["part"], pending["cut_short"]) == (
        "partial", "target 198.18.1.2:80", True)
    assert run.console_lines()[-1] == "stopped (SIGTERM); 1 partial outage still to report"
    again = ScriptedRun(tmp_path, [A, B], {}, stop_at=2).run()
    assert "1 partial outage from the previous run still to report" in again.console_lines()
    subject, body = again.report()
    assert subject == "pyNetConnMon on pi: 1 partial outage, the connection stayed up"
    assert "  target 198.18.1.2:80 (timeout) (the monitor stopped while it still failed)\n" in body


def test_a_run_that_died_while_down_reports_the_cause_it_had_saved():
    from pyNetConnMon import recover_previous_run
    state = {"clean_stop": False, "heartbeat": 1000.0, "targets": [A.label],
             "down": {"start": 900.0, "reason": "timeout", "cause": "lan"}}
    cut_short, _, _ = recover_previous_run(state, wall=1600.0, min_interruption=5.0)
    assert (cut_short["cause"], cut_short["duration"], cut_short["cut_short"]) == ("lan", 100.0,
                                                                                   True)


def test_a_state_file_cause_must_be_one_of_the_five_and_older_files_have_none():
    from pyNetConnMon import check_state
    entry = {"id": 1, "start": 1.8e9, "end": 1.8e9 + 7, "duration": 7.0, "reason": "timeout"}
    older = check_state({"format": 1, "pending": [entry], "down": {"start": 1.8e9}})
    assert older["pending"][0]["cause"] is None and older["down"]["cause"] is None
    with pytest.raises(ValueError, match="^pending entry 1 cause is not one of local, lan, "
                                         "provider, dns, unknown$"):
        check_state({"format": 1, "pending": [dict(entry, cause="aliens")]})
    with pytest.raises(ValueError, match="^down cause is not one of"):
        check_state({"format": 1, "down": {"start": 1.8e9, "cause": ["lan"]}})


def test_a_partial_outage_open_at_a_crash_is_reported_after_the_restart(tmp_path, utc):
    run = ScriptedRun(tmp_path, [A, B], outage(A.label, start=10.5, end=1000.0), stop_at=1e9)
    probe = run.prober.probe_round

    def dies_at_100(*args, **kwargs):
        if run.clock.now >= 100:
            raise Crash()                       # kill -9, a power cut: no stop
        return probe(*args, **kwargs)

    run.prober.probe_round = dies_at_100
    with pytest.raises(Crash):
        run.run()
    run.log.close()
    [partial] = run.saved_state()["partials"]        # at the last heartbeat, 49 s in
    assert (partial["part"], partial["duration"]) == ("target 198.18.1.2:80", 49.0)
    again = ScriptedRun(tmp_path, [A, B], {}, stop_at=20.0, wall_offset=WALL_OFFSET + 600)
    again.run()
    subject, body = again.report()
    assert subject == "pyNetConnMon on pi: 1 gap (9 min) when the monitor was not running; " \
        "1 partial outage"
    assert "\n2026-11-18 11:06:51  2026-11-18 11:07:40        49.0 s  target 198.18.1.2:80 " \
        "(timeout) (the monitor stopped while it still failed)\n" in body
