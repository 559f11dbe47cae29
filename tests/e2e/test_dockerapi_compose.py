"""Debian's docker-compose 1.29 (Python, on docker-py) against ctrd's Docker API socket: a two-service
project on a user network with a named volume and a healthcheck; the client starts only once the web
is healthy (`depends_on: condition: service_healthy`, which compose waits for through inspect's
State.Health) and reaches it by name; `down -v` removes the volume too."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_dockerapi_clients import dk, ok, sock

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not shutil.which("docker-compose"), reason="needs docker-compose (apt)")]

PROJECT = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "test -e /www/index.html || echo hi from web > /www/index.html; echo web up; exec httpd -f -p 80 -h /www"]
    networks: [appnet]
    volumes: ["webdata:/www"]
    labels: {tier: front}
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O - http://127.0.0.1/index.html"]
      interval: 1s
      retries: 3
  client:
    image: busybox
    command: ["sh", "-c", "wget -qO- http://web/index.html; exec sleep 300"]
    depends_on:
      web: {condition: service_healthy}
    networks: [appnet]
networks:
  appnet: {}
volumes:
  webdata: {}
"""

def compose(d: DaemonProc, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    env.update(DOCKER_HOST=f"unix://{sock(d)}", DOCKER_CONFIG=str(d.base / "docker-config"))
    return subprocess.run(["docker-compose", "-p", "dapi", "-f", str(d.base / "compose.yml"), *args],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def test_compose_up_ps_logs_exec_down(ctrd: DaemonProc) -> None:  # noqa: F811
    (ctrd.base / "compose.yml").write_text(PROJECT)
    ok(dk(ctrd, "run", "--rm", "busybox", "true"))  # busybox is made locally; compose must not pull it
    ok(compose(ctrd, "up", "-d"))
    try:
        ps = ok(compose(ctrd, "ps"))
        assert "dapi_web_1" in ps and "dapi_client_1" in ps and "Up" in ps
        deadline = time.monotonic() + 30
        while "hi from web" not in (logs := ok(compose(ctrd, "logs", "--no-color", "client"))):
            assert time.monotonic() < deadline, logs
            time.sleep(0.2)
        assert ok(dk(ctrd, "ps", "-q", "--filter", "label=tier=front")).strip()
        assert ok(compose(ctrd, "exec", "-T", "web", "cat", "/www/index.html")) == "hi from web\n"
        web = ok(dk(ctrd, "ps", "-q", "--no-trunc", "--filter", "name=dapi_web_1")).strip()
        state = ok(dk(ctrd, "inspect", "-f", "{{.State.Health.Status}} {{range .Mounts}}{{.Name}}{{end}}", web)).split()
        assert state == ["healthy", "dapi_webdata"]
        assert "dapi_webdata" in ok(dk(ctrd, "volume", "ls", "-q")).split()
    finally:
        down = compose(ctrd, "down", "-v", "-t", "1")
    ok(down)
    assert ctrd.client.list() == []
    assert "dapi_appnet" not in ok(dk(ctrd, "network", "ls"))
    assert "dapi_webdata" not in ok(dk(ctrd, "volume", "ls", "-q")).split()
