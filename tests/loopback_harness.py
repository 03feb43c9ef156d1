"""Loopback-only helpers for the metrics, ping and log rotation tests (no conftest needed).

Everything here binds or connects to 127.0.0.1 only. Every wait has a deadline.
"""
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime

from harness import Listener, read_events, wait_until  # noqa: F401 (wait_until: for the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = os.path.join(ROOT, "pyNetConnMon.py")
LOOPBACK = "127.0.0.1"


def load_program():
    """The program as a module, for its pure parts."""
    spec = importlib.util.spec_from_file_location("pyNetConnMon_under_test", PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port():
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class TcpListener(Listener):
    """A probe target on loopback: accepts and closes. stop() makes connects 'refused'."""

    def __init__(self):
        super().__init__(LOOPBACK)


def _clean_environment():
    env = dict(os.environ)
    for name in list(env):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[name]
    env["PYTHONUNBUFFERED"] = "1"
    return env


class MonitorProcess:
    """pyNetConnMon as a subprocess, with its console in files and its event log at hand."""

    def __init__(self, tmp_path, *arguments, log_file=True):
        self.tmp_path = tmp_path
        self.log_path = str(tmp_path / "events.jsonl") if log_file else None
        command = [sys.executable, "-u", PROGRAM, "--state-file", str(tmp_path / "state.json")]
        if self.log_path:
            command += ["--log-file", self.log_path]
        command += list(arguments)
        assert "-a" in command, "always give a loopback target; never the default 8.8.8.8"
        self.stdout_path = tmp_path / "stdout.txt"
        self.stderr_path = tmp_path / "stderr.txt"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, cwd=str(tmp_path),
                                            env=_clean_environment())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stdout(self):
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self):
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def events(self, path=None):
        return read_events(path or self.log_path)

    def wait_for_event(self, name, count=1, timeout=5.0, path=None):
        """The `count`-th event called `name`."""
        def found():
            matching = [event for event in self.events(path) if event["event"] == name]
            return matching[count - 1] if len(matching) >= count else None
        return wait_until(found, timeout, "event %r #%d; stdout so far:\n%s" % (
            name, count, self.stdout()))

    def wait_for_output(self, text, timeout=5.0):
        return wait_until(lambda: text in self.stdout(), timeout,
                          "%r on the console; stdout so far:\n%s" % (text, self.stdout()))

    def signal(self, signum):
        self.process.send_signal(signum)

    def stop(self, timeout=5.0):
        """SIGTERM, and the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def event_time(event):
    """The event's wall-clock time as Unix seconds (millisecond precision)."""
    return datetime.fromisoformat(event["time"]).timestamp()


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_request(url, method="GET", timeout=3.0):
    """(status, headers, body) from a loopback URL; HTTP errors are answers, not exceptions."""
    assert url.startswith("http://%s:" % LOOPBACK)
    request = urllib.request.Request(url, method=method)
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def run_program(tmp_path, *arguments, timeout=10.0):
    """Runs the program to its end (for usage errors and start failures)."""
    command = [sys.executable, "-u", PROGRAM, "--state-file", str(tmp_path / "state.json")]
    command += list(arguments)
    assert "-a" in command, "always give a loopback target; never the default 8.8.8.8"
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=_clean_environment(), cwd=str(tmp_path))
