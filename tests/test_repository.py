"""What a fresh clone promises: the submodule pinned, CI running the README's test command, and a
README whose options are the program's."""
import re
import subprocess

import pyNetConnMon
from harness import REPO

PYSENDMAIL_COMMIT = "96729e66a3f4398480d651717935ec5c12102903"
FIRST_SCREEN = 25       # lines of README.md a reader sees before scrolling


def readme():
    return (REPO / "README.md").read_text()


def readme_test_command():
    match = re.search(r"## Running the tests\n.*?```(?:sh)?\n(.*?)\n```", readme(), re.S)
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
    assert pyNetConnMon.PYSENDMAIL_COMMIT == PYSENDMAIL_COMMIT     # its hint for a missing one


def test_pysendmail_is_a_submodule_pinned_at_the_known_commit():
    listing = subprocess.run(["git", "ls-files", "-s", "pySendMail"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert listing[:2] == ["160000", PYSENDMAIL_COMMIT]
    gitmodules = (REPO / ".gitmodules").read_text()
    assert "path = pySendMail" in gitmodules
    assert "url = https://github.com/scaidermern/pySendMail.git" in gitmodules



# what the design says the repository holds, at its top level; anything else got in by mistake
TOP_LEVEL = {".ci", ".gitignore", ".gitmodules", "LICENSE", "README.md", "docs", "pySendMail",
             "pyNetConnMon.py", "requirements-dev.txt", "tests"}


def test_the_repository_holds_only_what_the_design_lists():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split("\0")
    assert {path.split("/")[0] for path in tracked if path} - TOP_LEVEL == set()

# -- the options table is --help's -----------------------------------------------------------------
def readme_option_rows():
    """{option strings: (metavars, default column)} from the table under '## Options'."""
    section = readme().split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        # a cell's own bar is written \| (GitHub's tables)
        cells = [cell.strip().replace("\0", "|")
                 for cell in line.replace("\\|", "\0").strip("|").split("|")]
        if not line.startswith("| `-"):
            continue
        chunks = re.findall(r"`([^`]+)`", cells[0])
        names = frozenset(chunk.split()[0] for chunk in chunks)
        metavars = {chunk.split(None, 1)[1] for chunk in chunks if " " in chunk}
        rows[names] = (metavars, cells[1].replace("`", ""))
    return rows


def help_options():
    """{option strings: (metavar or None, the '(default: ...)' of its help or '')}."""
    options = {}
    for action in pyNetConnMon.build_parser()._actions:
        takes_value = action.nargs != 0
        metavar = (action.metavar or action.dest.upper()) if takes_value else None
        default = re.search(r"\(default: (.*)\)$", action.help or "", re.S)
        options[frozenset(action.option_strings)] = (
            metavar, " ".join(default.group(1).split()) if default else "")
    return options


def test_the_readme_options_table_lists_exactly_the_options_of_help():
    readme_rows, help_rows = set(readme_option_rows()), set(help_options())
    only_readme = sorted(map(sorted, readme_rows - help_rows))
    only_help = sorted(map(sorted, help_rows - readme_rows))
    assert (only_readme, only_help) == ([], []), "README only: %s; --help only: %s" % (
        only_readme, only_help)


def test_each_option_in_the_readme_has_the_metavar_and_default_of_help():
    rows = readme_option_rows()
    for names, (metavar, default) in help_options().items():
        if names not in rows:
            continue        # the test above names it
        readme_metavars, readme_default = rows[names]
        assert readme_metavars == ({metavar} if metavar else set()), sorted(names)
        assert readme_default == default, sorted(names)
