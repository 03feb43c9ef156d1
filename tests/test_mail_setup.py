"""Mail setup messages: what a new user sees while setting up mail, before any report goes out.

Unit tests of the checks, and --test-mail (and one monitor start) as subprocesses whose mail
server is a closed port on 127.0.0.1: nothing listens, so no mail server is ever reached.
"""
import os
import re

import pyNetConnMon
from harness import MonitorProcess, closed_port
from smtp_lab import mail_config, make_program_dir, write_config

STAMP = r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'


def pysendmail_dir(app):
    return str(app.root / 'pySendMail')


def run_test_mail(app, tmp_path):
    """--test-mail in the app folder; returns the finished MonitorProcess."""
    run = MonitorProcess(['--test-mail', '-a', '127.0.0.1:%d' % closed_port()], cwd=app.root,
                         state_home=tmp_path / 'state')
    run.wait(20)
    return run


# -- a config that is not valid JSON -----------------------------------------------------------
def test_config_that_is_not_json_is_named_as_such_with_line_and_column(tmp_path):
    app = make_program_dir(tmp_path / 'app')
    write_config(app.config, '{\n    "mail": {\n        "from": "a@b"\n        "to": "c@d"\n')
    assert pyNetConnMon.check_mail_setup(pysendmail_dir(app)) == (
        "%s is not valid JSON (line 4, column 9: Expecting ',' delimiter)" % app.config)


def test_config_that_is_not_utf8_cannot_be_read(tmp_path):
    app = make_program_dir(tmp_path / 'app')
    app.config.write_bytes(b'{"mail": "\xff"}')
    problem = pyNetConnMon.check_mail_setup(pysendmail_dir(app))
    assert problem.startswith('%s cannot be read: ' % app.config), problem


def test_test_mail_with_a_config_that_is_not_json_exits_1_saying_so(tmp_path):
    app = make_program_dir(tmp_path / 'app')
    write_config(app.config, '{"mail": }\n')
    run = run_test_mail(app, tmp_path)
    assert run.returncode == 1
    assert run.stdout_lines == []
    (line,) = run.stderr_lines
    assert re.fullmatch(r'%s ERROR test report not delivered: mail is not set up: %s is not valid '
                        r'JSON \(line 1, column 10: Expecting value\)'
                        % (STAMP, re.escape(str(app.config))), line), line


# -- a refused connection names the server and port ------------------------------------------------
def test_refused_connection_names_the_server_and_port():
    error = ConnectionRefusedError(111, 'Connection refused')
    assert pyNetConnMon.describe_send_error(error, '127.0.0.1:2525') == (
        'mail server 127.0.0.1:2525 refused the connection')
    assert pyNetConnMon.describe_send_error(error) == 'mail server refused the connection'


def test_other_failures_name_the_server_and_no_exception_class():
    describe = pyNetConnMon.describe_send_error
    assert describe(OSError(113, 'No route to host'), '192.0.2.1:25') == (
        'mail server 192.0.2.1:25: No route to host')
    assert describe(TimeoutError('timed out'), '127.0.0.1:465', tls=True) == (
        'mail server 127.0.0.1:465 timed out')
    assert describe(ValueError('bad port'), '127.0.0.1:25') == 'mail server 127.0.0.1:25: bad port'


def timed_out_in(step):
    """A timeout raised in a function named `step`, as smtplib's steps raise it."""
    def raise_it():
        raise TimeoutError('timed out')
    raise_it.__code__ = raise_it.__code__.replace(co_name=step)
    try:
        raise_it()
    except TimeoutError as error:
        return error


def test_a_timeout_after_the_greeting_says_where_and_not_to_change_the_port():
    # a server that went silent after STARTTLS was told it might speak TLS from the first byte
    describe = pyNetConnMon.describe_send_error
    assert describe(timed_out_in('login'), '127.0.0.1:2587', tls=False) == (
        'mail server 127.0.0.1:2587 timed out during the login')
    assert describe(timed_out_in('send_message'), '127.0.0.1:2587', tls=False) == (
        'mail server 127.0.0.1:2587 timed out during sending')
    assert describe(timed_out_in('getreply'), '127.0.0.1:2587', tls=False) == (
        'mail server 127.0.0.1:2587 timed out; if it speaks TLS from the first byte (as on port '
        '465), set "tls": true in sendMailConfig.json')


def test_mail_server_address_is_read_from_the_config(tmp_path):
    app = make_program_dir(tmp_path / 'app')
    cases = [(dict(port=2525), '127.0.0.1:2525'),
             (dict(port=0, tls=False), '127.0.0.1:25'),       # smtplib's defaults for port 0
             (dict(port=0, tls=True), '127.0.0.1:465'),
             (dict(host='::1', port=587), '[::1]:587'),
             (dict(host='mail.example.org', port=465), 'mail.example.org:465')]
    for smtp, expected in cases:
        write_config(app.config, mail_config(**smtp))
        assert pyNetConnMon.mail_server_address(pysendmail_dir(app)) == expected, smtp
    write_config(app.config, '{"mail": {"smtp": {"server": "x"}}}')
    assert pyNetConnMon.mail_server_address(pysendmail_dir(app)) is None
    app.config.unlink()
    assert pyNetConnMon.mail_server_address(pysendmail_dir(app)) is None


def test_delivery_to_a_closed_port_names_that_server(tmp_path):
    port = closed_port()
    app = make_program_dir(tmp_path / 'app', smtp_port=port)
    deliverer = pyNetConnMon.MailDeliverer(pysendmail_dir(app))
    try:
        deliverer.deliver('subject', 'body')
    except pyNetConnMon.DeliveryError as error:
        assert str(error) == 'mail server 127.0.0.1:%d refused the connection' % port
    else:
        raise AssertionError('delivered to a closed port')


def test_test_mail_to_a_closed_port_exits_1_naming_server_and_port(tmp_path):
    port = closed_port()
    app = make_program_dir(tmp_path / 'app', smtp_port=port)
    run = run_test_mail(app, tmp_path)
    assert run.returncode == 1
    assert run.stdout_lines == []
    (line,) = run.stderr_lines
    assert re.fullmatch(r'%s ERROR test report not delivered: mail server 127\.0\.0\.1:%d refused '
                        r'the connection' % (STAMP, port), line), line


# -- a config readable by others: --test-mail warns as the monitor does ----------------------------
def test_permission_warning_only_for_a_config_readable_by_group_or_others(tmp_path):
    app = make_program_dir(tmp_path / 'app')
    assert pyNetConnMon.config_permission_warning(pysendmail_dir(app)) is None     # 0600
    os.chmod(app.config, 0o640)
    assert pyNetConnMon.config_permission_warning(pysendmail_dir(app)) == (
        '%s is accessible by group or others (mode 0640) and holds your SMTP password: run '
        'chmod 600 %s' % (app.config, app.config))


def test_test_mail_warns_about_a_readable_config_with_the_monitors_words(tmp_path):
    port = closed_port()
    app = make_program_dir(tmp_path / 'app', smtp_port=port)
    os.chmod(app.config, 0o644)
    run = run_test_mail(app, tmp_path)
    assert run.returncode == 1
    warning, error = run.stderr_lines
    assert warning.split(' ', 2)[2] == 'WARNING ' + pyNetConnMon.config_permission_warning(
        pysendmail_dir(app))
    assert error.endswith(' ERROR test report not delivered: mail server 127.0.0.1:%d refused the '
                          'connection' % port)
    with MonitorProcess(['-a', '127.0.0.1:%d' % closed_port(), '-i', '0.2', '-t', '0.2'],
                        cwd=app.root, state_home=tmp_path / 'state') as monitor:
        at_start = monitor.wait_for_line(r' WARNING .*is accessible by group or others').string
        monitor.wait_for_line(r' started pyNetConnMon ')    # its signal handlers are in place
        assert monitor.terminate() == 0
    assert at_start.split(' ', 2)[2] == warning.split(' ', 2)[2]


def test_test_mail_says_nothing_about_a_private_config(tmp_path):
    app = make_program_dir(tmp_path / 'app')        # 0600, mail server on a closed port
    run = run_test_mail(app, tmp_path)
    assert run.returncode == 1
    assert len(run.stderr_lines) == 1 and ' ERROR ' in run.stderr_lines[0], run.stderr_lines


# -- mail cannot work yet: the warning names the other ways ----------------------------------
def test_mail_cannot_work_yet_names_notify_command_and_no_mail(tmp_path):
    app = make_program_dir(tmp_path / 'app', with_config=False)
    with MonitorProcess(['-a', '127.0.0.1:%d' % closed_port(), '-i', '0.2', '-t', '0.2'],
                        cwd=app.root, state_home=tmp_path / 'state') as monitor:
        warning = monitor.wait_for_line(r' WARNING mail cannot work yet: ').string
        monitor.wait_for_line(r' started pyNetConnMon ')    # its signal handlers are in place
        assert monitor.terminate() == 0
    assert warning.endswith(
        'does not exist: copy sendMailConfig.json.example to sendMailConfig.json there and fill in '
        'your mail server. Monitoring anyway; reports wait until it works (or deliver them with '
        '--notify-command CMD instead, or turn them off with --no-mail).'), warning
