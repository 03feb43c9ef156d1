"""What a fresh clone promises: the submodule pinned, CI running the README's test command."""
import re
import subprocess

from harness import REPO

PYSENDMAIL_COMMIT = "96729e66a3f4398480d651717935ec5c12102903"
FIRST_SCREEN = 25       # lines of README.md a reader sees before scrolling


def readme():
    return (REPO / "README.md").read_text()


def readme_test_command():
    match = re.search(r"## Running the tests\n.*?```\n(.*?)\n```", readme(), re.S)
    assert match, "README.md has no test command under '## Running the tests'"
    return match.group(1).strip()


def ci_commands():
    """The lines of .ci/run that are commands: no blank lines, no comments."""
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command():
    assert readme_test_command() in ci_commands()


def test_ci_exits_with_the_test_commands_status():
    # errexit, and the test command last: its exit status (pytest's 5 for "no tests ran"
    # included) is the script's
    commands = ci_commands()
    assert "set -euo pipefail" in commands
    assert commands[-1] == readme_test_command()


def test_the_test_command_makes_and_uses_a_virtual_environment():
    # a system Python that follows PEP 668 refuses `pip install` outside a venv
    steps = readme_test_command().split(" && ")
    assert steps[0] == "python3 -m venv .venv"
    assert all(step.startswith(".venv/bin/python ") for step in steps[1:]), steps
    assert steps[-1].startswith(".venv/bin/python -m pytest ")


def test_the_first_screen_says_how_to_run_and_how_to_test():
    first_screen = "\n".join(readme().splitlines()[:FIRST_SCREEN])
    assert readme_test_command() in first_screen
    assert re.search(r"^\./pyNetConnMon\.py -a \S+", first_screen, re.M), first_screen


def test_readme_names_the_pinned_pysendmail_commit():
    assert PYSENDMAIL_COMMIT in readme()


def test_pysendmail_is_a_submodule_pinned_at_the_known_commit():
    listing = subprocess.run(["git", "ls-files", "-s", "pySendMail"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert listing[:2] == ["160000", PYSENDMAIL_COMMIT]
    gitmodules = (REPO / ".gitmodules").read_text()
    assert "path = pySendMail" in gitmodules
    assert "url = https://github.com/scaidermern/pySendMail.git" in gitmodules

