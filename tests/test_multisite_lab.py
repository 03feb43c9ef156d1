"""Several homes, one view, with the real servers: a home lab per site of docs/prometheus/
prometheus.yml, pyNetConnMon in each, and one Prometheus (Debian's) scraping both with their
`site` labels and the shipped rules, one Alertmanager (Debian's) routing by site to a webhook
receiver the test runs. All of it in lab namespaces (tests/lab/sitelab.py): the servers listen on
the watch post's loopback and the monitors' lab links, nothing else.

The lab runs the docs' files with shorter times (tests/lab/prometheus_lab.py names each change). A
fault at one site must fire that site's alert through Alertmanager to that site's receiver, and
resolve after; no other site may alert meanwhile; every query of the Grafana dashboard must return
data for every site; and a stopped monitor must fire the stale alert of its own site. And the
watch post reaches each monitor and nothing beyond it.
"""
import errno
import json
import socket
import subprocess
import time

import pytest

from harness import wait_until
from homelab import ROUTER_IP, TARGET_IP, TARGET_PORT, HomeLab, homelab_support
from lab_monitor import start_monitor
from prometheus_lab import (dashboard_queries, dashboard_sites_query, lab_alertmanager_config,
                            lab_prometheus_config, lab_rules, sites, tool, webhook_addresses,
                            write_yaml)
from sitelab import WatchPost, sweep_stale_posts

METRICS_PORT = 9469
PROMETHEUS = "127.0.0.1:9090"           # in the watch post
ALERTMANAGER = "127.0.0.1:9093"         # in the watch post: where the shipped config sends alerts
MONITOR_ARGS = ("-a", "%s:%d" % (TARGET_IP, TARGET_PORT), "-i", "0.5", "-t", "1.5",
                "--slow", "1000", "-m", "1", "--notify-command", "true")
START_TIMEOUT = 20.0    # seconds for a server to be ready, and for both sites' first scrapes
ALERT_TIMEOUT = 20.0    # seconds for an alert (or its end) to reach the receiver


@pytest.fixture
def multisite():
    """The docs' sites, each a HomeLab, and a WatchPost joined to each; all destroyed after."""
    ok, reason = homelab_support()
    if not ok:
        pytest.skip(reason)
    for name in ("promtool", "prometheus", "prometheus-alertmanager"):
        tool(name)
    sweep_stale_posts()
    labs, post = {}, None
    try:
        post = WatchPost()
        for site, _ in sites():
            labs[site] = HomeLab()
            labs[site].metrics_address = post.join(labs[site])
        yield post, labs
    finally:
        if post is not None:
            post.destroy()
        for lab in labs.values():
            lab.destroy()


def start_server(post, argv, ready_url, log_path):
    """A server in the post, its output in log_path; returns once `ready_url` answers 200."""
    log = open(log_path, "w")
    proc = post.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()

    def ready():
        if proc.poll() is not None:
            raise AssertionError("%s exited %s:\n%s" % (
                argv[0], proc.returncode, log_path.read_text()[-3000:]))
        return post.get(ready_url)[0] == 200
    try:
        wait_until(ready, START_TIMEOUT, "%s ready" % argv[0], step=0.1)
    except AssertionError as error:
        raise AssertionError("%s\n%s" % (error, log_path.read_text()[-3000:])) from None
    return proc


def query(post, expr):
    """The result vector of an instant query to the lab's Prometheus."""
    status, body = post.get("http://%s/api/v1/query" % PROMETHEUS, {"query": expr})
    assert status == 200, (expr, status, body[:500])
    return json.loads(body)["data"]["result"]


def by_site(post, expr):
    return {sample["metric"].get("site"): float(sample["value"][1])
            for sample in query(post, expr)}


def test_a_fault_alerts_its_own_site_only_and_a_stopped_monitor_goes_stale(multisite, tmp_path):
    post, labs = multisite
    promtool, prometheus = tool("promtool"), tool("prometheus")
    alertmanager = tool("prometheus-alertmanager")
    home, parents = list(labs)              # the docs' two sites, in their order
    started = time.monotonic()

    monitors = {}
    for site, lab in labs.items():
        lab.start_listener()
        (tmp_path / site).mkdir()
        monitors[site] = start_monitor(lab, tmp_path / site, *MONITOR_ARGS, "--metrics-port",
                                       str(METRICS_PORT), "--metrics-address",
                                       lab.metrics_address)

    # the receiver listens where the shipped webhooks point, one path per receiver
    [(host, port)] = {(host, port) for host, port, _ in webhook_addresses().values()}
    receiver = post.webhook_receiver(host, port)
    paths = {name: path for name, (_, _, path) in webhook_addresses().items()}

    rules = write_yaml(tmp_path / "pynetconnmon.rules.yml", lab_rules())
    config = write_yaml(tmp_path / "prometheus.yml", lab_prometheus_config(
        rules, {site: "%s:%d" % (lab.metrics_address, METRICS_PORT)
                for site, lab in labs.items()}))
    am_config = write_yaml(tmp_path / "alertmanager.yml", lab_alertmanager_config())
    check = subprocess.run([promtool, "check", "config", config], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    try:
        start_server(post, [alertmanager, "--config.file=%s" % am_config,
                            "--storage.path=%s" % (tmp_path / "alertmanager"),
                            "--web.listen-address=%s" % ALERTMANAGER,
                            "--web.external-url=http://%s/" % ALERTMANAGER,
                            "--cluster.listen-address="],
                     "http://%s/-/ready" % ALERTMANAGER, tmp_path / "alertmanager.log")
        start_server(post, [prometheus, "--config.file=%s" % config,
                            "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                            "--web.listen-address=%s" % PROMETHEUS,
                            "--web.external-url=http://%s/" % PROMETHEUS],
                     "http://%s/-/ready" % PROMETHEUS, tmp_path / "prometheus.log")
        wait_until(lambda: by_site(post, 'pynetconnmon_network_up{job="pynetconnmon"}')
                   == {home: 1.0, parents: 1.0}, START_TIMEOUT,
                   "both sites scraped and up")
        print("servers ready, both sites up: %.1f s" % (time.monotonic() - started))

        # a fault at home: its line beyond the router goes down, the router still answers
        labs[home].uplink_down()
        fault = time.monotonic()
        path, status, alert = receiver.wait_for_alert(
            lambda path, alert: alert["status"] == "firing", ALERT_TIMEOUT, "an alert firing")
        print("firing at the receiver %.1f s after the fault" % (time.monotonic() - fault))
        assert (path, alert["labels"]["alertname"], alert["labels"]["site"]) == (
            paths[home], "PyNetConnMonSiteDown", home)
        assert alert["annotations"]["summary"] == "%s: the connection is down" % home
        assert "at site %s " % home in alert["annotations"]["description"]
        assert "Cause: beyond the router" in alert["annotations"]["description"]

        labs[home].uplink_up()
        back = time.monotonic()
        receiver.wait_for_alert(
            lambda path, alert: alert["status"] == "resolved"
            and alert["labels"]["alertname"] == "PyNetConnMonSiteDown", ALERT_TIMEOUT,
            "the site-down alert resolved")
        print("resolved at the receiver %.1f s after the repair" % (time.monotonic() - back))
        # the one alert, firing then resolved, at the home receiver; nothing else anywhere
        assert {(path, alert["labels"]["alertname"], alert["labels"]["site"])
                for path, _, alert in receiver.alerts()} == {
            (paths[home], "PyNetConnMonSiteDown", home)}
        assert query(post, 'ALERTS{site!="%s"}' % home) == []

        # the outage is counted, by cause, and every dashboard query has data for each site
        wait_until(lambda: by_site(post, 'site_cause:pynetconnmon_downtime_seconds:increase1d'
                                         '{cause="provider"}').get(home, 0) > 0,
                   START_TIMEOUT, "the provider's downtime at %s" % home)
        assert set(by_site(post, dashboard_sites_query())) == set(labs)
        # (a series may be missing from a scrape or two: the loss ratio is absent until the
        # window that an interruption emptied holds connect attempts again)
        for site in labs:
            for title, expr in dashboard_queries(site):
                wait_until(lambda: query(post, expr), 10,
                           "data for %s: %s: %s" % (site, title, expr))
        availability = by_site(post, "site:pynetconnmon_availability:ratio1d")
        print("availability: %s" % availability)
        # (over the lab's few seconds of history the exact figure is mostly extrapolation)
        assert availability[home] < 1 and availability[parents] == 1

        # the monitor at the parents' stops: that site goes stale, and only that site
        assert monitors[parents].terminate() == 0
        stopped = time.monotonic()
        path, _, alert = receiver.wait_for_alert(
            lambda path, alert: alert["labels"]["alertname"] == "PyNetConnMonStale",
            ALERT_TIMEOUT, "the stale alert")
        print("stale at the receiver %.1f s after the stop" % (time.monotonic() - stopped))
        assert (path, alert["status"], alert["labels"]["site"]) == (
            paths[parents], "firing", parents)
        assert alert["annotations"]["summary"] == "%s: the monitor is silent" % parents
        assert "Prometheus cannot scrape the monitor %s:%d at site %s." % (
            labs[parents].metrics_address, METRICS_PORT, parents) in \
            alert["annotations"]["description"]
        assert [alert["labels"]["alertname"] for _, _, alert in receiver.alerts()
                if alert["labels"]["site"] == parents] == ["PyNetConnMonStale"]
        assert query(post, 'ALERTS{alertstate="firing",site="%s"}' % home) == []
    finally:
        receiver.close()
        for monitor in monitors.values():
            monitor.kill()
    print("whole test: %.1f s" % (time.monotonic() - started))


def connect(address, port, timeout=1.0):
    """'ok' or the errno name of one TCP connect from the calling thread's namespace."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return "ok"
    except socket.timeout:
        return "timeout"
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))


def test_the_watch_post_reaches_each_monitor_and_nothing_beyond(multisite):
    post, labs = multisite
    for lab in labs.values():
        lab.start_listener()
        assert lab.probe()[0] == "ok"           # the site's own line works
        # the monitor's address on the post's link answers (refused: nothing listens yet) ...
        assert post.call(connect, lab.metrics_address, METRICS_PORT) == "ECONNREFUSED"
        # ... and nothing beyond it: the site's router and targets have no route from the post
        for address in (ROUTER_IP, TARGET_IP):
            assert post.call(connect, address, TARGET_PORT) == "ENETUNREACH"
