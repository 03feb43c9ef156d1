"""Shared fixtures: each concern keeps its fixtures in its own module, gathered here."""
import fcntl
import os
import shutil
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)   # tests import the program itself: `import pyNetConnMon`
# the lab's helpers (servers, namespaces, a browser) and the tools (the benchmark, log makers)
TESTS = os.path.join(ROOT, "tests")
sys.path[1:1] = [os.path.join(TESTS, "lab"), os.path.join(TESTS, "tools")]

# the fixtures each concern keeps in its own module
pytest_plugins = ["smtp_lab", "netlab", "homelab"]


# The lab tests: they build network namespaces (the fault lab, the home lab, several sites with
# Prometheus and Alertmanager) and take minutes; the soak runs for about a minute. Marked `lab`,
# so that `pytest tests -m "not lab"` runs the fast tests alone.
LAB_MODULES = {"test_faults.py", "test_netlab.py", "test_homelab.py", "test_causes_lab.py",
               "test_routes_lab.py", "test_names_lab.py", "test_latency_lab.py", "test_loss_lab.py",
               "test_soak.py", "test_multisite_lab.py"}
LAB_FIXTURES = {"netlab", "homelab"}


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs network namespaces (root) or runs for minutes; "
                                       "deselect with -m 'not lab'")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in LAB_MODULES or LAB_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.lab)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # In several processes (pytest-xdist's -n), one lab test at a time, as their bounds on timing
    # were measured; the other tests run beside them. The lock is on the tests folder (flock),
    # which every process of the run shares, and goes with the process if it dies.
    if item.get_closest_marker("lab") is None:
        yield
        return
    folder = os.open(TESTS, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


def pytest_report_header(config):
    import smtp_lab
    return "pySendMail for the mail tests: %s" % smtp_lab.PYSENDMAIL


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


@pytest.fixture
def pids(tmp_path):
    """A file where commands note the pids of children they leave behind; killed at the end."""
    path = tmp_path / "pids"
    yield path
    if path.exists():
        for pid in path.read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def make_locale(tmp_path):
    """make_locale("ja_JP", "EUC-JP"): the environment (LOCPATH, LC_ALL, no PYTHONUTF8) of that
    locale, built by localedef in a folder of the test's; the test is skipped where it cannot be."""
    folder = tmp_path / "locales"

    def make(source, charmap):
        if not shutil.which("localedef"):
            pytest.skip("needs localedef to build a %s locale" % charmap)
        folder.mkdir(exist_ok=True)
        name = "%s.%s" % (source, charmap)
        built = subprocess.run(["localedef", "-i", source, "-f", charmap, folder / name],
                               capture_output=True, timeout=60)
        if built.returncode not in (0, 1):     # 1: built, with warnings
            pytest.skip("localedef could not build %s: %r" % (name, built.stderr))
        return {"LOCPATH": folder, "LC_ALL": name, "PYTHONUTF8": None}
    return make
