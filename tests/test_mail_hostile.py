"""Mail servers that misbehave after the connection is made, through the real pySendMail: one
that takes the report and drops the connection at QUIT (the report was delivered: it must not go
out again every -bmin), and one that stops answering (the delivery is cut, not left to hold every
later report). A small TLS server on 127.0.0.1 in a thread; the rest is decided on a fake clock."""
import io
import socket
import ssl
import threading
import time
import types

import pytest

import pyNetConnMon

from fakes import FakeClock
from harness import wait_until
from pyNetConnMon import (DELIVERY_LIMIT, Console, DeliveryError, MailDeliverer, PendingReports,
                          ReportBackoff, Reporter)
from smtp_lab import mail_config, make_program_dir, write_config


class MisbehavingServer:
    """SMTP over TLS from the first byte ("tls": true), on 127.0.0.1. `mode`: "quitdrop" takes
    each message (250) and closes the connection at QUIT without a word; "silent" says nothing
    at all once TLS is up. `messages` holds what it took; `connections` counts the sessions."""

    def __init__(self, certificate, mode):
        self.mode = mode
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*map(str, certificate))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.messages, self.connections = [], 0
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._session, args=(raw,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _session(self, raw):
        raw.settimeout(10)
        with raw:
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as lines:
                if self.mode == "silent":
                    self.stopped.wait(10)
                    return
                try:
                    self._converse(conn, lines)
                except OSError:             # the client cut the connection: the session ends
                    return

    def _converse(self, conn, lines):
        conn.sendall(b"220 test ESMTP\r\n")
        while True:
            verb = lines.readline().split(b" ")[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250-test\r\n250 AUTH PLAIN LOGIN\r\n")
            elif verb == b"AUTH":
                conn.sendall(b"235 2.7.0 ok\r\n")
            elif verb in (b"MAIL", b"RCPT"):
                conn.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go on\r\n")
                message = b"".join(iter(lambda: lines.readline(), b".\r\n"))
                self.messages.append(message)
                conn.sendall(b"250 2.0.0 queued\r\n")
            else:                                   # QUIT, or the client gone
                return

    def close(self):
        self.stopped.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def server(request, smtp_certificate):
    server = MisbehavingServer(smtp_certificate, request.param)
    yield server
    server.close()


def deliverer_for(tmp_path, server, **smtp):
    app = make_program_dir(tmp_path / "app")
    write_config(app.config, mail_config(server.port, tls=True, **smtp))
    return MailDeliverer(str(app.config.parent))


@pytest.mark.parametrize("server", ["quitdrop"], indirect=True)
def test_a_report_the_server_took_is_delivered_though_it_drops_the_connection_at_quit(tmp_path,
                                                                                     server):
    deliverer = deliverer_for(tmp_path, server)
    deliverer.deliver("subject", "one interruption")
    assert len(server.messages) == 1 and b"one interruption" in server.messages[0]


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_a_delivery_to_a_server_that_stopped_answering_is_cut_by_cancel(tmp_path, server):
    deliverer = deliverer_for(tmp_path, server, timeout=0)     # pySendMail: 0 is no timeout
    failures = []

    def deliver():
        try:
            deliverer.deliver("subject", "body")
        except DeliveryError as error:
            failures.append(str(error))

    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    wait_until(lambda: server.connections and deliverer.connection is not None, 10,
               "the delivery's connection")
    started = time.monotonic()
    deliverer.cancel()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert failures == ["mail server 127.0.0.1:%d stopped answering; the delivery was cut"
                        % server.port]


class HeldDelivery(MailDeliverer):
    """A mail delivery whose job the test runs, or never runs: the spawn holds it."""

    def __init__(self):
        super().__init__("unused")
        self.cancelled = 0

    def problem(self):
        return None

    def deliver(self, subject, body):
        return None                 # the server took it

    def cancel(self):
        self.cancelled += 1


def report_in_flight(now):
    """(pending, reporter, deliverer, held jobs) with one report's delivery started at `now`."""
    pending = PendingReports(ReportBackoff(60, 3600, 300))
    pending.add(start=1000.0, end=1010.0, duration=10.0, reason="timeout", targets=["a:53"])
    deliverer, held = HeldDelivery(), []
    reporter = Reporter(pending, deliverer, "pi", lambda: None, spawn=held.append)
    reporter.maybe_send(now, network_down=False)
    assert len(held) == 1 and reporter.busy
    return pending, reporter, deliverer, held


def test_a_delivery_running_past_the_limit_is_cancelled_and_the_report_kept():
    pending, reporter, deliverer, _ = report_in_flight(100.0)   # a server that stopped answering
    reporter.maybe_send(100.0 + DELIVERY_LIMIT - 1, network_down=False)
    assert deliverer.cancelled == 0
    reporter.maybe_send(100.0 + DELIVERY_LIMIT, network_down=False)
    assert deliverer.cancelled == 1 and pending.count == 1


def test_at_a_stop_a_mail_in_flight_is_waited_for_until_the_server_takes_it():
    pending, reporter, deliverer, held = report_in_flight(0.0)
    clock = FakeClock()

    def wait(seconds):
        clock.now += seconds

    def collect():
        if clock.now >= 3.0 and held:
            held.pop()()                                # the server's 250 (it scans mail first)
        reporter.outcomes(clock.now)

    reporter.settle(clock, wait, collect)
    assert (deliverer.cancelled, pending.count) == (0, 0)   # accepted: not sent again later
    assert 3.0 <= clock.now < 3.2


@pytest.mark.parametrize("server", ["quitdrop"], indirect=True)
def test_a_password_that_is_not_ascii_is_said_without_quoting_it(tmp_path, server):
    deliverer = deliverer_for(tmp_path, server, password="s\u00e9cret")
    with pytest.raises(DeliveryError) as failure:
        deliverer.deliver("subject", "body")
    assert str(failure.value) == (
        "mail server 127.0.0.1:%d: the user name or password in sendMailConfig.json "
        "has a character that is not ASCII, which pySendMail cannot send" % server.port)
    assert server.messages == []


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_test_mail_to_a_server_that_never_answers_ends_at_the_delivery_limit(tmp_path, server,
                                                                           monkeypatch):
    deliverer = deliverer_for(tmp_path, server, timeout=0)
    monkeypatch.setattr(pyNetConnMon, "DELIVERY_LIMIT", 1.0)      # 5 min in use
    out = io.StringIO()
    args = types.SimpleNamespace(no_mail=False, notify_command=None,
                                 pysendmail=deliverer.pysendmail_dir)
    started = time.monotonic()
    assert pyNetConnMon.run_test_mail(args, Console(out=out, err=out)) == 1
    assert time.monotonic() - started < 5
    assert out.getvalue().endswith(" ERROR test report not delivered: mail server 127.0.0.1:%d "
                                   "stopped answering; the delivery was cut\n" % server.port)
