"""A hostile notify command against the monitor as a subprocess: a child left behind
holding the pipe must not turn one delivery into a timeout and a second delivery; a flood of
stderr with control characters must come out as one short, escaped console line.

Everything stays on 127.0.0.1; the monitor runs with short intervals.
"""
import time

from harness import POLL, Listener, events, sleeper, start_monitor, wait_for_event

FAST = ('-i', '0.05', '-t', '0.2', '-m', '0.2', '-bmin', '0.3', '-bstep', '1', '-bmax', '5')
OUTAGE = 0.3        # seconds off: an interruption that counts (-m is 0.2)
QUIET = 0.6         # watched after the delivery: a retry (after -bmin 0.3) would show within it


def test_a_command_that_leaves_a_child_holding_its_output_is_delivered_once_at_once(tmp_path,
                                                                                     pids):
    reports = tmp_path / 'reports'
    reports.mkdir()
    command = 'cat > "$(mktemp "%s/report-XXXXXX")"; %s & exit 0' % (reports, sleeper(pids))
    with Listener() as target, start_monitor(tmp_path, '-a', target.address, *FAST,
                                             '--notify-command', command) as monitor:
        log = monitor.log
        monitor.wait_for_line(r'started pyNetConnMon ')
        target.stop()
        wait_for_event(log, {'event': 'down'}, timeout=5)
        time.sleep(OUTAGE)
        target.start()
        up = wait_for_event(log, {'event': 'up'}, timeout=5)
        # the command's limit is 60 s: waiting for the child would fail here
        sent = wait_for_event(log, {'event': 'report_sent'}, timeout=5)
        assert (up['ignored'], sent['interruptions'], sent['via']) == (False, 1, 'notify command')
        deadline = time.monotonic() + QUIET
        while time.monotonic() < deadline:
            assert len(list(reports.iterdir())) == 1
            assert (len(events(log, 'report_sent')), events(log, 'report_failed')) == (1, [])
            time.sleep(POLL)
        assert pids.exists()            # the child was there, holding the pipe, all along
        assert monitor.terminate() == 0


def test_a_flood_of_hostile_stderr_is_one_short_escaped_console_line(tmp_path):
    command = (r"printf '\033[2J12:00:00 UP forged\n' >&2; "
               r"head -c 20000000 /dev/zero | tr '\0' x >&2; "
               r"printf '\n\033]0;owned\007 token rejected\n' >&2; exit 3")
    with Listener() as target, start_monitor(tmp_path, '-a', target.address, '--test-mail',
                                             '--notify-command', command, log_file=False,
                                             state_file=False) as monitor:
        assert monitor.wait(timeout=20) == 1
    (line,) = monitor.stderr_lines
    assert line.endswith(' ERROR test report not delivered: notify command exited with status 3: '
                         r'\x1b]0;owned\x07 token rejected'), line[:300]
    assert len(line) < 150
    assert monitor.stdout_lines == []
