#!/usr/bin/env python3
"""A real SMTP server for pyNetConnMon's tests (aiosmtpd), as a script or a module.

It behaves like a careful mail provider: STARTTLS is required before anything else, AUTH is
offered only over TLS and is required before MAIL, and exactly one login (USER / PASSWORD) is
accepted. Each accepted message is stored atomically as MAILDIR/<monotonic-ns>-<seq>.eml. While
the file given by --fail-file exists, every message is answered FAIL_REPLY and not stored.

    python3 tests/lab/smtp_server.py --port 2525 --cert c.pem --key k.pem --maildir DIR \
        [--fail-file F]
        [--tls starttls|implicit|none] [--no-auth]
    ip netns exec pm-x python3 tests/lab/smtp_server.py --host 127.0.0.1 --port 2525 ...

Prints "READY <port>" on stdout once it answers, and stops cleanly on SIGTERM or SIGINT (or after
--max-seconds, so a server orphaned by a crashed test run cannot live on for ever).
"""
import argparse
import itertools
import logging
import os
import signal
import ssl
import sys
import threading
import time

# aiosmtpd is imported where it is used, so the test process can read the constants cheaply.

USER = 'monitor'
PASSWORD = 's3cret-pw'
FAIL_REPLY = '451 4.3.0 Try again later'


def authenticator(server, session, envelope, mechanism, auth_data):
    """Accept exactly USER / PASSWORD (AUTH PLAIN or LOGIN)."""
    from aiosmtpd.smtp import AuthResult, LoginPassword
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USER.encode()
          and auth_data.password == PASSWORD.encode())
    # handled=False makes aiosmtpd answer "535 5.7.8"; its default (handled=True) means "the
    # authenticator already replied", so a refused login would get no answer at all.
    return AuthResult(success=ok, handled=False)


class MaildirHandler:
    """aiosmtpd handler: store each message as one file, or refuse it while fail_file exists."""

    def __init__(self, maildir, fail_file=None):
        self.maildir = os.fspath(maildir)
        self.fail_file = os.fspath(fail_file) if fail_file else None
        self._seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.fail_file and os.path.exists(self.fail_file):
            return FAIL_REPLY
        name = '%d-%06d.eml' % (time.monotonic_ns(), next(self._seq))
        tmp = os.path.join(self.maildir, '.' + name + '.tmp')
        with open(tmp, 'wb') as f:
            f.write(envelope.original_content.replace(b'\r\n', b'\n'))   # as on disk: LF
        os.replace(tmp, os.path.join(self.maildir, name))
        return '250 2.0.0 Message accepted'


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


# What a server offers (--tls, --no-auth): the careful provider above by default, or one that
# lacks what pySendMail needs, as a plain local relay does.
TLS_MODES = ('starttls', 'implicit', 'none')


def make_controller(host, port, cert, key, maildir, fail_file=None, tls='starttls', auth=True):
    """A started-able Controller. `port` must be a fixed, non-zero port: the Controller's
    readiness check connects to (host, port), so port 0 cannot work. `tls`: 'starttls'
    (required before anything else), 'implicit' (TLS from the first byte, as on port 465) or
    'none'; without `auth` no login is accepted (aiosmtpd still offers AUTH after STARTTLS and
    answers 535; over implicit TLS it offers none)."""
    from aiosmtpd.controller import Controller
    os.makedirs(maildir, exist_ok=True)
    kwargs = dict(authenticator=authenticator, auth_required=True) if auth else {}
    if tls == 'starttls':
        kwargs.update(tls_context=tls_context(cert, key), require_starttls=True)
    elif tls == 'implicit':
        kwargs.update(ssl_context=tls_context(cert, key))
    return Controller(MaildirHandler(maildir, fail_file), hostname=host, port=port,
                      ready_timeout=10.0, **kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--cert', required=True)
    parser.add_argument('--key', required=True)
    parser.add_argument('--maildir', required=True)
    parser.add_argument('--fail-file')
    parser.add_argument('--max-seconds', type=float, default=900.0)
    parser.add_argument('--tls', choices=TLS_MODES, default='starttls')
    parser.add_argument('--no-auth', dest='auth', action='store_false')
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error('--port must be a fixed port (1-65535)')

    # aiosmtpd itself sets the deprecated Session.login_data on every login and warns about it.
    logging.getLogger('mail.log').addFilter(
        lambda record: 'login_data is deprecated' not in record.getMessage())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())

    controller = make_controller(args.host, args.port, args.cert, args.key,
                                 args.maildir, args.fail_file, args.tls, args.auth)
    controller.start()
    try:
        print('READY %d' % controller.port, flush=True)
        stop.wait(args.max_seconds)     # a signal handler sets it; the wait wakes at once
    finally:
        controller.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
