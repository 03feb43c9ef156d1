"""The README and docs/: short enough for a first day, every link resolves, the samples name this
version, and every command they print is run here exactly as printed or marked as an example.
The recipes that need root (msmtp against a relay, logrotate, the systemd unit) are in
test_docs_lab.py."""
import datetime
import gzip
import json
import os
import re
import stat
import subprocess
import sys

import pytest

import docs_text
from docs_text import REPO, command
from harness import child_env, shebang_env
import pyNetConnMon
from pyNetConnMon import VERSION
from reportlog import make_log
from smtp_lab import copy_pysendmail, make_program_dir

README_MAX_LINES = 400

# Every line of a command block that is not marked `# example:`, and the test that runs it as
# printed. The test command's lines are the suite itself: .ci/run runs the first exactly
# (test_repository.py), and the other two are the same with a selection.
RUN_AS_PRINTED = {
    "./pyNetConnMon.py --version": "test_version_command",
    "./pyNetConnMon.py --discard-pending": "test_discard_pending_command",
    "./pyNetConnMon.py -a 192.0.2.1 -m 1 --no-mail":
        "test_docs_lab.py::test_the_trial_interruption_command",
    "./pyNetConnMon.py --test-mail": "test_test_mail_command",
    "python3 -I -m py_compile pyNetConnMon.py": "test_py_compile_command",
    "cp pySendMail/sendMailConfig.json.example pySendMail/sendMailConfig.json":
        "test_mail_config_commands",
    "chmod 600 pySendMail/sendMailConfig.json": "test_mail_config_commands",
    "./pyNetConnMon.py --summary --log-file pynetconnmon.jsonl": "test_summary_commands",
    "./pyNetConnMon.py --summary --log-file pynetconnmon.jsonl --html report.html --csv report.csv":
        "test_summary_commands",
    "mkdir -p ~/pynetconnmon-log": "test_a_year_of_rotated_logs_in_one_summary",
    "./pyNetConnMon.py --summary --log-file ~/pynetconnmon-log/events.jsonl":
        "test_a_year_of_rotated_logs_in_one_summary",
    "pkill -HUP -u pi -f 'python[0-9.]* .*pyNetConnMon' || true":
        "test_docs_lab.py::test_logrotate_and_pkill_reach_only_the_users_monitors",
    "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements-dev.txt && "
    ".venv/bin/python -m pytest tests -n 2": "test_repository.py (.ci/run runs it)",
    '.venv/bin/python -m pytest tests -m "not lab"': "the suite, a selection",
    '.venv/bin/python -m pytest tests -m "not lab" -n 2': "the suite, a selection",
}
MSMTP_RECIPE = "msmtp --host="     # test_docs_lab.py runs the line that holds it


def run_shell(line, cwd, env=None, timeout=60):
    """`line` as a user types it into sh, in `cwd`, pyNetConnMon started by its shebang."""
    return subprocess.run(["sh", "-c", line], cwd=cwd, env=child_env(shebang_env(env)),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# -- the shape of the docs -----------------------------------------------------------------------

def test_the_readme_fits_a_first_day():
    lines = docs_text.text(REPO / "README.md").splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)


def test_the_readme_has_the_plain_relay_section():
    assert "\n## A mail server without TLS or login\n" in docs_text.text(REPO / "README.md")


def test_every_relative_link_resolves_to_a_file_and_its_heading():
    broken = []
    for path in docs_text.doc_files() + [REPO / "tests" / "tools" / "BENCHMARK.md"]:
        for target in docs_text.links(path):
            if re.match(r"[a-z]+:", target):
                continue                          # https:, mailto:
            name, _, fragment = target.partition("#")
            linked = (path.parent / name).resolve() if name else path
            if not linked.exists():
                broken.append("%s: %s (no such file)" % (path.name, target))
            elif fragment and (linked.suffix != ".md" or fragment not in docs_text.anchors(linked)):
                broken.append("%s: %s (no such heading)" % (path.name, target))
    assert broken == []


def test_the_link_checker_knows_githubs_anchors():
    assert docs_text.anchor("HTML report and CSV (`--html`, `--csv`)") == \
        "html-report-and-csv---html---csv"
    assert docs_text.anchor("Why `./pyNetConnMon.py`") == "why-pynetconnmonpy"
    assert docs_text.anchor("Reports, pages and metrics: a short tour") == \
        "reports-pages-and-metrics-a-short-tour"


def test_every_fenced_block_says_what_it_holds():
    bare = ["%s: %s" % (path.name, body.splitlines()[0]) for path in docs_text.doc_files()
            for info, body in docs_text.blocks(path) if not info]
    assert bare == []


def test_every_printed_command_is_run_as_printed_or_marked_as_an_example():
    printed = docs_text.exact_commands()
    msmtp = command(MSMTP_RECIPE)
    unaccounted = sorted(set(printed) - set(RUN_AS_PRINTED) - {msmtp})
    gone = sorted(set(RUN_AS_PRINTED) - set(printed))
    assert (unaccounted, gone) == ([], [])


def test_the_first_screen_uses_targets_a_router_does_not_intercept():
    first = docs_text.text(REPO / "README.md").split("\n## ", 1)[0]
    run = re.search(r"^\./pyNetConnMon\.py (-a .*)$", first, re.M).group(1)
    assert run == "-a 1.1.1.1:443 -a 9.9.9.9:443"
    assert "port 53" in first and "hide every outage" in first


# -- one version everywhere ----------------------------------------------------------------------

def test_the_samples_and_the_changelog_name_this_version():
    named = []
    for path in docs_text.doc_files():
        body = docs_text.text(path)
        named += re.findall(r"started pyNetConnMon (\S+) ", body)
        named += re.findall(r'pynetconnmon_build_info\{version="([^"]+)"\}', body)
        named += re.findall(r"says `pyNetConnMon (\S+)`", body)
    assert len(named) >= 4 and set(named) == {VERSION}, named
    changelog = docs_text.text(REPO / "docs" / "CHANGELOG.md")
    assert re.findall(r"^## (\S+)", changelog, re.M)[:2] == [VERSION, "2.0.0"]


def test_the_version_is_a_minor_release_after_2_0_0():
    assert VERSION == "2.1.0"


# -- the commands, as printed --------------------------------------------------------------------

@pytest.fixture
def folder(app):
    """A folder with the program in it, as a user who cloned has it."""
    return app.parent


def test_version_command(folder):
    result = run_shell(command("--version"), folder)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "pyNetConnMon %s\n" % VERSION, "")


def test_discard_pending_command(folder, tmp_path):
    result = run_shell(command("--discard-pending"), folder,
                       env={"XDG_STATE_HOME": tmp_path / "state"})
    assert result.returncode == 0, result.stderr
    assert "0 interruptions" in result.stdout, result.stdout


def test_test_mail_command(tmp_path, smtp_server):
    # the owner's real configuration is never read: the folder has a copy of pySendMail and a
    # config of its own, for the test's SMTP server (STARTTLS and a login, as pySendMail needs)
    app = make_program_dir(tmp_path / "app", smtp_port=smtp_server.port)
    app.script.chmod(0o755)
    result = run_shell(command("./pyNetConnMon.py --test-mail"), app.root)
    assert result.returncode == 0, result.stdout + result.stderr
    (mail,) = smtp_server.wait_for_messages(1)
    assert mail["Subject"].endswith(": test report")


def test_py_compile_command(folder):
    result = run_shell(command("python3 -I -m py_compile pyNetConnMon.py"), folder)
    assert result.returncode == 0, result.stderr
    assert [path.name for path in (folder / "__pycache__").iterdir()] == [
        "pyNetConnMon.%s.pyc" % sys.implementation.cache_tag]


def test_mail_config_commands(folder):
    # a copy of pySendMail beside the program: the owner's real configuration is never touched
    example = copy_pysendmail(folder / "pySendMail") / "sendMailConfig.json.example"
    if not example.exists():
        example.write_text('{"mail": {}}\n')
    for line in (command("cp pySendMail/"), command("chmod 600 pySendMail/")):
        result = run_shell(line, folder)
        assert result.returncode == 0, result.stderr
    config = folder / "pySendMail" / "sendMailConfig.json"
    assert config.read_bytes() == example.read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_summary_commands(folder):
    make_log(days=7, seed=3).write(folder / "pynetconnmon.jsonl")
    text = run_shell(command("./pyNetConnMon.py --summary --log-file pynetconnmon.jsonl"), folder,
                     env={"TZ": "UTC"})
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("pyNetConnMon summary of pynetconnmon.jsonl\n"), text.stdout
    assert re.search(r"^Availability: +\d+\.\d{3} %$", text.stdout, re.M), text.stdout
    both = run_shell(command("--html report.html --csv report.csv"), folder, env={"TZ": "UTC"})
    assert both.returncode == 0, both.stderr
    assert both.stdout == text.stdout
    assert (folder / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (folder / "report.csv").read_text(encoding="utf-8-sig").startswith(
        "start,end,duration_s,kind,cause,reason,targets")


def test_a_year_of_rotated_logs_in_one_summary(folder, tmp_path):
    """The README's summary of what logrotate kept: the log and its rotated files (.12.gz ...
    .2.gz, .1 uncompressed by delaycompress, then the current one) give the summary of the whole
    log."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": home, "TZ": "UTC"}
    assert run_shell(command("mkdir -p ~/pynetconnmon-log"), folder, env).returncode == 0
    logs = home / "pynetconnmon-log"
    lines = make_log(days=14, seed=5).events
    pieces = 13
    size = -(-len(lines) // pieces)
    for index in range(pieces):                   # 12 is the oldest, 0 the current file
        chunk = "".join(json.dumps(event) + "\n"
                        for event in lines[(pieces - 1 - index) * size:(pieces - index) * size])
        if index == 0:
            (logs / "events.jsonl").write_text(chunk)
        elif index == 1:
            (logs / "events.jsonl.1").write_text(chunk)
        else:
            with gzip.open(logs / ("events.jsonl.%d.gz" % index), "wt") as stream:
                stream.write(chunk)
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(json.dumps(event) + "\n" for event in lines))
    summary = run_shell(command("--log-file ~/pynetconnmon-log/events.jsonl"), folder, env)
    assert summary.returncode == 0, summary.stderr
    assert "and 12 rotated files" in summary.stdout.splitlines()[0]
    alone = run_shell("./pyNetConnMon.py --summary --log-file %s" % whole, folder, env)
    assert summary.stdout.splitlines()[1:] == alone.stdout.splitlines()[1:]
    assert "Period:" in summary.stdout


def test_the_tests_that_run_the_printed_commands_exist():
    here = {name for name in globals() if name.startswith("test_")}
    lab = (REPO / "tests" / "test_docs_lab.py").read_text()
    for where in set(RUN_AS_PRINTED.values()):
        if where.startswith("test_docs_lab.py::"):
            assert "def %s(" % where.split("::")[1] in lab, where
        elif where.startswith("test_"):
            assert where in here or where.startswith("test_repository"), where
    assert os.path.exists(REPO / "tests" / "test_repository.py")


def test_the_sample_report_is_what_the_monitor_writes(utc):
    # the sample had lost two parts the report has had for a while: Times and the reasons
    def at(clock):
        return datetime.datetime.fromisoformat("2026-11-24 %s+00:00" % clock).timestamp()
    targets = ["198.18.1.2:5353", "[2001:db8:0:2::2]:5353"]
    pending = pyNetConnMon.PendingReports(pyNetConnMon.ReportBackoff(60, 3600, 300))
    pending.add(at("09:32:10"), at("09:32:22"), 12.0, "unreachable", targets, cause="provider")
    pending.add(at("09:32:52"), at("09:32:59"), 7.0, "unreachable", targets, cause="local")
    pending.add(at("09:32:27"), at("09:32:47"), 20.0, "timeout", targets, kind="partial",
                part=pyNetConnMon.partial_what(("family", "ipv6")))
    subject, body = pyNetConnMon.format_report(pending.items + pending.partials, "vm")
    samples = [text for info, text in docs_text.blocks(REPO / "docs" / "reports.md")
               if text.startswith("Subject: ")]
    assert samples == ["Subject: %s\n\n%s" % (subject, body)]
