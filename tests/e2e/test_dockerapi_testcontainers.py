"""testcontainers-python against ctrd's Docker API socket (its cleanup container, Ryuk, disabled: it
bind-mounts the docker socket): a container with an exposed port, its mapped port, a log wait, exec."""

from __future__ import annotations

import urllib.request

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_dockerapi_clients import dk, ok, sock

pytestmark = [pytest.mark.root]


def test_testcontainers_port_and_logs(ctrd: DaemonProc, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock(ctrd)}")
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setenv("DOCKER_CONFIG", str(ctrd.base / "docker-config"))
    core = pytest.importorskip("testcontainers.core.container")
    strategies = pytest.importorskip("testcontainers.core.wait_strategies")
    ok(dk(ctrd, "run", "--rm", "busybox", "true"))  # busybox is made locally; nothing to pull
    c = core.DockerContainer("busybox").with_exposed_ports(80).with_command(
        ["sh", "-c", "echo served > /index.html; echo listening; exec httpd -f -p 80 -h /"]
    ).waiting_for(strategies.LogMessageWaitStrategy("listening"))
    with c:
        port = int(c.get_exposed_port(80))
        host = c.get_container_host_ip()
        assert urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10).read() == b"served\n"
        code, out = c.exec(["cat", "/index.html"])
        assert (code, out) == (0, b"served\n")
    assert ctrd.client.list() == []  # stopped and removed on exit
