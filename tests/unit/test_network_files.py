"""containers/<id>/{hostname,hosts,resolv.conf}: content like docker's, written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.network.files import hosts_content, resolv_content, write_container_files

HOST_RESOLV = """# generated
nameserver 127.0.0.53
nameserver 10.0.0.2
nameserver ::1
search example.com
options edns0 trust-ad
"""


def _write(tmp_path: Path, **kw: object) -> dict[str, Path]:
    hosts = tmp_path / "host-hosts"
    hosts.write_text("127.0.0.1 localhost\n192.0.2.2 buildhost\n")
    resolv = tmp_path / "host-resolv"
    resolv.write_text(HOST_RESOLV)
    cdir = tmp_path / "c"
    cdir.mkdir(exist_ok=True)
    args: dict[str, object] = {"hostname": "abc123", "ip": "10.88.0.2", "extra_hosts": [], "dns": [], "host_network": False}
    args.update(kw)
    return write_container_files(cdir, host_hosts=hosts, host_resolv=resolv, **args)  # type: ignore[arg-type]


def test_returns_the_three_container_paths_with_files_in_the_container_dir(tmp_path: Path) -> None:
    out = _write(tmp_path)
    assert set(out) == {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    assert out["/etc/hostname"] == tmp_path / "c" / "hostname"
    assert out["/etc/hostname"].read_text() == "abc123\n"
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["hostname", "hosts", "resolv.conf"]  # no temp files


def test_hosts_has_localhost_ip6_lines_extra_hosts_and_own_address_last(tmp_path: Path) -> None:
    hosts = _write(tmp_path, extra_hosts=["db:10.1.2.3", "v6:fd00::1"])["/etc/hosts"].read_text().splitlines()
    assert hosts[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in hosts
    assert "ff02::2\tip6-allrouters" in hosts
    assert hosts[-3:] == ["10.1.2.3\tdb", "fd00::1\tv6", "10.88.0.2\tabc123"]


def test_hosts_without_an_address_has_no_own_line() -> None:
    assert "abc" not in hosts_content("abc", None, [])


@pytest.mark.parametrize("bad", ["nocolon", ":1.2.3.4", "x:", "x:not-an-ip"])
def test_bad_add_host_is_invalid_argument(tmp_path: Path, bad: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="--add-host"):
        _write(tmp_path, extra_hosts=[bad])


def test_resolv_drops_loopback_nameservers_and_keeps_search_options(tmp_path: Path) -> None:
    text = _write(tmp_path)["/etc/resolv.conf"].read_text()
    assert "nameserver 10.0.0.2" in text
    assert "127.0.0.53" not in text and "::1" not in text
    assert "search example.com" in text and "options edns0 trust-ad" in text


def test_resolv_only_loopback_falls_back_to_docker_defaults() -> None:
    text = resolv_content("nameserver 127.0.0.53\nsearch lan\n", [])
    assert text.splitlines() == ["search lan", "nameserver 8.8.8.8", "nameserver 8.8.4.4"]


def test_dns_option_replaces_nameservers(tmp_path: Path) -> None:
    text = _write(tmp_path, dns=["1.1.1.1"])["/etc/resolv.conf"].read_text()
    assert [ln for ln in text.splitlines() if ln.startswith("nameserver")] == ["nameserver 1.1.1.1"]
    with pytest.raises(errdefs.InvalidArgument, match="--dns"):
        _write(tmp_path, dns=["dns.example"])


def test_host_network_uses_the_hosts_files(tmp_path: Path) -> None:
    out = _write(tmp_path, host_network=True, ip=None, extra_hosts=["db:10.1.2.3"])
    assert out["/etc/resolv.conf"].read_text() == HOST_RESOLV
    hosts = out["/etc/hosts"].read_text()
    assert hosts.startswith("127.0.0.1 localhost\n192.0.2.2 buildhost\n") and hosts.endswith("10.1.2.3\tdb\n")


def test_rewrite_replaces_the_files(tmp_path: Path) -> None:
    _write(tmp_path)
    out = _write(tmp_path, hostname="other", ip="10.88.0.9")
    assert out["/etc/hostname"].read_text() == "other\n"
    assert out["/etc/hosts"].read_text().endswith("10.88.0.9\tother\n")


@pytest.mark.parametrize("bad", ["", "a/b", "a\nb", "x" * 254])
def test_bad_hostname(tmp_path: Path, bad: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="hostname"):
        _write(tmp_path, hostname=bad)


def test_dns_search_replaces_the_hosts_search_line(tmp_path: Path) -> None:
    text = _write(tmp_path, dns_search=["a.test", "b.test"])["/etc/resolv.conf"].read_text()
    assert [ln for ln in text.splitlines() if ln.startswith(("search", "domain"))] == ["search a.test b.test"]
    assert "nameserver 10.0.0.2" in text  # the servers are untouched


def test_dns_search_dot_means_no_search_line() -> None:
    text = resolv_content("nameserver 10.0.0.2\nsearch lan\ndomain lan\n", [], ["."])
    assert text.splitlines() == ["nameserver 10.0.0.2"]


def test_dns_search_with_host_networking_edits_the_hosts_file(tmp_path: Path) -> None:
    text = _write(tmp_path, host_network=True, dns_search=["x.test"])["/etc/resolv.conf"].read_text()
    assert "search x.test" in text and "search example.com" not in text
