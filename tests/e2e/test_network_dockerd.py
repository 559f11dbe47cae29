"""ctrd beside a real dockerd (Debian's docker.io) with its firewall on: dockerd sets FORWARD
policy DROP and its own chains; ctrd's bridge containers still reach each other and the host
reaches a published port. Both daemons run in a network namespace the test makes, with private
roots, sockets and pid files, so the host's firewall and any other dockerd are untouched."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ctrd.v1 import container_pb2 as cpb
from daemon.network.firewall import OwnChains, owner_key
from tests.daemon_fixtures import DaemonProc, start_daemon, teardown
from tests.e2e.test_network_containers import (
    bridge_containers_reach_each_other_and_the_host_reaches_httpd,
    http_get,
    httpd,
    sh,
    wait_for,
)
from tests.netutil import docker_firewall_netns, free_test_subnet, iptables_rules

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not shutil.which("dockerd") or not shutil.which("docker"), reason="needs docker.io"),
]


def dockerd_answers(sock: Path) -> bool:
    r = subprocess.run(["docker", "-H", f"unix://{sock}", "version", "--format", "{{.Server.Version}}"],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0


@contextmanager
def dockerd_running(base: Path) -> Iterator[None]:
    """A private dockerd with its firewall on, in the calling thread's network namespace."""
    base.mkdir()
    sock = base / "d.sock"
    log = open(base / "dockerd.log", "ab")  # noqa: SIM115 (the daemon writes to it)
    dockerd = subprocess.Popen(
        ["dockerd", "--data-root", str(base / "root"), "--exec-root", str(base / "e"), "-H", f"unix://{sock}",
         "--pidfile", str(base / "d.pid"), "--iptables=true", "--bip", _bip(), "--log-level", "warn"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while not dockerd_answers(sock):
            if dockerd.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not come up:\n{(base / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        dockerd.send_signal(signal.SIGTERM)  # our own child, by its pid
        try:
            dockerd.wait(60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait()


@pytest.fixture
def ctrd_beside_dockerd(short_tmp: Path) -> Iterator[DaemonProc]:
    d: DaemonProc | None = None
    problems: list[str] = []
    with docker_firewall_netns(forward_drop=False):
        try:
            # dockerd stops first: it keeps a mount of its data root (under short_tmp) until it exits
            with dockerd_running(short_tmp / "docker"):
                d = start_daemon(short_tmp)
                yield d
        finally:
            if d is not None:
                problems = teardown(d)
                print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))


def _bip() -> str:
    net = free_test_subnet()
    return net.replace(".0/24", ".1/24")


def test_with_a_real_dockerd_firewall_ctrd_containers_reach_each_other_and_the_host(
    ctrd_beside_dockerd: DaemonProc,
) -> None:
    rules = iptables_rules()
    assert "-P FORWARD DROP" in rules and "-N DOCKER-ISOLATION-STAGE-1" in rules  # dockerd's doing
    bridge_containers_reach_each_other_and_the_host_reaches_httpd(ctrd_beside_dockerd)
    rules = iptables_rules()
    assert "-A FORWARD -j CTRD-FORWARD" in rules and "-A FORWARD -j DOCKER-USER" in rules  # both hooked


def _web_and_client(d: DaemonProc) -> tuple[str, str, str, int]:
    web = httpd(d, "web", hostname=f"web-{d.bridge}",
                port_bindings=[cpb.PortBinding(host_ip="127.0.0.1", container_port=80)])
    client = d.c.run("busybox", ["sleep", "300"], name="client")
    net = d.c.inspect(web)["NetworkSettings"]
    ip = net["IPAddress"]
    assert wait_for(lambda: _answers(ip), 10.0), f"httpd at {ip} never answered"  # up before the checks
    return web, client, ip, int(net["Ports"]["80/tcp"][0]["HostPort"])


def _answers(ip: str) -> bool:
    try:
        return http_get(ip, 80, "/hostname", timeout=1.0)[0] == 200
    except OSError:
        return False


def _serves(d: DaemonProc, client: str, ip: str, port: int) -> list[str]:
    """What fails of container → container, host → container and host → published port."""
    want = f"web-{d.bridge}\n"
    rc, out = sh(d, client, "wget", "-q", "-O", "-", f"http://{ip}/hostname")
    fails = [] if rc == 0 and out == want else [f"container → container: {rc} {out!r}"]
    for host, p in ((ip, 80), ("127.0.0.1", port)):
        try:
            got = http_get(host, p, "/hostname")
        except OSError as exc:
            got = (0, str(exc).encode())
        if got != (200, want.encode()):
            fails.append(f"host → {host}:{p}: {got}")
    return fails


def _ctrd_lines() -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if "CTRD" in ln]


def test_two_ctrd_daemons_beside_dockerd_keep_their_rules_apart_and_one_leaving_spares_the_other(
    short_tmp: Path,
) -> None:
    """Two ctrd daemons and a dockerd on one firewall, all at once: traffic works on both; each
    daemon's rules are in chains of its own; stopping and cleaning up one leaves the other's
    rules and traffic untouched; containers of one cannot reach the other's (isolation across
    daemons, as across networks); when both are gone no CTRD chain or rule is left."""
    problems: list[str] = []
    daemons: list[DaemonProc] = []
    with docker_firewall_netns(forward_drop=False):
        try:
            with dockerd_running(short_tmp / "docker"):
                for name in ("a", "b"):
                    (short_tmp / name).mkdir()
                    daemons.append(start_daemon(short_tmp / name))
                a, b = daemons
                ka, kb = owner_key(str(a.root)), owner_key(str(b.root))
                assert ka != kb
                _wa, ca, ipa, pa = _web_and_client(a)
                wb, cb, ipb, pb = _web_and_client(b)
                assert _serves(a, ca, ipa, pa) + _serves(b, cb, ipb, pb) == []
                lines = _ctrd_lines()
                for k, d in ((ka, a), (kb, b)):
                    own = OwnChains(k)
                    assert f"-A {own.forward} -i {d.bridge} -j ACCEPT" in lines
                    assert f"-A CTRD-FORWARD -j {own.forward}" in lines
                    assert not [ln for ln in lines if d.bridge in ln and k not in ln.split()[1]]  # only in its own
                assert "-A FORWARD -j DOCKER-USER" in iptables_rules()  # dockerd's hooks are there too
                # isolated from each other, as two networks of one daemon are
                assert sh(a, ca, "ping", "-c", "1", "-W", "2", ipa)[0] == 0
                rc, out = sh(a, ca, "ping", "-c", "1", "-W", "2", ipb)
                assert rc == 1 and "0 packets received" in out, out

                # a goes (SIGTERM, then `ctrd --cleanup` of its bridge and rules); b is untouched
                b_rules = [ln for ln in _ctrd_lines() if kb in ln]
                assert a.stop() == 0
                r = subprocess.run([*a.argv(), "--cleanup"], capture_output=True, text=True, timeout=60)
                assert r.returncode == 0, r.stderr
                assert not [ln for ln in _ctrd_lines() if ka in ln]
                assert [ln for ln in _ctrd_lines() if kb in ln] == b_rules
                assert _serves(b, cb, ipb, pb) == []
                for ref in (wb, cb):
                    b.c.stop(ref, timeout=1)
        finally:
            for d in daemons:
                problems += teardown(d)
                print(f"--- ctrd log ({d.log_path}) ---\n{d.log()}")
        assert _ctrd_lines() == []  # the shared chains and hooks went with the last daemon
    if problems:
        pytest.fail("ctrd left things behind: " + "; ".join(problems))
