"""Volumes and mounts against a real ctrd (issue 20): named volumes across containers and across
kill -9 of the daemon, docker's copy-up, anonymous volumes (-v /path, the image's VOLUME) and
rm -v / --rm, tmpfs-type local volumes mounted only while used, --volumes-from, refusals with
docker's words, and inspect's Mounts key sets beside Debian's dockerd."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.e2e.test_ctrctl_e2e import CTRCTL, ctl
from tests.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.root
SEEDED = "seeded:1"


def _seeded_image(d: DaemonProc, tmp: Path) -> str:
    """busybox with /seed/hello (mode 0640, uid 1000) and VOLUME /seed."""
    root = make_busybox_rootfs(tmp / "seed-rootfs")
    (root / "seed").mkdir()
    (root / "seed" / "hello").write_text("from the image\n")
    os.chown(root / "seed" / "hello", 1000, 1000)
    os.chmod(root / "seed" / "hello", 0o640)
    tar = tmp / "seed.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    r = ctl(d, "image", "import", "-c", "VOLUME /seed", str(tar), SEEDED)
    assert r.returncode == 0, r.stderr
    return SEEDED


def _ok(r: object) -> str:
    assert isinstance(r, subprocess.CompletedProcess)
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return str(r.stdout)


def _wait_destroyed(d: DaemonProc, cid: str, since: str, timeout: float = 60) -> None:
    """Until the container's destroy event (the daemon's own word that auto-remove finished)."""
    p = subprocess.Popen([*CTRCTL, "-a", d.address, "events", "--since", since, "--filter", f"container={cid}",
                          "--filter", "event=destroy"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        assert ready and "destroy" in p.stdout.readline(), f"no destroy event for {cid}"
    finally:
        p.kill()
        p.wait()


def _volumes(d: DaemonProc) -> list[str]:
    return _ok(ctl(d, "volume", "ls", "-q")).split()


def _inspect(d: DaemonProc, ref: str) -> dict[str, Any]:
    obj = json.loads(_ok(ctl(d, "inspect", ref)))[0]
    assert isinstance(obj, dict)
    return obj


def test_named_volume_verbs_and_refusals(ctrd: DaemonProc) -> None:  # noqa: F811
    assert _ok(ctl(ctrd, "volume", "create", "--label", "team=a", "data1")).strip() == "data1"
    v = json.loads(_ok(ctl(ctrd, "volume", "inspect", "data1")))[0]
    assert set(v) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert (v["Name"], v["Driver"], v["Scope"], v["Labels"]) == ("data1", "local", "local", {"team": "a"})
    assert v["Mountpoint"] == str(ctrd.root / "volumes" / "data1" / "_data")
    assert (ctrd.root / "volumes" / "data1" / "_data").is_dir()
    anon = _ok(ctl(ctrd, "volume", "create")).strip()
    assert len(anon) == 64 and int(anon, 16) >= 0
    assert _ok(ctl(ctrd, "volume", "ls", "-q", "--filter", "label=team=a")).split() == ["data1"]
    assert _ok(ctl(ctrd, "volume", "ls", "-q", "--filter", "name=ata")).split() == ["data1"]

    _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "data1:/data", "busybox", "sh", "-c", "echo hi > /data/f"))
    assert _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "data1:/data:ro", "busybox", "cat", "/data/f")) == "hi\n"
    r = ctl(ctrd, "run", "--rm", "--network", "none", "-v", "data1:/data:ro", "busybox", "touch", "/data/g")
    assert r.returncode != 0 and "Read-only file system" in r.stderr

    # in use (even by a stopped container): docker's words, exit 1, the volume kept
    cid = _ok(ctl(ctrd, "create", "--network", "none", "-v", "data1:/data", "busybox", "true")).strip()
    assert _ok(ctl(ctrd, "volume", "ls", "-q", "--filter", "dangling=true")).split() == [anon]
    r = ctl(ctrd, "volume", "rm", "data1")
    assert r.returncode == 1
    assert r.stderr.strip() == f"Error response from daemon: remove data1: volume is in use - [{cid}]"
    r = ctl(ctrd, "volume", "prune", "-a", "-f")  # in use: kept; the anonymous one goes
    assert anon in _ok(r) and "data1" not in r.stdout
    _ok(ctl(ctrd, "rm", cid))
    _ok(ctl(ctrd, "volume", "rm", "data1"))
    assert not (ctrd.root / "volumes" / "data1").exists()
    assert _ok(ctl(ctrd, "volume", "rm", "-f", "data1")).strip() == "data1"
    assert ctl(ctrd, "volume", "rm", "data1").returncode == 1

    # bad input: one line naming the field, nothing made
    for args, named in ((("volume", "create", "a/b"), "name"), (("volume", "create", ".."), "name"),
                        (("volume", "create", "-o", "bogus=1", "x1"), "bogus")):
        r = ctl(ctrd, *args)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and named in r.stderr, (args, r.stderr)
    for flags, named in ((["-v", "../x:/d"], "mounts.source"), (["-v", "a/b:/d"], "mounts.source"),
                         (["--mount", "type=volume,src=v1,dst=/d,foo=bar"], "foo"),
                         (["--mount", "type=volume,src=v1,dst=/d,tmpfs-size=1m"], "tmpfs-size"),
                         (["--mount", "type=volume,dst=/d,ro"], "mounts.read_only")):
        r = ctl(ctrd, "run", "--rm", "--network", "none", *flags, "busybox", "true")
        assert r.returncode == 125 and len(r.stderr.splitlines()) == 1 and named in r.stderr, (flags, r.stderr)
    assert _volumes(ctrd) == []
    assert _ok(ctl(ctrd, "ps", "-aq")) == ""


def test_copy_up_anonymous_volumes_rm_v_and_volumes_from(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    image = _seeded_image(ctrd, short_tmp)
    # the image's VOLUME: an anonymous volume, populated from the image (owner and mode kept)
    cid = _ok(ctl(ctrd, "create", "--network", "none", image, "sh", "-c", "stat -c '%u %a' /seed/hello; cat /seed/hello")).strip()
    mounts = _inspect(ctrd, cid)["Mounts"]
    assert isinstance(mounts, list) and len(mounts) == 1
    m = mounts[0]
    assert (m["Type"], m["Destination"], m["Driver"], m["RW"]) == ("volume", "/seed", "local", True)
    anon = m["Name"]
    assert len(anon) == 64 and m["Source"] == str(ctrd.root / "volumes" / anon / "_data")
    assert _ok(ctl(ctrd, "start", "-a", cid)) == "1000 640\nfrom the image\n"
    assert _volumes(ctrd) == [anon]
    # a new named volume is populated too; an existing one with data is not; nocopy is empty
    assert _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "fresh:/seed", image, "cat", "/seed/hello")) == "from the image\n"
    _ok(ctl(ctrd, "volume", "create", "other"))
    _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "other:/x", "busybox", "sh", "-c", "echo mine > /x/mine"))
    assert _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "other:/seed", image, "ls", "/seed")) == "mine\n"
    assert _ok(ctl(ctrd, "run", "--rm", "--network", "none", "--mount", "type=volume,src=nc,dst=/seed,volume-nocopy",
                   image, "ls", "-A", "/seed")) == ""
    # --rm drops the anonymous volumes (the image's and -v /path), never named ones
    before = set(_volumes(ctrd))
    _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "/anon2", image, "true"))
    t0 = f"{time.time() - 1:.3f}"
    cid2 = _ok(ctl(ctrd, "run", "-d", "--rm", "--network", "none", image, "true")).strip()
    _wait_destroyed(ctrd, cid2, t0)
    assert set(_volumes(ctrd)) == before
    assert {"fresh", "other", "nc", anon} == before
    # --volumes-from: the other container's volumes (read-only with :ro)
    _ok(ctl(ctrd, "run", "--rm", "--network", "none", "--volumes-from", f"{cid}:ro", "busybox", "cat", "/seed/hello"))
    r = ctl(ctrd, "run", "--rm", "--network", "none", "--volumes-from", f"{cid}:ro", "busybox", "touch", "/seed/x")
    assert r.returncode != 0 and "Read-only" in r.stderr
    # rm -v: the container's anonymous volume goes; plain rm would keep it
    _ok(ctl(ctrd, "rm", "-v", cid))
    assert anon not in _volumes(ctrd)
    # prune: anonymous only by default (docker 23+), all unused with -a
    cid3 = _ok(ctl(ctrd, "create", "--network", "none", image, "true")).strip()
    _ok(ctl(ctrd, "rm", cid3))
    left = set(_volumes(ctrd)) - before
    assert len(left) == 1
    out = _ok(ctl(ctrd, "volume", "prune", "-f"))
    assert out.startswith("Deleted Volumes:\n") and left.pop() in out and "Total reclaimed space:" in out
    assert set(_volumes(ctrd)) == {"fresh", "other", "nc"}
    _ok(ctl(ctrd, "volume", "prune", "-a", "-f"))
    assert _volumes(ctrd) == []


def test_volumes_survive_kill9_and_tmpfs_volumes_mount_only_while_used(ctrd: DaemonProc) -> None:  # noqa: F811
    _ok(ctl(ctrd, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m", "tv"))
    data = ctrd.root / "volumes" / "tv" / "_data"
    assert str(data) not in ctrd.mounts()  # mounted on first use only
    _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f"))
    cid = _ok(ctl(ctrd, "run", "-d", "--network", "none", "-v", "tv:/t", "-v", "keep:/data", "busybox", "sh", "-c",
                  "echo t > /t/f; exec sleep 300")).strip()
    out = _ok(ctl(ctrd, "exec", cid, "sh", "-c", "grep ' /t ' /proc/mounts"))
    assert out.startswith("tmpfs /t tmpfs") and "size=8192k" in out
    assert ctrd.mounts().count(str(data)) == 1  # never stacked
    v = json.loads(_ok(ctl(ctrd, "volume", "inspect", "tv")))[0]
    assert v["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}

    ctrd.kill9()
    ctrd.start()
    assert set(_volumes(ctrd)) == {"keep", "tv"}
    assert _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "keep:/data", "busybox", "cat", "/data/f")) == "kept\n"
    r = ctl(ctrd, "volume", "rm", "tv")
    assert r.returncode == 1 and "volume is in use" in r.stderr
    assert _inspect(ctrd, cid)["State"]["Running"]  # its shim outlived the daemon; reconnected
    assert ctrd.mounts().count(str(data)) == 1  # the mount it holds is kept
    # a second container shares the same tmpfs (adopted, not mounted again)
    assert _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "tv:/t", "busybox", "cat", "/t/f")) == "t\n"
    assert ctrd.mounts().count(str(data)) == 1  # never stacked
    assert _ok(ctl(ctrd, "exec", cid, "cat", "/t/f")) == "t\n"
    _ok(ctl(ctrd, "stop", "-t", "1", cid))
    assert str(data) not in ctrd.mounts()  # unmounted with its last user
    _ok(ctl(ctrd, "rm", cid))
    _ok(ctl(ctrd, "volume", "rm", "tv", "keep"))
    assert ctrd.mounts() == []


def test_bind_type_local_volume_leaves_the_host_directory(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    host_dir = short_tmp / "hostdir"
    host_dir.mkdir()
    (host_dir / "old").write_text("there before\n")
    _ok(ctl(ctrd, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host_dir}", "bv"))
    out = _ok(ctl(ctrd, "run", "--rm", "--network", "none", "-v", "bv:/v", "busybox", "sh", "-c",
                  "cat /v/old; echo new > /v/new"))
    assert out == "there before\n"
    assert (host_dir / "new").read_text() == "new\n"
    assert ctrd.mounts() == []  # unmounted with its last user
    # a daemon that stops (SIGTERM, no live-restore) stops its containers and leaves nothing mounted
    cid = _ok(ctl(ctrd, "run", "-d", "--network", "none", "-v", "bv:/v", "busybox", "sleep", "300")).strip()
    assert str(ctrd.root / "volumes" / "bv" / "_data") in ctrd.mounts()
    assert ctrd.stop() == 0
    assert ctrd.mounts() == []
    ctrd.start()
    _ok(ctl(ctrd, "rm", cid))
    _ok(ctl(ctrd, "volume", "rm", "bv"))
    assert sorted(os.listdir(host_dir)) == ["new", "old"]  # removing the volume never touches the device
    r = ctl(ctrd, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=relative", "bv2")
    assert r.returncode == 1 and "device" in r.stderr and len(r.stderr.splitlines()) == 1


# ---------------------------------------------------------------------------------- beside docker

CGROUP_PARENT = "ctrd-vol-test-docker"


@pytest.fixture
def docker(short_tmp: Path) -> Iterator[Docker]:
    if not (shutil.which("dockerd") and shutil.which("docker")):
        pytest.skip("docker not installed")
    base = short_tmp / "dk"
    base.mkdir()
    with own_bridge() as (bridge, _gw), private_dockerd(base, bridge, CGROUP_PARENT) as d:
        yield d
        d("volume", "prune", "-a", "-f")


def _by_destination(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(mounts, key=lambda m: str(m["Destination"]))


def _anon(name: object) -> object:
    return "<anonymous>" if isinstance(name, str) and len(name) == 64 else name


def test_inspect_mounts_key_sets_match_dockerd(ctrd: DaemonProc, docker: Docker, short_tmp: Path) -> None:  # noqa: F811
    root = make_busybox_rootfs(short_tmp / "rootfs")
    tar = short_tmp / "bb.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(root)):
            t.add(root / entry, arcname=entry)
    assert docker("import", str(tar), "bb:1").returncode == 0
    bind_src = short_tmp / "bindsrc"
    bind_src.mkdir()
    cases = (["-v", "named1:/data"], ["-v", f"{bind_src}:/b:ro"], ["--mount", "type=volume,src=named2,dst=/d2"],
             ["--mount", f"type=bind,src={bind_src},dst=/b2"], ["-v", "named3:/n:ro"], ["-v", "/anon"],
             ["--tmpfs", "/t"], ["--mount", "type=tmpfs,dst=/t3"], ["--mount", "type=volume,dst=/anon2"],
             ["--mount", f"type=bind,src={bind_src},dst=/b3,bind-propagation=rslave"],
             ["--mount", "type=volume,src=named4,dst=/n4,volume-nocopy"])
    for flags in cases:
        r = docker("create", "--network", "none", *flags, "bb:1", "true")
        assert r.returncode == 0, r.stderr
        theirs = json.loads(docker("inspect", r.stdout.strip()).stdout)[0]
        cid = _ok(ctl(ctrd, "create", "--network", "none", *flags, "busybox", "true")).strip()
        ours = _inspect(ctrd, cid)
        assert [sorted(m) for m in ours["Mounts"]] == [sorted(m) for m in theirs["Mounts"]], flags
        for key in ("Type", "Destination", "Mode", "RW", "Propagation", "Driver"):
            assert [m.get(key) for m in ours["Mounts"]] == [m.get(key) for m in theirs["Mounts"]], (flags, key)
        # anonymous volumes have random 64-hex names on both sides
        assert [_anon(m.get("Name")) for m in ours["Mounts"]] == [_anon(m.get("Name")) for m in theirs["Mounts"]]
        assert ours["Config"]["Volumes"] == theirs["Config"]["Volumes"], flags
        for key in ("Binds", "Mounts", "Tmpfs", "VolumesFrom"):
            assert ours["HostConfig"].get(key) == theirs["HostConfig"].get(key), (flags, key)
        docker("rm", "-v", r.stdout.strip())
        _ok(ctl(ctrd, "rm", "-v", cid))
    # --volumes-from: the other container's mount points, read-only with :ro
    theirs_src = docker("create", "--network", "none", "-v", "vf:/vf", "-v", f"{bind_src}:/bf", "bb:1", "true").stdout.strip()
    ours_src = _ok(ctl(ctrd, "create", "--network", "none", "-v", "vf:/vf", "-v", f"{bind_src}:/bf", "busybox", "true")).strip()
    for mode in ("", ":ro"):
        r = docker("create", "--network", "none", "--volumes-from", theirs_src + mode, "bb:1", "true")
        assert r.returncode == 0, r.stderr
        theirs = json.loads(docker("inspect", r.stdout.strip()).stdout)[0]
        ours = _inspect(ctrd, _ok(ctl(ctrd, "create", "--network", "none", "--volumes-from", ours_src + mode, "busybox",
                                      "true")).strip())
        mine, docker_s = _by_destination(ours["Mounts"]), _by_destination(theirs["Mounts"])  # docker's order is a Go map's
        for key in ("Type", "Name", "Destination", "Mode", "RW", "Propagation", "Driver"):
            assert [m.get(key) for m in mine] == [m.get(key) for m in docker_s], (mode, key)
        assert [sorted(m) for m in mine] == [sorted(m) for m in docker_s]
        assert ours["HostConfig"]["VolumesFrom"] == [ours_src + mode] and theirs["HostConfig"]["VolumesFrom"] == [
            theirs_src + mode]
        assert ours["HostConfig"]["Binds"] == theirs["HostConfig"]["Binds"], mode
        docker("rm", r.stdout.strip())
        _ok(ctl(ctrd, "rm", ours["Id"]))
    docker("rm", "-v", theirs_src)
    _ok(ctl(ctrd, "rm", "-v", ours_src))
    _ok(ctl(ctrd, "volume", "prune", "-a", "-f"))
    # volume inspect: the same keys and values (but the paths and the time)
    for args in (["plain"], ["--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "opts"]):
        assert docker("volume", "create", *args).returncode == 0
        _ok(ctl(ctrd, "volume", "create", *args))
        theirs = json.loads(docker("volume", "inspect", args[-1]).stdout)[0]
        ours = json.loads(_ok(ctl(ctrd, "volume", "inspect", args[-1])))[0]
        assert sorted(ours) == sorted(theirs)
        for key in ("Driver", "Labels", "Name", "Options", "Scope"):
            assert ours[key] == theirs[key], (args, key)
        assert ours["Mountpoint"].endswith(f"/volumes/{args[-1]}/_data") and theirs["Mountpoint"].endswith(
            f"/volumes/{args[-1]}/_data")
        assert len(ours["CreatedAt"]) == len(theirs["CreatedAt"])
        assert docker("volume", "rm", args[-1]).returncode == 0
        _ok(ctl(ctrd, "volume", "rm", args[-1]))


def test_ps_mounts_local_volumes_and_volume_filter(ctrd: DaemonProc, short_tmp: Path) -> None:  # noqa: F811
    """ps shows a volume mount by the volume's name, counts local volumes, filters by name or
    destination (docker's formatter and list filter)."""
    host = short_tmp / "hostdir"
    host.mkdir()
    r = ctl(ctrd, "run", "-d", "--network", "none", "-v", "psvol:/data", "-v", f"{host}:/h", "--tmpfs", "/t",
            "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    other = ctl(ctrd, "create", "--network", "none", "busybox", "true").stdout.strip()
    try:
        r = ctl(ctrd, "ps", "--no-trunc", "--format", "{{.Mounts}}|{{.LocalVolumes}}")
        assert r.stdout == f"psvol,{host}|1\n", r.stdout
        for value in ("psvol", "/data", "/h", str(host)):
            r = ctl(ctrd, "ps", "-a", "-q", "--no-trunc", "--filter", f"volume={value}")
            assert r.stdout.split() == [cid], (value, r.stdout)
        for value in ("psv", "/t", str(ctrd.root / "volumes" / "psvol" / "_data")):
            assert ctl(ctrd, "ps", "-a", "-q", "--filter", f"volume={value}").stdout == "", value
    finally:
        ctrd.c.remove(cid, force=True)
        ctrd.c.remove(other)
    assert ctl(ctrd, "volume", "rm", "psvol").returncode == 0
