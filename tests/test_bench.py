"""The benchmark script (tests/tools/bench.py) stays runnable; the benchmark itself is not a timed
test."""
import subprocess
import sys

from harness import REPO

BENCH = REPO / "tests" / "tools" / "bench.py"


def test_bench_help_works_and_names_its_options():
    result = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert (result.returncode, result.stderr) == (0, "")
    for option in ("--quick", "--json", "--only", "--seed", "--cpu-seconds", "--keep"):
        assert option in result.stdout


def test_bench_refuses_an_unknown_section_before_running_anything():
    result = subprocess.run([sys.executable, str(BENCH), "--only", "nothing"], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "unknown section(s) nothing" in result.stderr
    assert result.stdout == ""
