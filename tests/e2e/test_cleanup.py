"""container/image/system prune and system df against a real ctrd."""

from __future__ import annotations

import re
import subprocess

import pytest

from ctrd.v1 import cleanup_pb2, cleanup_pb2_grpc
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import ctl

pytestmark = pytest.mark.root


def usage(d: DaemonProc) -> cleanup_pb2.DiskUsageResponse:
    stub = cleanup_pb2_grpc.CleanupServiceStub(d.c.channel)  # type: ignore[arg-type,no-untyped-call]
    return d.c.call(stub, "DiskUsage", cleanup_pb2.DiskUsageRequest())  # type: ignore[no-any-return]


def du_bytes(path: str) -> int:
    """`du` of a tree in bytes (apparent sizes, each inode once)."""
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_container_prune_with_filters(ctrd: DaemonProc) -> None:  # noqa: F811
    keep = ctrd.c.run("busybox", ["sh", "-c", "echo 123456789 > /f"], network_mode="none", labels={"keep": "1"})
    gone = ctrd.c.run("busybox", ["sh", "-c", "echo 123456789 > /f"], network_mode="none", labels={"tier": "x"})
    created = ctrd.c.create("busybox", ["true"], network_mode="none")
    live = ctrd.c.run("busybox", ["sleep", "60"], network_mode="none")
    for c in (keep, gone):
        assert ctrd.c.wait(c) == 0
    r = ctl(ctrd, "container", "prune", "-f", "--filter", "label!=keep")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Deleted Containers:" and sorted(lines[1:3]) == sorted([gone, created]), r.stdout
    assert lines[3:] == ["", "Total reclaimed space: 10B"], r.stdout
    left = {c.id for c in ctrd.c.list()}
    assert left == {keep, live}
    r = ctl(ctrd, "container", "prune", "-f", "--filter", "until=1h")  # all made within the hour: none
    assert r.stdout == "Total reclaimed space: 0B\n"
    r = ctl(ctrd, "container", "prune", "-f", "--filter", "bogus=1")
    assert r.returncode == 125 and "invalid filter 'bogus=1'" in r.stderr
    ctrd.c.remove(live, force=True)
    r = ctl(ctrd, "container", "prune", "-f")
    assert r.stdout.startswith(f"Deleted Containers:\n{keep}\n")
    assert ctrd.c.list() == []


def test_image_and_system_prune(ctrd: DaemonProc) -> None:  # noqa: F811
    base = ctrd.c.run("busybox", ["sh", "-c", "head -c 300000 /dev/zero > /blob"], network_mode="none")
    assert ctrd.c.wait(base) == 0
    other = ctrd.c.run("busybox", ["sh", "-c", "echo other > /other"], network_mode="none")
    assert ctrd.c.wait(other) == 0
    dangling = ctl(ctrd, "commit", base).stdout.strip()  # no name: dangling
    tagged = ctl(ctrd, "commit", other, "pruneme:1").stdout.strip()
    ctrd.c.remove(other)
    assert dangling.startswith("sha256:") and tagged.startswith("sha256:")
    r = ctl(ctrd, "image", "prune", "-f")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Deleted Images:" and f"deleted: {dangling}" in lines
    assert re.fullmatch(r"Total reclaimed space: 30\d(\.\d+)?kB", lines[-1]), lines[-1]
    assert ctl(ctrd, "image", "inspect", tagged).returncode == 0
    # -a: every image no container uses (busybox is used by `base`)
    r = ctl(ctrd, "image", "prune", "-a", "-f")
    assert "untagged: pruneme:1" in r.stdout.splitlines() and f"deleted: {tagged}" in r.stdout.splitlines()
    assert ctl(ctrd, "image", "inspect", "busybox").returncode == 0
    # system prune: the stopped container, an unused network, then the image it held
    assert ctl(ctrd, "network", "create", "prunenet").returncode == 0
    r = ctl(ctrd, "system", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert f"Deleted Containers:\n{base}\n" in r.stdout and "Deleted Networks:\nprunenet\n" in r.stdout
    assert "Deleted Images:\nuntagged: busybox:latest\n" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
    assert ctl(ctrd, "images", "-q").stdout == ""


def test_system_df_matches_du(ctrd: DaemonProc) -> None:  # noqa: F811
    # an image with 60 MB of its own, a container with 40 MB more in its read-write layer
    c1 = ctrd.c.run("busybox", ["sh", "-c", "head -c 60000000 /dev/urandom > /img.bin"], network_mode="none")
    assert ctrd.c.wait(c1) == 0
    assert ctl(ctrd, "commit", c1, "dfimg:1").returncode == 0
    ctrd.c.remove(c1)
    # ... and a named volume it writes 20 MB into
    r = ctl(ctrd, "run", "-d", "--network", "none", "-v", "dfvol:/v", "dfimg:1", "sh", "-c",
            "head -c 40000000 /dev/urandom > /rw.bin; head -c 20000000 /dev/urandom > /v/data.bin")
    assert r.returncode == 0, r.stderr
    c2 = r.stdout.strip()
    assert ctrd.c.wait(c2) == 0
    du = usage(ctrd)
    overlay = str(ctrd.root / "overlay2")
    containers = sum(c.size_rw for c in du.containers)
    volumes = sum(v.size for v in du.volumes)
    ours = du.layers_size + containers + volumes
    theirs = du_bytes(str(ctrd.root))
    assert abs(ours - theirs) <= theirs * 0.01, (ours, theirs)
    assert abs(containers - du_bytes(f"{overlay}/{c2}/diff")) <= containers * 0.01
    assert [(v.name, v.ref_count) for v in du.volumes] == [("dfvol", 1)]
    assert abs(volumes - du_bytes(str(ctrd.root / "volumes" / "dfvol" / "_data"))) <= volumes * 0.01
    r = ctl(ctrd, "system", "df")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
    # 60 MB extracted and its 60 MB blob kept for push/save, busybox twice; busybox's layer is shared
    # with the used image, and docker counts the unused image's shared layers as reclaimable too
    assert re.fullmatch(r"Images          2         1         12\d\.\dMB   \d\.\d+MB \(\d%\)", lines[1]), lines[1]
    assert lines[2] == "Containers      1         0         40MB      40MB (100%)"  # 40000000 bytes: go-units' "40MB"
    assert lines[3] == "Local Volumes   1         1         20MB      0B (0%)"
    assert lines[4] == "Build Cache     0         0         0B        0B"
    r = ctl(ctrd, "system", "df", "-v")
    assert r.returncode == 0 and "Images space usage:" in r.stdout and c2[:12] in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith(c2[:12]))
    assert re.search(r'…"\s+1\s+40MB\s', row), row  # LOCAL VOLUMES, SIZE
    vols = r.stdout.split("Local Volumes space usage:\n\n")[1].split("\n\n")[0].splitlines()
    assert [v.split() for v in vols] == [["VOLUME", "NAME", "LINKS", "SIZE"], ["dfvol", "1", "20MB"]]
    r = ctl(ctrd, "system", "df", "--format", "{{.Type}}={{.TotalCount}}")
    assert r.stdout.splitlines() == ["Images=2", "Containers=1", "Local Volumes=1", "Build Cache=0"]
    ctrd.c.remove(c2)
    assert ctl(ctrd, "volume", "rm", "dfvol").returncode == 0


def test_system_prune_volumes_removes_unused_anonymous_ones(ctrd: DaemonProc) -> None:  # noqa: F811
    # an anonymous volume with 5000 bytes whose container is pruned first, an anonymous one still
    # used by a running container, and a named one: only the first goes, -a or not (docker 28)
    r = ctl(ctrd, "run", "--network", "none", "-v", "/anon", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /anon/f")
    assert r.returncode == 0, r.stderr
    gone = ctl(ctrd, "volume", "ls", "-q").stdout.split()
    assert len(gone) == 1
    live = ctl(ctrd, "run", "-d", "--network", "none", "-v", "/held", "busybox", "sleep", "60").stdout.strip()
    assert ctl(ctrd, "volume", "create", "keepme").returncode == 0
    r = ctl(ctrd, "system", "prune", "-a", "-f", "--volumes", "--filter", "until=1h")
    assert r.returncode == 1 and 'The "until" filter is not supported with "--volumes"' in r.stderr
    r = ctl(ctrd, "system", "prune", "-a", "-f", "--volumes")
    assert r.returncode == 0, r.stderr
    assert f"\n\nDeleted Volumes:\n{gone[0]}\n\n" in r.stdout, r.stdout  # after the containers
    left = set(ctl(ctrd, "volume", "ls", "-q").stdout.split())
    assert gone[0] not in left and "keepme" in left and len(left) == 2
    assert re.fullmatch(r"Total reclaimed space: 5(\.\d+)?kB", r.stdout.splitlines()[-1]), r.stdout
    assert ctl(ctrd, "kill", live).returncode == 0
    ctrd.c.wait(live)
    r = ctl(ctrd, "system", "prune", "-f", "--volumes")  # the container first, then its volume
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Deleted Containers:", live] and lines[3] == "Deleted Volumes:", r.stdout
    assert ctl(ctrd, "volume", "ls", "-q").stdout.split() == ["keepme"]
    assert ctl(ctrd, "volume", "rm", "keepme").returncode == 0
