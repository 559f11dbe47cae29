"""The OCI bundle the daemon writes for the shim: defaults plus this container's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctrd.errdefs import InvalidArgument
from daemon.containers.bundle import build_spec, resolve_user
from tests.daemon_fakes import write_rootfs_files
from tests.unit.test_daemon_record import make


def test_spec_for_a_container(tmp_path: Path) -> None:
    rootfs = tmp_path / "merged"
    write_rootfs_files(rootfs)
    c = make()
    etc = {f"/etc/{n}": str(tmp_path / n) for n in ("hostname", "hosts", "resolv.conf")}
    spec = build_spec(c, rootfs, etc, "/run/ctrd/netns/aaaaaaaaaaaa", "ctrdt-x")
    assert spec["root"] == {"path": str(rootfs), "readonly": False}
    assert spec["process"]["args"] == ["sh", "-c", "echo hi"]
    assert "A=1" in spec["process"]["env"] and "HOSTNAME=h" in spec["process"]["env"]
    assert any(e.startswith("PATH=") for e in spec["process"]["env"])
    assert spec["process"]["user"]["uid"] == 0 and spec["process"]["cwd"] == "/"
    assert spec["hostname"] == "h"
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    for name in ("hostname", "hosts", "resolv.conf"):
        assert by_dest[f"/etc/{name}"]["source"] == str(tmp_path / name) and by_dest[f"/etc/{name}"]["type"] == "bind"
    assert by_dest["/data"]["source"] == "/src" and "ro" in by_dest["/data"]["options"]
    assert by_dest["/t"]["type"] == "tmpfs" and "size=1024" in by_dest["/t"]["options"]
    assert "/proc" in by_dest and "/dev" in by_dest  # the runtime's defaults are kept
    ns = {n["type"]: n for n in spec["linux"]["namespaces"]}
    assert ns["network"] == {"type": "network", "path": "/run/ctrd/netns/aaaaaaaaaaaa"}
    assert {"pid", "mount", "uts", "ipc"} <= set(ns)
    assert spec["linux"]["cgroupsPath"] == f"/ctrdt-x/{c.id}"
    res = spec["linux"]["resources"]
    assert res["memory"]["limit"] == 1 << 26 and res["pids"]["limit"] == 50
    assert res["cpu"] == {"quota": 100_000, "period": 100_000}
    caps = spec["process"]["capabilities"]
    assert "CAP_NET_ADMIN" in caps["bounding"] and "CAP_CHOWN" in caps["effective"]
    assert caps["effective"] == caps["bounding"] == caps["permitted"]


def test_host_network_and_readonly_and_cap_drop(tmp_path: Path) -> None:
    import dataclasses

    rootfs = tmp_path / "merged"
    write_rootfs_files(rootfs)
    c = make()
    c.host_config = dataclasses.replace(c.host_config, network_mode="host", read_only_rootfs=True,
                                        cap_drop=("ALL",), cap_add=("CAP_KILL",))
    spec = build_spec(c, rootfs, {}, "", "ctrd")
    assert "network" not in {n["type"] for n in spec["linux"]["namespaces"]}
    assert spec["root"]["readonly"] is True
    assert spec["process"]["capabilities"]["bounding"] == ["CAP_KILL"]


def test_user_resolution(tmp_path: Path) -> None:
    write_rootfs_files(tmp_path)
    assert resolve_user(tmp_path, "") == (0, 0, [])
    assert resolve_user(tmp_path, "nobody") == (65534, 65534, [50])
    assert resolve_user(tmp_path, "1234:5") == (1234, 5, [])
    assert resolve_user(tmp_path, "nobody:staff")[:2] == (65534, 50)
    with pytest.raises(InvalidArgument, match=r"^user: unable to find user ghost"):
        resolve_user(tmp_path, "ghost")
    with pytest.raises(InvalidArgument, match=r"^user: unable to find group nogrp"):
        resolve_user(tmp_path, "root:nogrp")


def test_tty_terminal_term_and_console_size(tmp_path: Path) -> None:
    import dataclasses

    rootfs = tmp_path / "merged"
    write_rootfs_files(rootfs)
    c = make()
    spec = build_spec(c, rootfs, {}, "", "ctrd")
    assert spec["process"]["terminal"] is False and "consoleSize" not in spec["process"]
    assert not any(e.startswith("TERM=") for e in spec["process"]["env"])
    c.config = dataclasses.replace(c.config, tty=True, open_stdin=True)
    c.host_config = dataclasses.replace(c.host_config, console_size=(40, 120))
    spec = build_spec(c, rootfs, {}, "", "ctrd")
    assert spec["process"]["terminal"] is True
    assert spec["process"]["consoleSize"] == {"height": 40, "width": 120}
    assert "TERM=xterm" in spec["process"]["env"]  # as docker, for a tty


def test_thermal_throttle_masked_per_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docker masks cpu<N>/thermal_throttle for each CPU that has one (GHSA-6fw5-f8r9-fgfm)."""
    from runtime import defaults

    cpus = tmp_path / "cpu"
    for n in (0, 2, 10):
        (cpus / f"cpu{n}" / "thermal_throttle").mkdir(parents=True)
    (cpus / "cpu1").mkdir()  # a CPU without the directory: nothing to mask
    (cpus / "cpufreq" / "thermal_throttle").mkdir(parents=True)  # not a cpu<N>
    want = [f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in (0, 2, 10)]
    assert defaults.thermal_throttle_paths(str(cpus)) == want
    assert defaults.thermal_throttle_paths(str(tmp_path / "absent")) == []

    import daemon.containers.bundle as bundle
    monkeypatch.setattr(bundle, "thermal_throttle_paths", lambda: defaults.thermal_throttle_paths(str(cpus)))
    rootfs = tmp_path / "merged"
    write_rootfs_files(rootfs)
    etc = {f"/etc/{n}": str(tmp_path / n) for n in ("hostname", "hosts", "resolv.conf")}
    spec = build_spec(make(), rootfs, etc, "/run/ctrd/netns/aaaaaaaaaaaa", "ctrdt-x")
    masked = spec["linux"]["maskedPaths"]
    assert masked[-3:] == want and "/proc/kcore" in masked
