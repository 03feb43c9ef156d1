"""Several homes watched from one place: a home lab (tests/lab/homelab.py) per site, and a watch
post in a namespace of its own where the test runs Prometheus, Alertmanager and a webhook receiver.

    po-<sfx> (watch post)                          each site i = 1, 2, ...: a HomeLab
    vo<site sfx> 198.19.<i>.1/24  -------------  vs<site sfx> 198.19.<i>.2/24 in pm-<site sfx>
    127.0.0.1: Prometheus, Alertmanager,           (the monitor's namespace, beside its LAN link
               the webhook receiver                 to the site's router)

Each link joins the watch post to one site's monitor only, as a VPN or a LAN would: the post has
no other interface, no default route and no forwarding, so it reaches nothing but the monitors'
metrics ports, and a site's monitor reaches nothing new. A fault made with the site's HomeLab
(its uplink, its router) leaves the post's view of the monitor alone, like a Prometheus on the
site's LAN; stopping the monitor is what makes it unreachable.

The test process talks to the servers in the post through one thread that has entered the post's
network namespace (``WatchPost.call``): every socket made in that thread belongs to the post, so
the test queries 127.0.0.1 there and serves the webhook there, without a link to this machine's
own network. ``destroy()`` kills whatever runs in the post and deletes it; the sites' labs are
destroyed by their owner. Posts left behind by a test process that was killed outright are swept
on the next run (``sweep_stale_posts``).
"""
import concurrent.futures
import ctypes
import itertools
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from netlab import (NetLabError, _ip, _kill_pids_in, _netns_names, _stop_process,
                    sweep_stale_labs)

CLONE_NEWNET = 0x40000000
NETNS_RUN = "/run/netns"
CALL_TIMEOUT = 30.0          # seconds for anything done in the post's thread
HTTP_TIMEOUT = 5.0           # seconds for one HTTP request to a server in the post
LINK_PREFIX = 24

_counter = itertools.count(1)
_POST_NAMESPACE = re.compile(r"^po-(\d+)o\d+$")


def post_address(index):
    """(the post's, the monitor's) address on the link to site number `index` (from 1)."""
    return "198.19.%d.1" % index, "198.19.%d.2" % index


def _enter_namespace(name):
    """Move the calling thread (only it) into network namespace `name`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_RUN, name), os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, "setns into %s: %s" % (name, os.strerror(errno)))
    finally:
        os.close(fd)


class WatchPost:
    """The namespace po-<sfx> where the test runs the servers that watch every site."""

    def __init__(self):
        self.sfx = self._free_suffix()
        self.ns = "po-" + self.sfx
        self.prefix = ["ip", "netns", "exec", self.ns]
        self.sites = []             # (HomeLab, monitor's address on its link to the post)
        self._procs = []
        self._created = False
        self._destroyed = False
        _ip("netns", "add", self.ns)
        self._created = True
        try:
            _ip("-n", self.ns, "link", "set", "lo", "up")
            self._thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=self.ns, initializer=_enter_namespace,
                initargs=(self.ns,))
            self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        except BaseException:
            self.destroy()
            raise

    @staticmethod
    def _free_suffix():
        taken = _netns_names()
        for _ in range(1000):
            sfx = "%do%d" % (os.getpid(), next(_counter))
            if "po-" + sfx not in taken:
                return sfx
        raise NetLabError("no free namespace suffix")

    def __repr__(self):
        return "<WatchPost %s%s>" % (self.ns, " destroyed" if self._destroyed else "")

    # ---- the sites ---------------------------------------------------------------------------

    def join(self, lab):
        """Link the post to the monitor namespace of HomeLab `lab`; returns the address the
        monitor has on that link (where its --metrics-address goes)."""
        index = len(self.sites) + 1
        ours, theirs = post_address(index)
        here, there = "vo" + lab.sfx, "vs" + lab.sfx
        _ip("link", "add", here, "netns", self.ns, "type", "veth", "peer", "name", there,
            "netns", lab.monitor_ns)
        _ip("-n", self.ns, "addr", "add", "%s/%d" % (ours, LINK_PREFIX), "dev", here)
        _ip("-n", lab.monitor_ns, "addr", "add", "%s/%d" % (theirs, LINK_PREFIX), "dev", there)
        _ip("-n", self.ns, "link", "set", here, "up")
        _ip("-n", lab.monitor_ns, "link", "set", there, "up")
        lab._wait_operational([(self.ns, here), (lab.monitor_ns, there)])
        self.sites.append((lab, theirs))
        self.check_confined()
        return theirs

    def check_confined(self):
        """NetLabError unless the post has no route beyond its links to the sites."""
        for family in ("-4", "-6"):
            routes = json.loads(_ip("-j", family, "-n", self.ns, "route", "show", "table",
                                    "all").stdout)
            wrong = [route for route in routes if route["dst"] == "default"
                     or route.get("gateway") or any("gateway" in hop
                                                    for hop in route.get("nexthops", []))]
            if wrong:
                raise NetLabError("the watch post is not confined: %s" % wrong)

    # ---- running things --------------------------------------------------------------------

    def popen(self, cmd, **kw):
        """Popen `cmd` (argv list) inside the post."""
        if self._destroyed:
            raise NetLabError("%r is destroyed" % self)
        proc = subprocess.Popen(self.prefix + list(cmd), **kw)
        self._procs.append(proc)
        return proc

    def call(self, function, *args):
        """function(*args) run in the post's thread: the sockets it makes are the post's."""
        return self._thread.submit(function, *args).result(CALL_TIMEOUT)

    def get(self, url, params=None):
        """(status, body bytes) of GET `url` (+ query `params`) from inside the post; status is
        None if nothing answered."""
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return self.call(self._get, url)

    def _get(self, url):
        try:
            with self._opener.open(url, timeout=HTTP_TIMEOUT) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return None, b""

    def webhook_receiver(self, address, port):
        """A WebhookReceiver listening on address:port inside the post."""
        return self.call(WebhookReceiver, address, port)

    # ---- teardown ----------------------------------------------------------------------------

    def destroy(self):
        """Stop the post's thread, kill every process in the post and delete it. Idempotent."""
        if self._destroyed:
            return
        self._destroyed = True
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.shutdown(wait=True, cancel_futures=True)
        for proc in self._procs:
            _stop_process(proc)
        if self._created and self.ns in _netns_names():
            _kill_pids_in([self.ns])
            _ip("netns", "del", self.ns)


def sweep_stale_posts():
    """Remove the watch posts of test processes that died without teardown."""
    return sweep_stale_labs(_POST_NAMESPACE)


class WebhookReceiver:
    """Alertmanager's webhook notifications, as (path, JSON body) in arrival order. Made in the
    post's thread (so it listens in the post); served by a daemon thread; close() stops it."""

    MAX_BODY = 1 << 20
    MAX_NOTIFICATIONS = 1000

    def __init__(self, address, port):
        self.notifications = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = min(int(self.headers.get("Content-Length", "0")), receiver.MAX_BODY)
                body = json.loads(self.rfile.read(length) or b"null")
                receiver._add(self.path, body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self._serving = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                         daemon=True)
        self._serving.start()

    def _add(self, path, body):
        with self._cond:
            if len(self.notifications) < self.MAX_NOTIFICATIONS:
                self.notifications.append((path, body))
            self._cond.notify_all()

    def alerts(self):
        """Every alert of every notification so far: (path, notification status, alert)."""
        with self._cond:
            return [(path, body["status"], alert) for path, body in self.notifications
                    for alert in body["alerts"]]

    def wait_for_alert(self, predicate, timeout, what):
        """The first (path, status, alert) for which predicate(path, alert) is true, once one has
        arrived; AssertionError naming `what` and listing every alert if none within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for path, status, alert in self.alerts():
                    if predicate(path, alert):
                        return path, status, alert
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("not within %s s: %s; alerts received:\n%s" % (
                        timeout, what, "\n".join("%s %s %s" % (path, alert["status"],
                                                               json.dumps(alert["labels"]))
                                                 for path, _, alert in self.alerts())))
                self._cond.wait(min(left, 0.5))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._serving.join(5)
