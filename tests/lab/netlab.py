"""The network fault lab: two hosts in network namespaces, joined by one veth link.

    pm-<sfx> (monitor)  vm<sfx> 198.18.0.1/24 ---- 198.18.0.2/24 vt<sfx>  pt-<sfx> (target)

The monitor's namespace has no default route, so nothing started in it can reach anything but
the target host and its own loopback. Its name service is confined as well: the lab bind-mounts
its own hosts, nsswitch.conf ("hosts: files") and resolv.conf (nameserver 127.0.0.1) into the
monitor namespace, so a name lookup there never leaves the namespace.

Each fault has an undo, and every fault or undo is recorded in ``NetLab.log`` as
``(name, time.monotonic())``, taken just after the change took effect, so a test can compare
the injected outage with the one the monitor reports (``NetLab.durations``). The change took
effect somewhere while its command ran, which on a loaded machine can take most of a second:
``NetLab.changes`` also gives when each command began, as ``(name, began, ended)``.

What a connect from the monitor namespace to the target sees (measured, see test_netlab.py):

===============================  ================================================================
``vanish()`` / ``unvanish()``    timeout, for as long as the fault lasts (bogus permanent
                                 neighbour entry)
``far_end_down()`` / ``_up()``   timeout at first; once ARP for the target has failed (about
                                 3 s) connects fail early with EHOSTUNREACH "No route to host"
``link_down()`` / ``link_up()``  ENETUNREACH "Network is unreachable", at once
``stop_listener()`` / ``start``  ConnectionRefusedError, at once
``name_gone()`` / ``name_back``  socket.gaierror EAI_NONAME, at once
===============================  ================================================================

A second address of the target host (``add_target_address()``, TARGET_IP2) is served by the
listener as well but keeps its own neighbour entry, so ``vanish()`` leaves it reachable: a target
that stays up beside one that times out. With ``start_listener(accept_log=PATH)`` the listener
notes each accepted connection with the time it got through, by the kernel's account
(``read_accepts``), which shows from outside when the monitor's connects arrive.

Processes: ``popen``/``run`` start commands in the monitor namespace (``prefix`` is the argv
prefix for anyone else); the pid of the Popen is the program's own, but it enters the namespace a
moment after Popen returns. ``destroy()`` kills whatever runs in either namespace.

The ``netlab`` fixture (function scope) skips unless running as root with iproute2's ``ip`` and
working ``ip netns add``; it always destroys the lab, whatever the test did. Labs left behind by a
test process that was killed outright are swept on the next run (``sweep_stale_labs``).
"""
import atexit
import itertools
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import weakref

import pytest

MONITOR_IP = "198.18.0.1"
TARGET_IP = "198.18.0.2"
TARGET_IP2 = "198.18.0.3"    # another address of the target host, see add_target_address()
PREFIX_LEN = 24
TARGET_PORT = 5353           # default listener port (any port is free in a fresh namespace)
BOGUS_MAC = "02:00:00:00:00:01"  # locally administered, owned by nobody: frames to it are dropped
NETNS_ETC = "/etc/netns"
HERE = os.path.dirname(os.path.abspath(__file__))
LISTENER = os.path.join(HERE, "listener.py")

IP_TIMEOUT = 10.0            # seconds for any single `ip` command
READY_TIMEOUT = 10.0         # seconds for the listener to print READY
STOP_TIMEOUT = 5.0           # seconds for a process to exit after SIGTERM, before SIGKILL
RUN_TIMEOUT = 60.0           # default timeout for NetLab.run()

LOCALHOST_LINES = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"

_counter = itertools.count(1)
_live_labs = weakref.WeakSet()


class NetLabError(RuntimeError):
    """A lab command failed."""


def _ip(*args, check=True):
    """Run `ip ARGS`; return the CompletedProcess, raise NetLabError on failure if *check*."""
    cmd = ["ip", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=IP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise NetLabError("timed out: %s" % " ".join(cmd)) from exc
    if check and proc.returncode != 0:
        raise NetLabError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode,
                                                  proc.stderr.strip()))
    return proc


def _netns_names():
    proc = _ip("netns", "list", check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}


def _stop_process(proc, timeout=STOP_TIMEOUT, close=True):
    """SIGTERM the Popen *proc*, SIGKILL it after *timeout*; reap it and close its pipes."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        except ProcessLookupError:
            pass
    if close:
        _close_pipes(proc)


def _close_pipes(proc):
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it no longer holds the namespace in any way that matters.
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _nsswitch_text():
    """The machine's nsswitch.conf with the hosts line reduced to "files": no DNS at all."""
    try:
        with open("/etc/nsswitch.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    lines = [line for line in lines if not line.strip().startswith("hosts:")]
    lines.append("hosts: files")
    return "\n".join(lines) + "\n"


_support = None


def lab_support():
    """(True, '') if labs can be built here, else (False, reason). Probed once per process."""
    global _support
    if _support is None:
        _support = _probe_support()
    return _support


def _probe_support():
    if not sys.platform.startswith("linux"):
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "the network lab needs root (ip netns)"
    if shutil.which("ip") is None:
        return False, "the network lab needs iproute2's `ip` command"
    name = "pn-probe-%d" % os.getpid()
    try:
        proc = _ip("netns", "add", name, check=False)
    except NetLabError as exc:
        return False, "`ip netns add` does not work here: %s" % exc
    if proc.returncode != 0:
        return False, "`ip netns add` does not work here: %s" % proc.stderr.strip()
    _ip("netns", "del", name, check=False)
    sweep_stale_labs()
    return True, ""


class NetLab:
    """Two namespaces joined by a veth pair, with reversible faults. See the module docstring.

    Attributes: ``sfx``, ``monitor_ns``, ``target_ns``, ``monitor_if``, ``target_if``,
    ``prefix`` (argv prefix that runs a command in the monitor namespace), ``target_prefix``,
    ``hosts_path``, ``log`` (list of (name, monotonic time)), ``target_ips`` (the target
    host's addresses, all served by the listener).
    """

    MONITOR_IP = MONITOR_IP
    TARGET_IP = TARGET_IP

    def __init__(self, sfx=None):
        if sfx is None:
            sfx = self._free_suffix()
        self.sfx = sfx
        self.monitor_ns = "pm-" + sfx
        self.target_ns = "pt-" + sfx
        self.monitor_if = "vm" + sfx
        self.target_if = "vt" + sfx
        if len(self.monitor_if) > 15:
            raise ValueError("suffix %r too long for an interface name" % sfx)
        self.prefix = ["ip", "netns", "exec", self.monitor_ns]
        self.target_prefix = ["ip", "netns", "exec", self.target_ns]
        self.etc_dir = os.path.join(NETNS_ETC, self.monitor_ns)
        self.hosts_path = os.path.join(self.etc_dir, "hosts")
        self.hosts = {}                 # name -> address, as written after the localhost lines
        self.log = []
        self.changes = []               # (name, monotonic time its command began, ended)
        self.listener = None
        self.listener_ports = (TARGET_PORT,)
        self.accept_log = None          # where the listener notes accepted connections
        self.target_ips = [TARGET_IP]
        self._gone = {}                 # name -> address removed by name_gone()
        self._procs = []                # every Popen we started, for destroy()
        self._destroyed = False
        self._created = []              # namespaces this lab created: destroy() removes only these
        self._made_etc = False          # whether this lab created etc_dir
        _live_labs.add(self)
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    @staticmethod
    def _free_suffix():
        taken = _netns_names()
        for _ in range(1000):
            sfx = "%dn%d" % (os.getpid(), next(_counter))
            if "pm-" + sfx not in taken and "pt-" + sfx not in taken \
                    and not os.path.exists(os.path.join(NETNS_ETC, "pm-" + sfx)):
                return sfx
        raise NetLabError("no free namespace suffix")

    def _build(self):
        # The name-service files must exist before the first process starts in the namespace:
        # `ip netns exec` bind-mounts them over /etc/... when a process starts, never later.
        os.makedirs(self.etc_dir, exist_ok=False)
        self._made_etc = True
        # (ip netns exec can only bind-mount over files that exist in /etc.)
        if os.path.exists("/etc/nsswitch.conf"):
            self._write_new(os.path.join(self.etc_dir, "nsswitch.conf"), _nsswitch_text())
        if os.path.exists("/etc/resolv.conf"):
            self._write_new(os.path.join(self.etc_dir, "resolv.conf"), RESOLV_CONF)
        self._write_new(self.hosts_path, LOCALHOST_LINES)
        for ns in (self.monitor_ns, self.target_ns):
            _ip("netns", "add", ns)
            self._created.append(ns)
        _ip("link", "add", self.monitor_if, "netns", self.monitor_ns, "type", "veth",
            "peer", "name", self.target_if, "netns", self.target_ns)
        _ip("-n", self.monitor_ns, "addr", "add", "%s/%d" % (MONITOR_IP, PREFIX_LEN),
            "dev", self.monitor_if)
        _ip("-n", self.target_ns, "addr", "add", "%s/%d" % (TARGET_IP, PREFIX_LEN),
            "dev", self.target_if)
        for ns, dev in ((self.monitor_ns, self.monitor_if), (self.monitor_ns, "lo"),
                        (self.target_ns, self.target_if), (self.target_ns, "lo")):
            _ip("-n", ns, "link", "set", dev, "up")
        if self.has_default_route():
            raise NetLabError("%s has a default route; refusing to continue" % self.monitor_ns)

    @staticmethod
    def _write_new(path, text):
        with open(path, "x") as f:
            f.write(text)

    def __repr__(self):
        return "<NetLab %s/%s%s>" % (self.monitor_ns, self.target_ns,
                                     " destroyed" if self._destroyed else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    # ---- timeline --------------------------------------------------------------------------

    def _record(self, name, began=None):
        ended = time.monotonic()
        self.log.append((name, ended))
        self.changes.append((name, ended if began is None else began, ended))

    def durations(self, fault, undo):
        """Seconds between each *fault* record and the next *undo* record, in order."""
        spans, start = [], None
        for name, when in self.log:
            if name == fault and start is None:
                start = when
            elif name == undo and start is not None:
                spans.append(when - start)
                start = None
        return spans

    # ---- running things --------------------------------------------------------------------

    def popen(self, cmd, **kw):
        """Popen *cmd* (argv list) inside the monitor namespace. Its pid is the program's own."""
        return self._popen(self.prefix, cmd, **kw)

    def popen_target(self, cmd, **kw):
        """Popen *cmd* (argv list) inside the target namespace."""
        return self._popen(self.target_prefix, cmd, **kw)

    def _popen(self, prefix, cmd, **kw):
        self._check_alive()
        proc = subprocess.Popen(prefix + list(cmd), **kw)
        self._procs.append(proc)
        return proc

    def run(self, cmd, **kw):
        """subprocess.run *cmd* inside the monitor namespace (timeout defaults to RUN_TIMEOUT)."""
        self._check_alive()
        kw.setdefault("timeout", RUN_TIMEOUT)
        return subprocess.run(self.prefix + list(cmd), **kw)

    def probe(self, host=TARGET_IP, port=TARGET_PORT, timeout=1.0):
        """One TCP connect from the monitor namespace: 'ok' or the exception's class name.

        Returns (result, errno or None, seconds the connect took).
        """
        proc = self.run([sys.executable, "-c", PROBE_ONCE, host, str(port), str(timeout)],
                        capture_output=True, text=True, timeout=timeout + 30)
        if proc.returncode != 0:
            raise NetLabError("probe failed: %s" % proc.stderr.strip())
        result, err, took = proc.stdout.split()
        return result, (None if err == "-" else int(err)), float(took)

    def prober(self):
        """A long-running probe process in the monitor namespace (see Prober)."""
        return Prober(self)

    def _check_alive(self):
        if self._destroyed:
            raise NetLabError("%r is destroyed" % self)

    # ---- the target service ----------------------------------------------------------------

    def start_listener(self, *ports, lifetime=900, accept_log=None):
        """Run listener.py on every target address and port in the target namespace; wait
        for READY.

        Without ports: the ports of the previous listener (first time: TARGET_PORT). With
        *accept_log* (a path) each accepted connection is appended there (see read_accepts);
        a restarted listener keeps using the previous one.
        """
        if self.listener is not None and self.listener.poll() is None:
            raise NetLabError("listener already running")
        if ports:
            self.listener_ports = tuple(int(p) for p in ports)
        if accept_log is not None:
            self.accept_log = os.fspath(accept_log)
        cmd = [sys.executable, LISTENER, self.target_ips[0], *map(str, self.listener_ports),
               "--lifetime", str(lifetime)]
        for address in self.target_ips[1:]:
            cmd += ["--also", address]
        if self.accept_log is not None:
            cmd += ["--accept-log", self.accept_log]
        began = time.monotonic()
        proc = self.popen_target(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        self.listener = proc
        if not _wait_for_line(proc.stdout, "READY", READY_TIMEOUT):
            _stop_process(proc, close=False)
            err = proc.stderr.read()
            _close_pipes(proc)
            self.listener = None
            raise NetLabError("listener did not get ready: %s" % err.strip()[-2000:])
        self._record("start_listener", began)
        return proc

    def add_target_address(self, address=TARGET_IP2):
        """Give the target host another address on its link; the listener serves it from its
        next start. It has its own neighbour entry on the monitor's side, so vanish() (which
        concerns TARGET_IP only) leaves it reachable."""
        _ip("-n", self.target_ns, "addr", "add", "%s/%d" % (address, PREFIX_LEN),
            "dev", self.target_if)
        self.target_ips.append(address)

    def stop_listener(self):
        """Kill the listener: connects are refused."""
        began = time.monotonic()
        if self.listener is not None:
            _stop_process(self.listener)
            self.listener = None
        self._record("stop_listener", began)

    # ---- faults ------------------------------------------------------------------------------

    def vanish(self):
        """Packets to the target vanish: a permanent neighbour entry with a MAC nobody owns."""
        began = time.monotonic()
        _ip("-n", self.monitor_ns, "neigh", "replace", TARGET_IP, "lladdr", BOGUS_MAC,
            "dev", self.monitor_if, "nud", "permanent")
        self._record("vanish", began)

    def unvanish(self):
        began = time.monotonic()
        _ip("-n", self.monitor_ns, "neigh", "del", TARGET_IP, "dev", self.monitor_if)
        self._record("unvanish", began)

    def far_end_down(self):
        """The target's end of the link goes down (the monitor's end loses carrier)."""
        began = time.monotonic()
        _ip("-n", self.target_ns, "link", "set", self.target_if, "down")
        self._record("far_end_down", began)

    def far_end_up(self):
        began = time.monotonic()
        _ip("-n", self.target_ns, "link", "set", self.target_if, "up")
        self._record("far_end_up", began)

    def link_down(self):
        """The monitor's own link goes down: its route goes, connects are unreachable at once."""
        began = time.monotonic()
        _ip("-n", self.monitor_ns, "link", "set", self.monitor_if, "down")
        self._record("link_down", began)

    def link_up(self):
        began = time.monotonic()
        _ip("-n", self.monitor_ns, "link", "set", self.monitor_if, "up")
        self._record("link_up", began)

    # ---- names -------------------------------------------------------------------------------

    def set_hosts(self, mapping):
        """Make the monitor namespace's hosts file map name -> address for *mapping* (plus
        localhost), replacing earlier names. Edited in place, so running processes see it."""
        self._write_hosts(mapping)
        self._record("set_hosts")

    def _write_hosts(self, mapping):
        self.hosts = dict(mapping)
        lines = [LOCALHOST_LINES]
        lines.extend("%s\t%s\n" % (addr, name) for name, addr in self.hosts.items())
        # r+ and truncate keep the inode that running processes have bind-mounted as /etc/hosts.
        with open(self.hosts_path, "r+") as f:
            f.write("".join(lines))
            f.truncate()
            f.flush()
            os.fsync(f.fileno())

    def name_gone(self, name):
        """Remove *name* from the hosts file: lookups of it fail at once."""
        mapping = dict(self.hosts)
        self._gone[name] = mapping.pop(name)
        self._write_hosts(mapping)
        self._record("name_gone")

    def name_back(self, name):
        """Undo name_gone(name)."""
        mapping = dict(self.hosts)
        mapping[name] = self._gone.pop(name)
        self._write_hosts(mapping)
        self._record("name_back")

    # ---- inspection --------------------------------------------------------------------------

    def routes(self):
        return _ip("-n", self.monitor_ns, "route", "show").stdout

    def has_default_route(self):
        for family in ("-4", "-6"):
            out = _ip(family, "-n", self.monitor_ns, "route", "show").stdout
            if any(line.startswith("default") for line in out.splitlines()):
                return True
        return False

    def pids(self, ns=None):
        """Pids of the processes in namespace *ns* (default: both).

        A process from popen() shows up only once `ip netns exec` has entered the namespace,
        a moment after Popen returns."""
        return [p for name in ([ns] if ns else self._created) for p in _netns_pids(name)]

    # ---- teardown ------------------------------------------------------------------------------

    def destroy(self):
        """Kill every process in both namespaces, delete them and /etc/netns/<ns>. Idempotent."""
        if self._destroyed:
            return
        self._destroyed = True
        errors = []
        for proc in self._procs:
            try:
                _stop_process(proc)
            except Exception as exc:   # keep tearing down whatever happens
                errors.append(exc)
        self.listener = None
        try:
            self._kill_namespace_pids()
        except Exception as exc:
            errors.append(exc)
        for ns in self._existing_namespaces():
            try:
                _ip("netns", "del", ns)
            except NetLabError as exc:
                errors.append(exc)
        if self._made_etc:
            shutil.rmtree(self.etc_dir, ignore_errors=True)
        _live_labs.discard(self)
        if errors:
            raise NetLabError("destroy %s: %s" % (self, "; ".join(map(str, errors))))

    def _kill_namespace_pids(self):
        _kill_pids_in(self._existing_namespaces())

    def _existing_namespaces(self):
        existing = _netns_names()
        return [ns for ns in self._created if ns in existing]


def _netns_pids(ns):
    proc = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _kill_pids_in(namespaces):
    """SIGTERM, then SIGKILL, every live process in *namespaces*; bounded in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for ns in namespaces for p in _netns_pids(ns)
                if p != os.getpid() and _pid_alive(p)]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.05)
    left = [p for ns in namespaces for p in _netns_pids(ns) if _pid_alive(p)]
    if left:
        raise NetLabError("processes survive in the lab namespaces: %s" % left)


_LAB_NAMESPACE = re.compile(r"^p[mt]-(\d+)n\d+$")


def sweep_stale_labs(pattern=None):
    """Remove the labs of test processes that died without teardown (their pid is gone).

    Only namespaces named like ours (`pattern`, by default pm-/pt-<pid>n<k>; group 1 is the
    creating pid) whose creating pid no longer runs. Returns the namespaces removed.
    """
    pattern = pattern or _LAB_NAMESPACE
    removed = []
    for ns in sorted(_netns_names()):
        match = pattern.match(ns)
        if not match or _pid_alive(int(match.group(1))):
            continue
        try:
            _kill_pids_in([ns])
        except NetLabError:
            continue
        if _ip("netns", "del", ns, check=False).returncode == 0:
            removed.append(ns)
        shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)
    return removed


def read_accepts(path):
    """The accept log of a listener: [(monotonic time, address, port)] in accept order; [] if
    it does not exist yet. A last line still being written is skipped."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    accepts = []
    for line in text.split("\n")[:-1]:
        when, address, port = line.split()
        accepts.append((float(when), address, int(port)))
    return accepts


def _wait_for_line(stream, expected, timeout):
    """Read lines from *stream* until one equals *expected*; False on EOF or after *timeout*."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        for _ in range(1000):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return False
            line = stream.readline()
            if not line:
                return False
            if line.strip() == expected:
                return True
    return False


# A one-shot connect probe: argv host port timeout -> "RESULT ERRNO SECONDS".
PROBE_ONCE = r"""
import socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
start = time.monotonic()
try:
    socket.create_connection((host, port), timeout=timeout).close()
    result, err = "ok", "-"
except Exception as exc:
    result, err = type(exc).__name__, getattr(exc, "errno", None)
    err = "-" if err is None else str(err)
print(result, err, "%.3f" % (time.monotonic() - start), flush=True)
"""

# The same probe, in a loop: one "host port timeout" per stdin line, one result line each.
PROBE_LOOP = r"""
import socket, sys, time
for _ in range(100000):
    line = sys.stdin.readline()
    if not line:
        break
    host, port, timeout = line.split()
    start = time.monotonic()
    try:
        socket.create_connection((host, int(port)), timeout=float(timeout)).close()
        result, err = "ok", "-"
    except Exception as exc:
        result, err = type(exc).__name__, getattr(exc, "errno", None)
        err = "-" if err is None else str(err)
    print(result, err, "%.3f" % (time.monotonic() - start), flush=True)
"""


class Prober:
    """One long-running process in the monitor namespace that connects on request, like the
    monitor does: it shows what a process started before a change sees after it."""

    def __init__(self, lab):
        self.proc = lab.popen([sys.executable, "-c", PROBE_LOOP], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def connect(self, host=TARGET_IP, port=TARGET_PORT, timeout=1.0):
        """Same answer as NetLab.probe, from the long-running process."""
        self.proc.stdin.write("%s %d %s\n" % (host, port, timeout))
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout + 30
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(max(0.0, deadline - time.monotonic())):
                raise NetLabError("prober did not answer")
        line = self.proc.stdout.readline()
        if not line:
            raise NetLabError("prober died: %s" % self.proc.stderr.read().strip())
        result, err, took = line.split()
        return result, (None if err == "-" else int(err)), float(took)

    def close(self):
        _stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@atexit.register
def _destroy_leftover_labs():
    """Last resort when a run ends without fixture teardown (e.g. interrupted)."""
    for lab in list(_live_labs):
        try:
            lab.destroy()
        except Exception:
            pass


@pytest.fixture
def netlab():
    """A fresh NetLab (no listener started yet); destroyed after the test, whatever happens."""
    ok, reason = lab_support()
    if not ok:
        pytest.skip(reason)
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.destroy()


__all__ = ["NetLab", "NetLabError", "Prober", "netlab", "lab_support", "sweep_stale_labs",
           "read_accepts", "MONITOR_IP", "TARGET_IP", "TARGET_IP2", "TARGET_PORT"]
