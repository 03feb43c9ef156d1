"""Target syntax: HOST, HOST:PORT, [IPV6]:PORT, bare IPv6; -p for the ones without a port."""
import threading
import time

import pytest

import pyNetConnMon
from pyNetConnMon import UsageError, parse_target


@pytest.mark.parametrize("value, host, port, label", [
    ("8.8.8.8", "8.8.8.8", 53, "8.8.8.8:53"),
    ("198.18.0.2:5353", "198.18.0.2", 5353, "198.18.0.2:5353"),
    ("router.lan", "router.lan", 53, "router.lan:53"),
    ("router.lan.:80", "router.lan.", 80, "router.lan.:80"),
    ("::1", "::1", 53, "[::1]:53"),
    ("2001:db8::1", "2001:db8::1", 53, "[2001:db8::1]:53"),
    ("[2001:db8::1]:443", "2001:db8::1", 443, "[2001:db8::1]:443"),
    ("[::1]", "::1", 53, "[::1]:53"),
])
def test_valid_targets(value, host, port, label):
    target = parse_target(value, 53)
    assert (target.host, target.port, target.label) == (host, port, label)


def test_literal_addresses_need_no_lookup():
    assert parse_target("198.18.0.2", 53).is_literal
    assert parse_target("::1", 53).is_literal
    assert not parse_target("router.lan", 53).is_literal


@pytest.mark.parametrize("value, message", [
    ("", "-a/--address: empty address"),
    ("[::1", "-a/--address: '[::1' is not a valid [IPv6]:PORT"),
    ("[198.18.0.2]:53", "-a/--address: '[198.18.0.2]:53' is not a valid [IPv6]:PORT"),
    ("::1]:53", "-a/--address: '::1]:53' is not a valid [IPv6]:PORT"),
    ("2001:db8::zz", "-a/--address: '2001:db8::zz' is not a valid IPv6 address"),
    ("host:0", "-a/--address: 0 is outside 1-65535"),
    ("host:65536", "-a/--address: 65536 is outside 1-65535"),
    ("host:", "-a/--address: '' is not a port number (1-65535)"),
    ("host:http", "-a/--address: 'http' is not a port number (1-65535)"),
    ("bad..name", "-a/--address: 'bad..name' is not a valid host name or IP address"),
    ("-lead.example", "-a/--address: '-lead.example' is not a valid host name or IP address"),
    ("sp ace", "-a/--address: 'sp ace' is not a valid host name or IP address"),
    ("a" * 64 + ".lan",
     "-a/--address: '%s.lan' is not a valid host name or IP address" % ("a" * 64)),
    (("a" * 63 + ".") * 4,
     "-a/--address: '%s' is longer than 253 characters" % (("a" * 63 + ".") * 4)),
    ('[::1%"><img>]:1', "-a/--address: '[::1%\"><img>]:1' is not a valid [IPv6]:PORT"),
    ("::1%", "-a/--address: '::1%' is not a valid IPv6 address"),
    ("fe80::1%eth0/x", "-a/--address: 'fe80::1%eth0/x' is not a valid IPv6 address"),
    ("[fe80::1%" + "e" * 16 + "]", "-a/--address: '[fe80::1%%%s]' is not a valid [IPv6]:PORT"
     % ("e" * 16)),
    ("router.lan\n", "-a/--address: 'router.lan\\n' is not a valid host name or IP address"),
    ("router.lan\n:53", "-a/--address: 'router.lan\\n:53' is not a valid host name or IP "
                        "address"),
    ("198.18.0.2%eth0", "-a/--address: '198.18.0.2%eth0' is not a valid host name or IP address"),
    ("host: 53", "-a/--address: ' 53' is not a port number (1-65535)"),
    ("host:+53", "-a/--address: '+53' is not a port number (1-65535)"),
    ("host:5_3", "-a/--address: '5_3' is not a port number (1-65535)"),
    ("host:\u0665\u0663", "-a/--address: '\u0665\u0663' is not a port number (1-65535)"),
])
def test_invalid_targets_are_refused_with_the_reason(value, message):
    with pytest.raises(UsageError) as caught:
        parse_target(value, 53)
    assert str(caught.value) == message


def test_a_scoped_ipv6_address_names_an_interface():
    target = parse_target("[fe80::1%eth0.100]:53", 53)
    assert (target.host, target.port) == ("fe80::1%eth0.100", 53)


@pytest.mark.parametrize("value, message", [
    ("0.0.0.0", "--gateway: 0.0.0.0 is not a router's address (unspecified)"),
    ("::", "--gateway: :: is not a router's address (unspecified)"),
    ("255.255.255.255", "--gateway: 255.255.255.255 is not a router's address (broadcast)"),
    ("224.0.0.1", "--gateway: 224.0.0.1 is not a router's address (multicast)"),
    ("[ff02::1]:53", "--gateway: ff02::1 is not a router's address (multicast)"),
    ("198.18.0.1:+53", "--gateway: '198.18.0.1:+53' is not ADDRESS[:PORT], [IPV6]:PORT or none; "
                       "give the router's IP address, which needs no name lookup"),
    ("198.18.0.1: 53", "--gateway: '198.18.0.1: 53' is not ADDRESS[:PORT], [IPV6]:PORT or none; "
                       "give the router's IP address, which needs no name lookup"),
    ("198.18.0.1:\u0665\u0663", "--gateway: '198.18.0.1:\u0665\u0663' is not ADDRESS[:PORT], "
                                "[IPV6]:PORT or none; give the router's IP address, which needs "
                                "no name lookup"),
])
def test_a_gateway_that_cannot_be_a_router_is_refused_at_once(value, message):
    from harness import run_main
    assert run_main("-a", "127.0.0.1", "--gateway", value) == (
        2, "", "pyNetConnMon.py: error: %s\n" % message)


@pytest.mark.parametrize("value", ["+53", " 53", "\u0665\u0663", "53 "])
def test_a_port_is_ascii_digits(value):
    from harness import run_main
    assert run_main("-a", "127.0.0.1", "-p", value) == (
        2, "", "pyNetConnMon.py: error: -p/--port: %r is not a port number (1-65535)\n" % value)


def test_at_most_a_thousand_targets():
    from harness import run_main
    many = [arg for number in range(1001) for arg in ("-a", "127.0.%d.%d" % divmod(number, 256))]
    assert run_main(*many) == (
        2, "", "pyNetConnMon.py: error: -a/--address: at most 1000 targets, 1001 given\n")
    assert run_main(*many[:2000])[0] == 99


def test_a_lookup_that_gets_no_thread_fails_as_dns_and_the_round_goes_on(monkeypatch):
    # a small machine out of threads (1000 names with hanging lookups, 4 each): the uncaught
    # "can't start new thread" ended the monitor with a traceback. No lookup runs here at all.
    def no_thread(self):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(threading.Thread, "start", no_thread)
    name = pyNetConnMon.parse_target("unresolved.example.test:53", 53)
    lookups = pyNetConnMon.NameLookups()
    assert pyNetConnMon.resolve_all([name], time.monotonic() + 1.0, lookups=lookups) == {
        name: "dns"}
    assert lookups.running == {("unresolved.example.test", 53): []}
