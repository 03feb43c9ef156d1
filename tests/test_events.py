"""The table of events is the one list: every event the program writes is in it, with its fields."""
import ast
import os

import pytest

import pyNetConnMon
from harness import PROGRAM
from pyNetConnMon import EVENTS, EventLog


def written_events():
    """(event name, field names) of every `X.write("name", wall, field=...)` in the program."""
    found = []
    for node in ast.walk(ast.parse(PROGRAM.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "write" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and len(node.args) == 2):
            found.append((node.args[0].value, {kw.arg for kw in node.keywords if kw.arg}))
    return found


def test_every_event_the_program_writes_is_in_the_table_with_its_fields():
    written = written_events()
    assert len({name for name, _ in written}) >= 10      # the scan does find the writers
    for name, fields in written:
        assert name in EVENTS, name
        assert fields <= EVENTS[name].fields, (name, fields - EVENTS[name].fields)


def test_writing_an_event_or_a_field_not_in_the_table_is_refused(tmp_path):
    log = EventLog(str(tmp_path / "events.jsonl"))
    with pytest.raises(KeyError):
        log.write("mail_sent", 0.0)
    with pytest.raises(ValueError):
        log.write("stop", 0.0, signal="SIGTERM", colour="red")
    log.close()
    assert not (tmp_path / "events.jsonl").read_text()


def test_old_names_are_read_as_the_new_ones():
    for old, new in pyNetConnMon.RENAMED_EVENTS.items():
        assert old not in EVENTS and new in EVENTS


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o000, 0o644)],
                         ids=["022", "077", "000"])
def test_the_event_log_has_the_usual_mode_but_never_lets_others_write(tmp_path, umask, mode):
    # at umask 000 any local user could forge events
    previous = os.umask(umask)
    try:
        log = EventLog(str(tmp_path / "events.jsonl"))
    finally:
        os.umask(previous)
    log.write("log_reopened", 1.0)
    log.close()
    assert os.stat(tmp_path / "events.jsonl").st_mode & 0o777 == mode
