"""Lint of the program and the tests: pyflakes finds nothing, and no line is longer than
LINE_LIMIT characters."""
import re
import subprocess
import sys

from harness import REPO

LINE_LIMIT = 100


def python_files():
    return [REPO / "pyNetConnMon.py"] + sorted((REPO / "tests").rglob("*.py"))


def test_pyflakes_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "pyflakes", *map(str, python_files())],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_no_line_is_longer_than_the_limit():
    long_lines = ["%s:%d: %d characters" % (path.relative_to(REPO), number, len(line))
                  for path in python_files()
                  for number, line in enumerate(
                      path.read_text(encoding="utf-8").splitlines(), 1)
                  if len(line) > LINE_LIMIT]
    assert long_lines == []


def test_no_test_module_imports_another():
    # what tests share lives in helper modules (conftest, harness, fakes, eventlogs, lab/, tools/)
    importing = [path.name for path in (REPO / "tests").rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+(tests\.)?test_\w+", path.read_text(
                     encoding="utf-8"), re.M)]
    assert importing == []
