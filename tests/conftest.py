"""Shared fixtures: each concern keeps its fixtures in its own module, gathered here."""
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)   # tests import the program itself: `import pyNetConnMon`

from smtp_lab import (PYSENDMAIL, program_dir, session_smtp_server,  # noqa: E402,F401
                      smtp_certificate, smtp_server)
from netlab import netlab  # noqa: E402,F401
from homelab import homelab  # noqa: E402,F401


# The lab tests: they build network namespaces (the fault lab, the home lab) and take minutes;
# the soak runs for about a minute. Marked `lab`, so that `pytest tests -m "not lab"` runs the
# fast tests alone.
LAB_MODULES = {"test_faults.py", "test_netlab.py", "test_homelab.py", "test_causes_lab.py",
               "test_latency_lab.py", "test_loss_lab.py", "test_soak.py"}
LAB_FIXTURES = {"netlab", "homelab"}


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs network namespaces (root) or runs for minutes; "
                                       "deselect with -m 'not lab'")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in LAB_MODULES or LAB_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.lab)


def pytest_report_header(config):
    return "pySendMail for the mail tests: %s" % PYSENDMAIL


@pytest.fixture
def utc():
    """Local time is UTC for the test, so that formatted timestamps are exact."""
    import time
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.fixture
def app(tmp_path):
    """A copy of the program in a folder of its own, as a user who saved the file alone has it:
    to be started by its shebang (./pyNetConnMon.py), with a bytecode cache of its own."""
    from harness import PROGRAM
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copy(PROGRAM, folder / PROGRAM.name)
    return folder / PROGRAM.name
