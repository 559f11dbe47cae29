"""Issue 20's application test: a two-container app wired the way a compose file wires it — a web
container with a healthcheck serving a named volume on a user network, and a client started only
once the web is healthy (compose's `depends_on: condition: service_healthy`, done here by the test
as compose does it: polling inspect) that reaches it by name. Across kill -9 of ctrd the shim keeps
checking health, the volume keeps its data, and after the restart everything answers as before."""

from __future__ import annotations

from typing import Any

import pytest

from ctrd.timefmt import parse_rfc3339
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import ctl
from tests.e2e.test_health_logs_listing import health, shim_health, until

pytestmark = pytest.mark.root

WEB = "test -e /www/ok || echo ok > /www/ok; test -e /www/data || echo first > /www/data; exec httpd -f -p 80 -h /www"


def ok(r: Any) -> str:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return str(r.stdout)


def fetch(d: DaemonProc, name: str) -> str:
    """A client container on the app's network, started like compose starts a dependent service."""
    return ok(ctl(d, "run", "--rm", "--name", name, "--network", "appnet", "busybox",
                  "wget", "-q", "-O", "-", "http://web/data"))


def test_web_and_client_across_kill9_of_ctrd(ctrd: DaemonProc) -> None:  # noqa: F811
    ok(ctl(ctrd, "network", "create", "appnet"))
    ok(ctl(ctrd, "volume", "create", "webdata"))
    try:
        web = ok(ctl(ctrd, "run", "-d", "--name", "web", "--network", "appnet", "-v", "webdata:/www",
                     "--health-cmd", "wget -q -O - http://127.0.0.1/ok", "--health-interval", "250ms",
                     "--health-retries", "2", "busybox", "sh", "-c", WEB)).strip()
        until(ctrd, web, lambda i: health(i)["Status"] == "healthy")
        assert fetch(ctrd, "client1") == "first\n"

        before = health(ctrd.c.inspect(web))
        ctrd.kill9()
        # The daemon is dead: the shim goes on probing (its sequence grows) ...
        seen = shim_health(ctrd, web, 0)
        later = shim_health(ctrd, web, seen.seq)
        assert later.seq > seen.seq and later.status == "healthy"
        # ... and the named volume is the web's storage, written from the host meanwhile.
        data = ctrd.root / "volumes" / "webdata" / "_data" / "data"
        assert data.read_text() == "first\n"
        data.write_text("second\n")

        ctrd.start()
        info = until(ctrd, web, lambda i: health(i)["Status"] == "healthy" and i["State"]["Running"])
        # probes ran while the daemon was away: the log holds results newer than its last view
        newest = parse_rfc3339(health(info)["Log"][-1]["Start"])
        assert newest > parse_rfc3339(before["Log"][-1]["Start"])
        assert fetch(ctrd, "client2") == "second\n"
        mounts = info["Mounts"]
        assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", "webdata", "/www")]
        assert ok(ctl(ctrd, "volume", "ls", "-q")).split() == ["webdata"]
        # the volume outlives the containers; removing it while in use is refused, as docker
        r = ctl(ctrd, "volume", "rm", "webdata")
        assert r.returncode != 0 and "volume is in use" in r.stderr
    finally:
        ctl(ctrd, "rm", "-f", "web")
        ctl(ctrd, "volume", "rm", "webdata")
        ctl(ctrd, "network", "rm", "appnet")
