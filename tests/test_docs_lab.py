"""The docs' recipes that need root, run exactly as printed: the msmtp route to a mail server
without TLS or login (a real msmtp, a real SMTP relay in a network namespace), the systemd unit
under `systemd-analyze verify`, and the logrotate configuration with its pkill line, for real, as
root, against monitors of the user it names and of another user.

The unit and the logrotate file name the user pi and /home/pi; the tests give them both in a
private mount namespace (a passwd and a group file with pi, a home folder of the test's own bound
over /home), so the files are checked unchanged and the machine's users are never touched."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
from email import message_from_bytes

import pytest

import docs_text
from docs_text import REPO, command
from harness import PROGRAM, child_env, listening_socket, shebang_env, wait_until
from pyNetConnMon import VERSION

pytestmark = pytest.mark.lab

UNIT = REPO / "docs" / "systemd" / "pynetconnmon.service"
LOGROTATE = REPO / "docs" / "logrotate" / "pynetconnmon"
PI, OTHER = 4242, 4243            # the uids of pi and of another user, in the private namespace
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def need(*tools):
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, other users)")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip("not installed: %s" % ", ".join(missing))


# -- a private mount namespace in which the user pi and /home/pi exist -----------------------------

class PrivateHome:
    """A mount namespace of its own (held open by a sleeping process) in which /etc/passwd and
    /etc/group know pi (uid PI) and /home is a folder of the test's, with /home/pi/pyNetConnMon
    holding a copy of the program and /home/pi/pynetconnmon-log the log folder, both pi's."""

    def __init__(self, root):
        self.root = root
        home = root / "home"
        self.home = home
        for folder, uid in ((home, 0), (home / "pi", PI), (home / "pi" / "pyNetConnMon", PI),
                            (home / "pi" / "pynetconnmon-log", PI), (home / "other", OTHER)):
            folder.mkdir()
            os.chown(folder, uid, uid)
            folder.chmod(0o755)
        shutil.copy(PROGRAM, home / "pi" / "pyNetConnMon" / PROGRAM.name)
        os.chown(home / "pi" / "pyNetConnMon" / PROGRAM.name, PI, PI)
        for name, line in (("passwd", "pi:x:%d:%d::/home/pi:/bin/sh\n" % (PI, PI)),
                           ("group", "pi:x:%d:\n" % PI)):
            (root / name).write_text(open("/etc/" + name).read() + line)
            (root / name).chmod(0o644)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sleep", "300"],
            stdin=subprocess.DEVNULL)
        self.processes = []
        try:
            wait_until(lambda: os.readlink("/proc/%d/ns/mnt" % self.holder.pid)
                       != os.readlink("/proc/self/ns/mnt"), 5, "the private mount namespace")
            for source, target in ((root / "passwd", "/etc/passwd"),
                                   (root / "group", "/etc/group"), (home, "/home")):
                subprocess.run(self.enter("mount", "--bind", source, target), check=True)
        except BaseException:
            self.close()
            raise

    def enter(self, *argv):
        return ["nsenter", "-t", str(self.holder.pid), "-m", *map(os.fspath, argv)]

    def run(self, *argv, **options):
        return subprocess.run(self.enter(*argv), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, **options)

    def start_as(self, uid, home, folder, line):
        """`line` run by sh as `uid` in `folder` (exec'd: the Popen's pid is the command's)."""
        env = {"HOME": home, "PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
        argv = self.enter("setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                          "env", "-i", *("%s=%s" % item for item in env.items()),
                          "sh", "-c", "cd %s && exec %s" % (folder, line))
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def close(self):
        for process in self.processes + [self.holder]:
            if process.poll() is None:
                process.kill()
            process.wait(5)


@pytest.fixture
def private_home(tmp_path):
    need("unshare", "nsenter", "setpriv")
    tmp_path.chmod(0o755)
    lab = PrivateHome(tmp_path)
    yield lab
    lab.close()


def installed_logrotate_config(folder):
    """The shipped logrotate file, byte for byte, as an administrator installs it: owned by root
    and not writable by others (logrotate ignores a configuration file owned by another user,
    which a checkout may be)."""
    copy = folder / LOGROTATE.name
    shutil.copyfile(LOGROTATE, copy)
    os.chown(copy, 0, 0)
    copy.chmod(0o644)
    assert copy.read_bytes() == LOGROTATE.read_bytes()
    return copy


def log_events(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(path, name, count=1, timeout=15):
    return wait_until(lambda: len([e for e in log_events(path) if e["event"] == name]) >= count,
                      timeout, "%d %s event(s) in %s" % (count, name, path))


# -- the systemd unit ---------------------------------------------------------------------------

def test_the_systemd_unit_verifies(private_home):
    need("systemd-analyze")
    result = private_home.run("systemd-analyze", "verify", UNIT)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_unit_logrotate_and_cron_recipe_name_the_same_user_and_log():
    unit, rotate = UNIT.read_text(), LOGROTATE.read_text()
    log = re.search(r"--log-file (\S+)", unit).group(1)
    assert re.search(r"^%s \{$" % re.escape(log), rotate, re.M)
    assert "User=pi\n" in unit and "    su pi pi\n" in rotate
    assert "    create 0640 pi pi\n" in rotate
    assert "ExecStart=/home/pi/pyNetConnMon/pyNetConnMon.py " in unit
    cron = docs_text.readme_section("Autostart and rotation")
    assert "--log-file ~/pynetconnmon-log/events.jsonl" in cron
    assert log == "/home/pi/pynetconnmon-log/events.jsonl"
    assert "    monthly\n" in rotate and "    rotate 12\n" in rotate        # a year kept


# -- logrotate and pkill --------------------------------------------------------------------------

def test_logrotate_debug_is_clean(private_home, tmp_path):
    need("logrotate")
    log = private_home.home / "pi" / "pynetconnmon-log" / "events.jsonl"
    log.write_text('{"time": "2026-11-24T10:00:00.000+00:00", "event": "stop"}\n')
    os.chown(log, PI, PI)
    result = private_home.run("logrotate", "--debug", "--state", tmp_path / "state",
                              installed_logrotate_config(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr


def test_logrotate_and_pkill_reach_only_the_users_monitors(private_home, tmp_path):
    """A rotation as root: pi's monitors reopen their logs, whether started as ./pyNetConnMon.py
    or python3 -m pyNetConnMon; another user's monitor and a pager holding the file do not get
    the signal. Then the README's pkill line alone does the same."""
    need("logrotate", "pkill")
    pkill = command("pkill -HUP")
    assert "        %s\n" % pkill in LOGROTATE.read_text()    # the README's line is the file's
    pi_home, other_home = private_home.home / "pi", private_home.home / "other"
    app = "/home/pi/pyNetConnMon"
    with listening_socket() as port:
        target = "-a 127.0.0.1:%d --no-mail -i 0.5 -t 0.5 --stats-interval 1" % port
        shebang = private_home.start_as(
            PI, "/home/pi", app,
            "./pyNetConnMon.py %s --log-file /home/pi/pynetconnmon-log/events.jsonl" % target)
        module = private_home.start_as(
            PI, "/home/pi", app, "python3 -m pyNetConnMon %s --log-file /home/pi/module.jsonl "
            "--state-file /home/pi/module-state.json" % target)
        other = private_home.start_as(
            OTHER, "/home/other", "/home/other", "python3 %s/pyNetConnMon.py %s --log-file "
            "/home/other/other.jsonl" % (app, target))
        pager = private_home.start_as(PI, "/home/pi", app, "tail -f pyNetConnMon.py")
        shebang_log = pi_home / "pynetconnmon-log" / "events.jsonl"
        module_log, other_log = pi_home / "module.jsonl", other_home / "other.jsonl"
        for log in (shebang_log, module_log, other_log):
            wait_for(log, "start")

        rotated = private_home.run("logrotate", "--force", "--state", tmp_path / "state",
                                   installed_logrotate_config(tmp_path))
        assert rotated.returncode == 0, rotated.stderr
        assert [e["event"] for e in log_events(shebang_log.with_name("events.jsonl.1"))][0] \
            == "start"
        wait_for(shebang_log, "log_reopened")
        assert log_events(shebang_log)[0]["event"] == "log_reopened"
        wait_for(module_log, "log_reopened")

        # an event written between the rename and the SIGHUP reopens the log on its own: count
        # the reopenings once two more rounds' stats show that the SIGHUP has been taken
        reopened = []
        for log in (shebang_log, module_log):
            stats = len([e for e in log_events(log) if e["event"] == "stats"])
            wait_for(log, "stats", count=stats + 2)
            reopened.append(len([e for e in log_events(log) if e["event"] == "log_reopened"]))
        by_hand = private_home.run("sh", "-c", pkill)
        assert by_hand.returncode == 0, by_hand.stderr
        wait_for(shebang_log, "log_reopened", count=reopened[0] + 1)
        wait_for(module_log, "log_reopened", count=reopened[1] + 1)

        # the other user's monitor went on with its rounds well past both signals
        stats_before = len([e for e in log_events(other_log) if e["event"] == "stats"])
        wait_for(other_log, "stats", count=stats_before + 2)
        assert [e for e in log_events(other_log) if e["event"] == "log_reopened"] == []
        for process in (shebang, module, other, pager):
            assert process.poll() is None, process.args


# -- a trial run: an address that never answers -------------------------------------------------

def test_the_trial_interruption_command(app, tmp_path):
    """The README's trial run, in a network namespace with no route at all: the connect to the
    documentation address fails at once (nothing leaves), and the monitor says DOWN."""
    need("ip")
    name = "pd-%s" % secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    monitor = None
    output = tmp_path / "output"
    trial = command("./pyNetConnMon.py -a 192.0.2.1 ")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        with open(output, "w") as stream:
            monitor = subprocess.Popen(
                ["ip", "netns", "exec", name, "sh", "-c", trial],
                cwd=app.parent, stdin=subprocess.DEVNULL, stdout=stream, stderr=subprocess.STDOUT,
                env=child_env(shebang_env({"XDG_STATE_HOME": tmp_path / "state"})),
                start_new_session=True)
        wait_until(lambda: re.search(r" DOWN 192\.0\.2\.1:53 unreachable", output.read_text()),
                   15, "a DOWN line")
        os.killpg(monitor.pid, signal.SIGTERM)          # the shell and the monitor, as Ctrl-C would
        wait_until(lambda: output.read_text().endswith(" stopped (SIGTERM)\n"), 10,
                   "the monitor's stop")
        monitor.wait(10)
    finally:
        if monitor is not None and monitor.poll() is None:
            os.killpg(monitor.pid, signal.SIGKILL)
            monitor.wait(5)
        subprocess.run(["ip", "netns", "del", name])


# -- msmtp to a relay without TLS or login ---------------------------------------------------------

RELAY = textwrap.dedent("""\
    import asyncio, os, sys, time
    from aiosmtpd.controller import Controller

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            name = os.path.join(sys.argv[1], "%d.eml" % time.monotonic_ns())
            with open(name + ".tmp", "wb") as stream:
                stream.write(b"X-Envelope: %s -> %s\\n" % (
                    envelope.mail_from.encode(), ",".join(envelope.rcpt_tos).encode()))
                stream.write(envelope.original_content.replace(b"\\r\\n", b"\\n"))
            os.replace(name + ".tmp", name)
            return "250 2.0.0 Message accepted"

    controller = Controller(Keep(), hostname="127.0.0.1", port=25)   # no TLS, no AUTH
    controller.start()
    print("READY", flush=True)
    time.sleep(float(sys.argv[2]))
    controller.stop()
""")


@pytest.fixture
def relay_namespace(tmp_path):
    """A network namespace (no route beyond itself) where mail.home.arpa is 127.0.0.1 and a
    plain SMTP relay listens on port 25: (namespace name, folder of the mails received)."""
    need("ip", "msmtp")
    name = "pd-%s" % secrets.token_hex(4)
    hosts = "/etc/netns/%s" % name
    maildir = tmp_path / "mail"
    maildir.mkdir()
    (tmp_path / "relay.py").write_text(RELAY)
    subprocess.run(["ip", "netns", "add", name], check=True)
    relay = None
    try:
        os.makedirs(hosts)
        with open(hosts + "/hosts", "w") as stream:
            stream.write("127.0.0.1 localhost\n127.0.0.1 mail.home.arpa\n")
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        relay = subprocess.Popen(["ip", "netns", "exec", name, sys.executable,
                                  tmp_path / "relay.py", maildir, "120"],
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert relay.stdout.readline().strip() == "READY"
        yield name, maildir
    finally:
        if relay is not None:
            relay.kill()
            relay.wait(5)
        subprocess.run(["ip", "netns", "del", name])
        shutil.rmtree(hosts, ignore_errors=True)


def test_the_msmtp_recipe_mails_subject_to_and_report(relay_namespace, app):
    name, maildir = relay_namespace
    recipe = command("msmtp --host=")
    result = subprocess.run(["ip", "netns", "exec", name, "sh", "-c", recipe], cwd=app.parent,
                            env=child_env(shebang_env()), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test report accepted by notify command" in result.stdout, result.stdout
    mails = sorted(maildir.glob("*.eml"))
    assert len(mails) == 1
    raw = mails[0].read_bytes()
    assert raw.startswith(b"X-Envelope: pi@home.arpa -> owner@example.org\n"), raw
    mail = message_from_bytes(raw.split(b"\n", 1)[1])
    host = subprocess.run(["ip", "netns", "exec", name, "hostname"], capture_output=True,
                          text=True).stdout.strip()
    assert mail["Subject"] == "pyNetConnMon on %s: test report" % host
    assert (mail["To"], mail["From"]) == ("owner@example.org", "pi@home.arpa")
    assert mail["Date"] and mail["Message-ID"]      # msmtp adds them: no bare mail for spam filters
    body = mail.get_payload()
    assert body.startswith("This is a test report from pyNetConnMon %s on %s.\n" % (
        VERSION, host)), body
