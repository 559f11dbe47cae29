"""Published ports seen from everywhere a user reaches them (root): the host through 127.0.0.1 and
through its bridge address, another container and the publishing container itself through the
host's address (hairpin) — with dockerd's firewall state (FORWARD DROP, br_netfilter) in a
namespace of the test's own, and on a user network."""

from __future__ import annotations

import pytest

from ctrd.v1 import container_pb2 as cpb
from ctrd.v1 import network_pb2 as npb
from tests.daemon_fixtures import DaemonProc
from tests.e2e.test_network_containers import (  # noqa: F401
    ctrd_behind_docker_firewall,
    http_get,
    httpd,
    sh,
    wait_for,
)
from tests.e2e.test_network_user import Nets
from tests.netutil import free_test_subnet

pytestmark = pytest.mark.root


def _hairpin_paths_work(d: DaemonProc, network: str = "") -> None:
    extra = {"network_mode": network} if network else {}
    web = httpd(d, "web", hostname="pinhost", port_bindings=[cpb.PortBinding(container_port=80)], **extra)
    other = d.c.run("busybox", ["sleep", "300"], name="other", **extra)
    net = d.c.inspect(web)["NetworkSettings"]
    port = int(net["Ports"]["80/tcp"][0]["HostPort"])
    gateway = net["Gateway"]
    assert gateway and port > 0
    assert wait_for(lambda: _answers(net["IPAddress"]), 10.0)  # httpd listens before the checks
    assert http_get("127.0.0.1", port, "/hostname") == (200, b"pinhost\n")  # host → loopback
    assert http_get(gateway, port, "/hostname") == (200, b"pinhost\n")  # host → its bridge address
    for ref in (other, web):  # another container, then the publisher itself (hairpin)
        rc, out = sh(d, ref, "wget", "-q", "-O", "-", f"http://{gateway}:{port}/hostname")
        assert (rc, out) == (0, "pinhost\n"), (ref, rc, out)
    for ref in (web, other):
        d.c.stop(ref, timeout=1)


def _answers(ip: str) -> bool:
    try:
        return http_get(ip, 80, "/hostname", timeout=1.0)[0] == 200
    except OSError:
        return False


def test_published_port_from_host_other_container_and_itself_behind_dockers_firewall(
    ctrd_behind_docker_firewall: DaemonProc,  # noqa: F811
) -> None:
    _hairpin_paths_work(ctrd_behind_docker_firewall)


def test_published_port_hairpin_on_a_user_network(ctrd_behind_docker_firewall: DaemonProc) -> None:  # noqa: F811
    d = ctrd_behind_docker_firewall
    n = Nets(d)
    n.create("pins", subnet=free_test_subnet())
    _hairpin_paths_work(d, "pins")
    for ref in ("web", "other"):
        d.c.remove(ref)
    n.call("Remove", npb.NetworkRemoveRequest(id="pins"))
