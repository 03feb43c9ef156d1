"""--summary reads a log with its rotated files as one: a log split the way logrotate splits it
(numbered or dated names, compressed) gives the summary, HTML report and CSV of the same events in
one file; a missing or damaged file is a warning; several --log-file are read as one."""
import gzip
import html
import importlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import pyNetConnMon
from harness import run_main, run_program, wait_until

GOLDEN_LOGS = Path(__file__).resolve().parent / 'golden' / 'logs'
LOGROTATE = shutil.which('logrotate') or '/usr/sbin/logrotate'
ENV = {'TZ': 'Europe/Berlin', 'PYTHONIOENCODING': 'utf-8'}
MADE = re.compile(r'Made by pyNetConnMon [^ ]+ on [^ ]+ [^ ]+ from')
# bad-week: every event kind; cut between a down and its up, between a down and the stop that
# ends its run, and where the log's own log_reopened begins
BAD_WEEK_CUTS = (31, 58, 66)

needs_logrotate = pytest.mark.skipif(not os.access(LOGROTATE, os.X_OK),
                                     reason='logrotate is not installed')


def lines_of(name):
    return (GOLDEN_LOGS / name).read_bytes().splitlines(keepends=True)


def pieces(lines, cuts):
    edges = (0,) + tuple(cuts) + (len(lines),)
    return [b''.join(lines[start:end]) for start, end in zip(edges, edges[1:])]


def report(tmp_path, *log_files, extra=()):
    """stdout, stderr, HTML and CSV of --summary --html --csv over LOG_FILES."""
    out = tmp_path / ('out-%d' % len(list(tmp_path.glob('out-*'))))
    out.mkdir()
    arguments = ['--summary']
    for path in log_files:
        arguments += ['--log-file', path]
    result = run_program(*arguments, '--html', out / 'r.html', '--csv', out / 'r.csv', *extra,
                         env=ENV)
    assert result.returncode == 0, result.stderr
    page = MADE.sub('Made by pyNetConnMon on DATE from', (out / 'r.html').read_text('utf-8'))
    return result.stdout, result.stderr, page, (out / 'r.csv').read_bytes()


def same_report(split, whole, split_source, whole_source):
    """The reports agree but for the name of what was read."""
    out, err, page, csv = split
    w_out, w_err, w_page, w_csv = whole
    assert out.splitlines()[0] == 'pyNetConnMon summary of %s' % split_source
    assert out.replace(split_source, whole_source) == w_out
    assert re.sub(r'^\S+ \S+ ', '', err.replace(split_source, whole_source), flags=re.M) == \
        re.sub(r'^\S+ \S+ ', '', w_err, flags=re.M)
    assert page.replace(html.escape(split_source), html.escape(whole_source)) == w_page
    assert csv == w_csv


def without_last_line(split):
    """(out, err, page, csv) with err's last line (the warning about repeated lines) left out."""
    return (split[0], ''.join(split[1].splitlines(keepends=True)[:-1])) + split[2:]


def logrotate(tmp_path, log, options):
    """Rotates `log` once, as logrotate does with OPTIONS (forced, its own state file)."""
    config = tmp_path / 'logrotate.conf'
    config.write_text('%s {\n    %s\n}\n' % (log, '\n    '.join(options)))
    done = subprocess.run([LOGROTATE, '-f', '-s', str(tmp_path / 'logrotate.state'),
                           str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def written_and_rotated(tmp_path, name, cuts, options, before_each=None):
    """The golden log NAME written piece by piece to events.jsonl, logrotate after each piece
    but the last: (the log, its folder's names)."""
    folder = tmp_path / 'logs'
    folder.mkdir()
    log = folder / 'events.jsonl'
    parts = pieces(lines_of(name), cuts)
    for part in parts[:-1]:
        with open(log, 'ab') as stream:
            stream.write(part)
        if before_each is not None:
            before_each()
        logrotate(tmp_path, log, options)
    log.write_bytes(parts[-1])
    return log, sorted(os.listdir(folder))


@needs_logrotate
def test_numbered_compressed_rotation_reads_as_one_log(tmp_path):
    log, names = written_and_rotated(tmp_path, 'bad-week.jsonl', BAD_WEEK_CUTS, [
        'rotate 52', 'compress', 'delaycompress', 'missingok', 'notifempty'])
    assert names == ['events.jsonl', 'events.jsonl.1', 'events.jsonl.2.gz', 'events.jsonl.3.gz']
    with gzip.open(log.parent / 'events.jsonl.3.gz') as stream:   # logrotate compressed it
        assert stream.read() == pieces(lines_of('bad-week.jsonl'), BAD_WEEK_CUTS)[0]
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    same_report(report(tmp_path, log), report(tmp_path, whole),
                '%s and 3 rotated files' % log, str(whole))


@needs_logrotate
def test_dated_compressed_rotation_reads_as_one_log(tmp_path):
    def next_second():          # dateext names to the second: one rotation per second
        # logrotate reads time(), which the kernel keeps a tick behind the clock Python reads:
        # 50 ms into the next second, both say it has begun
        later = int(time.time()) + 1.05
        wait_until(lambda: time.time() >= later, 3, 'the next second')
    log, names = written_and_rotated(tmp_path, 'quiet-week.jsonl', (200, 500, 900), [
        'rotate 52', 'compress', 'dateext', 'dateformat -%Y%m%d-%s'], next_second)
    assert [re.sub(r'\d{8}-\d+', 'DATE', name) for name in names] == [
        'events.jsonl', 'events.jsonl-DATE.gz', 'events.jsonl-DATE.gz', 'events.jsonl-DATE.gz']
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'quiet-week.jsonl', whole)
    same_report(report(tmp_path, log), report(tmp_path, whole),
                '%s and 3 rotated files' % log, str(whole))


def test_mixed_names_and_several_logs_are_read_in_the_order_of_their_events(tmp_path):
    """Numbered files from before a change to dateext, the first days in a log of their own
    given first with a later one: each kind in the order of its names, merged by time."""
    parts = pieces(lines_of('bad-week.jsonl'), (10, 31, 40, 58, 66))
    folder = tmp_path / 'var'
    folder.mkdir()
    log = folder / 'events.jsonl'
    other = tmp_path / 'first-days.jsonl'
    other.write_bytes(parts[0])
    with gzip.open(folder / 'events.jsonl.2.gz', 'wb') as stream:
        stream.write(parts[1])
    (folder / 'events.jsonl.1').write_bytes(parts[2])
    with gzip.open(folder / 'events.jsonl-20260329.gz', 'wb') as stream:
        stream.write(parts[3])
    (folder / 'events.jsonl-20260330').write_bytes(parts[4])
    log.write_bytes(parts[5])
    (folder / 'events.jsonl.lock').write_text('not a rotated log')
    (folder / 'events.jsonl-old.txt').write_text('nor this')
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    same_report(report(tmp_path, log, other), report(tmp_path, whole),
                '%s, %s and 4 rotated files' % (log, other), str(whole))


def test_lines_repeated_at_a_seam_and_a_file_given_twice_are_read_once(tmp_path):
    lines = lines_of('bad-week.jsonl')
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.1').write_bytes(b''.join(lines[:40]))
    log.write_bytes(b''.join(lines[35:]))          # a copy that overlaps by five lines
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    split = report(tmp_path, log, tmp_path / 'events.jsonl.1')
    assert split[1].splitlines()[-1].endswith(
        'WARNING read once 5 lines at the start of a file that repeat the last lines of the '
        'file before it')
    same_report(without_last_line(split), report(tmp_path, whole),
                '%s, %s' % (log, tmp_path / 'events.jsonl.1'),
                str(whole))


def test_a_last_line_without_its_newline_is_not_the_next_files_first_line(tmp_path):
    # a file cut just before a newline, and a file that begins with that line whole: not a copy
    # of the same lines, so both are read (as a summary of the two files end to end reads them)
    lines = lines_of('quiet-week.jsonl')
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.1').write_bytes(b''.join(lines[:4]).rstrip(b'\n'))
    log.write_bytes(b''.join(lines[3:8]))
    joined = tmp_path / 'joined.jsonl'
    joined.write_bytes(b''.join(lines[:4]) + b''.join(lines[3:8]))
    split = report(tmp_path, log)
    assert split[1] == ''
    assert '(8 stats windows)' in split[0]
    same_report(split, report(tmp_path, joined), '%s and 1 rotated file' % log, str(joined))


@pytest.mark.parametrize('module', ['bz2', 'lzma'])
def test_a_damaged_bzip2_or_xz_log_gives_nothing_it_has_not_checked(tmp_path, module):
    # in small reads both decompressors hand over text they have not yet checked before the
    # error that says the file is damaged (bzip2: a block of garbage); a compressed log is read
    # as much as a line may be at a time, so this file of 1,000 lines is one read, refused whole
    data = bytearray(importlib.import_module(module).compress(
        (GOLDEN_LOGS / 'quiet-week.jsonl').read_bytes()))
    data[len(data) * 3 // 10] ^= 0x55
    log = tmp_path / 'events.jsonl'
    log.write_bytes(bytes(data))
    result = run_program('--summary', '--log-file', log, env=ENV)
    assert (result.returncode, result.stdout) == (1, '')
    [error] = result.stderr.splitlines()
    assert error.endswith(' ERROR cannot read event log %s: %s' % (
        log, {'bz2': 'Invalid data stream', 'lzma': 'Corrupt input data'}[module]))


def test_a_log_given_twice_or_by_two_names_is_named_once(tmp_path):
    # "summary of whole.jsonl, whole.jsonl, alias.jsonl", for one file read once
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    (tmp_path / 'alias.jsonl').symlink_to(whole)
    same_report(report(tmp_path, whole, whole, tmp_path / 'alias.jsonl'), report(tmp_path, whole),
                str(whole), str(whole))


def stats_lines(count):
    """A start, `count` statistics windows of a minute and a stop, as the monitor writes them."""
    def stamp(minute):
        return time.strftime('%Y-%m-%dT%H:%M:%S.000+00:00', time.gmtime(1767225600 + 60 * minute))

    def line(minute, event, **fields):
        return (json.dumps(dict(time=stamp(minute), event=event, **fields)) + '\n').encode()
    labels = ('198.18.0.2:53', '198.18.0.3:53')
    figures = {'probes': 30, 'failures': 0, 'losses': 0, 'min_ms': 8.0, 'max_ms': 120.0}
    return [line(0, 'start', targets=list(labels))] + [
        line(minute, 'stats', start=stamp(minute - 1), targets={
            label: dict(figures, median_ms=10.0 + minute % 17 + number, p95_ms=40.0 + minute % 29)
            for number, label in enumerate(labels)})
        for minute in range(1, count + 1)] + [line(count, 'stop')]


def test_an_overlap_longer_than_a_read_is_read_once(tmp_path):
    lines = stats_lines(6000)
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.1').write_bytes(b''.join(lines[:4000]))
    log.write_bytes(b''.join(lines[1000:]))       # 3,000 lines again: more than a MiB
    assert len(b''.join(lines[1000:4000])) > 1024 * 1024
    whole = tmp_path / 'whole.jsonl'
    whole.write_bytes(b''.join(lines))
    out, err, page, csv = report(tmp_path, log)
    [warning] = err.splitlines()
    assert warning.endswith('WARNING read once 3000 lines at the start of a file that repeat the '
                            'last lines of the file before it')
    same_report((out, '', page, csv), report(tmp_path, whole), '%s and 1 rotated file' % log,
                str(whole))


def test_a_missing_or_damaged_file_is_a_warning_and_the_rest_is_read(tmp_path):
    lines = lines_of('bad-week.jsonl')
    log = tmp_path / 'events.jsonl'
    compressed = gzip.compress(b''.join(lines[:31]))
    (tmp_path / 'events.jsonl.2.gz').write_bytes(compressed[:len(compressed) // 2])   # cut short
    (tmp_path / 'events.jsonl.1.gz').write_bytes(b'\x1f\x8b\x08' + b'\xff' * 40)      # garbage
    log.write_bytes(b''.join(lines[31:]))
    missing = tmp_path / 'gone.jsonl'
    out, err, _, _ = report(tmp_path, log, missing)
    # the garbage .1.gz gave nothing and is not counted; the cut .2.gz gave lines and is
    assert out.splitlines()[0] == 'pyNetConnMon summary of %s, %s and 1 rotated file' % (
        log, missing)
    warnings = [line.split(' ', 3)[3] for line in err.splitlines()]
    assert warnings[0] == 'cannot read event log %s: No such file or directory' % missing
    # the lines it gave before its end: each whole line the decompressor gave up to the cut
    given = b''
    with gzip.open(tmp_path / 'events.jsonl.2.gz') as cut:
        with pytest.raises(EOFError):
            for _ in range(1000):                # the file is 2 KB
                given += cut.read1(4096)
    assert 0 < given.count(b'\n') < 31
    assert warnings[1].startswith('cannot read event log %s.2.gz after %d lines: Compressed file '
                                  'ended ' % (log, given.count(b'\n')))
    assert warnings[2].startswith('cannot read event log %s.1.gz: ' % log)
    assert len(warnings) == 4 and warnings[3].startswith('skipped ')
    # what was read of the cut file counts: the first run's start is there
    assert 'Period:        2026-03-26 09:00:00 to ' in out


def test_one_log_that_cannot_be_read_is_still_an_error(tmp_path):
    missing = tmp_path / 'gone.jsonl'
    result = run_program('--summary', '--log-file', missing, env=ENV)
    assert (result.returncode, result.stdout) == (1, '')
    assert result.stderr.endswith(
        ' ERROR cannot read event log %s: No such file or directory\n' % missing)


def test_several_log_files_only_for_the_summary(tmp_path):
    result = run_program('-a', '127.0.0.1', '--log-file', tmp_path / 'a', '--log-file',
                         tmp_path / 'b', env=ENV)
    assert (result.returncode, result.stdout) == (2, '')
    assert result.stderr == ('pyNetConnMon.py: error: --log-file: give it once; several only '
                             'with --summary\n')


def test_the_log_itself_is_read_after_its_rotated_files_whatever_its_first_time(tmp_path):
    """A clock set back at boot can give the new log an earlier first event than the rotated one
    before it: the names, not the times, order one log's files."""
    lines = lines_of('bad-week.jsonl')
    early = b'{"time": "2026-03-20T00:00:00.000+00:00", "event": "gateway_changed", ' \
        b'"gateway": "198.18.0.1"}\n'
    lines[60:60] = [early]
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.1').write_bytes(b''.join(lines[:60]))
    log.write_bytes(b''.join(lines[60:]))
    whole = tmp_path / 'whole.jsonl'
    whole.write_bytes(b''.join(lines))
    same_report(report(tmp_path, log), report(tmp_path, whole), '%s and 1 rotated file' % log,
                str(whole))
    rotated = tmp_path / 'events.jsonl.1'
    for given in ((rotated, log), (log, rotated)):           # the order given does not matter
        same_report(report(tmp_path, *given), report(tmp_path, whole),
                    '%s, %s' % given, str(whole))


@pytest.mark.parametrize('option, name', [
    ('--csv', 'events.jsonl.1'), ('--html', 'events.jsonl.2.gz'),
    ('--csv', 'events.jsonl-20260329'), ('--html', 'linked.html')])
def test_a_report_never_overwrites_a_rotated_file_it_reads(tmp_path, option, name):
    """By its name or as the same file under another name (a hard link): a usage error, and
    every file stays as it was."""
    parts = pieces(lines_of('bad-week.jsonl'), BAD_WEEK_CUTS)
    (tmp_path / 'events.jsonl-20260329').write_bytes(parts[0])
    (tmp_path / 'events.jsonl.2.gz').write_bytes(gzip.compress(parts[1]))
    (tmp_path / 'events.jsonl.1').write_bytes(parts[2])
    (tmp_path / 'events.jsonl').write_bytes(parts[3])
    os.link(tmp_path / 'events.jsonl.2.gz', tmp_path / 'linked.html')
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    result = run_program('--summary', '--log-file', 'events.jsonl', option, name, cwd=tmp_path,
                         env=ENV)
    assert (result.returncode, result.stdout) == (2, '')
    assert result.stderr == ('pyNetConnMon.py: error: %s: %s is a rotated file of the event log '
                             'events.jsonl\n' % (option, name))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_python_without_lzma_or_bz2_warns_of_those_files_and_reads_the_rest(tmp_path):
    """pyenv and asdf build Python without _lzma or _bz2 when their headers are missing."""
    lzma, bz2 = pytest.importorskip('lzma'), pytest.importorskip('bz2')     # to write the files
    fake = tmp_path / 'fake'
    fake.mkdir()
    for module in ('_lzma', '_bz2'):
        (fake / (module + '.py')).write_text('raise ImportError("No module named %s")\n' % module)
    lines = lines_of('bad-week.jsonl')
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.2.xz').write_bytes(lzma.compress(b''.join(lines[:31])))
    (tmp_path / 'events.jsonl.1.bz2').write_bytes(bz2.compress(b''.join(lines[31:58])))
    log.write_bytes(b''.join(lines[58:]))
    result = run_program('--summary', '--log-file', log, env=dict(ENV, PYTHONPATH=fake))
    assert result.returncode == 0
    assert [line.split(' ', 2)[2] for line in result.stderr.splitlines()[:2]] == [
        'WARNING cannot read event log %s.2.xz: it is compressed with xz, and this Python has '
        'no lzma module' % log,
        'WARNING cannot read event log %s.1.bz2: it is compressed with bzip2, and this Python '
        'has no bz2 module' % log]
    alone = tmp_path / 'alone.jsonl'
    alone.write_bytes(b''.join(lines[58:]))
    assert result.stdout.replace(str(log), str(alone)) == \
        run_program('--summary', '--log-file', alone, env=ENV).stdout


def test_an_overlap_is_read_once_across_an_empty_file_between(tmp_path):
    """logrotate rotates an empty log too (`ifempty`, its default)."""
    lines = lines_of('bad-week.jsonl')
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.2').write_bytes(b''.join(lines[:70]))
    (tmp_path / 'events.jsonl.1').write_bytes(b'')
    log.write_bytes(b''.join(lines[67:]))          # overlaps the file before the empty one
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    split = report(tmp_path, log)
    assert split[1].splitlines()[-1].endswith(
        'WARNING read once 3 lines at the start of a file that repeat the last lines of the '
        'file before it')
    same_report(without_last_line(split), report(tmp_path, whole),
                '%s and 2 rotated files' % log, str(whole))


def test_an_archive_and_the_rotated_files_it_was_made_of_are_read_once(tmp_path):
    """The archive holds the oldest file whole and the next ones in part: after the oldest file
    is found to repeat it, the next files are still compared with the archive's last lines."""
    lines = lines_of('bad-week.jsonl')
    parts = pieces(lines, BAD_WEEK_CUTS)
    log = tmp_path / 'logs' / 'events.jsonl'
    log.parent.mkdir()
    (tmp_path / 'logs' / 'events.jsonl.3.gz').write_bytes(gzip.compress(parts[0]))
    (tmp_path / 'logs' / 'events.jsonl.2.gz').write_bytes(gzip.compress(parts[1]))
    (tmp_path / 'logs' / 'events.jsonl.1').write_bytes(parts[2])
    log.write_bytes(parts[3])
    archive = tmp_path / 'events-2026.jsonl'
    archive.write_bytes(b''.join(lines[:70]))
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    split = report(tmp_path, archive, log)
    assert split[1].splitlines()[-1].endswith(
        'WARNING read once 70 lines at the start of a file that repeat the last lines of the '
        'file before it')
    same_report(without_last_line(split), report(tmp_path, whole),
                '%s, %s and 3 rotated files' % (archive, log), str(whole))


def read_as_one_whatever_the_names(tmp_path, names):
    """bad-week cut in four, the first three pieces named NAMES (gzipped if so named), the last
    the log itself: the reports of the whole log."""
    parts = pieces(lines_of('bad-week.jsonl'), BAD_WEEK_CUTS)
    log = tmp_path / 'logs' / 'events.jsonl'
    log.parent.mkdir()
    for name, part in zip(names, parts):
        (log.parent / name).write_bytes(gzip.compress(part) if name.endswith('.gz') else part)
    log.write_bytes(parts[3])
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    same_report(report(tmp_path, log), report(tmp_path, whole), '%s and 3 rotated files' % log,
                str(whole))


@pytest.mark.parametrize('names', [
    ('events.jsonl-2026032712.gz', 'events.jsonl-20260329.gz', 'events.jsonl-20260330'),
    ('events.jsonl-20260327.gz', 'events.jsonl-2026-03-29.gz', 'events.jsonl-2026-03-30'),
    ('events.jsonl-1774569600.gz', 'events.jsonl-1774742400.gz', 'events.jsonl-1774828800'),
], ids=['hourly-then-daily', 'dashes-added', 'epoch-seconds'])
def test_dated_files_of_two_dateformats_are_read_in_the_order_of_their_dates(tmp_path, names):
    """A change of the rotation setup (hourly to daily, another dateformat) leaves names of two
    formats in one folder."""
    read_as_one_whatever_the_names(tmp_path, names)


@needs_logrotate
@pytest.mark.parametrize('dateformat', ['.%Y%m%d', '.%Y%m%d-%s', '.%s', '_%Y%m%d', '_%Y-%m-%d'])
def test_dateext_with_a_dot_or_an_underscore_before_the_date_is_read(tmp_path, dateformat):
    log, names = written_and_rotated(tmp_path, 'bad-week.jsonl', (40,), [
        'rotate 52', 'compress', 'dateext', 'dateformat ' + dateformat])
    assert len(names) == 2 and names[1].startswith('events.jsonl' + dateformat[0])
    whole = tmp_path / 'whole.jsonl'
    shutil.copy(GOLDEN_LOGS / 'bad-week.jsonl', whole)
    same_report(report(tmp_path, log), report(tmp_path, whole), '%s and 1 rotated file' % log,
                str(whole))


@pytest.mark.parametrize('names', [
    ('events.jsonl.20260327.gz', 'events.jsonl.20260329.gz', 'events.jsonl.20260330'),
    ('events.jsonl_2026-03-27.gz', 'events.jsonl_2026-03-29.gz', 'events.jsonl_2026-03-30'),
    ('events.jsonl.1774569600.gz', 'events.jsonl.1774742400.gz', 'events.jsonl.1774828800'),
], ids=['dot', 'underscore', 'dot-epoch'])
def test_dated_files_after_a_dot_are_read_oldest_first_not_as_numbered_ones(tmp_path, names):
    read_as_one_whatever_the_names(tmp_path, names)


def test_rotated_files_beyond_the_bound_are_left_out_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(pyNetConnMon, 'ROTATED_KEPT', 2)     # 10,000 files take too long here
    parts = pieces(lines_of('bad-week.jsonl'), (20, 31, 58, 66))
    log = tmp_path / 'events.jsonl'
    for number, part in zip((4, 3, 2, 1), parts):
        (tmp_path / ('events.jsonl.%d' % number)).write_bytes(part)
    log.write_bytes(parts[4])
    read = tmp_path / 'read.jsonl'
    read.write_bytes(b''.join(parts[2:]))
    status, out, err = run_main('--summary', '--log-file', log)
    assert status == 0
    assert err.splitlines()[0].split(' ', 2)[2] == (
        'WARNING read at most 2 rotated files of each kind (numbered, dated) of %s: left out '
        'the oldest 2' % log)
    source = '%s and 2 rotated files' % log
    assert out.splitlines()[0] == 'pyNetConnMon summary of ' + source
    assert out.replace(source, str(read)) == run_main('--summary', '--log-file', read)[1]


def test_only_the_rotated_files_read_are_counted_in_the_summary_and_the_report(tmp_path):
    """A folder named like a rotated file and a file damaged before its first line are warnings,
    not files the summary was made of."""
    lines = lines_of('bad-week.jsonl')
    log = tmp_path / 'events.jsonl'
    (tmp_path / 'events.jsonl.3.gz').write_bytes(gzip.compress(b''.join(lines[:31])))
    (tmp_path / 'events.jsonl.2.gz').write_bytes(b'\x1f\x8b\x08' + b'\xff' * 40)
    (tmp_path / 'events.jsonl.1').mkdir()
    log.write_bytes(b''.join(lines[31:]))
    out, err, page, _ = report(tmp_path, log)
    assert out.splitlines()[0] == 'pyNetConnMon summary of %s and 1 rotated file' % log
    assert 'from the event log %s and 1 rotated file.</p>' % html.escape(str(log)) in page
    assert ('<p id="unread" class="muted">Not all of it could be read, so this report may lack '
            'what those parts held: cannot read event log %s.2.gz: Compressed file ended before '
            'the end-of-stream marker was reached; cannot read event log %s.1: it is a '
            'directory, not a regular file.</p>' % (html.escape(str(log)), html.escape(str(log)))
            ) in page
    assert [line.split(' ', 3)[3] for line in err.splitlines()[:2]] == [
        'cannot read event log %s.2.gz: Compressed file ended before the end-of-stream marker '
        'was reached' % log,
        'cannot read event log %s.1: it is a directory, not a regular file' % log]
