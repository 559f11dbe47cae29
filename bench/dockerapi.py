"""A connected docker Engine API client over its unix socket (http.client): docker's counterpart of
ctrd's gRPC path, so API figures compare API with API and CLI figures compare CLI with CLI."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from bench.stats import Steps, run_rm


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class DockerAPI:
    def __init__(self, socket_path: str, timeout: float = 120) -> None:
        self.conn = _UnixConnection(socket_path, timeout)

    def close(self) -> None:
        self.conn.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, "/v1.41" + path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"docker api {method} {path}: {resp.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    def create(self, image: str, cmd: list[str], network: str) -> str:
        body = {"Image": image, "Cmd": cmd, "HostConfig": {"NetworkMode": network}}
        return str(self.call("POST", "/containers/create", body)["Id"])

    def start(self, cid: str) -> None:
        self.call("POST", f"/containers/{cid}/start")

    def wait(self, cid: str) -> int:
        return int(self.call("POST", f"/containers/{cid}/wait")["StatusCode"])

    def remove(self, cid: str, force: bool = False) -> None:
        self.call("DELETE", f"/containers/{cid}?force={'true' if force else 'false'}")

    def run_rm(self, image: str, cmd: list[str], network: str, steps: Steps | None = None) -> int:
        return run_rm(self, image, cmd, network, steps)

    def stop(self, cid: str, timeout: int = 10) -> None:
        self.call("POST", f"/containers/{cid}/stop?t={timeout}")

    def running(self) -> list[dict[str, Any]]:
        return [c for c in self.call("GET", "/containers/json") if c.get("State") == "running"]

    def pid_of(self, cid: str) -> int:
        return int(self.call("GET", f"/containers/{cid}/json")["State"]["Pid"])
