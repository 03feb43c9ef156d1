"""Started as ./pyNetConnMon.py, the file has Python run its cached bytecode: the monitor does not
compile the whole file itself (a child does, when the file is new or changed), and what runs is
always the code of the file as it is now."""
import glob
import importlib.util
import marshal
import os
import shlex
import shutil
import struct
import subprocess
import sys

import pytest

from harness import MonitorProcess, child_env, listening_socket, shebang_env
import pyNetConnMon
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


def compile_only_peak_kib(script):
    """The peak memory of a process that only compiles `script`, as `python3 script` does."""
    probe = ("import sys\ncompile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')\n"
             "print(next(line.split()[1] for line in open('/proc/self/status') "
             "if line.startswith('VmHWM:')))")
    return int(subprocess.run([sys.executable, "-c", probe, os.fspath(script)], check=True,
                              capture_output=True, text=True, timeout=30).stdout)


def test_the_monitor_does_not_hold_the_compile_however_it_is_started(app, tmp_path):
    # compiling the file takes more memory than the monitor needs, and a process keeps its peak:
    # started by its shebang the compile happens in a child that ends; started as a script or a
    # module, Python compiles it in the process, which then moves (same pid) onto the cache
    peaks = {}
    compile_peak = compile_only_peak_kib(app)
    ways = {"./pyNetConnMon.py": dict(by_shebang=True),
            "python3 pyNetConnMon.py": dict(compiled=False),
            "python3 -m pyNetConnMon": dict(start=[sys.executable, "-m", "pyNetConnMon"],
                                            cwd=app.parent)}
    with listening_socket() as port:
        for how, way in ways.items():
            shutil.rmtree(os.path.dirname(cache_of(app)), ignore_errors=True)
            with MonitorProcess(["-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                                 "--state-file", tmp_path / "state.json"], script=app,
                                env={**TIMESTAMPED_CACHE_ENV, "PYTHONDONTWRITEBYTECODE": None},
                                **way) as monitor:
                started = monitor.wait_for_line(r"started pyNetConnMon \S+ \(pid (\d+)\)")
                assert int(started.group(1)) == monitor.pid
                peaks[how] = vmhwm_kib(monitor.pid)
                assert monitor.terminate() == 0
            assert os.path.exists(cache_of(app))
    assert all(peak < 0.75 * compile_peak for peak in peaks.values()), (compile_peak, peaks)


def test_a_script_start_keeps_its_interpreter_options_when_it_moves_onto_the_cache(app, tmp_path):
    with listening_socket() as port:
        with MonitorProcess(["-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                             "--state-file", tmp_path / "state.json"],
                            start=[sys.executable, "-S", "-X", "faulthandler", os.fspath(app)],
                            env={**TIMESTAMPED_CACHE_ENV, "PYTHONDONTWRITEBYTECODE": None}
                            ) as monitor:
            monitor.wait_for_line(r"started pyNetConnMon ")
            with open("/proc/%d/cmdline" % monitor.pid, "rb") as cmdline:
                argv = cmdline.read().decode().split("\0")[:-1]
            assert monitor.terminate() == 0
    assert argv == [sys.executable, "-S", "-X", "faulthandler", "-c", pyNetConnMon.LOADER,
                    os.fspath(app), "-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                    "--state-file", os.fspath(tmp_path / "state.json")]


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


def prologue_of(script):
    """The Python code that the shell prologue of `script` runs with `python3 -S -c`."""
    text = script.read_text()
    start = text.index("exec python3 -S -c '\n") + len("exec python3 -S -c '\n")
    return text[start:text.index("' \"$0\" \"$@\"\n", start)]


def test_the_prologue_runs_the_loader_the_program_keeps():
    from harness import PROGRAM
    assert prologue_of(PROGRAM) == pyNetConnMon.LOADER


def test_the_loader_is_clean_for_pyflakes():
    from pyflakes.api import check
    from pyflakes.reporter import Reporter
    import io
    out, err = io.StringIO(), io.StringIO()
    assert check(pyNetConnMon.LOADER, "LOADER", Reporter(out, err)) == 0, out.getvalue()


@pytest.mark.parametrize("module", ["py_compile", "subprocess", "importlib", "os"])
def test_a_module_in_the_current_folder_is_not_run_at_the_start(app, tmp_path, module):
    # root, cron or systemd may start the monitor from a folder others can write (/tmp)
    hostile = tmp_path / "cwd"
    hostile.mkdir()
    marker = tmp_path / "ran"
    (hostile / (module + ".py")).write_text(
        "open(%r, 'w').write('ran')\nraise SystemExit('the planted %s.py')\n"
        % (os.fspath(marker), module))
    result = subprocess.run([os.fspath(app), "--version"], capture_output=True, text=True,
                            timeout=30, cwd=hostile, stdin=subprocess.DEVNULL,
                            env=child_env(shebang_env(TIMESTAMPED_CACHE_ENV)))
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "pyNetConnMon %s\n" % VERSION, "")
    assert not marker.exists()
    with open(cache_of(app), "rb") as cache:
        assert cache.read(16) == timestamp_header(app)


def test_a_damaged_cache_is_compiled_again(app):
    assert start(app, "--version")[0] == 0
    with open(cache_of(app), "r+b") as cache:       # header still valid, the code cut short
        cache.seek(16)
        body = cache.read()
        cache.seek(16)
        cache.write(body[:len(body) // 2])
        cache.truncate()
    assert start(app, "--version") == (0, "pyNetConnMon %s\n" % VERSION, "")
    with open(cache_of(app), "rb") as cache:
        assert cache.read(16) == timestamp_header(app)
        marshal.loads(cache.read())


OLD_PYTHON = "import sys\nsys.version_info = (3, 6, 15, 'final', 0)\n"


@pytest.mark.parametrize("how", ["./pyNetConnMon.py", "python3 pyNetConnMon.py",
                                 "python3 -m pyNetConnMon"])
def test_an_older_python_is_told_what_is_needed_in_one_line(app, tmp_path, how):
    # a stand-in for Python 3.6: a sitecustomize that makes the interpreter say it is 3.6; the
    # program's own start skips `site` (-S), so there `python3` is a script that runs the
    # interpreter without that option
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(OLD_PYTHON)
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "python3").write_text('#!/bin/sh\n[ "$1" = -S ] && shift\nexec %s "$@"\n'
                                    % shlex.quote(sys.executable))
    (folder / "python3").chmod(0o755)
    command = {"./pyNetConnMon.py": [os.fspath(app)],
               "python3 pyNetConnMon.py": [sys.executable, app.name],
               "python3 -m pyNetConnMon": [sys.executable, "-m", "pyNetConnMon"]}[how]
    env = shebang_env({"PYTHONPATH": site})
    env["PATH"] = os.fspath(folder) + os.pathsep + env["PATH"]
    result = subprocess.run([*command, "-a", "127.0.0.1", "--once"], capture_output=True,
                            text=True, timeout=30, cwd=app.parent, stdin=subprocess.DEVNULL,
                            env=child_env(env))
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "pyNetConnMon needs Python 3.9 or newer; this is Python 3.6\n")


def test_the_version_check_comes_before_anything_else_in_the_file():
    # Python compiles the whole file before running any of it: the file must parse as Python
    # 3.6 does, and the check must be its first statement after `import sys`
    import ast
    from harness import PROGRAM
    tree = ast.parse(PROGRAM.read_text(), feature_version=(3, 6))
    first, check = tree.body[1:3]           # after the docstring (the shell prologue)
    assert ast.dump(first) == ast.dump(ast.parse("import sys").body[0])
    assert ast.unparse(check.test) == "sys.version_info < (3, 9)"
    ast.parse(pyNetConnMon.LOADER, feature_version=(3, 6))
    assert pyNetConnMon.LOADER.startswith(
        "import sys\nif sys.version_info < (3, 9):\n    sys.exit(")


OLD_INTERPRETERS = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[5-8].*/bin/python3")))


@pytest.mark.skipif(not OLD_INTERPRETERS, reason="no Python older than 3.9 here")
@pytest.mark.parametrize("python", OLD_INTERPRETERS)
def test_a_real_older_python_is_told_what_is_needed(app, tmp_path, python):
    folder = tmp_path / "bin"
    folder.mkdir()
    os.symlink(python, folder / "python3")
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    expected = (1, "", "pyNetConnMon needs Python 3.9 or newer; this is Python %s\n" % version)
    for command in ([os.fspath(app)], [python, os.fspath(app)]):
        result = subprocess.run([*command, "-a", "127.0.0.1", "--once"], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL,
                                env=child_env({"PATH": "%s:%s" % (folder, os.environ["PATH"]),
                                               "PYENV_VERSION": None}))
        assert (result.returncode, result.stdout, result.stderr) == expected


def test_an_update_that_kept_an_older_file_time_is_compiled_in_the_child(app, tmp_path):
    # `cp -p` of a new version over an old one: the file is older than its cache, which no
    # longer matches it; the loader sees that (as Python would) and has the child compile it
    assert start(app, "--version")[0] == 0
    app.write_text(app.read_text().replace('VERSION = "%s"' % VERSION, 'VERSION = "9.9.9"', 1))
    when = os.stat(cache_of(app)).st_mtime - 5
    os.utime(app, (when, when))
    with listening_socket() as port:
        with MonitorProcess(["-a", "127.0.0.1:%d" % port, "-i", "60", "--no-mail",
                             "--state-file", tmp_path / "state.json"], script=app,
                            by_shebang=True, env=TIMESTAMPED_CACHE_ENV) as monitor:
            monitor.wait_for_line(r"started pyNetConnMon 9\.9\.9 ")
            peak = vmhwm_kib(monitor.pid)
            assert monitor.terminate() == 0
    assert peak < 0.75 * compile_only_peak_kib(app), peak
    with open(cache_of(app), "rb") as cache:
        assert cache.read(16) == timestamp_header(app)
