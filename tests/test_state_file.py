"""The state file as a hostile user or a broken disk leaves it: the monitor neither crashes nor
hangs nor renames what is not its own, and a file it cannot read is an error, not corruption."""
import json
import os
import pwd
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pyNetConnMon
from harness import (PROGRAM, Listener, closed_port, python_command, run_program,
                     start_monitor, wait_until)
from pyNetConnMon import PendingReports, ReportBackoff, StateFile, check_state

WALL = 1_795_000_000.0
VALID = {"format": 1, "heartbeat": WALL, "clean_stop": False, "targets": ["198.18.0.2:53"],
         "down": {"start": WALL - 30, "reason": "timeout", "duration": 30.0}, "next_id": 3,
         "pending": [{"id": 1, "start": WALL - 900, "end": WALL - 880, "duration": 20.0,
                      "reason": "refused", "kind": "outage", "cut_short": False,
                      "targets": ["198.18.0.2:53"], "count": 1}],
         "backoff": {"wait": 60.0, "last_sent": WALL - 100, "last_failed": None},
         "boot": {"id": "f831437d-445f-42ff-8829-b9874ce87b7b", "seconds": 5000.0},
         "partials": [{"part": "target 198.18.0.3:53", "start": WALL - 60, "reason": "timeout",
                       "duration": 60.0}]}


def runs_as_nobody(python, options):
    try:
        return subprocess.run([python, "-c", "open(%r).close()" % str(PROGRAM)],
                              capture_output=True, timeout=10, **options).returncode == 0
    except OSError:
        return False


def run(cwd, state_path, *extra, timeout=10, python=None, **options):
    """The monitor with a closed loopback target, stopped by itself at once: exit status and
    stderr. Every case here ends at start, so no round has to run. `python` runs the file with
    that interpreter (the compiled code is private to this user)."""
    command = [python, str(PROGRAM)] if python else python_command()
    argv = [*command, "-a", "127.0.0.1:%d" % closed_port(), "--no-mail",
            "--state-file", str(state_path), *extra]
    options.setdefault("cwd", cwd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **options)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_a_state_file_that_is_not_a_regular_file_is_an_error_and_nothing_is_moved(tmp_path, kind):
    path = tmp_path / "state.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/null")
    result = run(tmp_path, path)
    assert result.returncode == 1
    assert result.stderr.endswith(" ERROR state file %s is not a regular file; give "
                                  "--state-file a file path\n" % path), result.stderr
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


# Runs the command after it with a soft limit of 64 bytes on the size of a file it writes: the
# kernel's own refusal (EFBIG, "File too large"; Python ignores SIGXFSZ), as a full disk refuses.
SMALL_FILES = [sys.executable, "-c", "import os, resource, sys; hard = resource.getrlimit("
               "resource.RLIMIT_FSIZE)[1]; resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard)); "
               "os.execv(sys.argv[1], sys.argv[1:])"]


def test_a_state_file_the_kernel_refuses_is_said_once_and_again_when_it_works(tmp_path):
    with Listener() as target, start_monitor(
            tmp_path, "-a", target.address, "--gateway", "none", "--no-mail", "-i", "0.2",
            "--heartbeat", "1", log_file=False, prefix=SMALL_FILES) as monitor:
        state = monitor.state
        monitor.wait_for_line(r" ERROR cannot write state file %s: \[Errno 27\] File too large; "
                              r"monitoring goes on, and the file is tried again at every "
                              r"heartbeat$" % re.escape(str(state)))
        assert not state.exists()
        unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.prlimit(monitor.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
        monitor.wait_for_line(r" WARNING state file %s is writable again$"
                              % re.escape(str(state)))
        assert monitor.terminate() == 0
    assert [line for line in monitor.stderr_lines if " ERROR " in line] == monitor.stderr_lines[:1]
    assert json.loads(state.read_text())["clean_stop"] is True
    assert sorted(p.name for p in state.parent.iterdir()) == ["state.json", "state.json.lock"]


@pytest.fixture
def open_folder(tmp_path):
    """A folder anyone may enter (tmp_path's parents are private to root)."""
    folder = tempfile.mkdtemp(prefix="pnm-state-", dir="/tmp")
    os.chmod(folder, 0o777)
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unreadable_state_file_is_an_error_and_its_reports_are_kept(tmp_path, open_folder):
    path = open_folder / "state.json"
    path.write_text(json.dumps(VALID))
    path.chmod(0o000)
    options, python = {}, sys.executable
    if os.geteuid() == 0:      # root reads anything: run as nobody, who cannot
        options = dict(user=65534, group=65534, extra_groups=[],
                       env={"PATH": os.environ["PATH"]})
        python = next((candidate for candidate in (sys.executable, "/usr/bin/python3")
                       if runs_as_nobody(candidate, options)), None)
        if python is None:
            pytest.skip("no Python here that nobody may run")
    result = run("/", path, python=python, **options)
    assert result.returncode == 1
    assert result.stderr.endswith(" ERROR cannot read state file %s: Permission denied\n"
                                  % path), result.stderr
    assert "started" not in result.stdout       # it did not start: said before the start line
    assert sorted(p.name for p in open_folder.iterdir()) == ["state.json", "state.json.lock"]
    path.chmod(0o600)
    assert json.loads(path.read_text()) == VALID


def test_a_fifo_as_lock_file_is_refused_at_once(tmp_path):
    path = tmp_path / "state.json"
    os.mkfifo(str(path) + ".lock")
    result = run(tmp_path, path, timeout=10)
    assert result.returncode == 1
    assert "is not a regular file" in result.stderr


def test_a_state_file_under_another_name_through_a_symlink_is_locked_all_the_same(tmp_path):
    (tmp_path / "real").mkdir()
    first = StateFile(str(tmp_path / "real" / "state.json"))
    first.lock()
    os.symlink(tmp_path / "real" / "state.json", tmp_path / "link.json")
    try:
        with pytest.raises(pyNetConnMon.MonitorError, match="another pyNetConnMon is already "
                           "running with state file %s;" % re.escape(str(tmp_path / "link.json"))):
            StateFile(str(tmp_path / "link.json")).lock()
    finally:
        first.unlock()


@pytest.mark.parametrize("dangling", [False, True])
def test_a_save_through_a_symlink_replaces_the_file_it_points_to_and_keeps_the_link(tmp_path,
                                                                                   dangling):
    (tmp_path / "disk").mkdir()
    target = tmp_path / "disk" / "state.json"
    if not dangling:
        target.write_text("{}")
    link = tmp_path / "state.json"
    os.symlink(target, link)
    state = StateFile(str(link))
    state.lock()
    try:
        state.save(VALID)
    finally:
        state.unlock()
    assert os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == VALID
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["state.json",
                                                                     "state.json.lock"]


@pytest.mark.parametrize("state_home", ["", "rel-xdg", "./state"])
def test_an_empty_or_relative_xdg_state_home_is_ignored(monkeypatch, tmp_path, state_home):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", state_home)
    assert pyNetConnMon.default_state_path() == str(
        tmp_path / ".local" / "state" / "pyNetConnMon" / "state.json")




UMASK_MODES = [(0o022, 0o644), (0o077, 0o600), (0o000, 0o644)]


@pytest.mark.parametrize("umask, mode", UMASK_MODES, ids=["022", "077", "000"])
def test_the_state_file_has_the_usual_mode_but_never_lets_others_write(tmp_path, umask, mode):
    # at umask 000 any local user could erase the pending reports
    state = StateFile(str(tmp_path / "state.json"))
    previous = os.umask(umask)
    try:
        state.lock()
        state.save(VALID)
    finally:
        state.unlock()
        os.umask(previous)
    assert os.stat(tmp_path / "state.json").st_mode & 0o777 == mode

@pytest.mark.parametrize("home", ["~", "x", ""])
def test_a_relative_home_counts_as_unset_not_as_a_folder_under_the_current_one(monkeypatch,
                                                                                 home):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("HOME")
    unset = pyNetConnMon.default_state_path()
    monkeypatch.setenv("HOME", home)
    assert pyNetConnMon.default_state_path() == unset == os.path.join(
        pwd.getpwuid(os.getuid()).pw_dir, ".local", "state", "pyNetConnMon", "state.json")


@pytest.mark.parametrize("home", ["", "~"])
def test_no_home_anywhere_asks_for_a_state_file(monkeypatch, home):
    # a user the user database does not know (a container's uid): "~" was taken as a folder
    # under the current one, another in each folder the monitor was started from
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", home)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    with pytest.raises(pyNetConnMon.UsageError, match=r"^cannot tell the home folder for the "
                       r"state file \(HOME is not an absolute path and user \d+ has none in the "
                       r"user database\): give --state-file$"):
        pyNetConnMon.default_state_path()


def test_a_lock_file_removed_while_running_is_made_again_at_the_heartbeat(tmp_path):
    path = str(tmp_path / "state.json")
    first = StateFile(path)
    first.lock()
    try:
        os.utime(path + ".lock", (1e9, 1e9))            # old, as a cleaner of /tmp sees it
        assert first.keep_lock() is None
        assert os.stat(path + ".lock").st_mtime > 1e9    # touched: the cleaner leaves it
        os.unlink(path + ".lock")
        assert first.keep_lock() == "the lock file %s.lock was removed; made it again" % path
        with pytest.raises(pyNetConnMon.MonitorError, match="another pyNetConnMon is already"):
            StateFile(path).lock()
    finally:
        first.unlock()


# -- contents -------------------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def mutations():
    """A valid state with one field (at any depth) replaced by any JSON value."""
    paths = [("heartbeat",), ("clean_stop",), ("targets",), ("down",), ("down", "start"),
             ("down", "reason"), ("next_id",), ("pending",), ("backoff",), ("backoff", "wait"),
             ("backoff", "last_sent"), ("pending", 0), ("pending", 0, "id"),
             ("pending", 0, "start"), ("pending", 0, "end"), ("pending", 0, "duration"),
             ("pending", 0, "reason"), ("pending", 0, "kind"), ("pending", 0, "targets"),
             ("pending", 0, "count"), ("pending", 0, "cut_short"), ("format",), ("boot",),
             ("boot", "id"), ("boot", "seconds"), ("partials",), ("partials", 0),
             ("partials", 0, "part"), ("partials", 0, "start"), ("partials", 0, "duration")]
    return st.tuples(st.sampled_from(paths), JSON)


def mutate(path, value):
    data = json.loads(json.dumps(VALID))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_any_content_is_either_used_whole_or_refused_with_a_reason(mutation):
    data = mutate(*mutation)
    try:
        state = check_state(data)
    except ValueError as error:
        assert str(error)
        return
    # what passed the check is safe to use: restore it and build a report from it
    pending = PendingReports(ReportBackoff(60, 3600, 300))
    pending.restore(state, 100.0, WALL)
    pyNetConnMon.recover_previous_run(state, WALL + 60, 5.0,
                                      ("f831437d-445f-42ff-8829-b9874ce87b7b", 5060.0))
    for partial in pyNetConnMon.recover_partial_outages(state, 5.0):
        pending.add(**partial)
    pyNetConnMon.format_report(pending.items or [], "pi")


@pytest.mark.parametrize("text, reason", [
    ('{"format": 1, "heartbeat": NaN}', "NaN is not a number a state file holds"),
    ('{"format": 1, "heartbeat": 1e999}', "heartbeat is out of range"),
    ('{"format": 1, "heartbeat": -5}', "heartbeat is out of range"),
    ('{"format": 1, "pending": {"id": 1}}', "pending is not a list of at most 100000 entries"),
    ('{"format": 1, "pending": [{"id": "1"}]}', "pending entry 1 id is not a number"),
    ('[' * 100000 + ']' * 100000, "too deeply nested"),
    ('{"format": 2}', "not a pyNetConnMon state file of format 1"),
])
def test_unusable_content_is_moved_aside_with_one_warning_and_the_monitor_starts(tmp_path, text,
                                                                                    reason):
    path = tmp_path / "state.json"
    path.write_text(text)
    data, warning = StateFile(str(path)).load()
    assert data is None
    aside, = tmp_path.glob("state.json.corrupt-*")
    assert aside.read_text() == text
    assert warning == ("state file %s could not be used (%s); moved it to %s and started afresh"
                       % (path, reason, aside))


def test_an_old_file_with_thousands_of_pending_interruptions_is_folded_not_lost(tmp_path):
    data = json.loads(json.dumps(VALID))
    item = data["pending"][0]
    data["pending"] = [dict(item, id=n, start=WALL - 10000 + n, end=WALL - 10000 + n + 5,
                            duration=5.0) for n in range(1, 5001)]
    data["next_id"] = 5001
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    state, warning = StateFile(str(path)).load()
    assert warning is None
    pending = PendingReports(ReportBackoff(60, 3600, 300))
    pending.restore(state, 100.0, WALL)
    assert (len(pending), pending.count) == (pyNetConnMon.PENDING_LIMIT, 5000)
    assert sum(item.duration for item in pending.items) == 5000 * 5.0
    subject, body = pyNetConnMon.format_report(pending.items, "pi")
    assert subject.startswith("pyNetConnMon on pi: 5000 interruptions, ")
    assert "... 4900 interruptions left out here; the event log has all of them ...\n" in body


def test_the_pending_list_stays_bounded_however_many_interruptions_come():
    pending = PendingReports(ReportBackoff(60, 3600, 300), limit=10)
    for n in range(1000):
        pending.add(WALL + 100 * n, WALL + 100 * n + 7, 7.0, "timeout", ["198.18.0.2:53"])
    assert (len(pending), pending.count) == (10, 1000)
    kinds = [item.kind for item in pending.items]
    assert kinds == ["outage"] * 5 + ["many"] + ["outage"] * 4
    many = pending.items[5]
    assert (many.count, many.start, many.end) == (991, WALL + 500, WALL + 100 * 995 + 7)
    assert [item.start for item in pending.items[6:]] == [WALL + 100 * n for n in range(996, 1000)]


def test_a_gap_folded_with_interruptions_is_still_told_as_a_gap(tmp_path):
    """Past the limit, entries in the middle are folded into one; two 8 h gaps among them were
    told as one interruption and 8 h of downtime (and the other as a gap)."""
    pending = PendingReports(ReportBackoff(60, 3600, 300), limit=10)
    for number in range(30):
        start = WALL + 100 * number
        if number in (12, 15):
            pending.add(start, start + 8 * 3600, 8 * 3600.0, "", ["198.18.0.2:53"], kind="gap")
        pending.add(start, start + 30, 30.0, "timeout", ["198.18.0.2:53"])
    restored = saved_and_restored(pending, ["198.18.0.2:53"], tmp_path / "state.json")
    for entries in (pending.items, restored.items):
        subject, body = pyNetConnMon.format_report(entries, "pi")
        assert subject == ("pyNetConnMon on pi: 30 interruptions, 15 min of downtime; 2 gaps "
                           "(16 h) when the monitor was not running")
        assert ("  16 h 10 min 30 s  -         21 interruptions and 2 gaps (the monitor not "
                "running) between these times, added up here (the event log has each)\n") in body
        assert pyNetConnMon.ReportContents(entries).gaps == 2
    gaps_only = pyNetConnMon.Interruption(1, WALL, WALL + 60, 60.0, "", "many", count=3, gaps=3,
                                          gap_duration=60.0)
    assert pyNetConnMon.describe_interruption(gaps_only).endswith(
        "  3 gaps (the monitor not running) between these times, added up here (the event log "
        "has each)")


def test_a_folded_entry_names_at_most_max_targets(tmp_path):
    # runs with other targets each: the folded entry's list grew past the 10000 labels a state
    # file may hold, and the next start moved the file aside with every report in it
    pending = PendingReports(ReportBackoff(60, 3600, 300), limit=4)
    for number in range(30):
        labels = ["198.%d.%d.%d:53" % (number, low // 250, low % 250) for low in range(500)]
        pending.add(WALL + 100 * number, WALL + 100 * number + 10, 10.0, "timeout", labels)
    folded = [item for item in pending.items if item.kind == "many"]
    assert [len(item.targets) for item in folded] == [pyNetConnMon.MAX_TARGETS]
    restored = saved_and_restored(pending, [], tmp_path / "state.json")
    assert restored.count == 30


# -- discarding ------------------------------------------------------------------------------
def test_discard_pending_forgets_them_says_how_many_and_logs_it(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(VALID))
    log = tmp_path / "events.jsonl"
    result = run_program("-a", "127.0.0.1", "--discard-pending", "--state-file", path,
                         "--log-file", log, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(" discarded 1 interruption waiting for a report (state file "
                                  "%s)\n" % path)
    saved = json.loads(path.read_text())
    assert (saved["pending"], saved["clean_stop"], saved["down"]) == ([], True, None)
    event, = [json.loads(line) for line in log.read_text().splitlines()]
    assert (event["event"], event["interruptions"]) == ("pending_discarded", 1)


def test_no_mail_keeps_what_earlier_runs_left_to_report(tmp_path):
    """--no-mail sends no report and throws none away: what earlier runs left waits in the state
    file for the next run that reports (its first save used to write an empty list)."""
    state = tmp_path / "state" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps(dict(VALID, clean_stop=True)))
    with Listener() as target, start_monitor(tmp_path, "-a", target.address, "--gateway",
                                             "none", "--no-mail", "-i", "0.2", "--heartbeat",
                                             "1") as monitor:
        monitor.wait_for_line(r" WARNING 1 interruption from earlier runs still to report: not "
                              r"sent with --no-mail, kept for the next run that sends reports "
                              r"\(--discard-pending drops them\)$")
        wait_until(lambda: json.loads(state.read_text())["heartbeat"] > WALL + 1000, 5,
                   "a heartbeat's save")
        assert monitor.terminate() == 0
    saved = json.loads(state.read_text())
    assert [(item["id"], item["start"], item["duration"], saved["target_lists"][item["targets"]])
            for item in saved["pending"]] == [(1, WALL - 900, 20.0, ["198.18.0.2:53"])]
    assert (saved["next_id"], saved["backoff"]["last_sent"]) == (3, pytest.approx(WALL - 100))


def test_no_mail_after_a_crash_keeps_the_gap_and_the_outage_it_cut_short(tmp_path):
    # the crash's outage and gap went to --no-mail's nowhere: lost for good
    state = tmp_path / "state" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps(dict(VALID, partials=[])))       # down, no clean stop
    with Listener() as target, start_monitor(tmp_path, "-a", target.address, "--gateway",
                                             "none", "--no-mail", "-i", "0.2") as monitor:
        # the one waiting, the outage the crash cut short, and the gap since
        monitor.wait_for_line(r" WARNING 2 interruptions and 1 gap from earlier runs still to "
                              r"report: ")
        assert monitor.terminate() == 0
    saved = json.loads(state.read_text())
    assert [(item["kind"], item["cut_short"]) for item in saved["pending"]] == [
        ("outage", False), ("outage", True), ("gap", False)]
    assert saved["pending"][1]["start"] == WALL - 30


@pytest.mark.parametrize("fields", [
    {"kind": "outage", "gaps": 1}, {"kind": "many", "count": 3, "gaps": 4},
    {"kind": "many", "count": 3, "gaps": 1.5}, {"kind": "many", "count": 3, "gaps": True},
    {"kind": "many", "count": 3, "gaps": -1},
    {"kind": "many", "count": 3, "gaps": 1, "duration": 20.0, "gap_duration": 30.0},
    {"kind": "many", "count": 3, "gap_duration": 5.0}, {"kind": "gap", "part": "target x"},
    {"kind": "many", "part": "several", "count": 3, "gaps": 3}])
def test_gaps_a_folded_entry_cannot_hold_make_the_state_unusable(fields):
    # they read as "-3 interruptions, -8750.0 s of downtime" in a report
    with pytest.raises(ValueError):
        check_state(dict(VALID, pending=[dict(VALID["pending"][0], **fields)]))
    many = dict(VALID["pending"][0], kind="many", count=3, gaps=3, gap_duration=20.0)
    assert check_state(dict(VALID, pending=[many]))["pending"][0]["gaps"] == 3


def saved_and_restored(pending, targets, path):
    """`pending` saved in a state file of a run of `targets`, which must stay under 2 MB, and
    read back as the next start does."""
    state = StateFile(str(path))
    data = {"format": 1, "heartbeat": WALL, "clean_stop": True, "targets": targets}
    data.update(pending.to_dict(0.0, WALL, targets))
    state.save(data)
    assert path.stat().st_size < 2 * 1024 * 1024
    loaded, warning = state.load()
    assert warning is None
    restored = PendingReports(ReportBackoff(60, 3600, 300))
    restored.restore(loaded, 0.0, WALL)
    return restored


def test_a_thousand_targets_in_every_pending_entry_still_fit_the_state_file(tmp_path):
    """The run's targets are kept once, not in each entry: before, 1000 targets in 1000 pending
    interruptions made a 24 MB file, which the next start refused (over 16 MB) and moved aside
    with every report it held."""
    labels = ["198.18.%d.%d:53" % divmod(number, 250) for number in range(1000)]
    pending = PendingReports(ReportBackoff(60, 3600, 300))
    for number in range(1000):
        start = WALL + 100 * number
        pending.add(start, start + 10, 10.0, "timeout", labels)
        pending.add(start, start + 20, 20.0, "", labels, kind="slow", median_ms=1500.0,
                    max_ms=1900.0)
    pending.add(WALL, WALL + 30, 30.0, "refused", labels[:1], part="target")
    restored = saved_and_restored(pending, labels, tmp_path / "state.json")
    assert (restored.count, restored.slow_count, restored.partial_count) == (1000, 1000, 1)
    assert all(item.targets == labels for item in restored.items + restored.slow_items)
    assert restored.partials[0].targets == labels[:1]


def test_entries_of_an_earlier_runs_targets_keep_them_once(tmp_path):
    """A restart with one target of a thousand changed: each of 4000 entries wrote the earlier
    run's thousand labels (83 MB), and the next start moved the file aside with every report
    it held (over 16 MB). The lists are kept once, and the entries name them."""
    before = ["198.18.%d.%d:53" % divmod(number, 250) for number in range(1000)]
    now = before[:-1] + ["198.18.9.9:53"]
    pending = PendingReports(ReportBackoff(60, 3600, 300))
    for number in range(4000):
        start = WALL + 100 * number
        pending.add(start, start + 10, 10.0, "timeout", before, kind="slow" if number % 2 else
                    "outage", **({"median_ms": 1500.0, "max_ms": 1900.0} if number % 2 else {}))
    pending.add(WALL, WALL + 30, 30.0, "refused", before[:1], part="target")
    pending.add(WALL + 10, WALL + 40, 30.0, "timeout", now)
    restored = saved_and_restored(pending, now, tmp_path / "state.json")
    assert (restored.count, restored.slow_count, restored.partial_count) == (2001, 2000, 1)
    assert [item.targets for item in restored.items[-1:]] == [now]
    assert all(item.targets == before for item in restored.items[:-1] + restored.slow_items)
    assert restored.partials[0].targets == before[:1]


@pytest.mark.parametrize("targets", [3, -1, True, "0"])
def test_an_entry_naming_no_list_of_targets_makes_the_state_unusable(targets):
    data = dict(VALID, target_lists=[["198.18.0.2:53"]],
                pending=[dict(VALID["pending"][0], targets=targets)])
    with pytest.raises(ValueError):
        check_state(data)
    assert check_state(dict(data, pending=[dict(VALID["pending"][0], targets=0)]))[
        "pending"][0]["targets"] == ["198.18.0.2:53"]


def test_pending_entries_of_the_same_targets_share_one_list_of_them():
    # each entry copied the thousand labels: 4000 entries held 32 MB of lists in memory
    labels = ["198.18.%d.%d:53" % divmod(number, 250) for number in range(1000)]
    pending = PendingReports(ReportBackoff(60, 3600, 300), limit=100)
    for number in range(300):
        pending.add(WALL + number, WALL + number + 10, 10.0, "timeout", list(labels))
        pending.add(WALL + number, WALL + number + 5, 5.0, "refused", [labels[0]],
                    part="target")
    pending.add(WALL + 400, WALL + 410, 10.0, "timeout", labels[:2])
    lists = {id(item.targets) for item in pending.items if item.kind != "many"}
    assert len(pending.items) == 100 and len(lists) == 2       # the thousand, and the two
    [many] = [item for item in pending.items if item.kind == "many"]
    assert many.targets == labels and many.count == 301 - 99
    restored = PendingReports(ReportBackoff(60, 3600, 300))
    restored.restore(check_state(dict(pending.to_dict(0.0, WALL, labels), format=1,
                                      heartbeat=WALL, clean_stop=True, targets=labels)),
                     0.0, WALL)
    assert len({id(item.targets) for item in restored.items[:-1]}) <= 2
