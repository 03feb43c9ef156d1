"""The one writer for streams (write_text): the console, --summary, --once and --help share one
policy for a reader that has gone, a full disk, a closed stream and text the stream cannot hold."""
import io
import os

import pytest

import pyNetConnMon as pnm


def test_text_the_encoding_cannot_hold_is_escaped_not_lost():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    assert pnm.write_text(stream, "caf\u00e9 \u2591\n", "the summary") is True
    assert raw.getvalue() == b"caf\\xe9 \\u2591\n"


def test_a_reader_that_has_gone_is_not_an_error_and_later_writes_go_nowhere():
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w")
    assert pnm.write_text(stream, "x" * 100000, "the summary") is False
    assert os.readlink("/proc/self/fd/%d" % stream.fileno()) == os.devnull
    stream.close()


def test_a_full_disk_is_an_error_for_a_one_shot_output():
    with open("/dev/full", "w") as stream:
        with pytest.raises(pnm.MonitorError, match=r"^cannot write the summary: No space left"):
            pnm.write_text(stream, "x\n", "the summary")
        assert os.readlink("/proc/self/fd/%d" % stream.fileno()) == os.devnull


def test_the_console_is_told_false_and_keeps_its_stream_for_the_next_line():
    stream = open("/dev/full", "w")
    assert pnm.write_line(stream, "DOWN 198.18.0.2:53 timeout") is False
    assert os.readlink("/proc/self/fd/%d" % stream.fileno()) == "/dev/full"
    pnm._discard(stream)            # what the program does at exit with what is still held
    stream.close()
    closed = io.StringIO()
    closed.close()
    assert pnm.write_line(closed, "x") is False and pnm.write_line(None, "x") is False
