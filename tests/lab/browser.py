"""Pages as a person sees them: Debian's headless Chromium, driven over the DevTools protocol on
a pipe (--remote-debugging-pipe: no port, nothing to find or to leak), standard library only.

    with Browser() as browser:
        page = browser.open("file:///tmp/report.html")
    page.dom            # the rendered DOM (document.documentElement.outerHTML)
    page.png            # a screenshot of the whole page (PNG bytes)
    page.requests       # every URL the page asked for
    page.problems       # failed requests, HTTP errors, console errors, uncaught exceptions

Chromium runs with a fresh profile, no sandbox (we run as root), no GPU and none of its own
network traffic (no component updates, sync, background networking). `png_colours()` decodes a
PNG (8-bit RGB or RGBA, as Chromium writes them) with zlib to count its colours.
"""
import base64
import json
import os
import selectors
import shutil
import struct
import subprocess
import tempfile
import time
import zlib

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio",
                  "--hide-scrollbars", "--remote-debugging-pipe"]


def chromium():
    """The path of Debian's chromium, or None."""
    return shutil.which("chromium")


class BrowserError(AssertionError):
    pass


class Page:
    def __init__(self, url):
        self.url = url
        self.dom = None
        self.png = None
        self.pdf = None
        self.requests = []
        self.problems = []


class Browser:
    """One Chromium for a few pages; every wait has a deadline; closed (and killed if need be)
    at exit, its profile removed. `prefix` runs it inside something, e.g. a lab's network
    namespace (["ip", "netns", "exec", NS])."""

    def __init__(self, timeout=30.0, width=1000, prefix=()):
        path = chromium()
        if path is None:
            raise BrowserError("chromium is not installed")
        self.timeout = timeout
        self.width = width
        self.profile = tempfile.mkdtemp(prefix="pyNetConnMon-chromium-")
        to_browser = os.pipe()
        from_browser = os.pipe()
        # the protocol's pipe is the browser's fd 3 (it reads) and fd 4 (it writes)
        self.proc = subprocess.Popen(
            [*prefix, "bash", "-c", 'exec "$@" 3<&%d 4>&%d' % (to_browser[0], from_browser[1]),
             "bash",
             path, *CHROMIUM_FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(to_browser[0], from_browser[1]), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        os.close(to_browser[0])
        os.close(from_browser[1])
        self.write_fd, self.read_fd = to_browser[1], from_browser[0]
        os.set_blocking(self.read_fd, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.read_fd, selectors.EVENT_READ)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    # -- the protocol --------------------------------------------------------------------------
    def _send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.write_fd, data):]
        return self.next_id

    def _receive(self, deadline):
        """The next message, or BrowserError at the deadline or when the browser has gone."""
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            if not self.selector.select(left):
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the pipe: %s" % self._stderr())
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None):
        number = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == number:
                if "error" in message:
                    raise BrowserError("%s failed: %s" % (method, message["error"]))
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, session, deadline):
        for number, message in enumerate(self.events):
            if message.get("method") == method and message.get("sessionId") == session:
                return self.events.pop(number)
        while True:
            message = self._receive(deadline)
            if message.get("method") == method and message.get("sessionId") == session:
                return message
            self.events.append(message)

    # -- pages -----------------------------------------------------------------------------------
    def open(self, url, screenshot=True, pdf=False, settle=0.1, height=None):
        """Loads `url` in a new tab and returns its Page: DOM, screenshot (of the whole page, or
        of its top `height` pixels), requests, problems."""
        page = Page(url)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target,
                                                       "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": 800, "deviceScaleFactor": 1, "mobile": False},
            session=session)
        self.events = []
        self.call("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + self.timeout
        self.wait_for("Page.loadEventFired", session, deadline)
        # what comes late: read for `settle` s more (Chromium 156 reports a missing image,
        # stylesheet or background, and its console error, before the load event)
        quiet = time.monotonic() + settle
        try:
            while True:
                self.events.append(self._receive(quiet))
        except BrowserError:
            if self.proc.poll() is not None:
                raise
        page.dom = self.call("Runtime.evaluate", {
            "expression": "document.documentElement.outerHTML", "returnByValue": True},
            session=session)["result"]["value"]
        if screenshot:
            whole = height is None
            if whole:
                size = self.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
                height = int(min(16000, max(800, size["height"])))
            self.call("Emulation.setDeviceMetricsOverride", {
                "width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session)
            # optimizeForSpeed: rows filtered "Up" only, which png_colours decodes fast
            page.png = base64.b64decode(self.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": whole, "optimizeForSpeed": True},
                session=session)["data"])
        if pdf:
            page.pdf = base64.b64decode(self.call("Page.printToPDF", {
                "paperWidth": 8.27, "paperHeight": 11.69, "preferCSSPageSize": True},
                session=session)["data"])
        self._collect(page, session)
        self.call("Target.closeTarget", {"targetId": target})
        return page

    def _collect(self, page, session):
        for message in self.events:
            if message.get("sessionId") != session:
                continue
            method, params = message.get("method"), message.get("params", {})
            if method == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                page.problems.append("request failed: %s" % params.get("errorText"))
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                page.problems.append("HTTP %d for %s" % (params["response"]["status"],
                                                        params["response"]["url"]))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                page.problems.append("console %s: %s" % (params["type"], params.get("args")))
            elif method == "Runtime.exceptionThrown":
                page.problems.append("exception: %s" % params.get("exceptionDetails"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                page.problems.append("log: %s" % params["entry"].get("text"))
        self.events = []

    def _stderr(self):
        try:
            return self.proc.stderr.read(4000).decode("utf-8", "replace") if self.proc.poll() \
                is not None else "(still running)"
        except (OSError, ValueError):
            return ""

    def close(self):
        try:
            if self.proc.poll() is None:
                self._send("Browser.close")
                self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.selector.close()
        self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def png_colours(data, most=100000, wanted=None):
    """The set of distinct colours (RGB bytes) of an 8-bit, non-interlaced PNG; stops
    counting at `most`, and stops reading once every colour in `wanted` (RGB bytes) was seen."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    at, pieces, header = 8, [], None
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunk = data[at + 8:at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            pieces.append(chunk)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise ValueError("PNG of a kind this decoder does not read: %r" % (header,))
    size = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(pieces))
    stride = width * size
    low, high = (int.from_bytes(bytes([mask]) * stride, "big") for mask in (0x7f, 0x80))
    previous = bytes(stride)
    colours = set()            # (r, g, b) tuples
    wanted = {tuple(colour) for colour in wanted} if wanted else None
    for y in range(height):
        at = y * (stride + 1)
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        if kind == 1:
            for i in range(size, stride):
                line[i] = (line[i] + line[i - size]) & 255
        elif kind == 2:        # each byte plus the one above, mod 256: on whole rows at once
            a, b = int.from_bytes(line, "big"), int.from_bytes(previous, "big")
            line = bytearray((((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big"))
        elif kind == 3:
            for i in range(stride):
                left = line[i - size] if i >= size else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - size] if i >= size else 0
                b = previous[i]
                c = previous[i - size] if i >= size else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if len(colours) < most:
            colours.update(zip(line[0::size], line[1::size], line[2::size]))
        previous = line
        if wanted and wanted <= colours:
            break
    return {bytes(colour) for colour in colours}
