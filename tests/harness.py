"""Run the program as a subprocess and watch what it does: output lines, event log, sockets.

MonitorProcess runs any script and knows nothing of pyNetConnMon's options; start_monitor() and
run_program() start pyNetConnMon itself. The one way to wait: wait_until() for any condition,
wait_for_event() for the event log, MonitorProcess.wait_for_line() for the console. Every wait
has a deadline and polls in small steps; every failure raises AssertionError showing what was
seen. Everything here binds and connects to loopback only.
"""
import atexit
import contextlib
import functools
import json
import marshal
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / 'pyNetConnMon.py'
LOOPBACK = '127.0.0.1'
POLL = 0.01


# -- how the children run pyNetConnMon -----------------------------------------------------------
# Compiling the 325 KB script is most of a start (0.17 s of `--version`, 0.07 s of it compiling),
# and the tests start it about 150 times. So the code is compiled once per test process and each
# child runs it as `python -u script` would: as __main__, with the script's __file__, sys.argv[0]
# and sys.path[0]. A script that is not a copy of the repository's is run as a file, and so is
# the repository's where a test is about the file itself (compiled=False).
RUNNER = """\
def run(code_file, script):
    import marshal, os, sys, __main__
    sys.argv[:3] = [script]
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    with open(code_file, 'rb') as stream:
        code = marshal.load(stream)
    del __main__.run
    __main__.__file__ = script
    exec(code, __main__.__dict__)
run(*__import__('sys').argv[1:3])
"""


class _CompiledProgram:
    """pyNetConnMon's code, compiled on first use into a file of a temporary folder."""

    def __init__(self):
        self.source = None
        self.path = None

    def code_file(self, script):
        """The file with the code of `script` if it is pyNetConnMon (the repository's, or a
        copy of it), else None."""
        if self.source is None:
            self.source = PROGRAM.read_bytes()
        try:
            with open(script, 'rb') as stream:
                if stream.read() != self.source:
                    return None
        except OSError:
            return None
        if self.path is None:
            folder = tempfile.mkdtemp(prefix='pyNetConnMon-code-')
            atexit.register(shutil.rmtree, folder, True)
            self.path = os.path.join(folder, 'pyNetConnMon.code')
            with open(self.path, 'wb') as stream:
                marshal.dump(compile(self.source, os.fspath(PROGRAM), 'exec'), stream)
        return self.path


_COMPILED = _CompiledProgram()


def python_command(script=PROGRAM, compiled=True):
    """[python, -u, ...] that runs `script` with the arguments that follow: pyNetConnMon (the
    repository's or a copy of it) from its compiled code unless `compiled` is false, any other
    script as a file. The repository's own program runs as its copy in _repository_view()."""
    script = os.path.abspath(script)
    if script == os.fspath(PROGRAM):
        script = _repository_view()
    code = _COMPILED.code_file(script) if compiled else None
    if code is None:
        return [sys.executable, '-u', script]
    return [sys.executable, '-u', '-c', RUNNER, code, script]


@functools.lru_cache(maxsize=None)
def _repository_view():
    """A copy of the repository's program in a folder of its own with an empty pySendMail/, as
    in a clone without the submodule. The program looks for pySendMail beside its real file (a
    link would lead it back to the repository), so no test can read, copy or mail through the
    owner's own config in the repository's pySendMail/ (sendMailConfig.json, their password)."""
    folder = tempfile.mkdtemp(prefix='pyNetConnMon-repo-')
    atexit.register(shutil.rmtree, folder, True)
    os.mkdir(os.path.join(folder, 'pySendMail'))
    copy = os.path.join(folder, PROGRAM.name)
    shutil.copy2(PROGRAM, copy)
    return copy


@functools.lru_cache(maxsize=None)
def _python3_folder():
    folder = tempfile.mkdtemp(prefix='pyNetConnMon-bin-')
    atexit.register(shutil.rmtree, folder, True)
    os.symlink(sys.executable, os.path.join(folder, 'python3'))
    return folder


def shebang_env(env=None):
    """`env` for a program started by its shebang (`./pyNetConnMon.py`, as users do): `python3`
    on PATH is the interpreter running the tests, and Python may write its bytecode cache (this
    machine's environment may say PYTHONDONTWRITEBYTECODE)."""
    return {'PATH': _python3_folder() + os.pathsep + os.environ.get('PATH', os.defpath),
            'PYTHONDONTWRITEBYTECODE': None, **(env or {})}


def child_env(env=None, state_home=None):
    """os.environ without proxy variables (the children talk to loopback only) +
    PYTHONUNBUFFERED=1 + `env` (a value of None removes the variable); XDG_STATE_HOME points at
    `state_home` when one is given."""
    out = {key: value for key, value in os.environ.items()
           if key.lower() not in ('http_proxy', 'https_proxy', 'all_proxy', 'no_proxy')}
    out['PYTHONUNBUFFERED'] = '1'
    if state_home is not None:
        out['XDG_STATE_HOME'] = os.fspath(state_home)
    for key, value in (env or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = os.fspath(value)
    return out


class MonitorProcess:
    """The program (or any Python script) as a child: [*prefix, *python_command(script), *args].

    stdout and stderr are read by two threads into `lines` (arrival order, newline stripped) and
    `stdout_lines` / `stderr_lines`. Used as a context manager it is always killed at exit.
    `script` defaults to cwd/pyNetConnMon.py when cwd is given, else the repository's copy;
    `compiled=False` runs pyNetConnMon as a file (see python_command); `by_shebang=True` runs
    the script itself, as `./pyNetConnMon.py` (with shebang_env).
    `log` and `state` are the event log and state file it was given, if any (start_monitor).
    `start` is a command that starts the program another way (e.g. `python3 -m pyNetConnMon`).
    """

    def __init__(self, args=(), cwd=None, env=None, prefix=None, script=None, state_home=None,
                 log=None, state=None, compiled=True, by_shebang=False, start=None):
        if script is None:
            script = Path(cwd) / PROGRAM.name if cwd is not None else PROGRAM
        if start is not None:
            start = list(start)
        elif by_shebang:
            start, env = [os.fspath(script)], shebang_env(env)
        else:
            start = python_command(script, compiled)
        self.argv = [*(prefix or []), *start, *(os.fspath(a) for a in args)]
        self.log, self.state = log, state
        self.lines = []
        self.stdout_lines = []
        self.stderr_lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            self.argv, cwd=cwd, env=child_env(env, state_home),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, errors='replace', bufsize=1, start_new_session=True)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout_lines),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr_lines),
                             daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream, own):
        for line in iter(stream.readline, ''):     # ends at EOF, when the child is gone
            line = line.rstrip('\n')
            with self._cond:
                own.append(line)
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    # -- looking ---------------------------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.poll()

    def output(self):
        with self._cond:
            return '\n'.join(self.lines)

    def _report(self, what):
        return '%s\n--- command: %s\n--- exit: %s\n--- output (%d lines):\n%s' % (
            what, ' '.join(self.argv), self.proc.poll(), len(self.lines), self.output())

    def wait_for_line(self, regex, timeout=10.0, since=0):
        """The re.Match of the first line (from index `since` of `lines`) that `regex` searches
        successfully; AssertionError with all output if none within `timeout` s or the child
        ended without one."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        checked = since
        with self._cond:
            while True:
                for i in range(checked, len(self.lines)):
                    m = pattern.search(self.lines[i])
                    if m:
                        return m
                checked = max(checked, len(self.lines))
                left = deadline - time.monotonic()
                done = not any(t.is_alive() for t in self._readers)
                if left <= 0 or done:
                    raise AssertionError(self._report('no line matching %r %s' % (
                        regex, 'before the output ended' if done else 'within %s s' % timeout)))
                self._cond.wait(min(left, 0.5))

    def events(self, name=None, path=None):
        """The events (named `name`) of its event log, or of `path` (a rotated-away log)."""
        return events(path or self.log, name)

    def wait_for_event(self, predicate, timeout=10.0, count=1, path=None):
        """wait_for_event() on its event log (or `path`); a failure also shows its output."""
        try:
            return wait_for_event(path or self.log, predicate, timeout, count)
        except AssertionError as error:
            raise AssertionError(self._report(str(error))) from None

    # -- signals and ending ------------------------------------------------------------------
    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def _finish(self, timeout=2.0):
        for t in self._readers:
            t.join(timeout)

    def wait(self, timeout=10.0):
        """Exit code once the child ended by itself; AssertionError (and kill) if it did not."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(self._report('still running after %s s (killed)' % timeout))
        self._finish()
        return code

    def terminate(self, sig=signal.SIGTERM, timeout=5.0):
        """Send `sig` and return the exit code (negative: died by a signal). A child that does
        not end within `timeout` s is killed and AssertionError raised."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(self._report('did not end within %s s of signal %s (killed)'
                                              % (timeout, signal.Signals(sig).name)))
        self._finish()
        return code

    def kill(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        return False


def wait_until(condition, timeout, what, step=POLL):
    """Poll `condition()` until it returns something true, which is returned; AssertionError
    naming `what` if not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("not within %s s: %s" % (timeout, what))
        time.sleep(step)


# -- event log (JSON Lines) -----------------------------------------------------------------
def read_events(log_path):
    """Events of a JSON Lines file as dicts; [] if it does not exist yet. A last line without its
    newline is still being written and is skipped; a bad complete line raises ValueError."""
    try:
        text = Path(log_path).read_text(encoding='utf-8')
    except FileNotFoundError:
        return []
    lines = text.split('\n')
    lines.pop()     # '' after the final newline, or a partial line
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError as e:
            raise ValueError('%s line %d is not JSON (%s): %r' % (log_path, number, e, line))
    return events


def events(log_path, name=None):
    """The events of the log, only those called `name` when given."""
    return [event for event in read_events(log_path) if name is None or event['event'] == name]


def _matches(event, predicate):
    if callable(predicate):
        return predicate(event)
    if isinstance(predicate, str):
        return event['event'] == predicate
    return all(event.get(k) == v for k, v in predicate.items())


def wait_for_event(log_path, predicate, timeout=10.0, count=1):
    """The `count`-th event that matches: predicate(event) is true, or, given a name, the event
    is called that, or, given a dict, its items are all in the event. AssertionError listing
    every event seen if there are not that many within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        seen = read_events(log_path)
        found = [event for event in seen if _matches(event, predicate)]
        if len(found) >= count:
            return found[count - 1]
        if time.monotonic() >= deadline:
            raise AssertionError('%d of %d events matching %r within %s s in %s; %d events:\n%s'
                                 % (len(found), count, predicate, timeout, log_path, len(seen),
                                    '\n'.join(json.dumps(e, sort_keys=True) for e in seen)))
        time.sleep(POLL)


def wall_time(iso):
    """An event-log time (ISO 8601 with offset) as epoch seconds."""
    return datetime.fromisoformat(iso).timestamp()


def hold_outage(monitor, target, seconds=0.15, count=1, path=None, timeout=5):
    """An outage of `target` (a Listener) that `monitor` sees: stopped until `seconds` after the
    monitor's `count`-th down event (longer than its -m), then started again. Returns that down
    event; the up is the caller's to wait for."""
    target.stop()
    down = monitor.wait_for_event("down", timeout=timeout, count=count, path=path)
    wait_until(lambda: time.time() > wall_time(down["time"]) + seconds, timeout,
               "an outage longer than -m")
    target.start()
    return down


# -- pyNetConnMon itself -------------------------------------------------------------------------
def start_monitor(tmp_path, *args, log_file=True, state_file=True, cwd=None, prefix=None,
                  env=None, compiled=True):
    """pyNetConnMon with ARGS, its state file in tmp_path/state/ and its event log
    tmp_path/events.jsonl (each unless told not to: --test-mail refuses them), under TZ=UTC plus
    `env`. Outside a lab namespace (`prefix`), ARGS must name a target: the default 8.8.8.8 is
    not for tests. The script is cwd/pyNetConnMon.py when `cwd` is given (an app folder), else
    the repository's."""
    if prefix is None:
        assert '-a' in args or '--address' in args, 'always give a loopback target'
    state = Path(tmp_path) / 'state' / 'state.json' if state_file else None
    log = Path(tmp_path) / 'events.jsonl' if log_file else None
    argv = [*args, *(['--state-file', state] if state else []),
            *(['--log-file', log] if log else [])]
    return MonitorProcess(argv, cwd=cwd, env={'TZ': 'UTC', **(env or {})}, prefix=prefix,
                          log=log, state=state, compiled=compiled)


RAN = 99        # what run_main's stand-ins return: the arguments were accepted


def run_main(*argv):
    """(exit status, stdout, stderr) of pyNetConnMon.main(argv) in this process, for usage
    errors without a process start: the monitor, --once and --test-mail are stand-ins that
    return RAN (nothing is probed or sent), --summary runs for real."""
    import io
    from unittest import mock
    import pyNetConnMon
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        for name in ('run_monitor', 'run_once', 'run_test_mail'):
            stack.enter_context(mock.patch.object(pyNetConnMon, name, lambda *args: RAN))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        status = pyNetConnMon.main([os.fspath(word) for word in argv])
    return status, out.getvalue(), err.getvalue()


def run_program(*args, prefix=(), cwd=None, env=None, timeout=15.0, compiled=True):
    """pyNetConnMon with ARGS run to its end (usage errors, --once, --version ...): the
    subprocess.CompletedProcess, output as text (UTF-8)."""
    return subprocess.run([*prefix, *python_command(PROGRAM, compiled), *map(os.fspath, args)],
                          capture_output=True, encoding='utf-8', errors='replace',
                          timeout=timeout, cwd=cwd, env=child_env(env), stdin=subprocess.DEVNULL)


# -- sockets on loopback ---------------------------------------------------------------------
@contextlib.contextmanager
def listening_socket(host=LOOPBACK):
    """A TCP listener on host that accepts and at once closes every connection (in a daemon
    thread). Yields the port; closed and joined at exit."""
    listener = Listener(host, port=closed_port(host)).start()
    try:
        yield listener.port
    finally:
        listener.stop()


def closed_port(host=LOOPBACK):
    """A port on host that nothing listens on right now (bound to port 0, then closed)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ephemeral_range():
    try:
        low, high = open('/proc/sys/net/ipv4/ip_local_port_range').read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


class Listener:
    """A loopback TCP target the test switches off (connects are refused at once) and on again
    on the SAME port: it accepts every connection and closes it at once, in a daemon thread.

    The port is picked below the ephemeral range when possible, so that a connect to the stopped
    port can never be answered by itself (Linux's TCP self-connect, when the kernel happens to
    pick the target port as the source port). start() returns self; stop() returns once the
    socket is closed; safe to call either twice. A context manager that stops at exit.
    """

    def __init__(self, host=LOOPBACK, port=None):
        self.host = host
        self.family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.port = port or self._pick_port()
        self._sock = None
        self._stop = None
        self._thread = None

    def _pick_port(self):
        low, _ = _ephemeral_range()
        rng = random.Random()
        for _ in range(50):
            if low <= 10001:
                break
            port = rng.randrange(10000, low)
            with socket.socket(self.family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.host, port))
                except OSError:
                    continue
                return port
        return closed_port(self.host)

    @property
    def running(self):
        return self._sock is not None

    @property
    def address(self):
        return ('[%s]:%d' if ':' in self.host else '%s:%d') % (self.host, self.port)

    def start(self):
        if self._sock is not None:
            return self
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            sock.settimeout(0.05)
        except BaseException:
            sock.close()
            raise
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                conn.close()

        self._sock, self._stop = sock, stop
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)     # refuses from now on, not after the accept wait
        self._thread.join(2.0)
        sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def sleeper(pids, seconds=30):
    """A shell fragment: a process that appends its pid to `pids` and sleeps."""
    return "sh -c 'echo $$ >> \"%s\"; exec sleep %d'" % (pids, seconds)
