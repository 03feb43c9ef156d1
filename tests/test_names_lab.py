"""Many targets given by name while the DNS server cannot be reached (fault lab): every lookup
waits for the resolver's timeout. The rounds go on, the router's answers are kept, and nothing
is said about targets that were never probed. A name is looked up by a few threads at most, so
the lookups waiting for the dead server stay bounded."""
import os
import subprocess

from lab_monitor import start_monitor
from netlab import BOGUS_MAC, TARGET_IP, TARGET_PORT
from pyNetConnMon import LOOKUPS_PER_NAME

DNS_SERVER = "198.18.0.53"       # on the lab's link, its packets vanish: lookups time out
NAMES = ["h%d" % number for number in range(16)]


def confine_names_to_a_dead_dns_server(netlab):
    """Names not in the hosts file go to DNS_SERVER, which never answers (2 s per lookup)."""
    path = os.path.join(netlab.etc_dir, "nsswitch.conf")
    with open(path) as stream:
        lines = [line for line in stream.read().splitlines()
                 if not line.strip().startswith("hosts:")]
    with open(path, "w") as stream:
        stream.write("\n".join(lines + ["hosts: files dns"]) + "\n")
    with open(os.path.join(netlab.etc_dir, "resolv.conf"), "w") as stream:
        stream.write("nameserver %s\noptions timeout:2 attempts:1\n" % DNS_SERVER)
    subprocess.run(["ip", "-n", netlab.monitor_ns, "neigh", "replace", DNS_SERVER, "lladdr",
                    BOGUS_MAC, "dev", netlab.monitor_if, "nud", "permanent"], check=True)
    # the router is the target host (it refuses port 53: an answer)
    subprocess.run(["ip", "-n", netlab.monitor_ns, "route", "add", "default", "via", TARGET_IP],
                   check=True)


def test_sixteen_names_with_the_dns_server_unreachable(netlab, tmp_path):
    confine_names_to_a_dead_dns_server(netlab)
    netlab.start_listener()
    netlab.set_hosts({name: TARGET_IP for name in NAMES})
    targets = [arg for name in NAMES for arg in ("-a", "%s:%d" % (name, TARGET_PORT))]
    monitor = start_monitor(netlab, tmp_path, *targets, "-i", "1", "-t", "1", "-m", "1",
                            "--no-mail", "--stats-interval", "30")
    monitor.wait_for_line(r" gateway now %s:53$" % TARGET_IP, timeout=10)
    netlab.set_hosts({})                                 # the names now go to the DNS server
    monitor.wait_for_event({"event": "down", "cause": "dns"}, timeout=20)
    changes = len(monitor.events("gateway_changed"))
    monitor.wait_for_event("stats", timeout=40)          # 30 s down, a round every 0.1 s
    assert len(monitor.events("gateway_changed")) == changes, monitor.events("gateway_changed")
    threads = int(subprocess.run(["ps", "-o", "nlwp=", "-p", str(monitor.pid)],
                                 capture_output=True, text=True).stdout)
    assert threads <= 1 + LOOKUPS_PER_NAME * len(NAMES), threads     # the main one, lookups
    netlab.set_hosts({name: TARGET_IP for name in NAMES})
    monitor.wait_for_event("up", timeout=20)
    assert monitor.terminate() == 0
    # every name was probed, and looked up afresh once the names resolved again: no target is
    # said to have failed alone
    assert monitor.events("target_down") == []
    assert not [line for line in monitor.lines if "PARTIAL" in line], monitor.output()
