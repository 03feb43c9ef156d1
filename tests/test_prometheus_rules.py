"""The shipped Prometheus rules, configs and Grafana dashboard (docs/prometheus, docs/grafana),
checked by Debian's promtool and amtool and against what the program really serves.

The unit tests of every rule are promtool's (docs/prometheus/*.test.yml); the lab test
(test_multisite_lab.py) runs it all with the real servers.
"""
import re
import subprocess
import urllib.request

import pytest

from harness import LOOPBACK, Listener, closed_port, start_monitor, wait_until
from prometheus_lab import (ALERTMANAGER_CONFIG, MULTI_SITE_DOC, PROMETHEUS_CONFIG, RULE_TESTS,
                            RULES, dashboard, load, sites, tool, webhook_addresses)

TOOL_TIMEOUT = 60


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT)


def rules():
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules():
    check = run(tool("promtool"), "check", "rules", RULES)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: %d rules found" % len(rules()) in check.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    test = run(tool("promtool"), "test", "rules", *RULE_TESTS)
    assert test.returncode == 0, test.stdout + test.stderr
    assert test.stdout.count("SUCCESS") == len(RULE_TESTS) == 2, test.stdout


def test_every_rule_has_a_unit_test():
    alerts_tested, records_tested = set(), set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            alerts_tested |= {test["alertname"] for test in case.get("alert_rule_test", [])
                              if test["exp_alerts"]}
            records_tested |= {test["expr"] for test in case.get("promql_expr_test", [])}
    assert {rule["alert"] for rule in rules() if "alert" in rule} == alerts_tested
    assert {rule["record"] for rule in rules() if "record" in rule} == records_tested


def test_every_alert_can_be_routed_by_site_and_says_where_and_why():
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
            assert "$labels.site" in rule["annotations"]["summary"], rule["alert"]
            assert "$labels.site" in rule["annotations"]["description"], rule["alert"]
            assert "Cause: " in rule["annotations"]["description"], rule["alert"]
            # `by`/`without` would drop the site label the routes need
            assert not re.search(r"\b(by|without)\s*\(", rule["expr"]), rule["alert"]


def test_promtool_checks_the_prometheus_config_with_its_rules():
    check = run(tool("promtool"), "check", "config", PROMETHEUS_CONFIG)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: %d rules found" % len(rules()) in check.stdout


def test_amtool_checks_the_alertmanager_config():
    check = run(tool("amtool"), "check-config", ALERTMANAGER_CONFIG)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("labels, receiver", [
    (["site=home", "alertname=PyNetConnMonSiteDown"], "home"),
    (["site=parents", "alertname=PyNetConnMonStale"], "parents"),
    (["site=office", "alertname=PyNetConnMonSiteDown"], "everyone"),   # a site without a route
    (["alertname=PyNetConnMonSiteDown"], "everyone"),                  # a monitor without a site
])
def test_alertmanager_routes_each_site_to_its_receiver(labels, receiver):
    routed = run(tool("amtool"), "config", "routes", "test",
                 "--config.file=%s" % ALERTMANAGER_CONFIG, *labels)
    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.strip() == receiver


def test_each_site_of_the_scrape_config_has_a_route_and_a_receiver():
    routed = {route["matchers"][0] for route in load(ALERTMANAGER_CONFIG)["route"]["routes"]}
    assert routed == {'site="%s"' % site for site, _ in sites()}
    assert set(webhook_addresses()) == {"everyone"} | {site for site, _ in sites()}


def test_the_multi_site_doc_prints_the_configs_the_lab_runs():
    doc = MULTI_SITE_DOC.read_text()
    for path in (PROMETHEUS_CONFIG, ALERTMANAGER_CONFIG):
        assert "```yaml\n%s```\n" % path.read_text() in doc, path.name


# -- every metric the rules and the dashboard use is one the program serves ---------------------

def served_metric_names(tmp_path):
    """The metric families a running monitor's /metrics declares (# TYPE), histograms with
    their _bucket, _sum and _count."""
    port = closed_port()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with Listener() as listener, start_monitor(tmp_path, "-a", listener.address, "-i", "0.1",
                                               "--no-mail", "--metrics-port", str(port)):
        def scrape():
            try:
                with opener.open("http://%s:%d/metrics" % (LOOPBACK, port), timeout=2) as answer:
                    text = answer.read().decode()
            except OSError:
                return None
            return text if "\npynetconnmon_last_round_timestamp_seconds " in text else None
        text = wait_until(scrape, 10, "a scrape after the first round", step=0.05)
    names = set()
    for kind, name in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(kind)
        if name == "histogram":
            names |= {kind + "_bucket", kind + "_sum", kind + "_count"}
    return names


def used_metric_names(text):
    """The program's metric names in PromQL `text` (not the recording rules' level:name:ops)."""
    return set(re.findall(r"(?<![:\w])pynetconnmon_\w+(?![:\w])", text))


def used_records(text):
    return set(re.findall(r"\b\w+:pynetconnmon_\w+:\w+\b", text))


def test_the_rules_and_the_dashboard_use_only_metrics_the_program_serves(tmp_path):
    served = served_metric_names(tmp_path)
    assert "pynetconnmon_network_up" in served and "pynetconnmon_gateway_up" in served
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    in_rules = used_metric_names(" ".join(rule["expr"] for rule in rules()))
    exprs = [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]
    assert in_rules - served == set()
    assert used_metric_names(" ".join(exprs)) - served == set()
    # every recording rule is on the dashboard, so the lab checks each in the real Prometheus
    assert used_records(" ".join(exprs)) == recorded


def test_every_dashboard_panel_asks_prometheus_for_its_sites():
    board = dashboard()
    [site] = [var for var in board["templating"]["list"] if var["name"] == "site"]
    assert site["query"] == 'label_values(pynetconnmon_build_info{job="pynetconnmon"}, site)'
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'site=~"$site"' in target["expr"], (panel["title"], target["expr"])
