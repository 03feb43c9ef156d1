"""CommandDeliverer on its own: what a user of --notify-command reads when their command fails."""
import time

import pytest

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
