"""Reports end to end: the program as a subprocess, a loopback target that the test switches off
and on to make outages, and mail through the pySendMail stand-in to the lab's real SMTP server.

Everything stays on 127.0.0.1. The monitor runs with short intervals (FAST) and TZ=UTC, so the
times in a report can be compared exactly with the event log.
"""
import json
import os
import re
import shlex
import signal
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest

from harness import POLL, Listener, MonitorProcess, read_events
from smtp_lab import mail_config, make_program_dir, write_config
from smtp_server import FAIL_REPLY, PASSWORD

HOST = socket.gethostname()
BMIN = 0.5      # -bmin: the wait after a first report, and the retry time after a failed one
FAST = ('-i', '0.1', '-t', '0.2', '-m', '0.5', '-bmin', '%g' % BMIN, '-bstep', '1', '-bmax', '5')
OUTAGE = 0.7    # seconds the target is off for an interruption that counts (-m is 0.5)
QUIET = BMIN + 0.5  # watched after the last expected report: a repeat would show within it
SUBJECT = re.compile(r'^pyNetConnMon on %s: (\d+) interruptions?, (\d+\.\d s) of downtime$'
                     % re.escape(HOST))


# -- helpers ------------------------------------------------------------------------------------
def events(log, name=None):
    return [e for e in read_events(log) if name is None or e['event'] == name]


def names(log):
    return [e['event'] for e in read_events(log)]


def wait_events(log, name, n, timeout=10.0):
    """All `name` events of the log once there are at least n; AssertionError with the log if not
    within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = events(log, name)
        if len(found) >= n:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError('%d of %d %r events within %s s; log:\n%s' % (
                len(found), n, name, timeout,
                '\n'.join(json.dumps(e) for e in read_events(log))))
        time.sleep(POLL)


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError('not within %s s: %s' % (timeout, what))
        time.sleep(POLL)


def assert_mail_count_stays(server, n, seconds=QUIET):
    """Exactly n messages, and still n after `seconds` (fails at once when one more arrives)."""
    deadline = time.monotonic() + seconds
    while True:
        msgs = server.messages()
        assert len(msgs) == n, 'expected exactly %d messages, got %r' % (
            n, [m['Subject'] for m in msgs])
        if time.monotonic() >= deadline:
            return msgs
        time.sleep(POLL)


def wall(iso):
    return datetime.fromisoformat(iso).timestamp()


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


def row(up, duration_text, reason='refused'):
    return '%s  %s  %12s  %s' % (second(up['start']), second(up['end']), duration_text, reason)


def read_state(path):
    with open(path, encoding='utf-8') as stream:
        return json.load(stream)


class Lab:
    """One test's target, monitors and files. start_monitor() passes the loopback target, a
    state file and an event log inside tmp_path (run() not), FAST and TZ=UTC. close() kills every monitor
    and checks that the SMTP password shows up in no output, event log or state file."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.target = Listener().start()
        self.state = tmp_path / 'state' / 'state.json'
        self.log = tmp_path / 'events.jsonl'
        self.monitors = []

    def start_monitor(self, program_dir, *args, fast=True, files=True):
        argv = ['-a', '127.0.0.1:%d' % self.target.port,
                *(('--state-file', self.state, '--log-file', self.log) if files else ()),
                *(FAST if fast else ()), *args]
        monitor = MonitorProcess(argv, cwd=program_dir.root, env={'TZ': 'UTC'})
        monitor.log, monitor.state = self.log, self.state
        self.monitors.append(monitor)
        return monitor

    def started(self, program_dir, *args):
        """A monitor that has printed its start line and written its state file."""
        monitor = self.start_monitor(program_dir, *args)
        monitor.wait_for_line(r'started pyNetConnMon ', timeout=10)
        wait_until(self.state.exists, 5, 'state file written')
        return monitor

    def run(self, program_dir, *args, timeout=20):
        """A run that ends by itself (--test-mail, which refuses the monitor's files and
        timings); returns (exit code, MonitorProcess)."""
        monitor = self.start_monitor(program_dir, *args, fast=False, files=False)
        return monitor.wait(timeout), monitor

    def outage(self, monitor, seconds=OUTAGE):
        """The target off for `seconds` from the monitor's DOWN event, then on again; returns the
        monitor's up event for it."""
        downs, ups = len(events(self.log, 'down')), len(events(self.log, 'up'))
        self.target.stop()
        wait_events(self.log, 'down', downs + 1, timeout=5)
        time.sleep(seconds)
        self.target.start()
        return wait_events(self.log, 'up', ups + 1, timeout=5)[-1]

    def assert_no_secret(self):
        for monitor in self.monitors:
            assert PASSWORD not in monitor.output(), monitor.output()
        for path in (self.log, self.state):
            if path.exists():
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


def only_message(server, timeout=5):
    (msg,) = server.wait_for_messages(1, timeout=timeout)
    return msg


# -- 1, 2, 3: what is reported, what is not, and batching ------------------------------------------
def test_outage_gives_exactly_one_mail_naming_count_downtime_and_times(lab, program_dir,
                                                                        smtp_server):
    monitor = lab.started(program_dir)
    up = lab.outage(monitor)
    assert up['ignored'] is False
    msg = only_message(smtp_server)
    subject = SUBJECT.match(msg['Subject'])
    assert subject, msg['Subject']
    count, downtime = subject.groups()
    assert count == '1'
    assert abs(float(downtime.split()[0]) - up['duration']) <= 0.051
    body = msg.get_content()
    assert report_rows(body) == [row(up, downtime)]
    assert 'Targets: 127.0.0.1:%d' % lab.target.port in body.splitlines()
    assert 'Total: 1 interruption, %s of downtime.' % downtime in body.splitlines()
    (sent,) = wait_events(monitor.log, 'report_sent', 1)
    assert (sent['interruptions'], sent['via'], sent['next_wait']) == (1, 'mail', BMIN)
    assert_mail_count_stays(smtp_server, 1)
    assert [n for n in names(monitor.log) if n != 'start'] == ['down', 'up', 'report_sent']
    assert read_state(monitor.state)['pending'] == []
    assert monitor.terminate() == 0


def test_blip_shorter_than_min_interruption_is_logged_and_not_mailed(lab, program_dir,
                                                                      smtp_server):
    monitor = lab.started(program_dir)
    up = lab.outage(monitor, seconds=0)
    assert up['ignored'] is True
    assert up['duration'] < 0.5
    monitor.wait_for_line(r'UP after \d+\.\d s: shorter than 0\.5 s, ignored')
    assert_mail_count_stays(smtp_server, 0, seconds=1.0)
    assert not {'report_sent', 'report_failed'} & set(names(monitor.log))
    assert read_state(monitor.state)['pending'] == []


def test_outages_within_the_backoff_wait_are_batched_into_one_later_mail(lab, program_dir,
                                                                         smtp_server):
    bmin = 3.0
    monitor = lab.started(program_dir, '-m', '0.3', '-bmin', '%g' % bmin, '-bmax', '10')
    lab.outage(monitor)
    first = only_message(smtp_server)
    assert SUBJECT.match(first['Subject']).group(1) == '1'
    (sent1,) = wait_events(monitor.log, 'report_sent', 1)
    assert sent1['next_wait'] == bmin
    up2 = lab.outage(monitor, 0.5)
    up3 = lab.outage(monitor, 0.5)
    # both are over before the wait ends (else this machine is too slow for the test)
    assert wall(up3['end']) < wall(sent1['time']) + bmin - 0.3, (up3, sent1)
    assert len(smtp_server.messages()) == 1
    msgs = smtp_server.wait_for_messages(2, timeout=bmin + 3)
    sent = wait_events(monitor.log, 'report_sent', 2)
    assert bmin - 0.05 <= wall(sent[1]['time']) - wall(sent1['time']) <= bmin + 1.0
    assert (sent[1]['interruptions'], sent[1]['next_wait']) == (2, bmin + 1)
    count, downtime = SUBJECT.match(msgs[1]['Subject']).groups()
    assert count == '2'
    assert abs(float(downtime.split()[0]) - (up2['duration'] + up3['duration'])) <= 0.051
    rows = report_rows(msgs[1].get_content())
    assert [r[:40] for r in rows] == [row(up, '')[:40] for up in (up2, up3)]
    assert all(r.endswith('  refused') for r in rows)
    assert_mail_count_stays(smtp_server, 2)


# -- 4, 5: the mail server fails, then works: retried, delivered once -----------------------------
def test_smtp_down_when_the_network_returns_retries_and_delivers_once(lab, program_dir,
                                                                      smtp_server):
    smtp_server.stop()
    monitor = lab.started(program_dir)
    up = lab.outage(monitor)
    failed = wait_events(monitor.log, 'report_failed', 1)[0]
    assert failed['reason'] == 'mail server 127.0.0.1:%d refused the connection' % smtp_server.port
    assert (failed['interruptions'], failed['retry_in']) == (1, BMIN)
    monitor.wait_for_line(r'WARNING report not delivered: mail server 127\.0\.0\.1:%d refused the '
                          r'connection; retrying in 0\.5 s$' % smtp_server.port)
    assert read_state(monitor.state)['pending'][0]['reason'] == 'refused'
    smtp_server.start()
    msg = only_message(smtp_server, timeout=5)
    assert SUBJECT.match(msg['Subject']).group(1) == '1'
    assert report_rows(msg.get_content())[0].startswith(second(up['start']))
    wait_events(monitor.log, 'report_sent', 1)
    assert_mail_count_stays(smtp_server, 1)
    assert len(events(monitor.log, 'report_sent')) == 1
    assert read_state(monitor.state)['pending'] == []


def test_smtp_answering_451_is_a_failure_then_delivered_once(lab, program_dir, smtp_server):
    smtp_server.fail_451(True)
    monitor = lab.started(program_dir)
    lab.outage(monitor)
    failed = wait_events(monitor.log, 'report_failed', 1)[0]
    assert failed['reason'] == 'SMTP server answered %s' % FAIL_REPLY
    assert '451' in failed['reason']
    assert smtp_server.messages() == []
    smtp_server.fail_451(False)
    only_message(smtp_server, timeout=5)
    wait_events(monitor.log, 'report_sent', 1)
    assert_mail_count_stays(smtp_server, 1)
    assert len(events(monitor.log, 'report_sent')) == 1


# -- 6: set-up problems are warnings that name the fix; the monitor runs anyway ------------------
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
    msg = only_message(smtp_server, timeout=5)
    assert SUBJECT.match(msg['Subject']).group(1) == '1'
    assert_mail_count_stays(smtp_server, 1)
    assert sum('WARNING mail cannot work yet' in line for line in monitor.lines) == 1
    assert sum('WARNING report pending' in line for line in monitor.lines) == 1
    assert monitor.terminate() == 0


def test_empty_submodule_folder_warns_to_init_the_submodule(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    (app.root / 'pySendMail').mkdir()
    monitor = lab.started(app)
    warning = monitor.wait_for_line(r'WARNING mail cannot work yet: ').string
    assert 'the pySendMail submodule in %s is empty or missing' % (app.root / 'pySendMail') \
        in warning
    assert '`git submodule update --init`' in warning
    assert len(monitor.stderr_lines) == 1
    assert monitor.terminate() == 0


def test_config_readable_by_others_gets_a_chmod_warning(lab, program_dir):
    os.chmod(program_dir.config, 0o644)
    monitor = lab.started(program_dir)
    warning = monitor.wait_for_line(r'WARNING .*sendMailConfig\.json is accessible').string
    assert warning.endswith('is accessible by group or others (mode 0644) and holds your SMTP '
                            'password: run chmod 600 %s' % program_dir.config), warning
    assert len(monitor.stderr_lines) == 1
    assert monitor.returncode is None
    assert monitor.terminate() == 0


# -- 7, 8: restarts: pending reports survive, a kill leaves a gap, a clean stop does not ----------
def test_report_pending_at_stop_is_delivered_once_after_restart(lab, program_dir, smtp_server):
    smtp_server.stop()
    monitor = lab.started(program_dir)
    up = lab.outage(monitor)
    wait_events(monitor.log, 'report_failed', 1)
    assert monitor.terminate() == 0
    assert monitor.lines[-1].endswith('stopped (SIGTERM); 1 interruption still to report')
    state = read_state(monitor.state)
    assert state['clean_stop'] is True
    assert [item['reason'] for item in state['pending']] == ['refused']
    smtp_server.start()
    again = lab.start_monitor(program_dir)
    again.wait_for_line(r'1 interruption from the previous run still to report')
    msg = only_message(smtp_server, timeout=5)
    count, downtime = SUBJECT.match(msg['Subject']).groups()
    assert count == '1'
    assert report_rows(msg.get_content()) == [row(up, downtime)]
    wait_events(again.log, 'report_sent', 1)
    assert_mail_count_stays(smtp_server, 1)
    assert len(events(again.log, 'report_sent')) == 1
    assert 'gap' not in names(again.log)
    assert read_state(again.state)['pending'] == []
    assert again.terminate() == 0


def test_kill_9_leaves_a_gap_that_is_logged_and_reported(lab, program_dir, smtp_server):
    heartbeat = 1.0     # the shortest allowed
    monitor = lab.started(program_dir, '--heartbeat', '%g' % heartbeat)
    started = time.time()
    wait_until(lambda: read_state(monitor.state)['heartbeat'] > started + heartbeat, 5,
               'a heartbeat after the start')
    killed = time.time()
    monitor.kill()
    assert monitor.returncode == -signal.SIGKILL
    time.sleep(1.0)
    restarted = time.time()
    again = lab.start_monitor(program_dir, '--heartbeat', '%g' % heartbeat)
    (gap,) = wait_events(again.log, 'gap', 1)
    dead = restarted - killed
    assert dead - 0.05 <= gap['duration'] <= dead + heartbeat + 1.0, (dead, gap)
    assert gap['ignored'] is False
    msg = only_message(smtp_server, timeout=5)
    count, downtime = SUBJECT.match(msg['Subject']).groups()
    assert count == '1'
    (line,) = report_rows(msg.get_content())
    assert line == '%s  %s  %12s  gap: the monitor was not running (no clean stop)' % (
        second(gap['start']), second(gap['end']), downtime)
    assert_mail_count_stays(smtp_server, 1)
    assert again.terminate() == 0


def test_clean_stop_then_restart_logs_no_gap(lab, program_dir, smtp_server):
    monitor = lab.started(program_dir, '--heartbeat', '1')
    assert monitor.terminate() == 0
    assert read_state(monitor.state)['clean_stop'] is True
    time.sleep(0.7)                # longer than -m: a gap, if there were one, would be reported
    restarted = time.time()
    again = lab.start_monitor(program_dir, '--heartbeat', '1')
    wait_until(lambda: read_state(again.state)['heartbeat'] >= restarted, 10,
               'the restarted monitor took over the state file')
    assert_mail_count_stays(smtp_server, 0, seconds=0.8)
    assert 'gap' not in names(again.log)
    assert not any('GAP' in line or 'gap of' in line for line in again.lines)
    assert again.terminate() == 0


# -- 9, 10: the state file: one monitor per file; a corrupt one is moved aside ---------------------
def test_second_monitor_on_the_same_state_file_refuses_to_start(lab, program_dir):
    first = lab.started(program_dir)
    second_run = lab.start_monitor(program_dir)
    assert second_run.wait(10) == 1
    assert second_run.stdout_lines == []
    (line,) = second_run.stderr_lines
    assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR another pyNetConnMon is already '
                        r'running with state file %s; give this one its own --state-file'
                        % re.escape(str(lab.state)), line), line
    assert names(first.log).count('start') == 1
    up = lab.outage(first)            # the first one still watches
    assert up['ignored'] is False
    assert first.returncode is None
    assert first.terminate() == 0


def test_corrupt_state_file_is_moved_aside_and_the_monitor_runs(lab, program_dir, smtp_server):
    garbage = b'\x00\xff{"format": 1, "pending": [\xfe garbage'
    lab.state.parent.mkdir()
    lab.state.write_bytes(garbage)
    monitor = lab.started(program_dir)
    warning = monitor.wait_for_line(r'WARNING state file ').string
    (aside,) = lab.state.parent.glob('state.json.corrupt-*')
    assert aside.read_bytes() == garbage
    assert warning.endswith('; moved it to %s and started afresh' % aside), warning
    assert 'could not be used (' in warning

    def fresh_state():
        try:
            return read_state(lab.state)['format'] == 1
        except (FileNotFoundError, ValueError):
            return False
    wait_until(fresh_state, 5, 'a fresh state file')
    up = lab.outage(monitor)
    assert up['ignored'] is False
    only_message(smtp_server)
    assert monitor.terminate() == 0


# -- 11: --test-mail ---------------------------------------------------------------------------
def test_test_mail_is_delivered_and_exits_0(lab, program_dir, smtp_server):
    code, run = lab.run(program_dir, '--test-mail')
    assert code == 0, run.output()
    msg = only_message(smtp_server)
    assert msg['Subject'] == 'pyNetConnMon on %s: test report' % HOST
    assert '127.0.0.1:%d' % lab.target.port in msg.get_content()
    (line,) = run.lines
    assert line.endswith(' test report accepted by mail')
    assert not lab.state.exists()


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


# -- 12: --notify-command instead of mail ----------------------------------------------------------
NOTIFY_SCRIPT = ('touch "$1/running"; if [ -e "$1/slow" ]; then sleep "$(cat "$1/slow")"; fi; '
                 'if [ -e "$1/fail" ]; then echo "ntfy server unreachable" >&2; exit 3; fi; '
                 'f=$(mktemp "$1/report-XXXXXX") && cat > "$f" '
                 '&& printf "%s\\n" "$PYNETCONNMON_SUBJECT" > "$f.subject"')


def notify_command(folder):
    """A command that touches folder/running, sleeps as many seconds as folder/slow says (if it
    exists), then stores the report in folder/report-*, its subject in report-*.subject, or
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
    (sent,) = wait_events(monitor.log, 'report_sent', 1)
    assert (sent['interruptions'], sent['via']) == (1, 'notify command')
    ((subject, report),) = notifications(out)
    count, downtime = SUBJECT.match(subject.rstrip('\n')).groups()
    assert subject.endswith('\n') and count == '1'
    assert report_rows(report) == [row(up, downtime)]
    assert 'report_failed' not in names(monitor.log)
    assert monitor.terminate() == 0


def test_failing_notify_command_keeps_the_report_and_retries(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    out = tmp_path / 'notify'
    out.mkdir()
    (out / 'fail').touch()
    monitor = lab.started(app, '--notify-command', notify_command(out))
    lab.outage(monitor)
    failed = wait_events(monitor.log, 'report_failed', 2, timeout=5)
    assert failed[0]['reason'] == 'notify command exited with status 3: ntfy server unreachable'
    assert 'status 3' in failed[1]['reason']
    assert BMIN - 0.1 <= wall(failed[1]['time']) - wall(failed[0]['time']) <= BMIN + 1.0
    assert len(read_state(monitor.state)['pending']) == 1
    assert notifications(out) == []
    (out / 'fail').unlink()
    wait_events(monitor.log, 'report_sent', 1)
    time.sleep(QUIET)
    assert len(notifications(out)) == 1
    assert len(events(monitor.log, 'report_sent')) == 1
    assert read_state(monitor.state)['pending'] == []
    assert monitor.terminate() == 0


def test_test_mail_through_the_notify_command(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    out = tmp_path / 'notify'
    code, run = lab.run(app, '--test-mail', '--notify-command', notify_command(out))
    assert code == 0, run.output()
    ((subject, report),) = notifications(out)
    assert subject == 'pyNetConnMon on %s: test report\n' % HOST
    assert '127.0.0.1:%d' % lab.target.port in report
    assert run.lines[-1].endswith(' test report accepted by notify command')
    (out / 'fail').touch()
    code, run = lab.run(app, '--test-mail', '--notify-command', notify_command(out))
    assert code == 1
    (line,) = run.stderr_lines
    assert line.endswith(' ERROR test report not delivered: notify command exited with status 3: '
                         'ntfy server unreachable')
    assert len(notifications(out)) == 1


def test_report_accepted_during_the_stop_is_not_kept_pending(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    out = tmp_path / 'notify'
    out.mkdir()
    (out / 'slow').write_text('0.2')
    monitor = lab.started(app, '--notify-command', notify_command(out))
    lab.outage(monitor)
    wait_until((out / 'running').exists, 5, 'the notify command started')
    assert monitor.terminate() == 0
    assert len(notifications(out)) == 1
    assert len(events(monitor.log, 'report_sent')) == 1
    assert monitor.lines[-1].endswith('stopped (SIGTERM)')
    assert read_state(monitor.state)['pending'] == []


def test_notify_command_still_running_at_stop_is_killed_and_retried_after_restart(lab, tmp_path):
    app = make_program_dir(tmp_path / 'app', with_pysendmail=False)
    out = tmp_path / 'notify'
    out.mkdir()
    (out / 'slow').write_text('1.5')
    monitor = lab.started(app, '--notify-command', notify_command(out))
    lab.outage(monitor)
    wait_until((out / 'running').exists, 5, 'the notify command started')
    began = time.monotonic()
    assert monitor.terminate() == 0
    assert time.monotonic() - began < 1.5          # waited briefly, did not sit out the command
    assert monitor.lines[-1].endswith('stopped (SIGTERM); 1 interruption still to report')
    assert len(read_state(monitor.state)['pending']) == 1
    wait_until(lambda: time.monotonic() > began + 2.0, 3, 'the command would have finished')
    assert notifications(out) == []                # killed: it cannot deliver behind our back
    (out / 'slow').unlink()
    again = lab.start_monitor(app, '--notify-command', notify_command(out))
    wait_events(again.log, 'report_sent', 1)
    assert len(notifications(out)) == 1
    assert read_state(again.state)['pending'] == []
    assert again.terminate() == 0
