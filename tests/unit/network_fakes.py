"""A fake network helper for NetworkManager's unit tests: the helper's visible state, no kernel."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ctrd import errdefs
from daemon.network.manager import NetworkManager

CID = "0123456789ab" + "c" * 52


class FakeOps:
    """Models the helper's visible state: netns files, host links, bridge ports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sandboxes: set[str] = set()
        self.links: dict[str, str] = {}  # name -> master ("" for none)
        self.bridge_addr: dict[str, list[str]] = {}
        self.fail: dict[str, errdefs.CtrdError] = {}
        self.started = self.closed = False
        self.veth_of: dict[str, str] = {}
        self.keep_veths = False  # True: a process still holds the netns, the veth outlives it
        self.routes = ["192.0.2.0/24", "10.88.0.0/16"]

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def call(self, op: str, **a: Any) -> Any:
        self.calls.append((op, a))
        await asyncio.sleep(0)  # let concurrent setups interleave
        if op in self.fail:
            raise self.fail[op]
        if op == "sandbox_create":
            if a["path"] in self.sandboxes:
                raise errdefs.AlreadyExists(f"network namespace file {a['path']} already exists")
            v = a.get("veth")
            if v is not None:
                if v["host_name"] in self.links:
                    raise errdefs.AlreadyExists(f"link {v['host_name']} already exists")
                self.links[v["host_name"]] = v["bridge"]
                self.veth_of[a["path"]] = v["host_name"]
            self.sandboxes.add(a["path"])
            return None
        if op == "sandbox_delete":
            self.sandboxes.discard(a["path"])
            if not self.keep_veths:  # the kernel takes the pair down with the namespace
                self.links.pop(self.veth_of.pop(a["path"], ""), None)
            return None
        if op == "list_sandboxes":
            return sorted(p for p in self.sandboxes if p.startswith(a["directory"] + "/"))
        if op == "bridge_info":
            if a["name"] not in self.bridge_addr:
                return None
            ports = [n for n, m in self.links.items() if m == a["name"]]
            return {"index": 9, "kind": "bridge", "addresses": self.bridge_addr[a["name"]], "ports": ports}
        if op == "bridge_ensure":
            self.bridge_addr[a["name"]] = [f"{a['gateway']}/{a['prefixlen']}"]
            return {"created": True}
        if op == "routed_networks":
            return self.routes
        if op == "bridge_ports":
            return [n for n, m in self.links.items() if m == a["bridge"]]
        if op == "link_delete":
            existed = a["name"] in self.links or a["name"] in self.bridge_addr
            self.links.pop(a["name"], None)
            self.bridge_addr.pop(a["name"], None)
            return existed
        if op == "links_present":
            return [n for n in a["names"] if n in self.links]
        if op == "endpoint_add":  # `network connect`: one more veth into an existing namespace
            if a["netns"] not in self.sandboxes:
                raise errdefs.NotFound(f"network namespace {a['netns']} does not exist")
            v = a["veth"]
            self.links[v["host_name"]] = v["bridge"]
            return None
        if op == "netns_info":
            return {"ip": "10.250.0.2", "prefixlen": 24, "mac": "02:42:0a:fa:00:02", "gateway": "10.250.0.1"}
        raise AssertionError(f"unexpected op {op}")

    def ops(self) -> list[str]:
        return [c[0] for c in self.calls]


def make(tmp_path: Path, fake: FakeOps, **kw: Any) -> NetworkManager:
    kw.setdefault("subnet", "10.250.0.0/24")
    return NetworkManager(tmp_path / "root", tmp_path / "run", bridge="ctrdt0", ops=fake, port_picker=lambda p, h: 45000, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class FakeFirewall:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def add_network(self, net: Any) -> None:
        self.calls.append(("add", net))

    async def remove_network(self, bridge: str) -> None:
        self.calls.append(("remove", bridge))

    async def remove_chains_if_unused(self) -> bool:
        self.calls.append(("chains", None))
        return True
