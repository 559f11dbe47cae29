"""Routes: docker's paths, bare and under /v1.NN (the version the client asked for is kept on the
request so answers can be shaped per version)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daemon.dockerapi.errors import HTTPError
from daemon.dockerapi.http import Reply, Request

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"

Handler = Callable[[Request], Awaitable[Reply | None]]
_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")
_PARAM = re.compile(r"\{(\w+)(?::([^}]+))?\}")


def version_tuple(v: str) -> tuple[int, int]:
    major, _, minor = v.partition(".")
    return int(major), int(minor or 0)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """`path` with `{name}` (one segment) or `{name:regex}` parameters."""

        def param(m: re.Match[str]) -> str:
            return f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})"

        self.routes.append(Route(method, re.compile("^" + _PARAM.sub(param, path) + "$"), handler))

    def resolve(self, req: Request) -> Handler:
        path = req.path
        req.api_version = API_VERSION
        m = _VERSIONED.match(path)
        if m is not None:
            asked = m.group(1)
            if version_tuple(asked) > version_tuple(API_VERSION):
                raise HTTPError(400, f"client version {asked} is too new. Maximum supported API version is {API_VERSION}")
            if version_tuple(asked) < version_tuple(MIN_API_VERSION):
                raise HTTPError(
                    400, f"client version {asked} is too old. Minimum supported API version is {MIN_API_VERSION}, "
                    "please upgrade your client to a newer version",
                )
            req.api_version = asked
            path = m.group(2)
        if len(path) > 1:
            path = path.rstrip("/")
        allowed = False
        for r in self.routes:
            pm = r.pattern.match(path)
            if pm is None:
                continue
            if r.method != req.method and not (r.method == "GET" and req.method == "HEAD"):
                allowed = True
                continue
            req.params = pm.groupdict()
            return r.handler
        if allowed:
            raise HTTPError(405, f"method {req.method} not allowed for {path}")
        raise HTTPError(404, "page not found")
