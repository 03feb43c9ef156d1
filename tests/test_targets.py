"""Target syntax: HOST, HOST:PORT, [IPV6]:PORT, bare IPv6; -p for the ones without a port."""
import pytest

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
])
def test_invalid_targets_are_refused_with_the_reason(value, message):
    with pytest.raises(UsageError) as caught:
        parse_target(value, 53)
    assert str(caught.value) == message
