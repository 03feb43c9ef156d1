"""The metrics endpoint against hostile clients: slow, many, oversized, under a low file limit.

Real sockets on 127.0.0.1 only. The endpoint alone (in this process) where a deadline or an
answer is checked; the monitor as a subprocess where its threads, files, memory, rounds and state
file are. /proc/PID/{status,fd,stat} tell what the monitor holds. Every loop has a count and a
deadline.
"""
import json
import os
import re
import select
import signal
import socket
import sys
import time

import pytest

import pyNetConnMon as program
from harness import (PROGRAM, Listener, MonitorProcess, closed_port, listening_socket, read_events,
                     run_program, wait_until)

LOOPBACK = "127.0.0.1"
HEAD_ONLY = b"GET /metrics HTTP/1.0\r\n"        # a request whose blank line never comes


# -- helpers: raw HTTP and what /proc says about the monitor --------------------------------------

def connect(port):
    return socket.create_connection((LOOPBACK, port), timeout=3)


def read_to_end(sock, limit=1 << 20):
    """What the server sends until it closes (b"<reset>" appended on a reset), at most `limit`."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data + b"<reset>"
        if not chunk:
            break
        data += chunk
    return data


def ask(port, request):
    """The whole answer to `request` (sent in full, then our side shut for writing)."""
    with connect(port) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass                 # the server refused before it had all: its answer is still there
        return read_to_end(sock)


def status_of(answer):
    """The status code of an HTTP answer, or None for no answer."""
    first = answer.split(b"\r\n", 1)[0].split(b" ")
    return int(first[1]) if len(first) > 2 and first[0].startswith(b"HTTP/") else None


def scrape_works(port):
    try:
        return status_of(ask(port, b"GET /metrics HTTP/1.0\r\n\r\n")) == 200
    except OSError:              # not listening yet
        return False


def proc_status(pid, field):
    """A number from /proc/PID/status, e.g. Threads, or VmRSS (in kB)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")     # utime + stime


def closed_by_server(sock):
    """True once the server has answered (503) or closed this connection."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        sock.recv(4096)
    except OSError:
        pass
    return True


@pytest.fixture
def endpoint():
    """start(request_timeout) -> an endpoint serving an empty board on a free port."""
    servers = []

    def start(request_timeout=program.METRICS_REQUEST_TIMEOUT):
        board = program.MetricsBoard(program.MetricsSnapshot())
        servers.append(program.start_metrics_server(LOOPBACK, closed_port(), board,
                                                    request_timeout=request_timeout))
        return servers[-1]
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def file_limit(soft, hard):
    """A command prefix that runs the rest of the command under RLIMIT_NOFILE soft:hard."""
    return [sys.executable, "-c", "import os, resource, sys; resource.setrlimit("
            "resource.RLIMIT_NOFILE, (%d, %d)); os.execv(sys.argv[1], sys.argv[1:])" % (soft, hard)]


def start_monitor(tmp_path, target, metrics_port, *extra, prefix=None):
    return MonitorProcess(["-a", target.address, "-i", "0.2", "-t", "0.2", "-m", "0.5", "--no-mail",
                           "--state-file", tmp_path / "state.json",
                           "--log-file", tmp_path / "events.jsonl",
                           "--metrics-port", str(metrics_port), *extra], prefix=prefix)


# -- a slow client: the deadline is for the whole request, not for each read ----------------------

def test_a_client_that_trickles_its_request_is_dropped_at_the_whole_request_deadline(endpoint):
    server = endpoint(request_timeout=0.5)
    trickle = HEAD_ONLY + b"X-Slow: " + b"a" * 60      # one byte every 0.05 s: 4.5 s of it
    with connect(server.server_port) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in trickle:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            if select.select([sock], [], [], 0.05)[0]:
                assert read_to_end(sock) in (b"", b"<reset>")      # dropped without an answer
                closed_after = time.monotonic() - started
                break
            if time.monotonic() - started > 3.0:
                break
    assert closed_after is not None, "still connected after 3 s of trickling"
    assert 0.45 <= closed_after < 1.5


def test_a_client_that_takes_its_answer_slowly_is_dropped_at_the_answer_deadline(endpoint):
    server = endpoint(request_timeout=0.5)
    big = b"x" * (16 << 20)          # far more than the socket buffers hold
    server.routes["/big"] = lambda: (200, "text/plain", big)
    with socket.socket() as sock:
        # before connect: no autotuning
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(3)
        sock.connect((LOOPBACK, server.server_port))
        sock.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        started = time.monotonic()
        received = 0
        while time.monotonic() - started < 3.0:         # 1 KiB every 0.05 s: 160 s for all of it
            try:
                chunk = sock.recv(1024)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
            time.sleep(0.05)
        closed_after = time.monotonic() - started
    assert received < len(big)
    assert 0.45 <= closed_after < 1.5


# -- many clients: a fixed cap, no thread and no descriptor per client ---------------------------

def test_clients_beyond_the_cap_cost_the_monitor_no_thread_and_no_descriptor(tmp_path):
    cap = program.METRICS_MAX_CONNECTIONS
    port = closed_port()
    with Listener() as target, start_monitor(tmp_path, target, port) as monitor:
        wait_until(lambda: scrape_works(port), 10, "the metrics endpoint")
        threads, fds = proc_status(monitor.pid, "Threads"), open_fds(monitor.pid)
        clients = []
        try:
            for _ in range(60):
                clients.append(connect(port))
                clients[-1].sendall(HEAD_ONLY)
            wait_until(lambda: sum(closed_by_server(c) for c in clients) >= 60 - cap, 5,
                       "all but %d of 60 clients answered 503 or closed" % cap)
            assert proc_status(monitor.pid, "Threads") == threads
            assert open_fds(monitor.pid) <= fds + cap + 2       # +2: a probe in flight
        finally:
            for client in clients:
                client.close()
        wait_until(lambda: scrape_works(port), 3, "a scrape once the clients are gone")
        assert monitor.terminate() == 0
    assert monitor.stderr_lines == []


def test_the_client_beyond_the_cap_takes_the_place_of_the_oldest_still_sending(endpoint):
    # idle connections (a slowloris, or stuck clients) must not lock the scraper out
    server = endpoint(request_timeout=5.0)
    held = []
    try:
        for _ in range(program.METRICS_MAX_CONNECTIONS):
            held.append(connect(server.server_port))
            held[-1].sendall(HEAD_ONLY)
            wait_until(lambda: len(server.clients) == len(held), 3, "the endpoint to take it")
        started = time.monotonic()
        assert status_of(ask(server.server_port, b"GET /metrics HTTP/1.0\r\n\r\n")) == 200
        assert status_of(read_to_end(held[0])) == 503
        assert time.monotonic() - started < 1.0
        assert [closed_by_server(client) for client in held[1:]] == [False] * (len(held) - 1)
    finally:
        for client in held:
            client.close()


def test_the_client_beyond_the_cap_takes_the_place_of_one_that_has_its_whole_answer(endpoint):
    server = endpoint(request_timeout=5.0)
    held = []
    try:
        for _ in range(program.METRICS_MAX_CONNECTIONS):     # each has its answer, and stays
            held.append(connect(server.server_port))
            held[-1].sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        wait_until(lambda: len(server.clients) == len(held) and all(
            client.received is client.answer is None for client in server.clients.values()), 3,
            "the endpoint to have answered every slot")
        assert status_of(ask(server.server_port, b"GET /metrics HTTP/1.0\r\n\r\n")) == 200
        assert [status_of(read_to_end(client)) for client in held] == [200] * len(held)
    finally:
        for client in held:
            client.close()


def test_the_client_beyond_the_cap_is_told_503_at_once_while_every_other_is_sent_its_answer():
    big = b"x" * 4000000                 # more than the sockets' buffers hold
    server = program.HttpEndpoint(LOOPBACK, 0, {"/big": lambda: (200, "text/plain", big)},
                                  timeout=5.0, max_connections=2).start()
    held = []
    try:
        for _ in range(2):                                  # each asks, and reads nothing
            held.append(connect(server.server_port))
            held[-1].sendall(b"GET /big HTTP/1.0\r\nHost: localhost\r\n\r\n")
        wait_until(lambda: len(server.clients) == 2 and all(
            client.answer is not None for client in list(server.clients.values())), 3,
            "the endpoint to be sending both answers")
        started = time.monotonic()
        with connect(server.server_port) as extra:
            answer = read_to_end(extra)
        assert time.monotonic() - started < 1.0
        assert status_of(answer) == 503
        assert b"\r\nX-Content-Type-Options: nosniff\r\n" in answer    # as every answer
    finally:
        for client in held:
            client.close()
        server.shutdown()
        server.server_close()


# -- oversized requests: refused after a few KiB, the rest never kept ----------------------------

@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /metrics?" + b"a" * 9000 + b" HTTP/1.0\r\n\r\n", 414),
    (HEAD_ONLY + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (HEAD_ONLY + b"X-Many: a\r\n" * 70 + b"\r\n", 431),
    (HEAD_ONLY + (b"X-Huge: " + b"a" * 60000 + b"\r\n") * 90 + b"\r\n", 431),
    (b"GET /metrics\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),     # TLS, or other noise
])
def test_an_oversized_or_malformed_request_is_refused(endpoint, request_bytes, status):
    server = endpoint()
    answer = ask(server.server_port, request_bytes)
    assert status_of(answer) == status, answer[:200]
    assert answer.endswith(b"\r\n\r\n%d %s\n" % (status, program.HTTP_REASONS[status].encode()))


def test_oversized_requests_do_not_grow_the_monitors_memory(tmp_path):
    port = closed_port()
    huge = HEAD_ONLY + (b"X-Huge: " + b"a" * 60000 + b"\r\n") * 90 + b"\r\n"     # 5.4 MB
    with Listener() as target, start_monitor(tmp_path, target, port) as monitor:
        wait_until(lambda: scrape_works(port), 10, "the metrics endpoint")
        assert status_of(ask(port, huge)) == 431           # a first one, for what it allocates
        rss = proc_status(monitor.pid, "VmRSS")
        for _ in range(10):
            assert status_of(ask(port, huge)) == 431
        assert proc_status(monitor.pid, "VmRSS") - rss < 1024, "kB"
        assert monitor.terminate() == 0


# -- the file limit: the endpoint never takes what the probes and the state file need ------------

def flood(port, clients, seconds):
    """`clients` connections that trickle a request, each one the server drops replaced by a new
    one, for `seconds`; returns how many connections were made."""
    def open_one():
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((LOOPBACK, port))
        return sock
    made = clients
    socks = [open_one() for _ in range(clients)]
    started = time.monotonic()
    try:
        for tick in range(1, int(seconds * 10) + 1):        # every 0.1 s:
            for sock in select.select(socks, [], [], 0)[0][:20]:    # up to 20 new connections
                sock.close()
                socks[socks.index(sock)] = open_one()
                made += 1
            for sock in socks:                                 # and one more byte on each
                try:
                    sock.send(b"G")
                except OSError:
                    pass
            time.sleep(max(0.0, started + tick * 0.1 - time.monotonic()))
    finally:
        for sock in socks:
            sock.close()
    return made


def state_heartbeat(path):
    try:
        return json.loads(path.read_text())["heartbeat"]
    except (OSError, ValueError, KeyError):
        return None


def test_a_flood_under_a_low_file_limit_costs_no_round_no_state_write_and_no_spin(tmp_path):
    port = closed_port()
    state = tmp_path / "state.json"
    with Listener() as target, start_monitor(tmp_path, target, port, "--heartbeat", "1",
                                             prefix=file_limit(64, 64)) as monitor:
        wait_until(lambda: scrape_works(port), 10, "the metrics endpoint")
        heartbeat = wait_until(lambda: state_heartbeat(state), 5, "a state file")
        cpu, started = cpu_seconds(monitor.pid), time.monotonic()
        # 2.0.0's endpoint never turned a client away (made == 200) and, within 2 to 6 s, ran
        # out of files for the state file
        made = flood(port, clients=200, seconds=2.0)
        cpu_share = (cpu_seconds(monitor.pid) - cpu) / (time.monotonic() - started)
        assert state_heartbeat(state) > heartbeat + 1.0, "a state write was missed"
        wait_until(lambda: scrape_works(port), 3, "a scrape once the flood is gone")
        assert monitor.terminate() == 0
    events = [event["event"] for event in read_events(tmp_path / "events.jsonl")]
    assert events == ["start", "stats", "stop"]             # no interruption that never happened
    assert monitor.stderr_lines == []                       # no EMFILE, no state file error
    assert cpu_share < 0.25
    assert made > 200                       # the endpoint did turn clients away


def run_with_file_limit(tmp_path, soft, hard, *arguments):
    return run_program("-a", "127.0.0.1:9", "--no-mail", "--state-file", tmp_path / "s",
                       *arguments, prefix=file_limit(soft, hard), timeout=10)


def test_a_file_limit_too_low_for_the_endpoint_and_its_reserve_is_a_one_line_error(tmp_path):
    port = closed_port()
    result = run_with_file_limit(tmp_path, 40, 40, "--metrics-port", str(port))
    needed = program.METRICS_MAX_CONNECTIONS + 5 + program.METRICS_FD_RESERVE
    assert result.returncode == 1
    assert re.fullmatch(r".* ERROR cannot serve metrics on 127\.0\.0\.1:%d: the open-file limit "
                        r"\(ulimit -n\) is 40 and (\d+) files are open; %d more are needed: "
                        r"raise the limit to at least (\d+) \(ulimit -n \2, or LimitNOFILE= in "
                        r"a systemd unit\)\n" % (port, needed), result.stderr), result.stderr
    in_use, least = re.search(r"and (\d+) files .* at least (\d+) ", result.stderr).groups()
    assert int(least) == int(in_use) + needed


@pytest.mark.parametrize("run, limit, needed", [
    (["--once"], 15, 14 + 2), (["--no-mail", "--state-file", "STATE"], 20, 14 + 8)])
def test_a_file_limit_too_low_for_the_targets_is_a_one_line_error_not_their_failure(
        tmp_path, run, limit, needed):
    # at 20 files, the 13th of 14 targets got no socket: "PARTIAL DOWN ... (EMFILE)", reported.
    # A connect each (no router: --gateway none), and files besides: 8 for the monitor's log,
    # state file and reports, 2 for --once
    with listening_socket() as port:
        targets = [arg for number in range(1, 15) for arg in ("-a", "127.0.0.%d" % number)]
        arguments = targets + ["-p", str(port), "--gateway", "none"] + [
            str(tmp_path / "s.json") if arg == "STATE" else arg for arg in run]
        refused = run_program(*arguments, prefix=file_limit(limit, limit), timeout=10)
        fits = run_program(*targets, "-p", str(port), "--gateway", "none", "--once",
                           prefix=file_limit(64, 64), timeout=10)
    # --once: neither up (0) nor down (1), so 3; the monitor: 1, as for any start it cannot make
    assert refused.returncode == (3 if "--once" in run else 1) and refused.stdout == ""
    assert re.fullmatch(r".*ERROR cannot watch 14 targets: the open-file limit \(ulimit -n\) is "
                        r"%d and \d+ files are open; %d more are needed: raise the limit to at "
                        r"least \d+ .*\n" % (limit, needed), refused.stderr), refused.stderr
    # the listener is on 127.0.0.1 alone: the others refuse, each said so, none lacks a socket
    lines = fits.stdout.splitlines()
    assert fits.returncode == 0 and lines[0].startswith("127.0.0.1:%d up " % port)
    assert lines[1:14] == ["127.0.0.%d:%d down refused" % (number, port) for number in range(2, 15)]


@pytest.mark.parametrize("targets, gateway, needed", [
    (["198.18.1.2", "[2001:db8::2]"], "auto", 2 + 1 + 8),
    (["198.18.1.2", "[2001:db8::2]"], "none", 2 + 8),
    (["a.example.test", "b.example.test", "198.18.1.2"], "none", 2 * 2 + 1 + 8)])
def test_the_files_a_round_needs_count_two_connects_for_a_name(monkeypatch, targets, gateway,
                                                                needed):
    # 40 names of two addresses each under ulimit -n 64 started, then told EMFILE as partial
    # outages; a name is taken at its usual two addresses (IPv4 and IPv6), at most four
    asked = []
    monkeypatch.setattr(program, "check_free_descriptors",
                        lambda count, what: asked.append((count, what)) or 1000)
    parsed = [program.parse_target(value, 53) for value in targets]
    assert program.check_descriptors_for_probes(parsed, gateway) == program.DOWN_CONNECTS_LIMIT
    assert asked == [(needed, "cannot watch %d targets" % len(targets))]


def test_a_low_soft_file_limit_is_raised_to_the_hard_one_for_the_endpoint(tmp_path):
    port = closed_port()
    with Listener() as target, start_monitor(tmp_path, target, port,
                                             prefix=file_limit(40, 4096)) as monitor:
        wait_until(lambda: scrape_works(port), 10, "the metrics endpoint")
        with open("/proc/%d/limits" % monitor.pid) as limits:
            line = next(line for line in limits if line.startswith("Max open files"))
        assert line.split()[3:5] == ["4096", "4096"]
        assert monitor.terminate() == 0


ENDPOINT_OUT_OF_FILES = """\
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import pyNetConnMon as program
server = program.start_metrics_server("127.0.0.1", int(sys.argv[2]),
                                      program.MetricsBoard(program.MetricsSnapshot()))
taken = []
try:
    while len(taken) < 10000:
        taken.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
print("out of files", flush=True)
signal.sigwait([signal.SIGUSR1])
for fd in taken:
    os.close(fd)
print("files free", flush=True)
signal.sigwait([signal.SIGUSR1])
"""


def test_an_endpoint_out_of_files_neither_spins_nor_stays_deaf(tmp_path):
    """accept() failing with EMFILE leaves the listener readable: 2.0.0 tried again at once."""
    port = closed_port()
    script = tmp_path / "endpoint.py"
    script.write_text(ENDPOINT_OUT_OF_FILES)
    with MonitorProcess([PROGRAM.parent, str(port)], script=script,
                        prefix=file_limit(256, 256)) as endpoint:
        endpoint.wait_for_line("^out of files$")
        clients = [connect(port) for _ in range(3)]          # they wait in the listen queue
        try:
            cpu, started = cpu_seconds(endpoint.pid), time.monotonic()
            time.sleep(0.3)                                  # the window CPU is measured in
            cpu_share = (cpu_seconds(endpoint.pid) - cpu) / (time.monotonic() - started)
            endpoint.proc.send_signal(signal.SIGUSR1)
            endpoint.wait_for_line("^files free$")
            wait_until(lambda: scrape_works(port), 3, "a scrape once files are free again")
        finally:
            for client in clients:
                client.close()
        assert endpoint.terminate() == -signal.SIGTERM
    assert cpu_share < 0.1
