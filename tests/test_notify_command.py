"""CommandDeliverer on its own: what a user of --notify-command reads when their command fails."""
import glob
import threading
import time

import pytest

from harness import wait_until
from pyNetConnMon import CommandDeliverer, DeliveryError


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
    assert failure_of("sleep 30", timeout=0.5) == "notify command ran longer than 0.5 s"
    assert time.monotonic() - started < 5


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
