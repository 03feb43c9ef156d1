"""The subprocess and event-log helpers, driven by a tiny fake program."""
import json
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest

from browser import png_colours
from harness import (PROGRAM, MonitorProcess, child_env, closed_port, listening_socket,
                     python_command, read_events, start_monitor, wait_for_event)

FAKE = textwrap.dedent('''\
    import os, signal, sys, threading
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    print("started", *sys.argv[1:])
    print("state", os.environ.get("XDG_STATE_HOME"), os.environ.get("PYTHONUNBUFFERED"))
    print("to stderr", file=sys.stderr)
    stop.wait(30)
    print("stopping")
    sys.exit(3)
    ''')


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / 'fake.py'
    path.write_text(FAKE)
    return path


def test_lines_signal_and_exit_code(fake, tmp_path):
    with MonitorProcess(['-a', 'x'], script=fake, state_home=tmp_path / 'state') as p:
        assert p.wait_for_line(r'^started (.*)$', timeout=5).group(1) == '-a x'
        p.wait_for_line('to stderr', timeout=5)
        assert p.wait_for_line(r'^state (\S+) 1$', timeout=5).group(1) == str(tmp_path / 'state')
        assert p.terminate(timeout=5) == 3
        assert p.lines[-1] == 'stopping'
        assert p.stderr_lines == ['to stderr']


def test_wait_for_line_shows_output_on_failure(fake):
    with MonitorProcess(script=fake) as p:
        p.wait_for_line('started', timeout=5)
        with pytest.raises(AssertionError, match='(?s)never.*started'):
            p.wait_for_line('never', timeout=0.05)
    assert p.returncode == -signal.SIGKILL


def test_read_events_skips_partial_last_line(tmp_path):
    log = tmp_path / 'events.jsonl'
    assert read_events(log) == []
    log.write_text(json.dumps({'event': 'down'}) + '\n' + '{"event": "u')
    assert read_events(log) == [{'event': 'down'}]
    assert wait_for_event(log, {'event': 'down'}, timeout=1) == {'event': 'down'}
    with pytest.raises(AssertionError, match='1 events'):
        wait_for_event(log, lambda e: e['event'] == 'up', timeout=0.05)


def test_wait_for_event_by_name_and_count(tmp_path):
    log = tmp_path / 'events.jsonl'
    log.write_text(''.join(json.dumps({'event': name, 'n': n}) + '\n'
                           for n, name in enumerate(['down', 'up', 'down'])))
    assert wait_for_event(log, 'down', timeout=1, count=2) == {'event': 'down', 'n': 2}
    with pytest.raises(AssertionError, match="2 of 3 events matching 'down'"):
        wait_for_event(log, 'down', timeout=0.05, count=3)


def test_children_get_no_proxy_and_the_monitor_always_a_target(monkeypatch, tmp_path):
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy.invalid:3128')
    assert 'HTTPS_PROXY' not in child_env()
    with pytest.raises(AssertionError, match='target'):
        start_monitor(tmp_path, '--no-mail')


def test_listening_socket_and_closed_port():
    with listening_socket() as port:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(('127.0.0.1', closed_port()), timeout=2)


def test_the_compiled_program_answers_as_the_file_does_and_a_changed_copy_runs_as_a_file(tmp_path):
    copy = tmp_path / 'pyNetConnMon.py'
    shutil.copyfile(PROGRAM, copy)
    assert python_command(copy)[:3] == [sys.executable, '-u', '-c']
    once = ['-a', '127.0.0.1:%d' % closed_port(), '--gateway', 'none', '--once']
    for args in (['-i', 'soon'], once):
        as_file, compiled = (subprocess.run([*python_command(copy, compiled), *map(str, args)],
                                            capture_output=True, text=True, timeout=15)
                             for compiled in (False, True))
        assert (compiled.returncode, compiled.stdout, compiled.stderr) == (
            as_file.returncode, as_file.stdout, as_file.stderr)
    copy.write_text(copy.read_text() + '\n')
    assert python_command(copy) == [sys.executable, '-u', str(copy)]


def png(rows, size, rng):
    """An 8-bit RGB (size 3) or RGBA (size 4) PNG of `rows`, each row with a random filter."""
    out, previous = bytearray(), bytes(len(rows[0]))
    for row in rows:
        kind = rng.randrange(5)
        out.append(kind)
        for i, value in enumerate(row):
            a, b = row[i - size] if i >= size else 0, previous[i]
            c = previous[i - size] if i >= size else 0
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            out.append((value - (0, a, b, (a + b) // 2, paeth)[kind]) & 255)
        previous = row

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data)))
    header = struct.pack('>IIBBBBB', len(rows[0]) // size, len(rows), 8, 2 if size == 3 else 6,
                         0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
            + chunk(b'IDAT', zlib.compress(bytes(out))) + chunk(b'IEND', b''))


def test_png_colours_reads_every_row_filter_of_rgb_and_rgba():
    rng = random.Random(7)
    for size in (3, 4, 3, 4, 3, 4):
        palette = [bytes(rng.randrange(256) for _ in range(size))
                   for _ in range(rng.randrange(1, 30))]
        width = rng.randrange(1, 20)
        rows = [b''.join(rng.choice(palette) for _ in range(width)) for _ in range(25)]
        truth = {row[i:i + 3] for row in rows for i in range(0, len(row), size)}
        assert png_colours(png(rows, size, rng)) == truth
        wanted = set(rng.sample(sorted(truth), 1))
        assert wanted <= png_colours(png(rows, size, rng), wanted=wanted)
