"""Both pages as a person sees them: headless Chromium (Debian's `chromium`; .ci/run installs it)
loads the HTML report from its file and the status page from a running monitor, then the tests
read the rendered DOM and the screenshot. Skipped only where chromium is not installed.

Checked: no failed request, no console error, no request beyond the page itself; the figures in
the page are those of the text summary of the same log; every interruption of the log is in the
table; every SVG of the rendered page parses as XML; the screenshot shows the page's colours.
"""
import json
import re
import urllib.request
import xml.etree.ElementTree as ElementTree

import pytest

import pyNetConnMon as pnm
from browser import Browser, chromium, png_colours
from harness import Listener, closed_port, run_program, start_monitor, wait_for_event, wait_until
from reportlog import make_log

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                                "(apt-get install chromium; .ci/run does)")

TEXT_FIGURES = {          # the text summary's line -> the id of the figure in the page
    "Period": "period", "Monitored": "monitored", "Availability": "availability",
    "Downtime": "downtime"}


@pytest.fixture(scope="module")
def browser():
    with Browser() as running:
        yield running


def rgb(colour):
    return bytes.fromhex(colour.lstrip("#"))


def by_id(dom, element_id):
    found = re.search(r'<(\w+) id="%s"[^>]*>(.*?)</\1>' % element_id, dom, re.S)
    assert found, "no element %s" % element_id
    return re.sub(r"<[^>]+>", "", found.group(2)).replace("&amp;", "&")


def text_figures(stdout):
    figures = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(":")
        if name in TEXT_FIGURES:
            figures[TEXT_FIGURES[name]] = value.strip()
        elif name == "Not running":
            figures["not_running"] = value.strip().replace(" (neither up nor down)", "")
        elif name == "Interruptions":
            figures["interruptions"], _, blips = value.strip().rpartition(", ")
            figures["blips"] = blips.replace(" ignored", "")
    return figures


def assert_clean(page, allowed):
    assert page.problems == []
    assert [url for url in page.requests if not url.startswith("data:")] == allowed
    for picture in re.findall(r"<svg\b.*?</svg>", page.dom, re.S):
        ElementTree.fromstring(picture)


def made_report(tmp_path, later_fields):
    made = make_log(days=8, seed=11, stats_every=900.0, later_fields=later_fields)
    log = tmp_path / "events.jsonl"
    log.write_text("".join(json.dumps(event) + "\n" for event in made.events), encoding="utf-8")
    html = tmp_path / "report.html"
    result = run_program("--summary", "--log-file", log, "--html", html, env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    return made, result.stdout, html


@pytest.mark.parametrize("later_fields", [True, False], ids=["with causes and stats", "old log"])
def test_the_report_in_a_browser(browser, tmp_path, later_fields):
    made, text, html = made_report(tmp_path, later_fields)
    page = browser.open(html.as_uri())
    assert_clean(page, [html.as_uri()])
    figures = text_figures(text)
    assert set(figures) == {"period", "monitored", "not_running", "availability",
                            "interruptions", "blips", "downtime"}
    assert {key: by_id(page.dom, key) for key in figures} == figures
    causes = re.findall(r"^(?:By cause:)? +(local|lan|provider|dns|unknown|not recorded) +(.*)$",
                        text, re.M)
    assert bool(causes) is later_fields
    for cause, words in causes:
        assert by_id(page.dom, "cause-" + cause.replace(" ", "-")) == words
    if later_fields:
        partial = re.search(r"^Partial: +(.*?): \d+ of one", text, re.M).group(1)
        assert by_id(page.dom, "partial") == partial
    for name in ("Slow", "Connect time"):
        line = re.search(r"^%s: +(.*)$" % name, text, re.M)
        assert bool(line) is later_fields
        if line:
            assert by_id(page.dom, name.lower().replace(" ", "-")) == line.group(1)
    per_target = re.findall(r"^(?:Per target:|Per family:)? +([\d.]+) %  (\S+)$", text, re.M)
    shown = re.findall(r"<tr><td>([^<]*)</td><td class=\"n\">([\d.]+) %</td>", page.dom)
    assert [(label, value) for value, label in per_target] == shown
    assert len(shown) == 5              # three targets, IPv4 and IPv6
    table = page.dom.split('id="interruptions-table"')[1]
    shown = re.findall(r'<tr class="interruption"><td class="n">\d+</td><td class="t">([^<]*)'
                       r'</td><td class="t">([^<]*)</td>', table)
    # TZ=UTC in the program, and iso() in UTC here: the same local times
    assert shown == [(_utc(start), _utc(end)) for start, end in made.interruptions]
    assert ("Connect time per hour" in page.dom) is later_fields
    wanted = {rgb(pnm.REPORT_COLOURS["up"]), rgb(pnm.REPORT_COLOURS["a99"])} | {
        rgb(pnm.CAUSE_COLOURS["unknown"])}
    colours = png_colours(page.png, wanted=wanted)
    assert wanted <= colours and len(colours) > 20


def _utc(moment):
    from datetime import datetime, timezone
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def test_the_report_prints_on_a4(browser, tmp_path):
    _, _, html = made_report(tmp_path, True)
    page = browser.open(html.as_uri(), screenshot=False, pdf=True)
    assert page.pdf.startswith(b"%PDF-")
    sizes = set(re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", page.pdf))
    assert sizes and all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1
                         for w, h in sizes), sizes


def test_the_status_page_of_a_running_monitor(browser, tmp_path):
    port = closed_port()
    url = "http://127.0.0.1:%d/" % port

    def page_text():
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.read().decode("utf-8")

    with Listener() as target, start_monitor(tmp_path, "-a", target.address, "-i", "0.05",
                                             "-m", "0.2", "--no-mail", "--metrics-port",
                                             str(port)) as monitor:
        monitor.wait_for_line("serving metrics")
        wait_until(lambda: ">UP<" in page_text(), 10, "the page says UP")
        page = browser.open(url)
        assert_clean(page, [url])
        assert by_id(page.dom, "state") == "UP"
        assert png_colours(page.png, wanted={rgb(pnm.STATUS_BADGES["UP"])}) >= {
            rgb(pnm.STATUS_BADGES["UP"])}
        target.stop()
        wait_until(lambda: ">DOWN<" in page_text(), 10, "the page says DOWN")
        page = browser.open(url)
        assert_clean(page, [url])
        assert by_id(page.dom, "state") == "DOWN"
        assert by_id(page.dom, "since").startswith("Down since ")
        assert '<a href="/metrics">' in page.dom
        down = rgb(pnm.CAUSE_COLOURS["unknown"])
        assert down in png_colours(page.png, wanted={down})
        assert monitor.terminate() == 0


def test_the_status_page_in_the_home_lab_says_where_it_broke(homelab, tmp_path):
    """Chromium inside the lab's monitor namespace, as a person at home would open the page
    while the provider's line is down."""
    from homelab import TARGET_IP, TARGET_PORT
    from lab_monitor import start_monitor as start_in_lab
    homelab.start_listener()
    url = "http://127.0.0.1:9469/"
    with start_in_lab(homelab, tmp_path, "-a", "%s:%d" % (TARGET_IP, TARGET_PORT), "-i", "0.2",
                      "-t", "0.5", "-m", "1", "--no-mail", "--metrics-port", "9469") as monitor:
        wait_for_event(monitor.log, "gateway_changed", timeout=15)
        homelab.uplink_down()
        try:
            wait_for_event(monitor.log, "down", timeout=10)
            with Browser(prefix=homelab.prefix) as browser:
                page = browser.open(url)
        finally:
            homelab.uplink_up()
        assert_clean(page, [url])
        assert by_id(page.dom, "state") == "DOWN"
        assert "Cause: provider (%s)." % pnm.CAUSE_WORDS["provider"] in by_id(page.dom, "since")
        provider = rgb(pnm.CAUSE_COLOURS["provider"])
        assert provider in png_colours(page.png, wanted={provider})
        assert monitor.terminate() == 0
