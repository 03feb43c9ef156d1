"""Reports end to end: the program as a subprocess, a loopback target that the test switches off
and on to make outages, and mail through pySendMail (the real one when it is at hand, see
smtp_lab.PYSENDMAIL) to the lab's real SMTP server, or through a real notify command.

Only what needs a real server and a real process is here: a report accepted, a 451 and then one
delivery, mail not set up yet, the lock on the state file, --test-mail, the notify command. What
the monitor decides over time (batching, blips, retries, restarts, gaps, a corrupt state file, a
stop during a delivery) is tested on a fake clock in test_monitor.py.

Everything stays on 127.0.0.1. The monitor runs with short intervals (FAST) and TZ=UTC, so the
times in a report can be compared exactly with the event log.
"""
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness import (Listener, MonitorProcess, child_env, hold_outage, shebang_env, start_monitor,
                     wait_until)
from pyNetConnMon import DEFAULT_ADDRESS, VERSION
from smtp_lab import mail_config, make_program_dir, write_config
from smtp_server import FAIL_REPLY, PASSWORD

HOST = socket.gethostname()
BMIN = 0.2      # -bmin: the wait after a first report, and the retry time after a failed one
FAST = ('-i', '0.05', '-t', '0.2', '-m', '0.1', '-bmin', '%g' % BMIN, '-bstep', '1', '-bmax', '5')
OUTAGE = 0.15   # seconds the target is off for an interruption that counts (-m is 0.1)
SUBJECT = re.compile(r'^pyNetConnMon on %s: (\d+) interruptions?, (\d+\.\d s) of downtime$'
                     % re.escape(HOST))


# -- helpers ------------------------------------------------------------------------------------
def second(iso):
    """An event-log time as a report shows it: local time (UTC here), truncated to the second."""
    assert iso.endswith('+00:00'), iso
    return iso[:19].replace('T', ' ')


def report_rows(body):
    """The interruption rows of a report body (between the header row and the blank line)."""
    lines = body.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith('start  '))
    rows = []
    for line in lines[header + 1:]:
        if not line:
            break
        rows.append(line)
    return rows


def row(up, duration_text, reason='refused', cause='unknown'):
    """A report's row; beside loopback targets no gateway is probed, so the cause is unknown."""
    return '%s  %s  %12s  %-8s  %s' % (second(up['start']), second(up['end']), duration_text,
                                       cause, reason)


def read_state(path):
    with open(path, encoding='utf-8') as stream:
        return json.load(stream)


class Lab:
    """One test's target, monitors and files. start_monitor() always passes the loopback target,
    FAST, and a state file and an event log inside tmp_path. close() kills every monitor and
    checks that the SMTP password shows up in no output, event log or state file."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.target = Listener().start()
        self.monitors = []

    def start_monitor(self, program_dir, *args, fast=True, files=True, env=None):
        monitor = start_monitor(self.tmp, '-a', self.target.address, *(FAST if fast else ()),
                                *args, cwd=program_dir.root, log_file=files, state_file=files,
                                env=env)
        self.monitors.append(monitor)
        return monitor

    def started(self, program_dir, *args):
        """A monitor that has printed its start line and written its state file."""
        monitor = self.start_monitor(program_dir, *args)
        monitor.wait_for_line(r'started pyNetConnMon ', timeout=10)
        wait_until(monitor.state.exists, 5, 'state file written')
        return monitor

    def run(self, program_dir, *args, timeout=20):
        """A run that ends by itself (--test-mail, which takes no state file, event log or
        timings); returns (exit code, MonitorProcess)."""
        monitor = self.start_monitor(program_dir, *args, fast=False, files=False,
                                     env={'XDG_STATE_HOME': self.tmp / 'xdg'})
        return monitor.wait(timeout), monitor

    def outage(self, monitor):
        """The target off for OUTAGE s from the monitor's DOWN event, then on again; returns the
        monitor's up event for it."""
        downs, ups = len(monitor.events('down')), len(monitor.events('up'))
        hold_outage(monitor, self.target, OUTAGE, count=downs + 1)
        return monitor.wait_for_event('up', timeout=5, count=ups + 1)

    def assert_no_secret(self):
        for monitor in self.monitors:
            assert PASSWORD not in monitor.output(), monitor.output()
            for path in (monitor.log, monitor.state):
                if path is not None and path.exists():
                    assert PASSWORD not in path.read_text(errors='replace'), path

    def close(self):
        for monitor in self.monitors:
            monitor.__exit__(None, None, None)
        self.target.stop()
        self.assert_no_secret()


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def delivered_once(monitor, server):
    """Stops the monitor once it logged its report as sent; then exactly one mail has arrived,
    one report_sent is logged and nothing is left pending that could go out again."""
    monitor.wait_for_event('report_sent', timeout=10)
    assert monitor.terminate() == 0
    (msg,) = server.wait_for_messages(1, timeout=5)
    assert len(server.messages()) == 1
    assert len(monitor.events('report_sent')) == 1
    assert read_state(monitor.state)['pending'] == []
    return msg


# -- a report accepted -------------------------------------------------------------------------
def test_outage_gives_exactly_one_mail_naming_count_downtime_and_times(lab, program_dir,
                                                                        smtp_server):
    monitor = lab.started(program_dir)
    up = lab.outage(monitor)
    assert up['ignored'] is False
    sent = monitor.wait_for_event('report_sent', timeout=10)
    assert (sent['interruptions'], sent['via'], sent['next_wait']) == (1, 'mail', BMIN)
    msg = delivered_once(monitor, smtp_server)
    subject = SUBJECT.match(msg['Subject'])
    assert subject, msg['Subject']
    count, downtime = subject.groups()
    assert count == '1'
    assert abs(float(downtime.split()[0]) - up['duration']) <= 0.051
    body = msg.get_content()
    assert report_rows(body) == [row(up, downtime)]
    assert 'Targets: %s' % lab.target.address in body.splitlines()
    assert 'Total: 1 interruption, %s of downtime.' % downtime in body.splitlines()
    assert [e['event'] for e in monitor.events()] == ['start', 'down', 'up', 'report_sent',
                                                      'stats', 'stop']
    assert monitor.stderr_lines == []


# -- the mail server answers 451, then works: retried, delivered once -----------------------------
def test_smtp_answering_451_is_a_failure_then_delivered_once(lab, program_dir, smtp_server):
    smtp_server.fail_451(True)
    monitor = lab.started(program_dir)
    lab.outage(monitor)
    failed = monitor.wait_for_event('report_failed', timeout=10)
    assert failed['reason'] == 'SMTP server answered %s' % FAIL_REPLY
    assert (failed['interruptions'], failed['retry_in']) == (1, BMIN)
    monitor.wait_for_line(r'WARNING report not delivered: SMTP server answered 451 4\.3\.0 Try '
                          r'again later; retrying in 0\.2 s$')
    assert smtp_server.messages() == []
    smtp_server.fail_451(False)
    msg = delivered_once(monitor, smtp_server)
    assert SUBJECT.match(msg['Subject']).group(1) == '1'


# -- set-up problems are warnings that name the fix; the monitor runs anyway ------------------
def test_no_config_warns_keeps_monitoring_and_delivers_once_configured(lab, tmp_path,
                                                                       smtp_server):
    app = make_program_dir(tmp_path / 'app', with_config=False)
    monitor = lab.started(app)
    warning = monitor.wait_for_line(r'WARNING mail cannot work yet: ').string
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING mail cannot work yet: %s does not exist: copy '
        r'sendMailConfig\.json\.example to sendMailConfig\.json there and fill in your mail '
        r'server\. Monitoring anyway; reports wait until it works \(or deliver them with '
        r'--notify-command CMD instead, or turn them off with --no-mail\)\.'
        % re.escape(str(app.config)), warning), warning
    up = lab.outage(monitor)
    assert up['ignored'] is False
    monitor.wait_for_line(r'WARNING report pending, but .*sendMailConfig\.json does not exist')
    assert monitor.returncode is None
    assert read_state(monitor.state)['pending'][0]['reason'] == 'refused'
    write_config(app.config, mail_config(smtp_server.port))
    msg = delivered_once(monitor, smtp_server)
    assert SUBJECT.match(msg['Subject']).group(1) == '1'
    assert sum('WARNING mail cannot work yet' in line for line in monitor.lines) == 1
    assert sum('WARNING report pending' in line for line in monitor.lines) == 1


def test_empty_submodule_folder_warns_to_init_the_submodule(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    (app.root / 'pySendMail').mkdir()
    (app.root / '.gitmodules').write_text(
        '[submodule "pySendMail"]\n\tpath = pySendMail\n\turl = https://example.invalid/x\n')
    monitor = lab.started(app)
    warning = monitor.wait_for_line(r'WARNING mail cannot work yet: ').string
    assert 'the pySendMail submodule in %s is empty or missing: run `git submodule update ' \
        '--init` in %s. Monitoring anyway' % (app.root / 'pySendMail', app.root) in warning
    assert len(monitor.stderr_lines) == 1
    assert monitor.terminate() == 0


def test_a_missing_pysendmail_outside_a_checkout_is_not_sent_to_git_submodule(lab, tmp_path):
    # the file downloaded alone: `git submodule update --init` cannot help there
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    monitor = lab.started(app)
    warning = monitor.wait_for_line(r'WARNING mail cannot work yet: ').string
    folder = app.root / 'pySendMail'
    assert ('pySendMail is not in %s: put it there (`git clone '
            'https://github.com/scaidermern/pySendMail.git %s && git -C %s checkout '
            '96729e66a3f4398480d651717935ec5c12102903`) or name its folder with '
            '--pysendmail DIR. Monitoring anyway' % (folder, folder, folder)) in warning
    assert 'submodule' not in warning
    assert monitor.terminate() == 0


def test_started_through_a_symlink_it_finds_pysendmail_and_its_cache_beside_the_file(
        program_dir, smtp_server, tmp_path):
    links = tmp_path / 'bin'
    links.mkdir()
    os.chmod(program_dir.script, 0o755)
    (links / 'pynetconnmon').symlink_to(program_dir.script)
    result = subprocess.run([os.fspath(links / 'pynetconnmon'), '-a', '127.0.0.1:9',
                             '--test-mail'], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL,
                            env=child_env(shebang_env({'XDG_STATE_HOME': tmp_path / 'xdg'})))
    assert (result.returncode, result.stdout.endswith(' test report accepted by mail\n'),
            result.stderr) == (0, True, '')
    smtp_server.wait_for_messages(1, timeout=5)
    assert os.listdir(links) == ['pynetconnmon']
    assert os.listdir(program_dir.root / '__pycache__') == [
        os.path.basename(importlib.util.cache_from_source(os.fspath(program_dir.script)))]


def test_config_readable_by_others_gets_a_chmod_warning(lab, program_dir):
    os.chmod(program_dir.config, 0o644)
    monitor = lab.started(program_dir)
    warning = monitor.wait_for_line(r'WARNING .*sendMailConfig\.json is accessible').string
    assert warning.endswith('is accessible by group or others (mode 0644) and holds your SMTP '
                            'password: run chmod 600 %s' % program_dir.config), warning
    assert len(monitor.stderr_lines) == 1
    assert monitor.returncode is None
    assert monitor.terminate() == 0


# -- one monitor per state file ------------------------------------------------------------------
def test_second_monitor_on_the_same_state_file_refuses_to_start(lab, program_dir):
    first = lab.started(program_dir)
    second_run = lab.start_monitor(program_dir)
    assert second_run.wait(10) == 1
    assert second_run.stdout_lines == []
    (line,) = second_run.stderr_lines
    assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR another pyNetConnMon is already '
                        r'running with state file %s; give this one its own --state-file'
                        % re.escape(str(first.state)), line), line
    assert [e['event'] for e in first.events()] == ['start']
    lab.target.stop()
    first.wait_for_event('down', timeout=5)         # the first one still watches
    assert first.terminate() == 0


# -- --test-mail ---------------------------------------------------------------------------------
def test_test_mail_is_delivered_and_exits_0(lab, program_dir, smtp_server):
    code, run = lab.run(program_dir, '--test-mail')
    assert code == 0, run.output()
    (msg,) = smtp_server.wait_for_messages(1, timeout=5)
    assert msg['Subject'] == 'pyNetConnMon on %s: test report' % HOST
    assert msg.get_content() == ('This is a test report from pyNetConnMon %s on %s.\n'
                                 'Reports about interruptions will arrive the same way.\n'
                                 % (VERSION, HOST))
    (line,) = run.lines
    assert line.endswith(' test report accepted by mail')
    assert not (lab.tmp / 'xdg').exists()        # no state file at its default place either


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="a host name of our own needs root and unshare")
def test_a_host_name_with_a_line_break_does_not_break_the_report(program_dir, smtp_server,
                                                                 tmp_path):
    # sethostname takes any bytes; in a UTS namespace of its own the program's machine is named
    # "pi<LF>Bcc: x" (no dot: smtplib, inside pySendMail, then greets as [127.0.0.1])
    name = "pi\nBcc: x"
    command = ["unshare", "--uts", sys.executable, "-c",
               "import socket, subprocess, sys; socket.sethostname(sys.argv[1]); "
               "sys.exit(subprocess.call(sys.argv[2:]))", name, sys.executable,
               os.fspath(program_dir.script), "-a", "127.0.0.1:9", "--test-mail"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL,
                            env=child_env({"XDG_STATE_HOME": tmp_path / "xdg"}))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    (msg,) = smtp_server.wait_for_messages(1, timeout=5)
    assert msg["Subject"] == "pyNetConnMon on pi\\x0aBcc: x: test report"
    assert msg["Bcc"] is None
    assert "on pi\\x0aBcc: x." in msg.get_content()


ASCII_LOCALE = {'LC_ALL': 'C', 'LANG': 'C', 'PYTHONCOERCECLOCALE': '0', 'PYTHONUTF8': '0'}


@pytest.mark.parametrize('where', ['C locale, UTF-8 mode off', 'ISO-8859-1 locale'])
def test_a_sender_name_beyond_ascii_arrives_whatever_the_locale(lab, program_dir, smtp_server,
                                                                 make_locale, where):
    # pySendMail reads its config as the program does (UTF-8), not in the locale's encoding
    env = ASCII_LOCALE if where.startswith('C ') else make_locale('de_DE', 'ISO-8859-1')
    config = mail_config(smtp_server.port)
    config['mail']['from'] = 'Jürgen Müller <monitor@test.invalid>'
    write_config(program_dir.config, json.dumps(config, ensure_ascii=False))
    monitor = lab.start_monitor(program_dir, '--test-mail', fast=False, files=False,
                                env={'XDG_STATE_HOME': lab.tmp / 'xdg', **env})
    assert monitor.wait(20) == 0, monitor.output()
    (msg,) = smtp_server.wait_for_messages(1, timeout=5)
    (sender,) = msg['From'].addresses
    assert (sender.display_name, sender.addr_spec) == ('Jürgen Müller', 'monitor@test.invalid')


def test_test_mail_with_smtp_stopped_exits_1_with_one_line(lab, program_dir, smtp_server):
    smtp_server.stop()
    code, run = lab.run(program_dir, '--test-mail')
    assert code == 1
    assert run.stdout_lines == []
    (line,) = run.stderr_lines
    assert line.endswith(' ERROR test report not delivered: mail server 127.0.0.1:%d refused the '
                         'connection' % smtp_server.port)


def test_test_mail_without_config_exits_1_naming_the_fix(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_config=False)
    code, run = lab.run(app, '--test-mail')
    assert code == 1
    assert run.stdout_lines == []
    (line,) = run.stderr_lines
    assert 'ERROR test report not delivered: mail is not set up: ' in line
    assert 'copy sendMailConfig.json.example to sendMailConfig.json' in line
    assert 'Traceback' not in run.output()


def test_a_pysendmail_that_cannot_be_loaded_is_named_not_the_mail_server(lab, tmp_path):
    # a checkout cut short (or a file this user may not read) was told as the mail server's
    # fault: "mail server 127.0.0.1:25: Permission denied"
    app = make_program_dir(tmp_path / 'app')
    script = app.config.parent / 'sendMail.py'
    script.write_text("def send(:\n")
    code, run = lab.run(app, '--test-mail')
    assert code == 1 and run.stdout_lines == []
    (line,) = run.stderr_lines
    assert re.search(r" ERROR test report not delivered: cannot load pySendMail from %s: "
                     r"invalid syntax" % re.escape(str(script)), line), line
    assert 'mail server' not in line and 'Traceback' not in run.output()


# -- --notify-command instead of mail ----------------------------------------------------------
NOTIFY_SCRIPT = ('if [ -e "$1/fail" ]; then echo "ntfy server unreachable" >&2; exit 3; fi; '
                 'f=$(mktemp "$1/report-XXXXXX") && cat > "$f" '
                 '&& printf "%s\\n" "$PYNETCONNMON_SUBJECT" > "$f.subject"')


def notify_command(folder):
    """A command that stores the report in folder/report-*, its subject in report-*.subject, or
    exits 3 (saying why on stderr) while folder/fail exists."""
    folder.mkdir(exist_ok=True)
    return 'sh -c %s notify %s' % (shlex.quote(NOTIFY_SCRIPT), shlex.quote(str(folder)))


def notifications(folder):
    """[(subject, report)] in the order they were written."""
    reports = sorted((p for p in folder.glob('report-*') if p.suffix != '.subject'),
                     key=lambda p: p.stat().st_mtime_ns)
    return [(Path(str(p) + '.subject').read_text(), p.read_text()) for p in reports]


def test_notify_command_gets_the_report_and_subject(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    out = tmp_path / 'notify'
    monitor = lab.started(app, '--notify-command', notify_command(out))
    up = lab.outage(monitor)
    sent = monitor.wait_for_event('report_sent', timeout=10)
    assert (sent['interruptions'], sent['via']) == (1, 'notify command')
    assert monitor.terminate() == 0
    ((subject, report),) = notifications(out)
    count, downtime = SUBJECT.match(subject.rstrip('\n')).groups()
    assert subject.endswith('\n') and count == '1'
    assert report_rows(report) == [row(up, downtime)]
    assert monitor.events('report_failed') == []
    assert read_state(monitor.state)['pending'] == []


def test_test_mail_through_the_notify_command(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    out = tmp_path / 'notify'
    code, run = lab.run(app, '--test-mail', '--notify-command', notify_command(out))
    assert code == 0, run.output()
    ((subject, report),) = notifications(out)
    assert subject == 'pyNetConnMon on %s: test report\n' % HOST
    assert lab.target.address not in report     # each report names its own targets
    assert run.lines[-1].endswith(' test report accepted by notify command')
    (out / 'fail').touch()
    code, run = lab.run(app, '--test-mail', '--notify-command', notify_command(out))
    assert code == 1
    (line,) = run.stderr_lines
    assert line.endswith(' ERROR test report not delivered: notify command exited with status 3: '
                         'ntfy server unreachable')
    assert len(notifications(out)) == 1


def test_test_mail_without_targets_names_none(tmp_path):
    # --test-mail probes nothing: run without -a, it must not claim the default target for the
    # reports of a monitor that may watch others
    out = tmp_path / 'notify'
    run = MonitorProcess(['--test-mail', '--notify-command', notify_command(out)],
                         state_home=tmp_path / 'xdg')
    assert run.wait(20) == 0, run.output()
    ((_, report),) = notifications(out)
    assert report.splitlines()[1] == 'Reports about interruptions will arrive the same way.'
    assert DEFAULT_ADDRESS not in report
