"""Name lookups the test controls: a private /etc/hosts, and DNS pointed at loopback.

`unshare --mount` gives the child its own view of /etc/hosts and /etc/resolv.conf, so a name that is
not in the test's hosts file fails at once (nothing answers DNS on 127.0.0.1 there) and no lookup
ever leaves this machine. Needs root (CI runs as root); tests skip elsewhere.
"""
import os
import shutil

import pytest

RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def private_names_prefix(tmp_path, hosts):
    """A command prefix under which only `hosts` ({name: address}) resolve."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("private name lookups need root and unshare (CI runs as root)")
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("127.0.0.1 localhost\n" + "".join(
        "%s %s\n" % (address, name) for name, address in hosts.items()))
    resolv_file = tmp_path / "resolv.conf"
    resolv_file.write_text(RESOLV_CONF)
    script = ('mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && shift '
              '&& exec "$@"')
    return ["unshare", "--mount", "--", "sh", "-c", script, str(hosts_file), str(resolv_file)]
