"""One truth about the router: whether it is probed, said the same way at the start, by --once,
in DOWN and UP lines and in the report. Beside targets that are all on this machine (loopback)
no router is looked for or probed, and no cause names this machine's link or route.

The judge's words for each setting, then the program as a subprocess with a loopback target
switched off and on, its report delivered to a file by a notify command.
"""
import re
import shlex

from harness import Listener, hold_outage, run_program, start_monitor
from pyNetConnMon import CauseJudge, no_router_words, parse_target

LOOPBACK = [parse_target("127.0.0.1:8080", 53), parse_target("[::1]:8080", 53)]
BEYOND = [parse_target("127.0.0.1:8080", 53), parse_target("198.18.1.2:443", 53)]
NOT_PROBED = "not probed: every target is on this machine"


def test_the_judge_says_why_no_router_tells_where_it_broke():
    cases = {("auto", "loopback"): "router not probed: every target is on this machine",
             ("none", "loopback"): "router not probed (--gateway none)",
             ("none", "beyond"): "router not probed (--gateway none)",
             ("auto", "beyond"): "no router known to check"}
    for (gateway, where), words in cases.items():
        targets = LOOPBACK if where == "loopback" else BEYOND
        judge = CauseJudge(no_router_words(gateway, targets))
        judge.gateway_probed(None, False)
        assert judge.judge(None, False, {"127.0.0.1:8080": "refused"}) == ("unknown", words)


def test_with_loopback_targets_every_message_says_the_router_is_not_probed(tmp_path):
    report = tmp_path / "report.txt"
    notify = "sh -c %s notify %s" % (shlex.quote('cat > "$1"'), shlex.quote(str(report)))
    target = Listener().start()
    try:
        once = run_program("-a", target.address, "--once")
        with start_monitor(tmp_path, "-a", target.address, "-i", "0.05", "-t", "0.2", "-m", "0.1",
                           "-bmin", "0", "--notify-command", notify) as monitor:
            monitor.wait_for_line(r" started pyNetConnMon ")
            hold_outage(monitor, target)
            monitor.wait_for_event("report_sent", timeout=10)
            assert monitor.terminate() == 0
    finally:
        target.stop()
    assert once.stdout.splitlines()[-1] == "gateway " + NOT_PROBED
    lines = [line[20:] for line in monitor.stdout_lines]        # without their timestamps
    assert lines[1] == ("gateway " + NOT_PROBED + ", so no router is on the way and an "
                        "interruption's cause reads unknown")
    assert "DOWN %s refused (unknown: router %s)" % (target.address, NOT_PROBED) in lines
    (up,) = [line for line in lines if line.startswith("UP after ")]
    assert re.fullmatch(r"UP after .*, refused; unknown: no router probed that answered, so no "
                        r"telling where\)", up), up
    body = report.read_text()
    assert ("\nunknown: where it broke cannot be told: no router was probed (every target is on "
            "this machine, --gateway none, or none in the routing table)") in body
    everything = "\n".join(lines) + body + once.stdout
    assert "probed on TCP port" not in everything and "no link" not in everything
    assert [e["cause"] for e in monitor.events("down")] == ["unknown"]
