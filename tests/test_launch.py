"""Started as ./pyNetConnMon.py, the file has Python run its cached bytecode: the monitor does not
compile the whole file itself (a child does, when the file is new or changed), and what runs is
always the code of the file as it is now."""
import importlib.util
import marshal
import os
import shutil
import struct
import subprocess
import sys

import pytest

from harness import MonitorProcess, child_env, listening_socket, shebang_env
from pyNetConnMon import VERSION

# SOURCE_DATE_EPOCH would make py_compile write a hash-checked cache instead of a timestamped one
TIMESTAMPED_CACHE_ENV = {"SOURCE_DATE_EPOCH": None}


def start(script, *args, env=None):
    """`script ARGS` run to its end by its shebang: (exit status, stdout, stderr)."""
    result = subprocess.run([os.fspath(script), *args], capture_output=True, text=True,
                            timeout=30,
                            env=child_env(shebang_env({**TIMESTAMPED_CACHE_ENV, **(env or {})})),
                            stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout, result.stderr


def cache_of(script):
    return importlib.util.cache_from_source(os.fspath(script))


def timestamp_header(script):
    """The first 16 bytes of a bytecode cache that is valid for `script` as it is now."""
    stat = os.stat(script)
    return importlib.util.MAGIC_NUMBER + struct.pack(
        "<III", 0, int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)


def vmhwm_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def test_the_first_start_leaves_a_bytecode_cache_for_the_file(app):
    assert start(app, "--version") == (0, "pyNetConnMon %s\n" % VERSION, "")
    with open(cache_of(app), "rb") as cache:
        assert cache.read(16) == timestamp_header(app)


def test_a_start_runs_the_cached_bytecode(app):
    # a cache valid for the file but holding other code: what runs is the cache's
    os.mkdir(os.path.dirname(cache_of(app)))
    code = compile("print('run from the cache')", os.fspath(app), "exec")
    with open(cache_of(app), "wb") as cache:
        cache.write(timestamp_header(app) + marshal.dumps(code))
    assert start(app, "--version") == (0, "run from the cache\n", "")


@pytest.mark.parametrize("moved", [+5, -5], ids=["newer than its cache", "older than its cache"])
def test_a_changed_file_runs_its_new_code(app, moved):
    # an update (newer) or a copy that kept an older file time (`cp -p`): either way, the new code
    assert start(app, "--version")[0] == 0
    app.write_text(app.read_text().replace('VERSION = "%s"' % VERSION, 'VERSION = "9.9.9"', 1))
    when = os.stat(cache_of(app)).st_mtime + moved
    os.utime(app, (when, when))
    assert start(app, "--version") == (0, "pyNetConnMon 9.9.9\n", "")
    assert start(app, "--version") == (0, "pyNetConnMon 9.9.9\n", "")


def test_the_monitor_started_without_a_cache_does_not_hold_the_compile(app, tmp_path):
    # compiling the file takes more memory than the monitor needs, and a process keeps its peak:
    # started by its shebang the compile happens in a child that ends; `python3 file` compiles
    # in the monitor itself
    peaks = {}
    with listening_socket() as port:
        for how in ("./pyNetConnMon.py", "python3 pyNetConnMon.py"):
            shutil.rmtree(os.path.dirname(cache_of(app)), ignore_errors=True)
            with MonitorProcess(["-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                                 "--state-file", tmp_path / "state.json"], script=app,
                                compiled=False, by_shebang=how.startswith("./")) as monitor:
                monitor.wait_for_line(r"started pyNetConnMon ")
                peaks[how] = vmhwm_kib(monitor.pid)
                assert monitor.terminate() == 0
            assert os.path.exists(cache_of(app)) == how.startswith("./")
    assert peaks["./pyNetConnMon.py"] < 0.75 * peaks["python3 pyNetConnMon.py"], peaks


def test_a_renamed_copy_and_a_link_to_the_file_start_too(app, tmp_path):
    renamed = app.with_name("netmon")
    shutil.copy(app, renamed)
    link = tmp_path / "pynetconnmon"
    link.symlink_to(app)
    for script in (renamed, link, renamed, link):       # the second time from their caches
        assert start(script, "--version") == (0, "pyNetConnMon %s\n" % VERSION, "")
        assert start(script, "-p", "0", "--once") == (
            2, "", "pyNetConnMon.py: error: -p/--port: 0 is outside 1-65535\n")


def test_pythondontwritebytecode_is_respected(app):
    assert start(app, "--version", env={"PYTHONDONTWRITEBYTECODE": "1"}) == (
        0, "pyNetConnMon %s\n" % VERSION, "")
    assert os.listdir(app.parent) == [app.name]


def test_a_cache_that_cannot_be_written_costs_only_memory(app):
    # (a __pycache__ that is a file stands for any folder the user may not write: as root, the
    # tests can write everywhere else)
    (app.parent / "__pycache__").write_text("not a folder")
    for _ in range(2):
        assert start(app, "--version") == (0, "pyNetConnMon %s\n" % VERSION, "")
    assert (app.parent / "__pycache__").read_text() == "not a folder"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="PYTHONSAFEPATH is 3.11+")
def test_pythonsafepath_keeps_the_program_folder_off_the_module_path(app):
    # as for a script: a module in the program's folder does not stand in for the standard one
    (app.parent / "json.py").write_text("raise SystemExit('the json.py beside the program')\n")
    assert start(app, "--version", env={"PYTHONSAFEPATH": "1"}) == (
        0, "pyNetConnMon %s\n" % VERSION, "")
    assert start(app, "--version")[2] == "the json.py beside the program\n"
