"""Mail lab for the tests: a real SMTP server (tests/lab/smtp_server.py) in a subprocess, a
self-signed certificate for it, and an app folder holding the program with pySendMail and a config
that points at the server.

Which pySendMail is decided here and nowhere else (PYSENDMAIL): the real one, i.e. the files of
the submodule's pinned commit kept beside the repository in ../shared/vendor/ (or, failing that,
a checked-out submodule), and only where neither is at hand the stand-in in pysendmail_standin/.
Only the submodule's own files are ever copied (PYSENDMAIL_FILES): the owner's
sendMailConfig.json in a checked-out submodule is never read, copied or sent through.

Every config a test writes (write_config) is mode 0600 and removed when the test ends
(remove_written_configs): it holds a password.

Fixtures (gathered by conftest.py): smtp_certificate, session_smtp_server, smtp_server,
program_dir, remove_written_configs (autouse).
"""
import collections
import email.policy
import importlib.util
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email.parser import BytesParser
from pathlib import Path

import pytest

from harness import closed_port, wait_until
from smtp_server import PASSWORD, USER

LAB = Path(__file__).resolve().parent
REPO = LAB.parent.parent
SERVER_SCRIPT = LAB / 'smtp_server.py'
PROGRAM = REPO / 'pyNetConnMon.py'
VENDORED = REPO.parent / 'shared' / 'vendor' / 'pySendMail-96729e6'
SUBMODULE = REPO / 'pySendMail'
STANDIN = LAB / 'pysendmail_standin'


def _pysendmail():
    for folder in (VENDORED, SUBMODULE):
        if (folder / 'sendMail.py').is_file():
            return folder
    return STANDIN


PYSENDMAIL = _pysendmail()     # the folder whose files an app folder's pySendMail/ gets
# What an app folder's pySendMail/ gets from PYSENDMAIL: the submodule's code and example, never
# a sendMailConfig.json (in a checked-out submodule, that is the owner's, with their password).
PYSENDMAIL_FILES = ('sendMail.py', 'sendMailConfig.json.example')
MAIL_FROM = 'monitor@test.invalid'
MAIL_TO = 'owner@test.invalid'


# -- certificate -----------------------------------------------------------------------------
def make_certificate(folder):
    """A self-signed certificate and key (CN=localhost, 2 days) in folder; returns (cert, key)."""
    folder = Path(folder)
    cert, key = folder / 'cert.pem', folder / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                    '-subj', '/CN=localhost', '-days', '2', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope='session')
def smtp_certificate(tmp_path_factory):
    """(cert, key) paths of one self-signed certificate for the whole run; the key (0600, as
    openssl writes it) is removed at the end."""
    cert, key = make_certificate(tmp_path_factory.mktemp('smtp-cert'))
    yield cert, key
    key.unlink(missing_ok=True)


# -- server ------------------------------------------------------------------------------------
class SmtpServer:
    """tests/lab/smtp_server.py as a subprocess, with its maildir and fail switch.

    `prefix` (e.g. ['ip', 'netns', 'exec', 'pm-x']) is put before the command; `host` is where it
    listens in that namespace. The port is picked once (free on 127.0.0.1 here) and kept across
    stop()/start(). Its own files live in a fresh folder under `workdir`. `options` are more
    of the server's options (e.g. ['--tls', 'none', '--no-auth'], as a plain local relay).
    """

    def __init__(self, workdir, cert, key, prefix=None, host='127.0.0.1', port=None,
                 options=()):
        self.dir = Path(tempfile.mkdtemp(prefix='smtp-', dir=workdir))
        self.maildir = self.dir / 'maildir'
        self.maildir.mkdir()
        self.fail_file = self.dir / 'fail-451'
        self.stderr_path = self.dir / 'server.stderr'
        self.cert, self.key = cert, key
        self.prefix = list(prefix or [])
        self.host = host
        self.port = port or closed_port()
        self.options = list(options)
        self.proc = None

    def __repr__(self):
        return '<SmtpServer %s:%s %s>' % (self.host, self.port,
                                          'running' if self.running else 'stopped')

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors='replace')
        except FileNotFoundError:
            return ''

    def start(self, timeout=10.0):
        """Launch the server and return once it printed READY; RuntimeError (server killed,
        its stderr shown) if it did not within `timeout` s."""
        assert not self.running, 'SMTP server already running'
        argv = [*self.prefix, sys.executable, '-u', str(SERVER_SCRIPT),
                '--host', self.host, '--port', str(self.port),
                '--cert', str(self.cert), '--key', str(self.key),
                '--maildir', str(self.maildir), '--fail-file', str(self.fail_file),
                *self.options]
        with open(self.stderr_path, 'ab') as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, start_new_session=True)
        got = b''
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b'\n' not in got:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if sel.select(min(left, 0.5)):
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        break       # the server ended
                    got += chunk
        if got.split(b'\n', 1)[0] != b'READY %d' % self.port:
            self.stop()
            raise RuntimeError('SMTP server did not get ready within %s s: stdout %r\n%s'
                               % (timeout, got, self.stderr()))
        return self

    def stop(self, timeout=5.0):
        """SIGTERM and wait (SIGKILL after `timeout` s). Safe to call when not running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        proc.stdout.close()

    def restart(self):
        self.stop()
        return self.start()

    def fail_451(self, on=True):
        """While on, every message is answered 451 4.3.0 and not stored."""
        if on:
            self.fail_file.touch()
        else:
            self.fail_file.unlink(missing_ok=True)

    def message_files(self):
        """Stored message files in arrival order."""
        def order(path):
            ns, seq = path.stem.split('-')
            return int(ns), int(seq)
        return sorted((p for p in self.maildir.glob('*.eml') if not p.name.startswith('.')),
                      key=order)

    def messages(self):
        """Stored messages (email.message.EmailMessage) in arrival order."""
        parser = BytesParser(policy=email.policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in self.message_files()]

    def wait_for_messages(self, n, timeout=10.0):
        """All stored messages once there are at least n; AssertionError showing what did
        arrive if not within `timeout` s."""
        def enough():
            msgs = self.messages()
            return msgs if len(msgs) >= n else None
        try:
            return wait_until(enough, timeout, '%d messages' % n)
        except AssertionError:
            msgs = self.messages()
            raise AssertionError('%d of %d messages arrived within %s s: %r\n%s' % (
                len(msgs), n, timeout, [m['Subject'] for m in msgs], self.stderr())) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


@pytest.fixture(scope='session')
def session_smtp_server(tmp_path_factory, smtp_certificate):
    """One SmtpServer on 127.0.0.1 for the whole run (starting one takes a good part of a
    second); use smtp_server, which hands it over fresh."""
    cert, key = smtp_certificate
    server = SmtpServer(tmp_path_factory.mktemp('smtp'), cert, key)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server(session_smtp_server):
    """The SmtpServer on 127.0.0.1 as if new: running, accepting (no 451), no messages. A test
    may stop it or switch on 451; the next test gets it back like this."""
    server = session_smtp_server
    server.fail_451(False)
    for path in server.maildir.iterdir():
        path.unlink()
    return server if server.running else server.start()


# -- app folder --------------------------------------------------------------------------------
ProgramDir = collections.namedtuple('ProgramDir', 'root script config')


def mail_config(port, host='127.0.0.1', **smtp):
    """A pySendMail config dict for the lab server; keyword arguments override mail.smtp keys."""
    settings = dict(server=host, port=port, user=USER, password=PASSWORD, tls=False, timeout=5)
    settings.update(smtp)
    return {'mail': {'from': MAIL_FROM, 'to': MAIL_TO, 'smtp': settings}}


_WRITTEN_CONFIGS = set()


def write_config(path, config):
    """Write a config (dict, or raw text) with mode 0600; it is removed when the test ends."""
    text = config if isinstance(config, str) else json.dumps(config, indent=4) + '\n'
    _WRITTEN_CONFIGS.add(Path(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, 'w', encoding='utf-8') as f:
        f.write(text)
    return Path(path)


def copy_pysendmail(dest):
    """dest/ with PYSENDMAIL_FILES, writable as a user's checkout is (the vendored copy beside
    the repository is read-only, and a copy keeping its modes takes no config without root)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PYSENDMAIL_FILES:
        if (PYSENDMAIL / name).is_file():
            shutil.copyfile(PYSENDMAIL / name, dest / name)
    return dest


def make_program_dir(dest, smtp_port=None, with_pysendmail=True, with_config=True):
    """An app folder: dest/pyNetConnMon.py (copied when the repository has it) and, unless told
    otherwise, dest/pySendMail/ with the files of PYSENDMAIL (sendMail.py, no __init__.py, like
    the submodule) and sendMailConfig.json (0600) pointing at 127.0.0.1:smtp_port (a closed port
    when None). `config` is the config path even when the file was not written."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    script = root / PROGRAM.name
    if PROGRAM.exists():
        shutil.copyfile(PROGRAM, script)
    config = root / 'pySendMail' / 'sendMailConfig.json'
    if with_pysendmail:
        copy_pysendmail(config.parent)
        if with_config:
            write_config(config, mail_config(smtp_port if smtp_port else closed_port()))
    return ProgramDir(root, script, config)


@pytest.fixture(autouse=True)
def remove_written_configs():
    """Removes every config the test wrote (they hold a password), wherever it was written."""
    yield
    while _WRITTEN_CONFIGS:
        _WRITTEN_CONFIGS.pop().unlink(missing_ok=True)


@pytest.fixture
def program_dir(tmp_path, smtp_server):
    """tmp_path/app set up to mail through the running smtp_server."""
    return make_program_dir(tmp_path / 'app', smtp_port=smtp_server.port)


def load_sendmail(root):
    """Import root/pySendMail/sendMail.py by path (so it reads that folder's config), leaving no
    __pycache__ in that folder, whatever PYTHONDONTWRITEBYTECODE says."""
    path = Path(root) / 'pySendMail' / 'sendMail.py'
    spec = importlib.util.spec_from_file_location('sendMail_%x' % id(path), path)
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module
