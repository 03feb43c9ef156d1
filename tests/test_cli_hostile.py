"""The command line against hostile input: bounds, secrets, closed and full streams, control
characters, duplicate targets, options that do nothing, and a fuzzer over all of it.

Usage errors are checked in-process (harness.run_main: main(argv) with stdout and stderr captured
and every run replaced by a stand-in, so nothing probes); whatever needs real streams, signals or
a running monitor runs the program as a subprocess on loopback."""
import base64
import contextlib
import http.server
import io
import os
import re
import subprocess
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import pyNetConnMon as program
from harness import (RAN, MonitorProcess, child_env, closed_port, listening_socket,
                     python_command, read_events, run_main, wait_for_event, wait_until)
from names import private_names_prefix

SECRET = "s3cret"


def usage_error(*argv):
    """The one-line message of a usage error (exit 2, nothing on stdout)."""
    status, out, err = run_main(*argv)
    assert (status, out) == (2, ""), (status, out, err)
    assert err.startswith("pyNetConnMon.py: error: ") and err.count("\n") == 1, err
    return err[len("pyNetConnMon.py: error: "):-1]


def run(*args, prefix=(), timeout=15):
    """The program as a subprocess, to its end."""
    return subprocess.run([*prefix, *python_command(), *map(os.fspath, args)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


CLOSE_STDOUT = ["sh", "-c", 'exec "$@" >&-', "sh"]
CLOSE_STDERR = ["sh", "-c", 'exec "$@" 2>&-', "sh"]
CLOSE_BOTH = ["sh", "-c", 'exec "$@" >&- 2>&-', "sh"]


# -- printable(): outside text cannot forge console lines or drive the terminal -------------------

def test_printable_escapes_c0_c1_del_line_and_bidi_controls_and_keeps_unicode():
    text = "a\x1b[2Jb\nc\rd\te\x00\x7f\x9b\x85 \u2028\u202e\u2066 é 日本 ✓ \udcff"
    assert program.printable(text) == (
        "a\\x1b[2Jb\\x0ac\\x0dd\\x09e\\x00\\x7f\\x9b\\x85 \\u2028\\u202e\\u2066 é 日本 ✓ \\xff")


def test_printable_escapes_the_direction_marks_too():
    # left-to-right, right-to-left and Arabic letter marks reorder what a terminal shows
    assert program.printable("a\u200eb\u200fc\u061cd") == "a\\u200eb\\u200fc\\u061cd"


def test_every_console_line_is_printable(utc):
    out, err = io.StringIO(), io.StringIO()
    console = program.Console(out=out, err=err)
    console.info("DOWN x\r2026-01-01 00:00:00 UP\x1b]0;title\x07", wall=0)
    console.warning("reason\nERROR forged", wall=0)
    assert out.getvalue() == ("1970-01-01 00:00:00 DOWN x\\x0d2026-01-01 00:00:00 "
                              "UP\\x1b]0;title\\x07\n")
    assert err.getvalue() == "1970-01-01 00:00:00 WARNING reason\\x0aERROR forged\n"


def test_a_console_whose_streams_were_closed_at_the_start_writes_nothing_and_raises_nothing():
    with contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
        console = program.Console()           # sys.stdout and sys.stderr are None then
        console.info("up")
        console.error("down")
        console.usage_error("bad")


def test_usage_errors_escape_control_characters():
    assert usage_error("--frob\x1b[31m") == "unrecognized arguments: --frob\\x1b[31m"


def test_an_error_naming_a_log_file_escapes_its_control_characters(tmp_path):
    path = str(tmp_path / "\x1b]0;pwned\x07.jsonl")
    status, out, err = run_main("--summary", "--log-file", path)
    assert (status, out) == (1, "")
    assert err.endswith(" ERROR cannot read event log %s: No such file or directory\n"
                        % program.printable(path))
    assert "\x1b" not in err and err.count("\n") == 1


def test_a_notify_command_cannot_write_control_characters_to_the_console():
    command = "printf 'bad\\033[2J\\302\\233X\\007' >&2; exit 3"
    result = run("-a", "127.0.0.1:%d" % closed_port(), "--test-mail", "--notify-command", command)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.endswith(" ERROR test report not delivered: notify command exited with status 3: "
                         "bad\\x1b[2J\\x9bX\\x07"), line


# -- every number has bounds the system accepts -------------------------------------------------

URL = "http://127.0.0.1:9/ping"
BOUNDS = [
    (["-i", "1e-320"], "argument -i/--interval: 1e-320 must be >= 0.01"),
    (["-i", "0.009"], "argument -i/--interval: 0.009 must be >= 0.01"),
    (["-i", "86400.5"], "argument -i/--interval: 86400.5 must be <= 86400 (1 d)"),
    (["-i", "1e300"], "argument -i/--interval: 1e300 must be <= 86400 (1 d)"),
    (["-t", "2147484"], "argument -t/--timeout: 2147484 must be <= 3600 (1 h)"),
    (["-t", "1e-320"], "argument -t/--timeout: 1e-320 must be >= 0.001"),
    (["-m", "1e300"], "argument -m/--min-interruption: 1e300 must be <= 31536000 (365 d)"),
    (["-bmin", "31536001"], "argument -bmin/--backoff-min: 31536001 must be <= 31536000 (365 d)"),
    (["-bmax", "1e18"], "argument -bmax/--backoff-max: 1e18 must be <= 31536000 (365 d)"),
    (["-bstep", "4e7"], "argument -bstep/--backoff-step: 4e7 must be <= 31536000 (365 d)"),
    (["--heartbeat", "0.0001"], "argument --heartbeat: 0.0001 must be >= 1"),
    (["--heartbeat", "1e300"], "argument --heartbeat: 1e300 must be <= 86400 (1 d)"),
    (["--ping-url", URL, "--ping-interval", "0.01"],
     "argument --ping-interval: 0.01 must be >= 0.1"),
    (["--ping-url", URL, "--ping-interval", "1e300"],
     "argument --ping-interval: 1e300 must be <= 86400 (1 d)"),
    (["-i", "1e309"], "argument -i/--interval: '1e309' is not a finite number"),
]


@pytest.mark.parametrize("args, message", BOUNDS, ids=[" ".join(a)[-30:] for a, _ in BOUNDS])
def test_numbers_outside_their_bounds_are_usage_errors(args, message):
    assert usage_error("-a", "127.0.0.1:9", *args) == message


def test_the_bounds_themselves_are_accepted():
    settings = program.parse_arguments([
        "-a", "127.0.0.1:9", "-i", "0.01", "-t", "3600", "-m", "31536000", "-bmin", "31536000",
        "-bmax", "31536000", "-bstep", "0", "--heartbeat", "86400", "--ping-url", URL,
        "--ping-interval", "0.1"])
    assert (settings.interval, settings.timeout, settings.min_interruption, settings.backoff_max,
            settings.heartbeat, settings.ping_interval) == (
                0.01, 3600, 31536000, 31536000, 86400, 0.1)
    settings = program.parse_arguments(["-a", "127.0.0.1:9", "-i", "86400", "-t", "0.001",
                                        "--heartbeat", "1"])
    assert (settings.interval, settings.timeout, settings.heartbeat) == (86400, 0.001, 1)


@pytest.mark.parametrize("args, message", [
    (["-t", "2147484"], "argument -t/--timeout: 2147484 must be <= 3600 (1 h)"),
    (["-i", "1e-320"], "argument -i/--interval: 1e-320 must be >= 0.01"),
    (["-i", "1e300", "--heartbeat", "1e300"],
     "argument -i/--interval: 1e300 must be <= 86400 (1 d)"),
    (["--heartbeat", "0.0001"], "argument --heartbeat: 0.0001 must be >= 1"),
])
def test_numbers_that_crashed_or_starved_the_monitor_are_refused_before_it_starts(tmp_path, args,
                                                                                 message):
    result = run("-a", "127.0.0.1:%d" % closed_port(), "--no-mail",
                 "--state-file", tmp_path / "state.json", *args, timeout=10)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "pyNetConnMon.py: error: %s\n" % message)
    assert not (tmp_path / "state.json").exists()


def test_help_shows_the_bounds():
    status, out, _ = run_main("--help")
    text = " ".join(out.split())
    assert status == 0
    for needle in ["check interval, 0.01 to 86400 s", "connection timeout, 0.001 to 3600 s",
                   "ignore interruptions shorter than this, up to 1 year",
                   "1 to 86400 s (default: 60.0)",
                   "at most one ping per this many seconds, 0.1 to 86400 s"]:
        assert needle in text


# -- secrets: a ping URL's user:password@, path and query, and the notify command ------------------

def test_credentials_in_the_ping_url_become_a_basic_authorization_header():
    url, authorization = program.ping_request_parts("http://us%40er:p%3Ass@127.0.0.1:8080/k?x=1#f")
    assert url == "http://127.0.0.1:8080/k?x=1#f"
    assert authorization == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert program.ping_request_parts("https://h/token") == ("https://h/token", None)
    assert program.ping_request_parts("HTTPS://u@h/t@x") == ("HTTPS://h/t@x", "Basic dTo=")


class Recorder:
    """A loopback HTTP server that records (path, Authorization) and answers `status` (with
    `location` for a redirect)."""

    def __init__(self, status=200, location=None):
        self.requests = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                recorder.requests.append((self.path, self.headers["Authorization"]))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)      # shutdown() waits up to one poll
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_pinging(tmp_path, target_port, url, prefix):
    return MonitorProcess(["-a", "127.0.0.1:%d" % target_port, "-i", "0.05", "-t", "1", "--no-mail",
                           "--ping-url", url, "--ping-interval", "0.1", "--log-file",
                           tmp_path / "events.jsonl", "--state-file", tmp_path / "state.json"],
                          prefix=prefix)


def assert_no_secret(monitor, tmp_path):
    assert SECRET not in monitor.output()
    for name in ("events.jsonl", "state.json"):
        assert SECRET not in (tmp_path / name).read_text(), name


def test_a_ping_url_with_credentials_authenticates_and_a_redirect_does_not_carry_them(tmp_path):
    # names resolve privately: the old code looked up 'user:s3cret@127.0.0.1' as a host name
    prefix = private_names_prefix(tmp_path, {})
    elsewhere = Recorder()
    endpoint = Recorder(status=302, location=elsewhere.url + "/landed")
    try:
        with listening_socket() as port:
            url = endpoint.url.replace("//", "//user:%s@" % SECRET) + "/%s-token?x=1" % SECRET
            with start_pinging(tmp_path, port, url, prefix) as monitor:
                wait_until(lambda: elsewhere.requests, 10, "a ping that followed the redirect")
                assert monitor.terminate() == 0
    finally:
        endpoint.close()
        elsewhere.close()
    expected = "Basic " + base64.b64encode(("user:" + SECRET).encode()).decode()
    assert endpoint.requests[0] == ("/%s-token?x=1" % SECRET, expected)
    assert elsewhere.requests[0] == ("/landed", None)
    assert not [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "ping_failed"]
    assert_no_secret(monitor, tmp_path)


def test_a_failing_ping_with_credentials_shows_neither_them_nor_the_path(tmp_path):
    prefix = private_names_prefix(tmp_path, {})
    ping_port = closed_port()
    url = "http://user:%s@127.0.0.1:%d/%s-token" % (SECRET, ping_port, SECRET)
    with listening_socket() as port:
        with start_pinging(tmp_path, port, url, prefix) as monitor:
            failed = wait_for_event(tmp_path / "events.jsonl", {"event": "ping_failed"})
            monitor.wait_for_line("WARNING ping to ")
            assert monitor.terminate() == 0
    assert (failed["url"], failed["reason"]) == ("http://127.0.0.1:%d/..." % ping_port, "refused")
    assert_no_secret(monitor, tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--ping-url", "ftp://u:s3cret@h/s3cret"], "--ping-url: not an http:// or https:// URL"),
    (["--ping-url", "s3cret"], "--ping-url: not an http:// or https:// URL"),
    (["--ping-url", "u:s3cret@h/s3cret"], "--ping-url: not an http:// or https:// URL"),
    (["--ping-url", "https://u:s3cret@h/s3 cret"],
     "--ping-url: the URL contains spaces or control characters"),
    (["--ping-url", "https://h/s3cret\x7f"],
     "--ping-url: the URL contains spaces or control characters"),
    (["--ping-url", "https://h/s3crét"],
     "--ping-url: the URL contains characters that are not ASCII: percent-encode them"),
    (["--ping-url", "https://u:s3cret@h:99999/s3cret"],
     "--ping-url: the URL's port is not a number from 0 to 65535"),
    (["--ping-url", "https://u:s3cret@[::1/s3cret"], "--ping-url: not a valid URL"),
    (["--ping-url", "https://u:s3cret@/s3cret"], "--ping-url: the URL has no host"),
    (["--ping=https://u:s3cret@h/s3cret"],
     "ambiguous option: --ping=... could match --ping-url, --ping-interval"),
    (["--notify-command", "curl", "-fsS", "https://h/s3cret"],
     "unrecognized arguments: -fsS and 1 value (not shown: it may be a secret; did a value with "
     "spaces lose its quotes?)"),
    (["--notify-command=curl", "https://h/s3cret", "other"],
     "unrecognized arguments: 2 values (not shown: it may be a secret; did a value with spaces "
     "lose its quotes?)"),
    (["--frobnicate=s3cret"], "unrecognized arguments: --frobnicate=..."),
    (["--notify-command", "  "], "--notify-command: empty command"),
    (["--notify-command", "curl -d s3cret\0"],
     "--notify-command: the command contains a NUL character"),
])
def test_usage_errors_never_quote_a_secret(argv, message):
    assert usage_error("-a", "127.0.0.1:9", *argv) == message


# -- a closed or full stdout or stderr ----------------------------------------------------------

@pytest.mark.parametrize("args", [["-a", "127.0.0.1:%d" % closed_port(), "--once"], ["--version"],
                                  ["--help"]], ids=["--once", "--version", "--help"])
def test_output_into_a_full_device_is_one_error_line_and_status_1(args):
    with open("/dev/full", "w") as full:
        result = subprocess.run([*python_command(), *args], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=15)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.endswith(" ERROR cannot write to standard output: No space left on device"), line


def test_version_into_a_closed_stdout_writes_nothing_elsewhere():
    result = run("--version", prefix=CLOSE_STDOUT)
    assert (result.returncode, result.stderr) == (0, "")


def test_once_into_a_closed_stdout_still_exits_with_the_result():
    result = run("-a", "127.0.0.1:%d" % closed_port(), "--once", prefix=CLOSE_STDOUT)
    assert (result.returncode, result.stderr) == (1, "")


def test_once_into_a_pipe_nobody_reads_still_exits_with_the_result():
    read_end, write_end = os.pipe()
    os.close(read_end)          # every write now fails with EPIPE
    try:
        with listening_socket() as port:
            result = subprocess.run([*python_command(), "-a", "127.0.0.1:%d" % port,
                                     "--once"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                    timeout=15)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_usage_error_with_a_closed_stderr_still_exits_2():
    assert run("-i", "soon", prefix=CLOSE_STDERR).returncode == 2


def test_the_monitor_with_closed_stdout_and_stderr_keeps_running_and_logging(tmp_path):
    log = tmp_path / "events.jsonl"
    with MonitorProcess(["-a", "127.0.0.1:%d" % closed_port(), "-i", "0.1", "--no-mail",
                         "--log-file", log, "--state-file", tmp_path / "state.json"],
                        prefix=CLOSE_BOTH) as monitor:
        wait_for_event(log, {"event": "down"})
        assert monitor.returncode is None
        assert monitor.terminate() == 0
    assert [e["event"] for e in read_events(log)] == ["start", "down", "stats", "stop"]


def test_quiet_once_prints_nothing_and_answers_with_its_status():
    with listening_socket() as port:
        result = run("-q", "-a", "127.0.0.1:%d" % port, "--once")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# -- every target once; every option used by the run it is given to ------------------------------

@pytest.mark.parametrize("args, message", [
    (["-a", "127.0.0.1", "-a", "127.0.0.1:53", "-p", "53"],
     "-a/--address: 127.0.0.1:53 is given twice"),
    (["-a", "127.0.0.1:53", "-a", "127.0.0.1:53"], "-a/--address: 127.0.0.1:53 is given twice"),
    (["-a", "::1", "-a", "[0:0::1]:53"],
     "-a/--address: [::1]:53 and [0:0::1]:53 are the same target"),
    (["-a", "Router.Lan", "-a", "router.lan.:53"],
     "-a/--address: Router.Lan:53 and router.lan.:53 are the same target"),
])
def test_a_target_given_twice_is_refused(args, message):
    assert usage_error(*args) == message


def test_the_same_host_on_other_ports_or_interfaces_is_two_targets():
    settings = program.parse_arguments(["-a", "127.0.0.1:53", "-a", "127.0.0.1:80",
                                        "-a", "fe80::1%lo", "-a", "fe80::1%eth0"])
    assert settings.target_labels == ["127.0.0.1:53", "127.0.0.1:80", "[fe80::1%lo]:53",
                                      "[fe80::1%eth0]:53"]


LOG = "events.jsonl"
REFUSED = [
    (["--once", "--test-mail"], "--once cannot be combined with --test-mail"),
    (["--summary", "--log-file", LOG, "--once"], "--once cannot be combined with --summary"),
    (["--test-mail", "--summary", "--log-file", LOG],
     "--test-mail cannot be combined with --summary"),
    (["--summary", "--log-file", LOG, "-a", "127.0.0.1"],
     "-a/--address has no effect with --summary"),
    (["--summary", "--log-file", LOG, "-p", "80"], "-p/--port has no effect with --summary"),
    (["--summary", "--log-file", LOG, "-t", "1"], "-t/--timeout has no effect with --summary"),
    (["--summary", "--log-file", LOG, "--metrics-port", "9100"],
     "--metrics-port has no effect with --summary"),
    (["--summary", "--log-file", LOG, "--ping-url", URL],
     "--ping-url has no effect with --summary"),
    (["--summary", "--log-file", LOG, "--notify-command", "true"],
     "--notify-command has no effect with --summary"),
    (["--summary", "--log-file", LOG, "--state-file", "s"],
     "--state-file has no effect with --summary"),
    (["--summary", "--log-file", LOG, "--no-mail"], "--no-mail has no effect with --summary"),
    (["--summary", "--log-file", LOG, "-q"], "-q/--quiet has no effect with --summary"),
    (["--once", "-i", "5"], "-i/--interval has no effect with --once"),
    (["--once", "-m", "0"], "-m/--min-interruption has no effect with --once"),
    (["--once", "--log-file", LOG], "--log-file has no effect with --once"),
    (["--once", "--state-file", "s"], "--state-file has no effect with --once"),
    (["--once", "--heartbeat", "5"], "--heartbeat has no effect with --once"),
    (["--once", "-bstep", "0"], "-bstep/--backoff-step has no effect with --once"),
    (["--once", "--no-mail"], "--no-mail has no effect with --once"),
    (["--once", "--pysendmail", "p"], "--pysendmail has no effect with --once"),
    (["--test-mail", "-t", "5"], "-t/--timeout has no effect with --test-mail"),
    (["--test-mail", "-i", "5"], "-i/--interval has no effect with --test-mail"),
    (["--test-mail", "--log-file", LOG], "--log-file has no effect with --test-mail"),
    (["--test-mail", "--metrics-port", "9100"], "--metrics-port has no effect with --test-mail"),
    (["--test-mail", "--notify-command", "true", "--pysendmail", "p"],
     "--pysendmail has no effect with --notify-command"),
    (["--no-mail", "-bmin", "5"], "-bmin/--backoff-min has no effect with --no-mail"),
    (["--no-mail", "-bmax", "5000"], "-bmax/--backoff-max has no effect with --no-mail"),
    (["--no-mail", "--pysendmail", "p"], "--pysendmail has no effect with --no-mail"),
    (["--notify-command", "true", "--pysendmail", "p"],
     "--pysendmail has no effect with --notify-command"),
    (["-a", "127.0.0.1:9", "-a", "[::1]:9", "-p", "80"],
     "-p/--port has no effect: every -a/--address names its own port"),
    (["--until", "2026-11-24"], "--since and --until only go with --summary"),
    (["--log-file", ""], "--log-file: empty path"),
    (["--state-file", ""], "--state-file: empty path"),
    (["--summary", "--log-file", "a\0b"], "--log-file: the path contains a NUL character"),
]


@pytest.mark.parametrize("args, message", REFUSED, ids=[" ".join(a)[:40] for a, _ in REFUSED])
def test_options_the_run_would_ignore_are_refused(args, message):
    assert usage_error(*args) == message


ACCEPTED = [
    ["-a", "127.0.0.1:9", "-i", "5", "-t", "1", "-m", "0", "--no-mail", "--heartbeat", "5",
     "--log-file", LOG, "--state-file", "s", "--metrics-port", "9100", "--ping-url", URL, "-q"],
    ["-a", "127.0.0.1", "-p", "9", "-bmin", "1", "-bmax", "2", "-bstep", "1",
     "--notify-command", "true"],
    ["-a", "127.0.0.1:9", "-a", "::1", "-p", "9", "--pysendmail", "p"],
    ["-a", "127.0.0.1:9", "-t", "1", "-q", "--once"],
    ["-a", "127.0.0.1:9", "-p", "9", "-a", "::1", "--once"],
    ["-a", "127.0.0.1:9", "--test-mail", "--pysendmail", "p", "-q"],
    ["-a", "127.0.0.1:9", "--test-mail", "--notify-command", "true"],
]


@pytest.mark.parametrize("args", ACCEPTED, ids=[" ".join(a)[-40:] for a in ACCEPTED])
def test_meaningful_combinations_run(args):
    assert run_main(*args) == (RAN, "", "")


# -- fuzzing: any command line ends in 0, 1 or 2 with at most one line of error -------------------

def _options():
    with_value, flags = [], []
    for action in program.build_parser()._actions:
        (flags if action.nargs == 0 else with_value).extend(action.option_strings)
    return with_value, flags


WITH_VALUE, FLAGS = _options()
FITTING = st.sampled_from(["1", "2", "5", "30", "0.5", "60"])
NUMBER_TEXT = st.one_of(FITTING, FITTING, st.floats().map(repr), st.integers().map(str),
                        st.sampled_from(["0", "-0", "1e-320", "1e309", "nan", "-inf", " 5 ", "1_0",
                                         "0x10", "2147484", "86400", "0.01", "٣"]))
TEXT = st.one_of(st.text(max_size=20), st.sampled_from(
    ["", " ", "-", "--", "-x", "127.0.0.1", "127.0.0.1:9", "[::1]:9", "::1", "fe80::1%lo", "0",
     "\udcff", "\x1b[2J", "a\nb", "\u202e", "x" * 300]))
SECRETS = st.sampled_from(["http://u:%s@127.0.0.1/%s" % (SECRET, SECRET),
                           "https://127.0.0.1:9/%s?k=%s" % (SECRET, SECRET),
                           "http://u:%s@127.0.0.1:99999/" % SECRET, "ftp://%s@h/x" % SECRET,
                           "http://h/%s x" % SECRET, "http://h/é%s" % SECRET,
                           "curl -fsS https://h/%s" % SECRET, "%s\0" % SECRET])
DATES = st.sampled_from(["2026-11-23", "2026-11-24", "2026-11-24 12:00", "2026-11-25 00:00:01",
                         "24.11.2026", "2026-02-30", "", "x"])
NUMERIC = {"-i", "--interval", "-t", "--timeout", "-m", "--min-interruption", "-bmin",
           "--backoff-min", "-bmax", "--backoff-max", "-bstep", "--backoff-step", "--heartbeat",
           "--ping-interval", "-p", "--port", "--metrics-port"}


def _value(option, log_files):
    if option == "--log-file":
        return st.sampled_from(log_files)
    if option in ("--since", "--until"):
        return DATES
    if option in ("--ping-url", "--notify-command"):
        return st.one_of(SECRETS, TEXT)
    return NUMBER_TEXT if option in NUMERIC else TEXT


@st.composite
def command_lines(draw, log_files):
    """A run's usual start, then options from the parser with values fit to provoke them."""
    argv = draw(st.sampled_from([[], ["-a", "127.0.0.1:9"], ["--once", "-a", "::1"],
                                 ["--test-mail"],
                                 ["--summary", "--log-file", log_files[0]],
                                 ["--summary", "--log-file", log_files[1]]]))
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 3)) == 0:
            argv.append(draw(st.sampled_from(FLAGS)))
        else:
            option = draw(st.sampled_from(WITH_VALUE))
            value = draw(_value(option, log_files))
            argv += [option + "=" + value] if draw(st.booleans()) else [option, value]
    if draw(st.booleans()):                  # a stray value or option, where it lands
        argv.insert(draw(st.integers(0, len(argv))),
                    draw(TEXT.filter(lambda word: not word.startswith("--l"))))
    return argv


@pytest.fixture(scope="module")
def log_files(tmp_path_factory):
    """The fuzzer's log files; it runs in their folder, so that the files that the command lines
    name (--html, --state-file ...) land there and not in the folder pytest was started from."""
    folder = tmp_path_factory.mktemp("fuzz")
    log = folder / "events.jsonl"
    log.write_text('{"time": "2026-11-24T10:00:00+00:00", "event": "start", "version": "2.0.0"}\n'
                   '{"time": "2026-11-24T10:05:00+00:00", "event": "stop", "signal": "SIGTERM"}\n'
                   'not json\n')
    started_in = os.getcwd()
    os.chdir(folder)
    try:
        yield [str(log), str(folder / "missing.jsonl"), str(folder)]
    finally:
        os.chdir(started_in)


@settings(max_examples=400, deadline=timedelta(seconds=2),
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_command_line_ends_in_a_status_and_at_most_one_error_line(log_files, data):
    argv = data.draw(command_lines(log_files))
    status, out, err = run_main(*argv)
    event("exit %s" % status)       # --hypothesis-show-statistics shows how the runs ended
    assert status in (0, 1, 2, RAN), (argv, status, out, err)
    assert SECRET not in out + err, (argv, out, err)
    assert err == "" or err.endswith("\n"), (argv, err)
    lines = err.splitlines()
    # one line at most, but for a summary of several logs: a warning for each it cannot read
    assert len(lines) <= 1 or ("--summary" in argv and all(
        " WARNING " in line for line in lines[:-1])), (argv, err)
    assert all(program.printable(line) == line for line in lines), (argv, err)
    if status == 2:
        assert out == "" and err.startswith("pyNetConnMon.py: error: "), (argv, out, err)
    elif status == 1:         # --summary: the log it reads, or a report it writes (--html, --csv)
        assert re.search(r" ERROR cannot (read event log|write (HTML report|CSV)) ", err), (
            argv, err)
    elif status == RAN:
        assert (out, err) == ("", ""), (argv, out, err)


# -- hostile numbers and dates: ASCII digits only, a clear line, exit 2 ---------------------------

@pytest.mark.parametrize("value", ["\uff10.\uff15", "1_0", " 1", "1 ", "\u0661", "0x10", "1e"])
def test_a_number_is_written_in_ascii_digits(value):
    from harness import run_main
    assert run_main("-a", "127.0.0.1", "-i", value) == (
        2, "", "pyNetConnMon.py: error: argument -i/--interval: %r is not a number\n" % value)


@pytest.mark.parametrize("value, message", [
    ("\uff12\uff10\uff12\uff16-01-01", "is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]' "
                                       "(local time)"),
    ("2026-01-01\u200e", "is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]' (local time)"),
    ("0001-01-01", "is outside the dates this system can show"),
    ("9999-12-31", "is outside the dates this system can show"),
    ("2026-02-30", "is not a valid date (day is out of range for month)"),
])
def test_a_hostile_date_is_refused_in_one_line(tmp_path, value, message):
    from harness import run_main
    log = tmp_path / "events.jsonl"
    log.write_text("")
    assert run_main("--summary", "--log-file", str(log), "--until", value) == (
        2, "", "pyNetConnMon.py: error: --until: %r %s\n" % (value, message))


GONE_FOLDER_RUNS = [
    (["--summary", "--log-file", "{log}", "--html", "r.html"], "--html r.html"),
    (["--summary", "--log-file", "{log}", "--csv", "r.csv"], "--csv r.csv"),
    (["--summary", "--log-file", "rel.jsonl"], "--log-file rel.jsonl"),
    (["--discard-pending", "--state-file", "r.json"], "--state-file r.json"),
    (["-a", "127.0.0.1:{port}", "--gateway", "none", "--log-file", "{log}", "--state-file",
      "rel.json"], "--state-file rel.json"),
    (["-a", "127.0.0.1:{port}", "--gateway", "none", "--log-file", "{log}", "--state-file",
      "{state}", "--pysendmail", "pySendMail"], "--pysendmail pySendMail"),
]


@pytest.mark.parametrize("args, named", GONE_FOLDER_RUNS, ids=[named for _, named in
                                                                GONE_FOLDER_RUNS])
def test_a_relative_path_in_a_deleted_current_folder_is_one_error_line(tmp_path, args, named):
    log = tmp_path / "base.jsonl"
    log.write_text("")
    gone = tmp_path / "gone"
    gone.mkdir()
    # the shell stands in the folder as it is deleted, as `cd W/g && rmdir W/g` leaves one
    result = run(*[arg.format(log=log, port=closed_port(), state=tmp_path / "state.json")
                   for arg in args],
                 prefix=["sh", "-c", 'cd "$0" && rmdir "$0" && exec "$@"', gone])
    assert (result.returncode, result.stdout) == (1, "")
    assert re.fullmatch(r"\S+ \S+ ERROR %s is a relative path, and the current folder no "
                        r"longer exists: give an absolute path, or start from a folder that "
                        r"exists\n" % re.escape(named), result.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["base.jsonl"]


@pytest.mark.parametrize("args, option", [
    (["--summary", "--log-file", "{odd}/l.jsonl"], "--log-file"),
    (["--summary", "--log-file", "{log}", "--csv", "{odd}/r.csv"], "--csv"),
    (["--discard-pending", "--state-file", "{odd}/s.json"], "--state-file"),
])
def test_a_utf8_path_that_an_euc_jp_locale_cannot_write_is_one_error_line(tmp_path, make_locale,
                                                                          args, option):
    # Python reads the command line with the C library's EUC-JP, and writes names with its
    # own euc_jp codec, which cannot write what the first made of these UTF-8 bytes
    odd = tmp_path / "ünï-😀"
    odd.mkdir()
    (odd / "l.jsonl").write_text("")
    (tmp_path / "base.jsonl").write_text("")
    result = subprocess.run(
        [*python_command(), *[arg.format(odd=odd, log=tmp_path / "base.jsonl") for arg in args]],
        capture_output=True, text=True, errors="replace", timeout=15, stdin=subprocess.DEVNULL,
        env=child_env(make_locale("ja_JP", "EUC-JP")))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("pyNetConnMon.py: error: %s: the path cannot be handed to the "
                             "system in this locale's encoding (euc_jp): run in a UTF-8 locale "
                             "(LC_ALL=C.UTF-8) or with PYTHONUTF8=1\n" % option)
