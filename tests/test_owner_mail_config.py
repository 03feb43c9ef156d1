"""The owner's own mail config is safe from the tests.

Once a user set up mail, pySendMail/sendMailConfig.json in the repository holds their server and
password. The tests must still pass, send nothing through it, read or copy it nowhere, and leave
no copy of any password behind. Proved on a clone of the repository (the program, tests/, and a
checked-out pySendMail/ with such a config pointing at a real SMTP server that accepts it) by
running the mail tests there with pytest.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from harness import PROGRAM, child_env
from smtp_lab import REPO as TESTED_REPO, copy_pysendmail, load_sendmail, mail_config, write_config
from smtp_server import PASSWORD

# The mail tests, and one that runs the repository's own program in the two ways it mails.
MAIL_MODULES = ('test_mail.py', 'test_mail_setup.py', 'test_mail_servers.py', 'test_smtp_lab.py',
                'test_zz_program.py')
PROGRAM_TEST = '''\
from harness import REPO, closed_port, run_program, start_monitor


def test_the_repositorys_program_finds_no_mail_config(tmp_path):
    target = '127.0.0.1:%d' % closed_port()
    result = run_program('--test-mail', '-a', target, env={'XDG_STATE_HOME': tmp_path})
    assert result.returncode == 1, result.stderr
    assert 'mail is not set up' in result.stderr, result.stderr
    with start_monitor(tmp_path, '-a', target, '-i', '0.2', '-t', '0.2') as monitor:
        line = monitor.wait_for_line(r' WARNING mail cannot work yet: ').string
        monitor.wait_for_line(r' started pyNetConnMon ')
        assert monitor.terminate() == 0
    assert str(REPO / 'pySendMail') not in line, line
'''


def make_clone(root):
    """root/ as a user's clone: the program, tests/, and pySendMail/ checked out (its files)."""
    root.mkdir()
    shutil.copyfile(PROGRAM, root / PROGRAM.name)
    shutil.copytree(TESTED_REPO / "tests", root / "tests",
                    ignore=shutil.ignore_patterns('__pycache__'))
    (root / 'tests' / 'test_zz_program.py').write_text(PROGRAM_TEST)
    # the submodule's files; never a config (run from a checked-out submodule, PYSENDMAIL is
    # that very folder, with the owner's own config in it)
    copy_pysendmail(root / 'pySendMail')
    return root


def files_under(*folders):
    return {path for folder in folders for path in Path(folder).rglob('*')
            if path.is_file() and not path.is_symlink()}


def holding(paths, secret):
    """The paths (with their modes) among `paths` whose bytes contain `secret`."""
    return ['%s (mode %04o)' % (path, path.stat().st_mode & 0o7777)
            for path in sorted(paths) if secret in path.read_bytes()]


def test_the_mail_tests_pass_and_send_nothing_through_the_owners_config(tmp_path, smtp_server):
    clone = make_clone(tmp_path / 'clone')
    owner_config = write_config(clone / 'pySendMail' / 'sendMailConfig.json',
                                mail_config(smtp_server.port))
    as_written = owner_config.read_bytes()
    # the owner's config works: a mail sent through it arrives (then the server is emptied)
    load_sendmail(clone).pySendMail().sendInternal()
    assert len(smtp_server.wait_for_messages(1)) == 1
    for path in smtp_server.maildir.iterdir():
        path.unlink()

    temp, basetemp = tmp_path / 'tmp', tmp_path / 'basetemp'
    temp.mkdir()
    before = files_under(clone)
    listing = set(os.listdir(clone / 'pySendMail')) - {'__pycache__'}
    env = child_env({'TMPDIR': temp, 'PYTEST_ADDOPTS': None, 'PYTHONDONTWRITEBYTECODE': '1'})
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider', '-p', 'no:xdist',
         '--basetemp', str(basetemp), *('tests/' + name for name in MAIL_MODULES)],
        cwd=clone, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # every mail test ran; without root, those that need it are skipped, as in the whole suite
    skipped = re.findall(r'^SKIPPED \[\d+\] (.*)$', result.stdout, re.MULTILINE)
    assert ' passed' in result.stdout, result.stdout[-2000:]
    assert bool(skipped) == (' skipped' in result.stdout), result.stdout[-2000:]
    assert [reason for reason in skipped
            if os.geteuid() == 0 or 'needs root' not in reason] == [], result.stdout[-2000:]

    assert smtp_server.messages() == []
    assert owner_config.read_bytes() == as_written
    # whatever the run wrote, in the clone or in any temporary folder, holds no password, and
    # no private key is left
    written = files_under(clone, temp, basetemp) - before
    assert holding(written, PASSWORD.encode()) == []
    assert holding(written, b'PRIVATE KEY') == []
    assert set(os.listdir(clone / 'pySendMail')) - {'__pycache__'} == listing
