"""CommandDeliverer on its own: what a user of --notify-command reads when their command fails."""
import glob
import threading
import time

import pytest

from harness import sleeper, wait_until
from pyNetConnMon import (REASON_LIMIT, CommandDeliverer, DeliveryError, describe_command_exit,
                          printable)


def failure_of(command, timeout=60.0):
    with pytest.raises(DeliveryError) as caught:
        CommandDeliverer(command, timeout=timeout).deliver("subject", "body\n")
    return str(caught.value)


def test_the_report_goes_to_stdin_and_the_subject_to_the_environment(tmp_path):
    out = tmp_path / "out"
    CommandDeliverer('cat > "%s"; printf %%s "$PYNETCONNMON_SUBJECT" > "%s.subject"' % (out, out)
                     ).deliver("pyNetConnMon on pi: 1 interruption", "the report\n")
    assert out.read_text() == "the report\n"
    assert (tmp_path / "out.subject").read_text() == "pyNetConnMon on pi: 1 interruption"


def test_a_failing_command_names_its_status_and_last_error_line():
    assert failure_of("echo first >&2; echo 'token rejected' >&2; exit 3") == (
        "notify command exited with status 3: token rejected")


def test_a_command_killed_by_a_signal_says_which():
    assert failure_of("kill -TERM $$") == "notify command was killed by SIGTERM"


def test_a_command_that_hangs_is_killed_after_its_time_limit():
    started = time.monotonic()
    assert failure_of("sleep 30", timeout=0.2) == "notify command ran longer than 0.2 s"
    assert time.monotonic() - started < 5


# -- hostile commands: background children, floods of output, odd endings --------------------
def deliver_in_thread(deliverer, body="body\n"):
    """Starts deliver() in a daemon thread; returns a function that waits up to `within` s for
    its outcome: None (delivered) or the failure text. A test that fails thus does not hang."""
    outcome = []

    def run():
        try:
            deliverer.deliver("subject", body)
            outcome.append(None)
        except DeliveryError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(within):
        thread.join(within)
        assert not thread.is_alive(), "deliver() still busy after %s s" % within
        return outcome[0]
    return result


@pytest.mark.parametrize("detach", ["", "setsid "])
def test_a_background_child_holding_stderr_neither_delays_nor_changes_the_delivery(tmp_path, pids,
                                                                                    detach):
    out = tmp_path / "out"
    deliverer = CommandDeliverer('cat > "%s"; %s%s & exit 0' % (out, detach, sleeper(pids)),
                                 timeout=5)
    started = time.monotonic()
    assert deliver_in_thread(deliverer)(within=7) is None      # delivered: no retry, no twice
    assert time.monotonic() - started < 2
    assert out.read_text() == "body\n"
    wait_until(pids.exists, 2, "the child noted its pid")   # it was there and held the pipe


def test_a_background_child_holding_stdin_unread_does_not_block_the_delivery(pids):
    # the command exits at once; its child keeps the pipe open and never reads the 1 MB report
    deliverer = CommandDeliverer('%s <&0 & exit 0' % sleeper(pids), timeout=5)
    started = time.monotonic()
    assert deliver_in_thread(deliverer, "x" * 1000000)(within=7) is None
    assert time.monotonic() - started < 2


def test_a_report_larger_than_a_pipe_reaches_the_command_whole(tmp_path):
    out = tmp_path / "out"
    body = "".join("line %d of a long report\n" % n for n in range(20000))     # 0.5 MB
    CommandDeliverer('cat > "%s"' % out, timeout=10).deliver("subject", body)
    assert out.read_text() == body


def test_a_hung_command_whose_grandchild_left_the_group_returns_at_its_limit(pids):
    # the grandchild is in a session of its own: killing the group leaves it holding stderr
    deliverer = CommandDeliverer('setsid %s & sleep 30' % sleeper(pids), timeout=0.2)
    started = time.monotonic()
    assert deliver_in_thread(deliverer)(within=3) == "notify command ran longer than 0.2 s"
    assert time.monotonic() - started < 0.2 + 1.0


def test_cancel_returns_at_once_even_if_a_grandchild_holds_the_pipe(pids):
    deliverer = CommandDeliverer('setsid %s & sleep 30' % sleeper(pids), timeout=30)
    result = deliver_in_thread(deliverer)
    wait_until(pids.exists, 5, "the command started its grandchild")
    wait_until(lambda: deliverer.process is not None, 5, "deliver() has the process")
    cancelled = time.monotonic()
    deliverer.cancel()
    assert result(within=3) == "notify command was killed by SIGKILL"
    assert time.monotonic() - cancelled < 1.0


def peak_memory_growth(function):
    """function()'s result and how far (bytes) this process's peak resident memory rose above
    the resident memory before it (the peak is reset first, through /proc/self/clear_refs)."""
    def status(field):
        with open("/proc/self/status") as lines:
            (value,) = [line.split()[1] for line in lines if line.startswith(field + ":")]
        return int(value) * 1024

    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")                 # 5: reset the peak resident set size (VmHWM)
    before = status("VmRSS")
    result = function()
    return result, status("VmHWM") - before


def test_a_flood_of_stderr_gives_a_short_reason_and_takes_little_memory():
    command = "head -c 50000000 /dev/zero | tr '\\0' x >&2; exit 3"      # one 50 MB line
    started = time.monotonic()
    reason, growth = peak_memory_growth(lambda: failure_of(command, timeout=20))
    assert reason == ("notify command exited with status 3: " + "x" * 200)[:197] + "..."
    assert len(reason) == 200
    assert growth < 8 * 1024 * 1024, growth          # holding the output took 50 MB and more
    assert time.monotonic() - started < 15


def test_control_characters_in_stderr_are_escaped():
    assert failure_of(r"printf 'token \033[2J\033]0;owned\007 rejected\tnow\n' >&2; exit 4") == (
        r"notify command exited with status 4: token \x1b[2J\x1b]0;owned\x07 rejected\x09now")


def test_only_the_last_line_of_stderr_is_the_reason_even_after_a_carriage_return():
    assert failure_of(r"printf '12:00:00 DOWN forged\r\nserver said no\r\n' >&2; exit 5") == (
        "notify command exited with status 5: server said no")


def test_a_signal_python_has_no_name_for_is_named_by_its_number():
    assert failure_of("kill -40 $$") == "notify command was killed by signal 40"


def test_every_exit_status_is_described_in_one_short_line():
    for status in range(-70, 256):
        reason = describe_command_exit(status, b"\x1b[31m" + b"e\xff\x00" * 3000 + b"\n\n \n")
        if status == 0:
            assert reason is None
            continue
        assert reason.startswith("notify command ")
        assert len(reason) <= REASON_LIMIT and reason.isprintable(), reason
    assert describe_command_exit(-9, b"") == "notify command was killed by SIGKILL"
    assert describe_command_exit(-100, b"") == "notify command was killed by signal 100"
    assert describe_command_exit(2, b"") == "notify command exited with status 2"
    assert describe_command_exit(2, b"\xe2\x9c\x97 failed\n") == (
        "notify command exited with status 2: \u2717 failed")


def test_printable_leaves_no_character_that_moves_the_cursor_or_breaks_the_line():
    text = "a\x1b[1Ab\rc\nd\x85e\u2028f\u202eg\x7fh\u00e9"
    assert printable(text) == r"a\x1b[1Ab\x0dc\x0ad\x85e\u2028f\u202eg\x7fh" + "\u00e9"


def processes_in_group(pgid):
    """Live (not zombie) processes whose process group is `pgid`."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue        # ended meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(stat)
    return found


def test_cancel_kills_the_command_and_its_children_so_it_cannot_deliver_later(tmp_path):
    """At a stop the monitor keeps the report pending; the command must not deliver it after."""
    pid_file = tmp_path / "pid"
    deliverer = CommandDeliverer('echo $$ > "%s"; sleep 30; touch "%s"'
                                 % (pid_file, tmp_path / "delivered"))
    failures = []

    def deliver():
        try:
            deliverer.deliver("subject", "body\n")
        except DeliveryError as error:
            failures.append(str(error))

    worker = threading.Thread(target=deliver)
    worker.start()
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10,
                   "the command started")
        group = int(pid_file.read_text())
        assert processes_in_group(group)            # the shell and its sleep
        deliverer.cancel()
        worker.join(10)
        assert not worker.is_alive()
    finally:
        deliverer.cancel()
    assert failures == ["notify command was killed by SIGKILL"]
    wait_until(lambda: not processes_in_group(group), 5, "every process of the command ended")
    assert not (tmp_path / "delivered").exists()
