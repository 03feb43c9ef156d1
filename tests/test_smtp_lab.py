"""The mail lab itself: the SMTP server, its fail switch, and pySendMail (the real one when it is
at hand, see smtp_lab.PYSENDMAIL) talking to it through STARTTLS and AUTH."""
import os
import smtplib
import stat

import pytest

from smtp_lab import (MAIL_FROM, MAIL_TO, PYSENDMAIL, STANDIN, VENDORED, load_sendmail,
                      mail_config, make_program_dir, write_config)
from smtp_server import PASSWORD, USER


def mailer(program_dir, subject='lab test', content='first line\nsecond line\n'):
    m = load_sendmail(program_dir.root).pySendMail()
    m.subject, m.content = subject, content
    return m


def test_mail_arrives_with_subject_body_and_addresses(program_dir, smtp_server):
    mailer(program_dir, subject='pyNetConnMon lab').sendInternal()
    (msg,) = smtp_server.wait_for_messages(1, timeout=5)
    assert msg['Subject'] == 'pyNetConnMon lab'
    assert msg['From'] == MAIL_FROM
    assert msg['To'] == MAIL_TO
    assert msg.get_content() == 'first line\nsecond line\n'


def test_messages_keep_arrival_order(program_dir, smtp_server):
    for n in range(3):
        mailer(program_dir, subject='mail %d' % n).sendInternal()
    msgs = smtp_server.wait_for_messages(3, timeout=5)
    assert [m['Subject'] for m in msgs] == ['mail 0', 'mail 1', 'mail 2']


def test_the_app_folder_gets_the_real_pysendmail_when_it_is_at_hand(program_dir):
    if (VENDORED / 'sendMail.py').is_file():
        assert PYSENDMAIL == VENDORED
    copied = program_dir.root / 'pySendMail' / 'sendMail.py'
    assert copied.read_bytes() == (PYSENDMAIL / 'sendMail.py').read_bytes()
    # the stand-in exactly when no real one is at hand (a clone's test of a clone without one
    # finds the stand-in's copy in its pySendMail/)
    standin = (PYSENDMAIL / 'sendMail.py').read_bytes() == (STANDIN / 'sendMail.py').read_bytes()
    assert standin == ('stand-in' in copied.read_text())


def test_config_is_private(program_dir):
    assert stat.S_IMODE(os.stat(program_dir.config).st_mode) == 0o600
    assert not (program_dir.root / 'pySendMail' / '__init__.py').exists()


def test_fail_451_refuses_and_stores_nothing_until_switched_off(program_dir, smtp_server):
    smtp_server.fail_451(True)
    with pytest.raises(smtplib.SMTPDataError) as info:
        mailer(program_dir).sendInternal()
    assert info.value.smtp_code == 451
    assert smtp_server.messages() == []
    smtp_server.fail_451(False)
    mailer(program_dir, subject='after 451').sendInternal()
    assert [m['Subject'] for m in smtp_server.wait_for_messages(1, 5)] == ['after 451']


def test_stopped_server_refuses_and_restart_keeps_port(program_dir, smtp_server):
    port = smtp_server.port
    smtp_server.stop()
    smtp_server.stop()      # idempotent
    with pytest.raises(ConnectionRefusedError):
        mailer(program_dir).sendInternal()
    smtp_server.start()
    assert smtp_server.port == port
    mailer(program_dir, subject='after restart').sendInternal()
    assert smtp_server.wait_for_messages(1, 5)[0]['Subject'] == 'after restart'


def test_wrong_password_is_refused(program_dir, smtp_server):
    write_config(program_dir.config, mail_config(smtp_server.port, password='wrong'))
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        mailer(program_dir).sendInternal()
    assert info.value.smtp_code == 535
    assert smtp_server.messages() == []


def test_server_requires_starttls_before_auth(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as plain:
        plain.ehlo()
        assert not plain.has_extn('auth')
        code, _ = plain.mail(MAIL_FROM)
        assert code == 530
        plain.starttls()
        plain.ehlo()
        assert plain.has_extn('auth')
        plain.login(USER, PASSWORD)


def test_pysendmail_without_config_exits_1(tmp_path, capsys):
    app = make_program_dir(tmp_path / 'app', with_config=False)
    module = load_sendmail(app.root)
    with pytest.raises(SystemExit) as info:
        module.pySendMail()
    assert info.value.code == 1
    assert capsys.readouterr().out.startswith('Could not parse config file: ')


def test_wait_for_messages_reports_what_arrived(smtp_server):
    with pytest.raises(AssertionError, match='0 of 1 messages'):
        smtp_server.wait_for_messages(1, timeout=0.05)
