"""Makes the README's pictures from a real run in the home lab (tests/lab/homelab.py; run as root):

    python3 tests/tools/docs_pictures.py [DOCS_DIR]

The monitor watches an IPv4 and an IPv6 address of the lab's "Internet" every 0.2 s through the
lab's router (statistics every 5 s) while the lab breaks things the ways a home network breaks:
the provider's line (the router's uplink), the router itself, the monitor's own link, one
target, all of IPv6, and then congests the line (slow, not down).
While the last fault lasts, the status page is fetched from inside the monitor's namespace and
shown in headless Chromium (docs/status-page.png); after the stop, the HTML report of the run's
event log is made and shown (docs/report.png), and the top of a report of a made-up year
(docs/report-year.png, from tests/tools/reportlog.py) shows the overview of a long log.
Nothing leaves the lab (see homelab.py).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "lab"), str(HERE.parent)]

from browser import Browser  # noqa: E402
from harness import PROGRAM, wait_for_event  # noqa: E402
from homelab import TARGET_IP, TARGET_IP6, TARGET_PORT, HomeLab  # noqa: E402
from reportlog import make_log  # noqa: E402

STATUS_PORT = 8080


def outage(lab, log, break_it, mend_it, seconds, count):
    """Breaks the connection, waits until the monitor logged the `count`-th down, keeps it broken
    `seconds` in all, mends it and waits for the up."""
    break_it()
    began = time.monotonic()
    wait_for_event(log, "down", timeout=20, count=count)
    time.sleep(max(0.0, seconds - (time.monotonic() - began)))    # the fault's length
    mend_it()
    wait_for_event(log, "up", timeout=20, count=count)


def screenshot(url, path, width=960, height=None):
    with Browser(width=width) as browser:
        page = browser.open(url, height=height)
    if page.problems:
        raise SystemExit("the page had problems: %s" % page.problems)
    path.write_bytes(page.png)
    print("wrote %s (%d bytes)" % (path, len(page.png)))


def main():
    docs = Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent.parent / "docs")
    docs.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pyNetConnMon-docs-"))
    log = work / "events.jsonl"
    lab = HomeLab()
    try:
        lab.start_listener()
        monitor = lab.popen([sys.executable, str(PROGRAM), "-a", "%s:%d" % (TARGET_IP, TARGET_PORT),
                             "-a", "[%s]:%d" % (TARGET_IP6, TARGET_PORT), "-i", "0.2", "-t", "3",
                             "-m", "1", "--stats-interval", "5", "--no-mail",
                             "--log-file", str(log),
                             "--state-file", str(work / "state.json"),
                             "--metrics-port", str(STATUS_PORT)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wait_for_event(log, "gateway_changed", timeout=20)
        time.sleep(20)                                   # a while up
        outage(lab, log, lab.uplink_down, lab.uplink_up, 6, 1)
        time.sleep(15)
        lab.target_vanish(TARGET_IP)                     # one target: the other answers
        time.sleep(8)
        lab.target_back(TARGET_IP)
        time.sleep(15)
        outage(lab, log, lab.router_gone, lab.router_back, 7, 2)
        time.sleep(20)
        outage(lab, log, lab.own_link_down, lab.own_link_up, 4, 3)
        time.sleep(15)
        lab.family_down("ipv6")
        time.sleep(6)
        lab.family_up("ipv6")
        time.sleep(15)
        lab.congestion(12)                               # slow, not down
        lab.congestion_end()
        wait_for_event(log, "slow_end", timeout=30)
        time.sleep(10)
        lab.uplink_down()
        wait_for_event(log, "down", timeout=20, count=4)
        time.sleep(8)
        page = lab.run([sys.executable, "-c", "import sys, urllib.request; sys.stdout.write("
                        "urllib.request.urlopen('http://127.0.0.1:%d/').read().decode())"
                        % STATUS_PORT], capture_output=True, text=True, check=True).stdout
        (work / "status.html").write_text(page, encoding="utf-8")
        lab.uplink_up()
        wait_for_event(log, "up", timeout=30, count=4)
        time.sleep(10)
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(10)
    finally:
        lab.destroy()
    screenshot((work / "status.html").as_uri(), docs / "status-page.png")
    os.replace(log, work / "pynetconnmon.jsonl")          # the name the README uses
    subprocess.run([sys.executable, str(PROGRAM), "--summary", "--log-file", "pynetconnmon.jsonl",
                    "--html", "report.html", "--csv", "report.csv"], check=True, cwd=work)
    screenshot((work / "report.html").as_uri(), docs / "report.png")
    year = work / "year.jsonl"
    year.write_text("".join(json.dumps(event) + "\n" for event in make_log().events),
                    encoding="utf-8")
    subprocess.run([sys.executable, str(PROGRAM), "--summary", "--log-file", "year.jsonl",
                    "--html", "year.html"], check=True, stdout=subprocess.DEVNULL, cwd=work,
                   env=dict(os.environ, TZ="UTC"))
    screenshot((work / "year.html").as_uri(), docs / "report-year.png", height=1500)
    print("the lab's event log: %s" % (work / "pynetconnmon.jsonl"))


if __name__ == "__main__":
    main()
