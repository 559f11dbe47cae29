"""The netlink and namespace operations, run only inside the single-threaded network helper.

Entering a namespace changes the calling thread's view of the network: the helper does it on its
one and only thread (what Go's LockOSThread gives docker's libnetwork) and always returns to the host's
namespace before it answers. A netlink socket stays bound to the namespace it was created in, so
"enter, open a socket, leave" gives a socket that configures the container's namespace from the
host's.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ctrd import errdefs
from daemon.network import rtnl, syscalls
from daemon.network.rtnl import RtnlSocket

CONTAINER_IFNAME = "eth0"
PEER_INDEX = 2  # eth0's ifindex in a fresh netns (lo is 1); EBUSY falls back to the kernel's pick


def _close_ns(nsfd: int, ns: RtnlSocket | None) -> None:
    """Close a namespace's fd and the netlink socket bound in it (either may be absent)."""
    if ns is not None:
        ns.close()
    if nsfd >= 0:
        os.close(nsfd)


def _iproute() -> Any:
    """A request/response socket: no multicast groups, so the host's link churn (other
    containers, other tools) is never queued on it or parsed by pyroute2."""
    return IPRoute(groups=0)


def _nlerr(e: NetlinkError) -> int:
    return int(getattr(e, "code", 0) or 0)


def _why(e: BaseException) -> str:
    """One lower-case reason: 'file exists' rather than pyroute2's "(17, 'File exists')"."""
    if isinstance(e, NetlinkError) and _nlerr(e):
        return os.strerror(_nlerr(e)).lower()
    if isinstance(e, OSError) and e.strerror:
        return e.strerror  # syscalls.py puts the call and the path in it
    return str(e)


class NetOps:
    """Every operation the helper serves; arguments and results are JSON-friendly."""

    def __init__(self) -> None:
        self.host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.ipr = _iproute()
        self.rt = RtnlSocket()  # the hot path (rtnl.py); self.ipr for everything else
        self._bridges: dict[str, int] = {}
        # a network namespace made ahead with lo up (make_spare), and a netlink socket in it
        self._spare: tuple[int, RtnlSocket] | None = None

    def close(self) -> None:
        self._drop_spare()
        self.rt.close()
        self.ipr.close()
        os.close(self.host_ns)

    # -- the spare namespace -------------------------------------------------------------------

    @property
    def has_spare(self) -> bool:
        return self._spare is not None

    def make_spare(self) -> None:
        """Make the next sandbox_create's namespace ahead, while the helper is idle (the helper's
        loop says when): a new netns costs ~1.5 ms here (unshare(CLONE_NEWNET) and lo up; perf
        timestamps of a start, 2026-12-07), which was the longest of the start's parallel steps
        (mount, network, shim launch) once the shim and its create helper are forked ahead.
        Held by an fd only: nothing is mounted or left on disk, and it goes with the helper.
        Errors are ignored: sandbox_create then makes one as before."""
        if self._spare is not None:
            return
        nsfd = -1
        ns: RtnlSocket | None = None
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            try:
                nsfd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                ns = RtnlSocket()
            finally:
                self._back_home()
            ns.run([rtnl.link_up(1, "lo")])
        except (OSError, NetlinkError, errdefs.CtrdError):
            _close_ns(nsfd, ns)
            return
        self._spare = (nsfd, ns)

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            _close_ns(*spare)

    # -- namespaces ----------------------------------------------------------------------------

    def _back_home(self) -> None:
        try:
            syscalls.setns(self.host_ns, syscalls.CLONE_NEWNET)
        except OSError:
            # A helper stranded in a container's namespace would configure the wrong network on
            # the next request: die, the manager starts a fresh one.
            print("ctrd network helper: cannot return to the host netns, exiting", file=sys.stderr)
            os._exit(70)

    @contextmanager
    def _ns_ipr(self, netns: str) -> Iterator[Any]:
        """An IPRoute socket bound to the namespace persisted at `netns`."""
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise errdefs.NotFound(f"network namespace {netns} does not exist")
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
            try:
                ipr = _iproute()
            finally:
                self._back_home()
        finally:
            os.close(fd)
        try:
            yield ipr
        finally:
            ipr.close()

    def sandbox_create(self, path: str, veth: dict[str, Any] | None = None) -> None:
        """A new netns with lo up, persisted as an nsfs bind mount on `path`; with `veth`
        (host_name, bridge, ip, prefixlen, gateway, mac, mtu) also its bridge link. One request
        on purpose: one netlink socket into the namespace serves every step (fast path)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        except FileExistsError:
            raise errdefs.AlreadyExists(f"network namespace file {path} already exists")
        os.close(fd)
        mounted = False
        nsfd = -1
        ns: RtnlSocket | None = None
        spare, self._spare = self._spare, None
        try:
            lo_up = rtnl.link_up(1, "lo")  # lo is always index 1 in a new netns
            if spare is not None:  # made ahead, lo up already
                nsfd, ns = spare
                syscalls.bind_mount(f"/proc/self/fd/{nsfd}", path)
                mounted = True
            else:
                syscalls.unshare(syscalls.CLONE_NEWNET)
                try:
                    syscalls.bind_mount("/proc/thread-self/ns/net", path)
                    mounted = True
                    nsfd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                    ns = RtnlSocket()  # bound to the new namespace for its whole life
                finally:
                    self._back_home()
                if veth is None:
                    ns.run([lo_up])
            if veth is not None:
                assert ns is not None
                self._veth_into(ns, nsfd, lo_up, **veth)
        except BaseException as e:
            with contextlib.suppress(errdefs.CtrdError, OSError):  # the first error is the one to report
                if mounted:
                    syscalls.umount_detach(path)
                p.unlink(missing_ok=True)
            if isinstance(e, OSError | NetlinkError):
                raise errdefs.Internal(f"cannot create network namespace {path}: {_why(e)}")
            raise
        finally:
            _close_ns(nsfd, ns)

    def _veth_into(
        self, ns: RtnlSocket, nsfd: int, lo_up: rtnl.Step, host_name: str, bridge: str, ip: str, prefixlen: int,
        gateway: str, mac: str, mtu: int = 1500, ifname: str = CONTAINER_IFNAME, route: bool = True,
    ) -> None:
        """A veth pair in one request: `host_name` up on the bridge, its peer born inside the netns
        as `ifname` with its MAC and ifindex (no move or rename step); then one batch in the netns:
        lo up, the peer up, the address, the default route (`route`: the container's first
        network only). Deletes the pair if any step fails."""
        peer_index = PEER_INDEX if ifname == CONTAINER_IFNAME else 0
        fresh = False
        while True:
            try:
                self.rt.run([rtnl.veth_with_peer_in(
                    host_name, self._bridge_index(bridge, fresh=fresh), nsfd, ifname, mac, mtu, peer_index,
                )])
                break
            except rtnl.RtnlError as e:
                if e.errno == errno.EEXIST:
                    raise errdefs.AlreadyExists(f"link {host_name} already exists")
                if e.errno == errno.EBUSY and peer_index:
                    peer_index = 0  # the namespace already has that ifindex: let the kernel pick
                elif e.errno in (errno.ENODEV, errno.EINVAL) and not fresh:
                    fresh = True  # maybe a stale cached bridge index (no such master is EINVAL)
                else:
                    raise errdefs.Internal(f"cannot create veth {host_name}: {os.strerror(e.errno or 0).lower()}")
        try:
            eth = peer_index or ns.link_index(ifname)
            if not eth:
                raise errdefs.Internal(f"{ifname} did not appear in the container's namespace")
            steps = [lo_up, rtnl.link_up(eth, ifname), rtnl.ipv4_address(eth, ip, prefixlen, ifname)]
            ns.run([*steps, rtnl.default_route(gateway, eth)] if route else steps)
        except BaseException as e:
            with contextlib.suppress(errdefs.CtrdError):
                self.link_delete(host_name)  # takes the peer in the netns with it
            if isinstance(e, OSError):
                raise errdefs.Internal(f"cannot configure veth {host_name} ({ip}/{prefixlen}): {_why(e)}")
            raise

    def endpoint_add(self, netns: str, veth: dict[str, Any]) -> None:
        """One more network in an existing namespace (`network connect`): a veth on `veth`'s
        bridge whose peer is born in the namespace as veth["ifname"], with no default route."""
        try:
            nsfd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise errdefs.NotFound(f"network namespace {netns} does not exist")
        ns: RtnlSocket | None = None
        try:
            syscalls.setns(nsfd, syscalls.CLONE_NEWNET)
            try:
                ns = RtnlSocket()
            finally:
                self._back_home()
            self._veth_into(ns, nsfd, rtnl.link_up(1, "lo"), **{**veth, "route": False})
        except OSError as e:
            raise errdefs.Internal(f"cannot add {veth.get('ifname')} to {netns}: {_why(e)}")
        finally:
            if ns is not None:
                ns.close()
            os.close(nsfd)

    def netns_info(self, netns: str) -> dict[str, Any]:
        """eth0's address, MAC and the default gateway inside a netns (container:<x> mode)."""
        out: dict[str, Any] = {"ip": "", "prefixlen": 0, "mac": "", "gateway": ""}
        with self._ns_ipr(netns) as ipr:
            idx = self._index(CONTAINER_IFNAME, ipr)
            if idx is None:
                return out
            for link in ipr.get_links(idx):
                out["mac"] = link.get_attr("IFLA_ADDRESS") or ""
            for a in ipr.get_addr(index=idx, family=2):
                out["ip"], out["prefixlen"] = a.get_attr("IFA_ADDRESS"), a["prefixlen"]
                break
            for r in ipr.get_routes(family=2, dst_len=0, table=254):
                gw = r.get_attr("RTA_GATEWAY")
                if gw:
                    out["gateway"] = gw
                    break
        return out

    # -- links ---------------------------------------------------------------------------------

    def _index(self, ifname: str, ipr: Any = None) -> int | None:
        """A by-name RTM_GETLINK (the kernel looks it up; link_lookup would dump every link)."""
        try:
            return int((ipr or self.ipr).link("get", ifname=ifname)[0]["index"])
        except NetlinkError as e:
            if _nlerr(e) in (errno.ENODEV, errno.ENOENT):
                return None
            raise

    def _bridge_index(self, bridge: str, fresh: bool = False) -> int:
        """Cached: ifindexes are not reused within a netns until they wrap, and a deleted bridge
        fails the veth request (EINVAL), which refreshes the cache."""
        idx = None if fresh else self._bridges.get(bridge)
        if idx is None:
            idx = self._index(bridge)
            if idx is None:
                raise errdefs.NotFound(f"bridge {bridge} does not exist")
            self._bridges[bridge] = idx
        return idx

    def link_delete(self, name: str) -> bool:
        """Delete a link by name; False if it did not exist (idempotent teardown)."""
        self._bridges.pop(name, None)
        try:
            self.ipr.link("del", ifname=name)
        except NetlinkError as e:
            if _nlerr(e) in (errno.ENODEV, errno.ENOENT, errno.EINVAL):
                return False
            raise errdefs.Internal(f"cannot delete link {name}: {_why(e)}")
        return True

    def bridge_info(self, name: str) -> dict[str, Any] | None:
        idx = self._index(name)
        if idx is None:
            return None
        kind = ""
        for link in self.ipr.get_links(idx):
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
        addrs = [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in self.ipr.get_addr(index=idx, family=2)]
        ports = [lk.get_attr("IFLA_IFNAME") for lk in self.ipr.get_links() if lk.get_attr("IFLA_MASTER") == idx]
        return {"index": idx, "kind": kind, "addresses": addrs, "ports": ports}

    def bridge_ensure(self, name: str, gateway: str, prefixlen: int, mtu: int = 1500) -> dict[str, Any]:
        """Create the bridge if missing, give it the gateway address, bring it up."""
        found = self.bridge_info(name)
        created = found is None
        if found is None:
            try:
                self.ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as e:
                raise errdefs.Internal(f"cannot create bridge {name}: {_why(e)}")
            found = self.bridge_info(name)
            if found is None:
                raise errdefs.Internal(f"bridge {name} vanished right after it was created")
        info = found
        if info["kind"] != "bridge":
            raise errdefs.FailedPrecondition(f"link {name} exists and is a {info['kind'] or 'non-bridge'} link, not a bridge")
        want = f"{gateway}/{prefixlen}"
        try:
            if want not in info["addresses"]:
                self.ipr.addr("add", index=info["index"], address=gateway, prefixlen=prefixlen)
            self.ipr.link("set", index=info["index"], state="up")
        except NetlinkError as e:
            if created:
                self.link_delete(name)
            raise errdefs.Internal(f"cannot configure bridge {name} with {want}: {_why(e)}")
        self._bridges[name] = info["index"]
        return {"created": created}

    def bridge_ports(self, bridge: str) -> list[str]:
        info = self.bridge_info(bridge)
        return [] if info is None else list(info["ports"])

    def routed_networks(self) -> list[str]:
        """IPv4 networks the host already reaches: route destinations and interface networks."""
        nets = set()
        for r in self.ipr.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                nets.add(f"{dst}/{r['dst_len']}")
        for a in self.ipr.get_addr(family=2):
            iface = ipaddress.IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
            if not iface.ip.is_loopback:
                nets.add(str(iface.network))
        return sorted(nets)

    def links_present(self, names: list[str]) -> list[str]:
        """Which of these host links still exist (the manager's veth reaper asks)."""
        if len(names) > 8:
            have = {lk.get_attr("IFLA_IFNAME") for lk in self.ipr.get_links()}
            return [n for n in names if n in have]
        return [n for n in names if self._index(n) is not None]
