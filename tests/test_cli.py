"""The command line as a user meets it: bad input refused up front, --once, signals."""
import argparse
import os
import re
import shutil
import signal
import time

import pytest

from harness import (MonitorProcess, closed_port, listening_socket, read_events, run_main,
                     run_program, wait_until)
from names import private_names_prefix
from pyNetConnMon import VERSION


# -- bad input: exit 2, one line naming the option and why, nothing started ----------------------

def _argparse_gives_double_dash_as_a_value():
    """Whether this Python's argparse hands "--" in "--opt=--" to the option (3.13 does: the
    option's type then refuses it) or leaves the option without a value (older ones)."""
    probe = argparse.ArgumentParser()
    probe.add_argument("--value")
    return probe.parse_known_args(["--value=--"])[0].value == "--"


NO_VALUE = "'--' is not a number" if _argparse_gives_double_dash_as_a_value() else \
    "expected one argument"

BAD_INPUT = [
    (["-p", "0"], "-p/--port: 0 is outside 1-65535"),
    (["-p", "65536"], "-p/--port: 65536 is outside 1-65535"),
    (["-p", "dns"], "-p/--port: 'dns' is not a port number (1-65535)"),
    (["-i", "0"], "argument -i/--interval: 0 must be >= 0.01"),
    (["-i", "-1"], "argument -i/--interval: -1 must be >= 0.01"),
    (["-i", "inf"], "argument -i/--interval: 'inf' is not a finite number"),
    (["-i", "soon"], "argument -i/--interval: 'soon' is not a number"),
    (["-t", "0"], "argument -t/--timeout: 0 must be >= 0.001"),
    (["-t", "nan"], "argument -t/--timeout: 'nan' is not a finite number"),
    (["-m", "-5"], "argument -m/--min-interruption: -5 must be >= 0"),
    (["-bmin", "-1"], "argument -bmin/--backoff-min: -1 must be >= 0"),
    (["-bstep", "nan"], "argument -bstep/--backoff-step: 'nan' is not a finite number"),
    (["-bmin", "100", "-bmax", "50"], "-bmax/--backoff-max: 50 is below -bmin/--backoff-min 100"),
    (["-a", ""], "-a/--address: empty address"),
    (["-a", "[::1:53"], "-a/--address: '[::1:53' is not a valid [IPv6]:PORT"),
    (["-a", "no_such..host"],
     "-a/--address: 'no_such..host' is not a valid host name or IP address"),
    (["-a", "x" * 254], "-a/--address: '%s' is longer than 253 characters" % ("x" * 254)),
    (["-a", "127.0.0.1:0"], "-a/--address: 0 is outside 1-65535"),
    (["--heartbeat", "0"], "argument --heartbeat: 0 must be >= 1"),
    (["--down-interval", "0"], "argument --down-interval: 0 must be >= 0.01"),
    (["-i", "1", "--down-interval", "2"], "--down-interval: 2 is above -i/--interval 1"),
    (["--down-interval=--"], "argument --down-interval: " + NO_VALUE),
    (["--heartbeat=--"], "argument --heartbeat: " + NO_VALUE),
    (["--no-mail", "--test-mail"],
     "--no-mail cannot be combined with --test-mail or --notify-command"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--gateway", "router.lan"], "--gateway: 'router.lan' is not ADDRESS[:PORT], [IPV6]:PORT or "
                                  "none; give the router's IP address, which needs no name lookup"),
    (["--gateway", "198.18.0.1:0"], "--gateway: '198.18.0.1:0' is not ADDRESS[:PORT], [IPV6]:PORT "
                                    "or none; give the router's IP address, which needs no name "
                                    "lookup"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[" ".join(a)[:40] for a, _ in BAD_INPUT])
def test_bad_input_is_refused_with_one_line_and_status_2(args, message):
    # in this process (harness.run_main): a run that got past the checks returns RAN
    assert run_main(*args, "--once") == (2, "", "pyNetConnMon.py: error: %s\n" % message)


def test_bad_input_ends_the_process_with_status_2_and_one_line():
    result = run_program("-p", "0", "--once")
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "pyNetConnMon.py: error: -p/--port: 0 is outside 1-65535\n")


def test_version():
    result = run_program("--version")
    assert (result.returncode, result.stdout) == (0, "pyNetConnMon %s\n" % VERSION)


def _option_in_help(short, long, metavar):
    """How this Python's argparse lists an option with a value in --help: its metavar after
    each name, or (3.13 on) once, after the long one."""
    probe = argparse.ArgumentParser()
    probe.add_argument("-v", "--value", metavar="V")
    if "-v, --value V" in probe.format_help():
        return "%s, %s %s" % (short, long, metavar)
    return "%s %s, %s %s" % (short, metavar, long, metavar)


def test_help_lists_every_1x_option_with_its_default():
    result = run_program("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for needle in [_option_in_help("-a", "--address", "ADDRESS"), "(default: 8.8.8.8)",
                   _option_in_help("-p", "--port", "PORT"), "(default: 53)",
                   _option_in_help("-i", "--interval", "INTERVAL"),
                   "check interval, 0.01 to 86400 s (default: 2.0)",
                   _option_in_help("-t", "--timeout", "TIMEOUT"),
                   "connection timeout, 0.001 to 3600 s (default: 2.0)",
                   _option_in_help("-m", "--min-interruption", "MIN_INTERRUPTION"),
                   "(default: 5.0)",
                   _option_in_help("-bmin", "--backoff-min", "BACKOFF_MIN"), "(default: 60.0)",
                   _option_in_help("-bmax", "--backoff-max", "BACKOFF_MAX"), "(default: 3600.0)",
                   _option_in_help("-bstep", "--backoff-step", "BACKOFF_STEP"),
                   "(default: 300.0)"]:
        assert needle in text


# -- --once: one line per target, exit 0 when the network is up ---------------------------------

# The last line is the gateway's. Beside loopback targets no router is looked for or probed,
# whatever this machine's routing table holds; the monitor's start line says the same.
GATEWAY_NOT_PROBED = re.compile(r"^gateway not probed: every target is on this machine$")


def test_once_up():
    with listening_socket() as port:
        result = run_program("-a", "127.0.0.1:%d" % port, "--once")
    assert result.returncode == 0
    target, gateway = result.stdout.splitlines()
    assert re.match(r"^127\.0\.0\.1:%d up \d+\.\d ms$" % port, target), target
    assert GATEWAY_NOT_PROBED.match(gateway), gateway


def test_once_refused_is_down():
    port = closed_port()
    result = run_program("-a", "127.0.0.1:%d" % port, "--once")
    assert (result.returncode, result.stdout.splitlines()[:-1], result.stderr) == (
        1, ["127.0.0.1:%d down refused" % port], "")
    assert GATEWAY_NOT_PROBED.match(result.stdout.splitlines()[-1]), result.stdout


def test_once_probes_a_gateway_given_on_the_command_line_with_the_targets():
    refused = closed_port()
    with listening_socket() as port:
        target = "127.0.0.1:%d" % port
        accepted = run_program("-a", target, "--gateway", "127.0.0.1:%d" % port, "--once")
        refusing = run_program("-a", target, "--gateway", "[::1]:%d" % refused, "--once")
    assert accepted.returncode == 0
    assert re.match(r"^gateway 127\.0\.0\.1:%d answers \(accepted in \d+\.\d ms\)$" % port,
                    accepted.stdout.splitlines()[-1]), accepted.stdout
    # a refusal is the router's own answer
    assert refusing.stdout.splitlines()[-1] == "gateway [::1]:%d answers (refused)" % refused


def test_once_port_option_applies_to_targets_without_one():
    port = closed_port()
    result = run_program("-a", "127.0.0.1", "-a", "::1", "-p", str(port), "--once", "--gateway",
                         "none")
    assert result.returncode == 1
    assert result.stdout == ("127.0.0.1:%d down refused\n[::1]:%d down refused\n"
                             "gateway not probed (--gateway none)\n" % (port, port))


def test_once_one_target_down_one_up_is_up():
    refused = closed_port()
    with listening_socket() as port:
        result = run_program("-a", "127.0.0.1:%d" % refused, "-a", "127.0.0.1:%d" % port, "--once")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "127.0.0.1:%d down refused" % refused
    assert lines[1].startswith("127.0.0.1:%d up " % port)


def test_once_names_resolve_from_the_hosts_file_and_a_missing_name_is_dns(tmp_path):
    prefix = private_names_prefix(tmp_path, {"target.test": "127.0.0.1"})
    with listening_socket() as port:
        result = run_program("-a", "target.test:%d" % port, "-a", "gone.test:%d" % port,
                             "--once", prefix=prefix)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("target.test:%d up " % port)
    assert lines[1] == "gone.test:%d down dns" % port
    # a typo reads as "down dns" alone: the warning asks how it is spelled
    assert result.stderr.endswith(" WARNING the name gone.test did not resolve: check how it is "
                                  "spelled, or that DNS works here\n"), result.stderr


def test_defaults_probe_8_8_8_8_port_53_and_fail_at_once_without_a_route():
    """The default target, seen only from a network namespace with no route: nothing leaves."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private network namespace needs root and unshare (CI runs as root)")
    started = time.monotonic()
    result = run_program("--once", prefix=["unshare", "--net", "--"])
    assert time.monotonic() - started < 5
    assert (result.returncode, result.stdout) == (
        1, "8.8.8.8:53 down unreachable\ngateway: none in the routing table, so not probed\n")


# -- the running monitor: signals end it promptly, with a last line and a stop event --------------
# (started by its shebang, as users do: the shell hands its process over to Python)

@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signal_stops_promptly_in_the_middle_of_a_long_interval(tmp_path, app, sig, status):
    log = tmp_path / "events.jsonl"
    with listening_socket() as port:
        with MonitorProcess(["-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                             "--log-file", log, "--state-file", tmp_path / "state.json"],
                            script=app, by_shebang=True) as monitor:
            monitor.wait_for_line(r"started pyNetConnMon %s " % re.escape(VERSION))
            # after the start
            wait_until(lambda: (tmp_path / "state.json").exists(), 5, "the state file")
            started = time.monotonic()
            code = monitor.terminate(sig, timeout=5)
            elapsed = time.monotonic() - started
    assert code == status
    assert elapsed < 1.0
    assert monitor.stdout_lines[-1].endswith("stopped (%s)" % sig.name)
    assert "Traceback" not in monitor.output()
    events = read_events(log)
    # and the statistics window cut short by the stop, if its one round was over by then
    assert [e["event"] for e in events if e["event"] != "stats"] == ["start", "stop"]
    assert [e["event"] for e in events][1:-1] in ([], ["stats"])
    assert events[-1]["signal"] == sig.name


def test_the_first_stop_signal_decides_even_when_both_come_during_one_long_call():
    # as while a large state file is parsed (one call that holds the interpreter for a second):
    # Python runs the handlers afterwards, in the order of the signals' numbers, SIGINT's first
    import json
    import subprocess
    from pyNetConnMon import Waker
    big = "[" + "1," * 5_000_000 + "1]"      # about a second to parse
    waker = Waker()
    waker.install()
    try:
        sender = subprocess.Popen(["sh", "-c", "sleep 0.2; kill -TERM %d; sleep 0.05; "
                                   "kill -INT %d" % (os.getpid(), os.getpid())])
        json.loads(big)
        assert sender.wait(5) == 0
        json.loads("[]")             # the handlers run here at the latest
        assert waker.stop_signal == "SIGTERM"
    finally:
        waker.uninstall()
        waker.close()


def test_console_lines_are_timestamped_and_reach_a_pipe_at_once(tmp_path, app):
    with listening_socket() as port:
        with MonitorProcess(["-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                             "--state-file", tmp_path / "state.json"], script=app,
                            by_shebang=True, env={"PYTHONUNBUFFERED": None}) as monitor:
            # the program flushes each line itself; the pid is the one a user signals
            match = monitor.wait_for_line(
                r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) started pyNetConnMon %s \(pid %d\): "
                r"watching 127\.0\.0\.1:%d every 60 s \(6 s while down\), timeout 2 s, "
                r"interruptions under 5 s "
                r"ignored; state file %s$" % (re.escape(VERSION), monitor.pid, port,
                                              re.escape(str(tmp_path / "state.json"))), timeout=5)
            assert match
            assert monitor.terminate() == 0


def test_quiet_prints_only_warnings(tmp_path):
    with listening_socket() as port:
        with MonitorProcess(["-q", "-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                             "--state-file", tmp_path / "state.json"]) as monitor:
            wait_until(lambda: (tmp_path / "state.json").exists(), 5, "the state file")
            assert monitor.terminate() == 0
    assert monitor.lines == []
