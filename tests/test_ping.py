"""--ping-url: the pure schedule and health logic, and a running monitor pinging a loopback
server."""
import http.client
import http.server
import socket
import threading
import time
import urllib.error

import pytest

import pyNetConnMon as program
from fakes import FakePingSender, Run
from harness import (LOOPBACK, RAN, Listener, closed_port, run_main, start_monitor,
                     wait_until)


# -- PingSchedule and PingHealth: decisions with an injected clock ------------------------------

def test_the_first_ping_is_due_at_the_first_up_round():
    assert program.PingSchedule(60).due(5.0, network_up=True)


def test_no_ping_is_due_while_the_network_is_down():
    schedule = program.PingSchedule(60)
    assert not schedule.due(5.0, network_up=False)
    schedule.started(5.0)
    assert not schedule.due(500.0, network_up=False)


def test_the_next_ping_is_due_one_interval_after_the_last_one_started():
    schedule = program.PingSchedule(60)
    schedule.started(5.0)
    assert not schedule.due(64.9, network_up=True)
    assert schedule.due(65.0, network_up=True)


def test_a_ping_is_due_at_once_when_the_network_comes_back_after_an_interval():
    schedule = program.PingSchedule(60)
    schedule.started(5.0)
    assert not schedule.due(100.0, network_up=False)
    assert schedule.due(100.2, network_up=True)


def test_health_tells_the_first_failure_of_a_stretch_and_the_recovery_only():
    health = program.PingHealth()
    outcomes = [True, False, False, False, True, True, False, True]
    assert [health.record(ok) for ok in outcomes] == [
        None, "failed", None, None, "recovered", None, "failed", "recovered"]


# -- URL checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/ping/abc", "https://hc-ping.com/uuid",
                                 "HTTPS://example.org", "http://[::1]:3001/api/push/x?status=up"])
def test_http_and_https_urls_are_accepted(url):
    assert program.ping_url_problem(url) is None


@pytest.mark.parametrize("url, problem", [
    ("ftp://example.org/x", "not an http:// or https:// URL"),
    ("example.org/ping", "not an http:// or https:// URL"),
    ("http:///path", "has no host"),
    ("http://example.org:99999/", "port is not a number from 0 to 65535"),
    ("http://example.org/a b", "contains spaces or control characters"),
])
def test_other_urls_are_refused(url, problem):
    assert problem in program.ping_url_problem(url)


def test_logs_show_the_ping_url_without_its_secret_path_or_password():
    assert (program.ping_url_for_people("https://user:pw@hc-ping.com:443/1234-secret?x=1")
            == "https://hc-ping.com:443/...")


def test_ping_errors_read_as_short_reasons():
    import urllib.error
    describe_http = program.describe_ping_error
    # the status by its standard phrase: a server (or proxy) that echoes the request in its own
    # phrase would put the URL's secret into the log
    assert describe_http(urllib.error.HTTPError("u", 503, "", {}, None)) == \
        "HTTP 503 Service Unavailable"
    assert describe_http(urllib.error.HTTPError(
        "u", 503, "see GET /r/0000-secret HTTP/1.1", {}, None)) == "HTTP 503 Service Unavailable"
    assert describe_http(urllib.error.HTTPError("u", 599, "a b", {}, None)) == "HTTP 599"
    assert describe_http(http.client.BadStatusLine("HTTP/1.1 0000-secret")) == \
        "the answer is not HTTP"
    describe, error = program.describe_ping_error, urllib.error.URLError
    assert describe(error(ConnectionRefusedError(111, "x"))) == "refused"
    assert describe(error(program.socket.timeout("t"))) == "timeout"
    assert program.describe_ping_error(program.socket.timeout("read")) == "timeout"


@pytest.mark.parametrize("arguments, message", [
    (["--ping-url", "ftp://127.0.0.1/x"], "--ping-url: not an http:// or https:// URL"),
    (["--ping-url", "http://127.0.0.1:9/", "--ping-interval", "0"], "argument --ping-interval: "
                                                                     "0 must be >= 0.1"),
    (["--ping-url", "http://127.0.0.1:9/", "--ping-interval", "inf"],
     "argument --ping-interval: 'inf' is not a finite number"),
    (["--ping-interval", "30"], "--ping-interval needs --ping-url"),
])
def test_bad_ping_options_are_usage_errors(tmp_path, arguments, message):
    assert run_main("-a", "127.0.0.1:9", "--no-mail", "--state-file", tmp_path / "state.json",
                    *arguments) == (2, "", "pyNetConnMon.py: error: %s\n" % message)


def test_a_ping_url_from_the_environment_with_a_bad_url_is_a_usage_error_naming_it(
        tmp_path, monkeypatch):
    monkeypatch.setenv("PYNETCONNMON_PING_URL", "ftp://127.0.0.1/0000-secret")
    assert run_main("-a", "127.0.0.1:9", "--no-mail", "--state-file", tmp_path / "state.json") \
        == (2, "", "pyNetConnMon.py: error: PYNETCONNMON_PING_URL: not an http:// or https:// "
                   "URL\n")


def test_a_ping_url_in_the_environment_does_not_concern_once(monkeypatch):
    monkeypatch.setenv("PYNETCONNMON_PING_URL", "ftp://127.0.0.1/0000-secret")
    assert run_main("--once", "-a", "127.0.0.1:9")[0] == RAN


# -- a running monitor and a loopback ping endpoint: the real request, its errors, its thread ---

class PingEndpoint:
    """A loopback HTTP server that records the time of every request and answers `status`."""

    def __init__(self, status=200, hold=0.0):
        self.status = status
        self.hold = hold             # seconds each answer is held back (a slow endpoint)
        self.hits = []               # (time.time(), path, user agent)
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with endpoint._lock:
                    endpoint.hits.append((time.time(), self.path, self.headers["User-Agent"]))
                    endpoint.in_flight += 1
                    endpoint.most_in_flight = max(endpoint.most_in_flight, endpoint.in_flight)
                try:
                    time.sleep(endpoint.hold)
                    self.send_response(endpoint.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                finally:
                    with endpoint._lock:
                        endpoint.in_flight -= 1

            def log_message(self, format, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass         # the monitor stopped while an answer was held back

        self.server = Server((LOOPBACK, 0), Handler)
        self.url = "http://%s:%d/ping/0000-secret" % (LOOPBACK, self.server.server_port)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def hit_times(self):
        with self._lock:
            return [hit[0] for hit in self.hits]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    with Listener() as listener:
        yield listener


@pytest.fixture
def endpoint():
    server = PingEndpoint()
    yield server
    server.close()


def pinging_monitor(tmp_path, target, url, interval="0.1", timeout="0.2", ping_interval="0.1"):
    return start_monitor(tmp_path, "-a", target.address, "-i", interval, "-t", timeout, "-m", "0.5",
                         "--no-mail", "--ping-url", url, "--ping-interval", ping_interval)


def test_a_failing_endpoint_warns_once_without_the_secret_and_once_when_it_recovers(
        tmp_path, target, endpoint):
    endpoint.status = 503
    with pinging_monitor(tmp_path, target, endpoint.url) as monitor:
        failed = monitor.wait_for_event("ping_failed")
        failing_since = len(endpoint.hit_times())
        wait_until(lambda: len(endpoint.hit_times()) >= failing_since + 2, 5, "two more failures")
        endpoint.status = 200
        recovered = monitor.wait_for_event("ping_ok")
        assert monitor.terminate() == 0
    assert failed["reason"] == "HTTP 503 Service Unavailable"
    assert failed["url"] == recovered["url"] == "http://%s:%d/..." % (
        LOOPBACK, endpoint.server.server_port)
    assert {(path, agent) for _, path, agent in endpoint.hits} == {
        ("/ping/0000-secret", "pyNetConnMon/" + program.VERSION)}
    names = [event["event"] for event in monitor.events()]
    assert (names.count("ping_failed"), names.count("ping_ok")) == (1, 1)
    warnings = [line for line in monitor.stderr_lines if "WARNING" in line]
    assert len(warnings) == 1 and "ping to http://127.0.0.1" in warnings[0], warnings
    assert "0000-secret" not in monitor.output()
    assert sum("ping ok again" in line for line in monitor.stdout_lines) == 1


def test_the_ping_url_from_the_environment_is_pinged_and_kept_off_the_command_line(
        tmp_path, target, endpoint):
    with start_monitor(tmp_path, "-a", target.address, "-i", "0.1", "-t", "0.2", "--no-mail",
                       "--ping-interval", "0.1",
                       env={"PYNETCONNMON_PING_URL": endpoint.url}) as monitor:
        wait_until(endpoint.hit_times, 5, "a ping")
        with open("/proc/%d/cmdline" % monitor.pid, "rb") as command_line:
            assert b"0000-secret" not in command_line.read()
        assert monitor.terminate() == 0
    assert {path for _, path, _ in endpoint.hits} == {"/ping/0000-secret"}
    assert "pinging http://%s:%d/... every 0.1 s" % (LOOPBACK, endpoint.server.server_port) \
        in monitor.output()


def test_an_endpoint_that_refuses_is_a_ping_failed_refused(tmp_path, target):
    url = "http://%s:%d/ping" % (LOOPBACK, closed_port())        # nothing listens there
    with pinging_monitor(tmp_path, target, url) as monitor:
        failed = monitor.wait_for_event("ping_failed")
        assert monitor.terminate() == 0
    assert failed["reason"] == "refused"


def test_a_slow_endpoint_never_delays_a_round_and_gets_one_request_at_a_time(tmp_path, target):
    slow = PingEndpoint(hold=0.8)           # answers within the monitor's 1.5 s timeout, slowly
    try:
        with pinging_monitor(tmp_path, target, slow.url, interval="0.05", timeout="1.5",
                             ping_interval="0.1") as monitor:
            first = wait_until(slow.hit_times, 5, "the first ping")[0]
            target.stop()
            monitor.wait_for_event("down", timeout=3)
            # noticed while the first ping is still held: rounds that waited for it could not
            assert time.time() < first + 0.8, "a round waited for the ping"
            target.start()
            monitor.wait_for_event("up", timeout=5)
            wait_until(lambda: len(slow.hit_times()) >= 2, 5, "two slow pings")
            assert monitor.terminate() == 0
        assert slow.most_in_flight == 1
        assert "ping_failed" not in [event["event"] for event in monitor.events()]
    finally:
        slow.close()


# -- the monitor's pings on the fake clock (fakes.FakePingSender): when, and what is told ---------

def http_503(sent):
    return urllib.error.HTTPError("url", 503, "Service Unavailable", {}, None)


def refused(sent):
    return urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))


def ping_run(tmp_path, outages=(), stop_at=2.0, failure=lambda sent: None, answer_time=0.05,
             interval=0.2, ping_interval=0.3):
    run = Run(tmp_path, list(outages), stop_at, interval=interval, min_interruption=0.5,
              ping_interval=ping_interval, ping=lambda clock: FakePingSender(
                  clock, failure=failure, answer_time=answer_time))
    assert run.run() == "SIGTERM"
    return run


def ping_lines(run):
    return [line for line in run.console_lines() if line.startswith(("ping", "WARNING ping"))]


def test_pings_come_once_per_ping_interval_while_up_not_once_per_round(tmp_path):
    # rounds every 0.1 s (each takes 0.01), a ping due 0.3 s after the last: it goes out with
    # the first round at or after that
    run = ping_run(tmp_path, stop_at=1.5, interval=0.1, ping_interval=0.3)
    assert [round(t, 2) for t in run.ping.sent] == [0.01, 0.31, 0.71, 1.11, 1.41]
    assert [e for e in run.events() if e["event"].startswith("ping")] == []
    assert ping_lines(run) == []


def test_no_ping_goes_out_while_the_network_is_down_and_one_at_the_first_round_after(tmp_path):
    run = ping_run(tmp_path, outages=[(1.0, 3.0)], stop_at=4.0)
    assert [round(t, 2) for t in run.ping.sent] == [0.01, 0.41, 0.81, 3.01, 3.41, 3.81]
    assert [e["event"] for e in run.events()] == ["start", "down", "up", "report_sent", "stats",
                                                  "stop"]


def test_a_failing_endpoint_warns_once_per_stretch_and_once_when_it_recovers_on_the_fake_clock(
        tmp_path):
    def failure(sent):       # failing before 1 s and from 2 s to 3 s
        return http_503(sent) if sent < 1.0 or 2.0 <= sent < 3.0 else None
    run = ping_run(tmp_path, stop_at=4.0, failure=failure)
    assert [round(t, 2) for t in run.ping.sent] == [0.01, 0.41, 0.81, 1.21, 1.61, 2.01, 2.41,
                                                    2.81, 3.21, 3.61]
    assert [(e["event"], e.get("reason"))
            for e in run.events() if e["event"].startswith("ping")] == [
        ("ping_failed", "HTTP 503 Service Unavailable"), ("ping_ok", None),
        ("ping_failed", "HTTP 503 Service Unavailable"), ("ping_ok", None)]
    warning = ("WARNING ping to http://192.0.2.7:8080/... failed: HTTP 503 Service Unavailable; "
               "trying again every 0.3 s, quietly until it works")
    again = "ping ok again (http://192.0.2.7:8080/...)"
    assert ping_lines(run) == [warning, again, warning, again]


def test_an_endpoint_that_refuses_warns_once_and_the_monitor_carries_on(tmp_path):
    run = ping_run(tmp_path, outages=[(2.1, 3.0)], stop_at=4.0, failure=refused)
    assert [round(t, 2) for t in run.ping.sent] == [0.01, 0.41, 0.81, 1.21, 1.61, 2.01, 3.01, 3.41,
                                                    3.81]
    assert [(e["event"], e.get("reason")) for e in run.events()] == [
        ("start", None), ("ping_failed", "refused"), ("down", "refused"), ("up", None),
        ("report_sent", None), ("stats", None), ("stop", None)]
    assert len([line for line in run.console_lines() if "WARNING" in line]) == 1


def test_a_slow_endpoint_gets_one_request_at_a_time(tmp_path):
    run = ping_run(tmp_path, stop_at=4.0, answer_time=0.8, ping_interval=0.1)
    gaps = [later - earlier for earlier, later in zip(run.ping.sent, run.ping.sent[1:])]
    assert len(gaps) >= 3 and min(gaps) >= 0.8, gaps
    assert [round(t, 2) for t in run.prober.rounds[:6]] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


# -- PingSender against hostile loopback servers, in process: the limit, redirects, proxies ----

class DrippingEndpoint:
    """Answers each request with a status line, then one byte of a header every 0.05 s (or,
    with `body`, its headers and then one byte of the body every 0.05 s): each read gets a byte
    well within the ping's timeout, so only a limit on the whole ping ends it."""

    def __init__(self, body=False):
        self.head = (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" if body
                     else b"HTTP/1.1 200 OK\r\nX-Drip: ")
        self.server = socket.create_server((LOOPBACK, 0))
        self.server.settimeout(0.1)
        self.url = "http://%s:%d/ping/0000-secret" % (LOOPBACK, self.server.getsockname()[1])
        self.requests = 0
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.closing.is_set():
            try:
                connection, _ = self.server.accept()
            except socket.timeout:
                continue
            self.requests += 1
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection):
        with connection:
            try:
                connection.recv(4096)
                connection.sendall(self.head)
                for _ in range(400):                 # 20 s at most
                    if self.closing.wait(0.05):
                        return
                    connection.sendall(b"x")
            except OSError:
                return                               # the monitor cut the ping

    def close(self):
        self.closing.set()
        self.thread.join(2)
        self.server.close()


def pings_until(pinger, enough, seconds):
    """Runs the monitor's part of pinging (after each round: maybe_ping, then news) every 0.02 s
    with the network up, until enough(what was told) or `seconds` pass; returns what was told."""
    told = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pinger.maybe_ping(time.monotonic(), network_up=True)
        told += pinger.news(network_down=False)
        if enough(told):
            return told
        time.sleep(0.02)
    raise AssertionError("after %s s the pings told only %r" % (seconds, told))


@pytest.mark.parametrize("body", [False, True], ids=["headers", "body"])
def test_a_ping_answered_a_byte_at_a_time_is_cut_at_its_limit_and_the_next_one_goes_out(body):
    endpoint = DrippingEndpoint(body)
    try:
        sender = program.PingSender(endpoint.url, timeout=0.2, on_done=lambda: None)
        sender.limit = 0.5
        pinger = program.Pinger(sender, program.PingSchedule(0.1))
        told = pings_until(pinger, lambda told: told and endpoint.requests >= 2, 5)
        assert told == [("failed", "no complete answer within 0.5 s")]
    finally:
        endpoint.close()


def test_the_limit_on_a_whole_ping_is_ten_seconds_or_four_timeouts():
    assert program.PingSender("http://127.0.0.1:1/", 2.0, lambda: None).limit == 10.0
    assert program.PingSender("http://127.0.0.1:1/", 5.0, lambda: None).limit == 20.0


class RedirectingEndpoint:
    """/p redirects to `location`; /p/ asks for a password and answers 200 when it is given.
    Records (path, Authorization) of each request."""

    def __init__(self, location="/p/"):
        self.location = location
        self.seen = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                endpoint.seen.append((self.path, self.headers["Authorization"]))
                if self.path == "/p":
                    self.send_response(301)
                    self.send_header("Location", endpoint.location)
                elif self.headers["Authorization"] is None:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="ping"')
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def one_ping(url):
    """The reason one ping to `url` failed, or None."""
    sender = program.PingSender(url, timeout=2.0, on_done=lambda: None)
    sender.submit()
    return wait_until(sender.take_results, 5, "the ping's outcome")[0]


@pytest.fixture
def no_proxy_set(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


AUTHORIZATION = "Basic dXNlcjpTM0NSRVQ="        # user:S3CRET


def test_a_redirect_on_the_same_host_and_port_keeps_the_password(no_proxy_set):
    endpoint = RedirectingEndpoint()
    try:
        assert one_ping("http://user:S3CRET@%s:%d/p" % (LOOPBACK, endpoint.port)) is None
        assert endpoint.seen == [("/p", AUTHORIZATION), ("/p/", AUTHORIZATION)]
    finally:
        endpoint.close()


def test_a_redirect_to_another_port_gets_no_password(no_proxy_set):
    other = RedirectingEndpoint()
    endpoint = RedirectingEndpoint("http://%s:%d/p/" % (LOOPBACK, other.port))
    try:
        assert one_ping("http://user:S3CRET@%s:%d/p" % (LOOPBACK, endpoint.port)) == \
            "HTTP 401 Unauthorized"
        assert endpoint.seen == [("/p", AUTHORIZATION)] and other.seen == [("/p/", None)]
    finally:
        endpoint.close()
        other.close()


@pytest.mark.parametrize("scheme", ["ftp", "file"])
def test_a_redirect_to_a_url_not_http_is_refused_without_quoting_it(no_proxy_set, scheme):
    with socket.create_server((LOOPBACK, 0)) as elsewhere:
        elsewhere.setblocking(False)
        location = "%s://%s:%d/etc/passwd" % (scheme, LOOPBACK, elsewhere.getsockname()[1])
        endpoint = RedirectingEndpoint(location)
        try:
            reason = one_ping("http://user:S3CRET@%s:%d/p" % (LOOPBACK, endpoint.port))
        finally:
            endpoint.close()
        assert reason == "HTTP 301 redirect to a URL that is not http or https"
        with pytest.raises(BlockingIOError):
            elsewhere.accept()                       # nobody came: no FTP login


def test_a_ping_through_a_dead_proxy_says_so_without_its_password(no_proxy_set, monkeypatch):
    proxy = closed_port()
    monkeypatch.setenv("http_proxy", "http://puser:PPASS@%s:%d" % (LOOPBACK, proxy))
    endpoint = RedirectingEndpoint()
    try:
        reason = one_ping("http://%s:%d/p/" % (LOOPBACK, endpoint.port))
    finally:
        endpoint.close()
    assert reason == "refused (through the proxy %s:%d)" % (LOOPBACK, proxy)
    assert endpoint.seen == []
