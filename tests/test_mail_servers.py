"""Mail servers that lack what pySendMail needs: it always speaks TLS (STARTTLS, or TLS from the
first byte with "tls": true) and always logs in. --test-mail and the monitor say in one line what
the server lacks and the way out (a notify command with msmtp), never an exception's class name.

Real servers (tests/lab/smtp_server.py, configured to lack TLS or login) on 127.0.0.1 and the real
pySendMail (see smtp_lab.PYSENDMAIL), the program as a subprocess in an app folder.
"""
import re

import pytest

from harness import Listener, MonitorProcess, hold_outage, start_monitor
from smtp_lab import SmtpServer, mail_config, make_program_dir, write_config

STAMP = r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'
WAY = ('deliver with --notify-command and msmtp instead (README.md: "A mail server without TLS '
       'or login")')
# the class names of what smtplib and ssl raise, none of which a user should read
CLASS_NAMES = re.compile(r'SMTP\w*Error|SMTPServerDisconnected|SSLError|\w+Exception|'
                         r'\bTimeoutError|\bOSError')

# server options, the config's settings, what the one line says after "mail server HOST:PORT "
CASES = {
    'plain relay': (['--tls', 'none', '--no-auth'], {},
                    'offers no TLS (no STARTTLS), and pySendMail sends only over TLS: ' + WAY),
    'plain server, "tls": true': (
        ['--tls', 'none', '--no-auth'], {'tls': True},
        'does not speak TLS from the first byte, as "tls": true in sendMailConfig.json asks: set '
        '"tls": false if it offers STARTTLS; if it offers no TLS at all, ' + WAY),
    'TLS port, "tls": false': (
        ['--tls', 'implicit'], {'timeout': 1},
        'timed out; if it speaks TLS from the first byte (as on port 465), set "tls": true in '
        'sendMailConfig.json'),
    'STARTTLS without logins': (
        ['--no-auth'], {},
        'did not accept the login (535 5.7.8 Authentication credentials invalid): check user and '
        'password in sendMailConfig.json; if the server takes no logins, ' + WAY),
    'TLS port without login': (
        ['--tls', 'implicit', '--no-auth'], {'tls': True},
        'offers no login (no AUTH), and pySendMail always logs in: ' + WAY),
    'a wrong password': (
        [], {'password': 'not-the-password'},
        'did not accept the login (535 5.7.8 Authentication credentials invalid): check user and '
        'password in sendMailConfig.json; if the server takes no logins, ' + WAY),
}


@pytest.fixture
def server_as(tmp_path, smtp_certificate):
    """server_as(options): a started SmtpServer with those options; stopped at the end."""
    servers = []

    def start(options):
        server = SmtpServer(tmp_path, *smtp_certificate, options=options)
        servers.append(server)
        return server.start()
    yield start
    for server in servers:
        server.stop()


def app_for(tmp_path, server, **smtp):
    app = make_program_dir(tmp_path / 'app', smtp_port=server.port)
    write_config(app.config, mail_config(server.port, **smtp))
    return app


@pytest.mark.parametrize('case', list(CASES))
def test_test_mail_says_in_one_line_what_the_server_lacks_and_exits_1(tmp_path, server_as, case):
    options, smtp, says = CASES[case]
    server = server_as(options)
    app = app_for(tmp_path, server, **smtp)
    run = MonitorProcess(['--test-mail', '-a', '127.0.0.1:9'], cwd=app.root,
                         state_home=tmp_path / 'state')
    assert run.wait(20) == 1
    assert run.stdout_lines == []
    (line,) = run.stderr_lines
    assert re.fullmatch(r'%s ERROR test report not delivered: mail server 127\.0\.0\.1:%d %s'
                        % (STAMP, server.port, re.escape(says)), line), line
    assert not CLASS_NAMES.search(line), line
    assert server.messages() == []


def test_the_monitor_says_the_same_line_when_a_report_is_not_delivered(tmp_path, server_as):
    options, smtp, says = CASES['plain relay']
    server = server_as(options)
    app = app_for(tmp_path, server, **smtp)
    target = Listener().start()
    try:
        with start_monitor(tmp_path, '-a', target.address, '-i', '0.05', '-t', '0.2', '-m', '0.1',
                           '-bmin', '30', cwd=app.root) as monitor:
            monitor.wait_for_line(r' started pyNetConnMon ')
            hold_outage(monitor, target)
            failed = monitor.wait_for_event('report_failed', timeout=15)
            line = monitor.wait_for_line(r' WARNING report not delivered: ').string
            assert monitor.terminate() == 0
    finally:
        target.stop()
    reason = 'mail server 127.0.0.1:%d %s' % (server.port, says)
    assert failed['reason'] == reason
    assert re.fullmatch(r'%s WARNING report not delivered: %s; retrying in 30.0 s'
                        % (STAMP, re.escape(reason)), line), line
    assert server.messages() == []
