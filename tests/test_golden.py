"""The reports of four event logs, pinned byte for byte: the text summary, the HTML report and the
CSV, as `--summary --html --csv` writes them in a time zone with summer time.

The logs in golden/logs/ are fixed: a quiet week, a bad week with every event kind (across the
start of summer time), a log with hostile fields, and 2.0.0's first days (`mail_*` events, no
causes). When an output changes on purpose, rewrite the golden files with
    PYNETCONNMON_GOLDEN=update python -m pytest tests/test_golden.py
and read the diff: every difference is a change a user sees.
"""
import os
import re
from pathlib import Path

import pytest

from harness import run_program

GOLDEN = Path(__file__).resolve().parent / 'golden'
LOGS = sorted(path.stem for path in (GOLDEN / 'logs').glob('*.jsonl'))
TIME_ZONE = 'Europe/Berlin'
# what differs from run to run: when the report was made, and the version that made it
MADE = re.compile(r'Made by pyNetConnMon [^ ]+ on [^ ]+ [^ ]+ from')
CASES = [(name, ()) for name in LOGS] + [
    ('bad-week', ('--since', '2026-03-28', '--until', '2026-03-29 12:00'))]


def _stable(html):
    return MADE.sub('Made by pyNetConnMon VERSION on DATE from', html)


@pytest.mark.parametrize('name, selection', CASES,
                         ids=['%s%s' % (name, '-selected' if selection else '')
                              for name, selection in CASES])
def test_reports_match_the_golden_files(tmp_path, name, selection):
    log = GOLDEN / 'logs' / ('%s.jsonl' % name)
    html, csv = tmp_path / 'report.html', tmp_path / 'report.csv'
    result = run_program('--summary', '--log-file', log, '--html', html, '--csv', csv,
                         *selection, env={'TZ': TIME_ZONE, 'PYTHONIOENCODING': 'utf-8'},
                         cwd=GOLDEN / 'logs')
    outputs = {
        'summary.txt': 'exit %d\n%s--- stderr\n%s' % (
            result.returncode, result.stdout.replace(str(GOLDEN / 'logs'), 'LOGS'),
            re.sub(r'^\S+ \S+ ', 'TIME ', result.stderr.replace(str(GOLDEN / 'logs'), 'LOGS'),
                   flags=re.M)),
        'report.html': _stable(html.read_text(encoding='utf-8')).replace(
            str(GOLDEN / 'logs'), 'LOGS'),
        'report.csv': csv.read_bytes().decode('utf-8'),
    }
    stem = name + ('-selected' if selection else '')
    for suffix, text in outputs.items():
        golden = GOLDEN / ('%s.%s' % (stem, suffix))
        if os.environ.get('PYNETCONNMON_GOLDEN') == 'update':
            golden.write_bytes(text.encode('utf-8'))
        assert text == golden.read_bytes().decode('utf-8'), golden.name
