"""The shipped Prometheus, Alertmanager and Grafana files of docs/, and the lab's copies of them.

The lab runs the files the docs print (docs/multi-site.md shows docs/prometheus/*.yml as they
are), changed only where a lab must differ from a home, each change named here:

* prometheus.yml: the global scrape and evaluation intervals become LAB_INTERVAL; each scrape
  target becomes the lab monitor of its site (its `site` label and everything else stay); the
  rule file is the lab's copy of the rules.
* pynetconnmon.rules.yml: every `for:` becomes LAB_FOR and every group `interval:` LAB_INTERVAL.
  The expressions, labels and annotations are the shipped ones. (A blip still has to be ignored
  at home, so the shipped `for:` stays minutes long; its effect is proved by promtool's unit
  tests, the lab proves the wiring.)
* alertmanager.yml: group_wait, group_interval and repeat_interval become LAB_INTERVAL and
  LAB_REPEAT. The routes and receivers are the shipped ones: the lab's webhook receiver listens
  where the shipped webhook URLs point, inside the lab's watch post.

The Grafana dashboard's queries are run as Grafana would send them for one site: `$site` is the
site's name and `$__rate_interval` LAB_RATE_INTERVAL.
"""
import json
import os
import re
import shutil
import urllib.parse

import pytest
import yaml

from harness import REPO

DOCS = REPO / "docs"
PROMETHEUS_DOCS = DOCS / "prometheus"
RULES = PROMETHEUS_DOCS / "pynetconnmon.rules.yml"
RULE_TESTS = sorted(PROMETHEUS_DOCS.glob("*.test.yml"))
PROMETHEUS_CONFIG = PROMETHEUS_DOCS / "prometheus.yml"
ALERTMANAGER_CONFIG = PROMETHEUS_DOCS / "alertmanager.yml"
DASHBOARD = DOCS / "grafana" / "pynetconnmon.json"
MULTI_SITE_DOC = DOCS / "multi-site.md"

LAB_INTERVAL = "1s"
LAB_FOR = "2s"
LAB_REPEAT = "1h"
LAB_RATE_INTERVAL = "10s"

# Debian's packages: prometheus (prometheus, promtool), prometheus-alertmanager
# (prometheus-alertmanager, amtool). .ci/run installs them.
TOOLS = {"prometheus": "prometheus", "promtool": "prometheus",
         "prometheus-alertmanager": "prometheus-alertmanager", "amtool": "prometheus-alertmanager"}


def tool(name):
    """The path of Debian's `name`. Missing: the test fails in CI (which installs it), and
    skips elsewhere, naming the package."""
    path = shutil.which(name)
    if path is None:
        message = "%s is not installed (Debian package %s)" % (name, TOOLS[name])
        if os.environ.get("CI"):
            pytest.fail(message + ": .ci/run should have installed it")
        pytest.skip(message)
    return path


def load(path):
    with open(path) as stream:
        return yaml.safe_load(stream)


def pynetconnmon_job(config):
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "pynetconnmon"]
    return job


def sites(config=None):
    """The sites of the shipped prometheus.yml, in order: [(site, scrape target)]."""
    job = pynetconnmon_job(config or load(PROMETHEUS_CONFIG))
    return [(group["labels"]["site"], target) for group in job["static_configs"]
            for target in group["targets"]]


def lab_rules():
    rules = load(RULES)
    for group in rules["groups"]:
        if "interval" in group:
            group["interval"] = LAB_INTERVAL
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = LAB_FOR
    return rules


def lab_prometheus_config(rules_path, targets):
    """The shipped prometheus.yml for the lab; `targets` maps a site to its lab monitor."""
    config = load(PROMETHEUS_CONFIG)
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        config["global"][key] = LAB_INTERVAL
    config["rule_files"] = [os.fspath(rules_path)]
    for group in pynetconnmon_job(config)["static_configs"]:
        assert len(group["targets"]) == 1, "one monitor per site in the lab"
        group["targets"] = [targets[group["labels"]["site"]]]
    return config


def lab_alertmanager_config():
    config = load(ALERTMANAGER_CONFIG)
    config["route"].update(group_wait=LAB_INTERVAL, group_interval=LAB_INTERVAL,
                           repeat_interval=LAB_REPEAT)
    return config


def webhook_addresses(config=None):
    """{receiver: (host, port, path)} of the shipped alertmanager.yml's webhooks."""
    config = config or load(ALERTMANAGER_CONFIG)
    found = {}
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            url = urllib.parse.urlsplit(hook["url"])
            found[receiver["name"]] = (url.hostname, url.port, url.path)
    return found


def write_yaml(path, data):
    with open(path, "w") as stream:
        yaml.safe_dump(data, stream, sort_keys=False)
    return path


def dashboard():
    with open(DASHBOARD) as stream:
        return json.load(stream)


def dashboard_sites_query():
    """The PromQL that lists the sites as the dashboard's `site` menu does (Grafana's
    label_values(SELECTOR, site) asks for the site labels of the series SELECTOR finds)."""
    [variable] = [var for var in dashboard()["templating"]["list"] if var["name"] == "site"]
    match = re.fullmatch(r"label_values\((.+), site\)", variable["query"])
    return "count by (site) (%s)" % match.group(1)


def dashboard_queries(site):
    """[(panel title, PromQL)] of every panel of the Grafana dashboard, as sent for `site`."""
    queries = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", LAB_RATE_INTERVAL)
            queries.append((panel["title"], expr.replace("$site", site)))
    return queries
