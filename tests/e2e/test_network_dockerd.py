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
from pathlib import Path

import pytest

from tests.daemon_fixtures import DaemonProc, start_daemon, teardown
from tests.e2e.test_network_containers import bridge_containers_reach_each_other_and_the_host_reaches_httpd
from tests.netutil import docker_firewall_netns, free_test_subnet, iptables_rules

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not shutil.which("dockerd") or not shutil.which("docker"), reason="needs docker.io"),
]


def dockerd_answers(sock: Path) -> bool:
    r = subprocess.run(["docker", "-H", f"unix://{sock}", "version", "--format", "{{.Server.Version}}"],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0


@pytest.fixture
def ctrd_beside_dockerd(short_tmp: Path) -> Iterator[DaemonProc]:
    base = short_tmp / "docker"
    base.mkdir()
    sock = base / "d.sock"
    with docker_firewall_netns(forward_drop=False):
        log = open(base / "dockerd.log", "ab")  # noqa: SIM115 (the daemon writes to it)
        dockerd = subprocess.Popen(
            ["dockerd", "--data-root", str(base / "root"), "--exec-root", str(base / "e"), "-H", f"unix://{sock}",
             "--pidfile", str(base / "d.pid"), "--iptables=true", "--bip", _bip(), "--log-level", "warn"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        d: DaemonProc | None = None
        problems: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while not dockerd_answers(sock):
                if dockerd.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dockerd did not come up:\n{(base / 'dockerd.log').read_text()[-3000:]}")
                time.sleep(0.2)
            d = start_daemon(short_tmp)
            yield d
        finally:
            # dockerd first: it keeps a mount of its data root (under short_tmp) until it exits
            dockerd.send_signal(signal.SIGTERM)  # our own child, by its pid
            try:
                dockerd.wait(60)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait()
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
