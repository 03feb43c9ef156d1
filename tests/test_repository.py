"""What a fresh clone promises: the submodule pinned, CI running the README's test command."""
import re
import subprocess

from harness import REPO

PYSENDMAIL_COMMIT = "96729e66a3f4398480d651717935ec5c12102903"


def readme_test_command():
    text = (REPO / "README.md").read_text()
    match = re.search(r"## Running the tests\n.*?```\n(.*?)\n```", text, re.S)
    assert match, "README.md has no test command under '## Running the tests'"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert readme_test_command() in ci_lines


def test_pysendmail_is_a_submodule_pinned_at_the_known_commit():
    listing = subprocess.run(["git", "ls-files", "-s", "pySendMail"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert listing[:2] == ["160000", PYSENDMAIL_COMMIT]
    gitmodules = (REPO / ".gitmodules").read_text()
    assert "path = pySendMail" in gitmodules
    assert "url = https://github.com/scaidermern/pySendMail.git" in gitmodules
