"""Per-container network options through ctrctl and a real ctrd (root), checked from inside the
container: --dns-search, --ip (a fixed address on a user network), --mac-address, --dns,
--add-host and --hostname; bad values are one clear error and leave nothing running."""

from __future__ import annotations

import ipaddress

import pytest

from tests.daemon_fixtures import DaemonProc
from tests.e2e.test_ctrctl_e2e import ctl
from tests.e2e.test_network_user import ctrd_netns  # noqa: F401
from tests.netutil import free_test_subnet

pytestmark = pytest.mark.root

MAC = "02:aa:bb:cc:dd:ee"


def inside(d: DaemonProc, ref: str, *args: str) -> str:
    r = ctl(d, "exec", ref, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_fixed_ip_mac_and_name_options_are_what_the_container_sees(ctrd_netns: DaemonProc) -> None:  # noqa: F811
    d = ctrd_netns
    subnet = ipaddress.IPv4Network(free_test_subnet())
    fixed = str(subnet.network_address + 50)
    assert ctl(d, "network", "create", "--subnet", str(subnet), "app").returncode == 0
    r = ctl(d, "run", "-d", "--name", "fixed", "--network", "app", "--ip", fixed, "--mac-address", MAC.upper(),
            "--dns-search", "example.test", "--dns-search", "corp.test", "-h", "myhost", "--add-host", "db:10.9.9.9",
            "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    resolv = inside(d, "fixed", "cat", "/etc/resolv.conf").splitlines()
    assert "search example.test corp.test" in resolv and "nameserver 127.0.0.11" in resolv
    assert [ln for ln in resolv if ln.startswith("search")] == ["search example.test corp.test"]
    addr = inside(d, "fixed", "ip", "addr", "show", "eth0")
    assert f"inet {fixed}/{subnet.prefixlen}" in addr and f"link/ether {MAC}" in addr, addr
    assert inside(d, "fixed", "hostname") == "myhost\n"
    assert "10.9.9.9\tdb" in inside(d, "fixed", "cat", "/etc/hosts")
    fmt = "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.MacAddress}} {{json .HostConfig.DnsSearch}}"
    assert ctl(d, "inspect", "-f", fmt, "fixed").stdout == f'{fixed} {MAC} ["example.test","corp.test"]\n'

    # the address is taken while "fixed" runs: one clear error, the other container does not run
    r = ctl(d, "run", "-d", "--name", "twin", "--network", "app", "--ip", fixed, "busybox", "sleep", "300")
    assert r.returncode != 0 and f"{fixed} is already in use" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert ctl(d, "inspect", "-f", "{{.State.Running}}", "twin").stdout == "false\n"
    outside = str(subnet.broadcast_address + 10)
    r = ctl(d, "run", "-d", "--network", "app", "--ip", outside, "busybox", "true")
    assert r.returncode != 0 and f"{outside} is outside the network's subnet {subnet}" in r.stderr, r.stderr

    # stopped and started again: the same fixed address and MAC; once it is gone, twin gets it
    assert ctl(d, "restart", "-t", "1", "fixed").returncode == 0
    assert f"inet {fixed}/" in inside(d, "fixed", "ip", "addr", "show", "eth0")
    assert ctl(d, "rm", "-f", "fixed").returncode == 0
    assert ctl(d, "start", "twin").returncode == 0
    assert f"inet {fixed}/" in inside(d, "twin", "ip", "addr", "show", "eth0")
    assert ctl(d, "rm", "-f", "twin").returncode == 0
    assert ctl(d, "network", "rm", "app").returncode == 0


def test_default_bridge_takes_dns_mac_and_no_search_but_refuses_a_fixed_ip(ctrd_netns: DaemonProc) -> None:  # noqa: F811
    d = ctrd_netns
    r = ctl(d, "run", "--rm", "--dns", "10.1.2.3", "--dns-search", ".", "--mac-address", MAC, "busybox",
            "sh", "-c", "cat /etc/resolv.conf; ip link show eth0")
    assert r.returncode == 0, r.stderr
    assert "nameserver 10.1.2.3" in r.stdout and "search" not in r.stdout and f"link/ether {MAC}" in r.stdout
    for args, msg in (
        (("--ip", "10.0.0.9"), "ip_address: user specified IP address is supported on user defined networks only"),
        (("--mac-address", "01:00:5e:00:00:01"), "mac_address: '01:00:5e:00:00:01' is a multicast or zero"),
        (("--mac-address", "nope"), "mac_address: invalid MAC address 'nope'"),
        (("--dns-search", "bad domain"), "dns_search: invalid search domain 'bad domain'"),
        (("--network", "none", "--mac-address", MAC), "mac_address: conflicting options"),
    ):
        r = ctl(d, "run", "-d", *args, "busybox", "true")
        assert r.returncode != 0 and msg in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
    assert ctl(d, "ps", "-a", "-q").stdout == ""  # refused at create: nothing half-made
