"""The one file stays what the design says: Python 3.9+, standard library only, runnable."""
import ast
import os
import subprocess
import sys

import pytest

from harness import PROGRAM

ALLOWED_OUTSIDE_STDLIB = {"pySendMail"}    # the submodule, loaded by path at delivery time


def test_needs_no_python_newer_than_3_9():
    # pip puts the vermin command beside the interpreter that runs the tests
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    result = subprocess.run([vermin, "-t=3.9-", "--no-tips", "--violations",
                             "--eval-annotations", str(PROGRAM)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is 3.10+")
def test_imports_only_the_standard_library():
    tree = ast.parse(PROGRAM.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - ALLOWED_OUTSIDE_STDLIB
    assert not outside


def test_is_an_executable_script_that_does_nothing_on_import():
    # the shell starts Python on the file (test_launch.py); to Python, its first lines are a string
    assert PROGRAM.read_text().startswith("#!/bin/sh\n")
    assert os.access(PROGRAM, os.X_OK)
    result = subprocess.run([sys.executable, "-c", "import pyNetConnMon"], cwd=PROGRAM.parent,
                            capture_output=True, text=True, timeout=10)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
