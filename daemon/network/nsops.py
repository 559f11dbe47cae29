"""The netlink and namespace operations, run only inside the single-threaded network helper.

Entering a namespace changes the calling thread's view of the network: the helper does it on its
one and only thread (the source document's LockOSThread point) and always returns to the host's
namespace before it answers. A netlink socket stays bound to the namespace it was created in, so
"enter, open a socket, leave" gives a socket that configures the container's namespace from the
host's.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ctrd import errdefs
from daemon.network import syscalls

CONTAINER_IFNAME = "eth0"


def _nlerr(e: NetlinkError) -> int:
    return int(getattr(e, "code", 0) or 0)


class NetOps:
    """Every operation the helper serves; arguments and results are JSON-friendly."""

    def __init__(self) -> None:
        self.host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()
        os.close(self.host_ns)

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
                ipr = IPRoute()
            finally:
                self._back_home()
        finally:
            os.close(fd)
        try:
            yield ipr
        finally:
            ipr.close()

    def sandbox_create(self, path: str) -> None:
        """A new netns with lo up, persisted as an nsfs bind mount on `path`."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        except FileExistsError:
            raise errdefs.AlreadyExists(f"network namespace file {path} already exists")
        os.close(fd)
        mounted = False
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            try:
                syscalls.bind_mount("/proc/thread-self/ns/net", path)
                mounted = True
                with IPRoute() as ipr:
                    ipr.link("set", index=1, state="up")  # lo is always index 1 in a new netns
            finally:
                self._back_home()
        except BaseException as e:
            if mounted:
                syscalls.umount_detach(path)
            p.unlink(missing_ok=True)
            if isinstance(e, OSError | NetlinkError):
                raise errdefs.Internal(f"cannot create network namespace {path}: {e}")
            raise

    def sandbox_delete(self, path: str) -> None:
        """Unmount and remove a netns file; fine if either is already gone."""
        syscalls.umount_detach(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise errdefs.Internal(f"{path} is a directory, not a network namespace file")

    def list_sandboxes(self, directory: str) -> list[str]:
        try:
            return sorted(str(p) for p in Path(directory).iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def netns_info(self, netns: str) -> dict[str, Any]:
        """eth0's address, MAC and the default gateway inside a netns (container:<x> mode)."""
        out: dict[str, Any] = {"ip": "", "prefixlen": 0, "mac": "", "gateway": ""}
        with self._ns_ipr(netns) as ipr:
            idx = ipr.link_lookup(ifname=CONTAINER_IFNAME)
            if not idx:
                return out
            for link in ipr.get_links(idx[0]):
                out["mac"] = link.get_attr("IFLA_ADDRESS") or ""
            for a in ipr.get_addr(index=idx[0], family=2):
                out["ip"], out["prefixlen"] = a.get_attr("IFA_ADDRESS"), a["prefixlen"]
                break
            for r in ipr.get_routes(family=2, dst_len=0, table=254):
                gw = r.get_attr("RTA_GATEWAY")
                if gw:
                    out["gateway"] = gw
                    break
        return out

    # -- links ---------------------------------------------------------------------------------

    def _index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    def link_delete(self, name: str) -> bool:
        """Delete a link by name; False if it did not exist (idempotent teardown)."""
        try:
            self.ipr.link("del", ifname=name)
        except NetlinkError as e:
            if _nlerr(e) in (errno.ENODEV, errno.ENOENT, errno.EINVAL):
                return False
            raise errdefs.Internal(f"cannot delete link {name}: {e}")
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
        info = self.bridge_info(name)
        created = info is None
        if created:
            try:
                self.ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as e:
                raise errdefs.Internal(f"cannot create bridge {name}: {e}")
            info = self.bridge_info(name)
            assert info is not None
        elif info["kind"] != "bridge":
            raise errdefs.FailedPrecondition(f"link {name} exists and is a {info['kind'] or 'non-bridge'} link, not a bridge")
        want = f"{gateway}/{prefixlen}"
        try:
            if want not in info["addresses"]:
                self.ipr.addr("add", index=info["index"], address=gateway, prefixlen=prefixlen)
            self.ipr.link("set", index=info["index"], state="up")
        except NetlinkError as e:
            if created:
                self.link_delete(name)
            raise errdefs.Internal(f"cannot configure bridge {name} with {want}: {e}")
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

    def veth_attach(
        self, netns: str, host_name: str, bridge: str, ip: str, prefixlen: int, gateway: str, mac: str, mtu: int = 1500
    ) -> None:
        """A veth pair: `host_name` on the bridge, its peer created directly inside the netns as
        eth0 (no rename or move step), with the address, MAC and default route set."""
        br = self._index(bridge)
        if br is None:
            raise errdefs.NotFound(f"bridge {bridge} does not exist")
        nsfd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                self.ipr.link(
                    "add", ifname=host_name, kind="veth", mtu=mtu,
                    peer={"ifname": CONTAINER_IFNAME, "net_ns_fd": nsfd, "address": mac, "mtu": mtu},
                )
            except NetlinkError as e:
                if _nlerr(e) == errno.EEXIST:
                    raise errdefs.AlreadyExists(f"link {host_name} already exists")
                raise errdefs.Internal(f"cannot create veth {host_name}: {e}")
        finally:
            os.close(nsfd)
        try:
            idx = self._index(host_name)
            self.ipr.link("set", index=idx, master=br, state="up")
            with self._ns_ipr(netns) as ipr:
                eth = ipr.link_lookup(ifname=CONTAINER_IFNAME)[0]
                ipr.addr("add", index=eth, address=ip, prefixlen=prefixlen)
                ipr.link("set", index=eth, state="up")
                ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=eth)
        except BaseException as e:
            self.link_delete(host_name)  # takes the peer in the netns with it
            if isinstance(e, NetlinkError | OSError | IndexError):
                raise errdefs.Internal(f"cannot configure veth {host_name} ({ip}/{prefixlen}): {e}")
            raise

    # -- outbound NAT (opt-in; never used by the tests) ------------------------------------------

    def nat_enable(self, subnet: str, bridge: str) -> None:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        rule = ["POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"]
        if subprocess.run(["iptables", "-t", "nat", "-C", *rule], capture_output=True).returncode != 0:
            r = subprocess.run(["iptables", "-t", "nat", "-A", *rule], capture_output=True, text=True)
            if r.returncode != 0:
                raise errdefs.Internal(f"cannot add masquerade rule for {subnet}: {r.stderr.strip()}")
