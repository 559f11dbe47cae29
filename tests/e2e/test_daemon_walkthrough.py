"""The source document's walkthrough, step by step, on this machine (through the gRPC API)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ctrd.errdefs import FailedPrecondition
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

pytestmark = pytest.mark.root


def _mounts() -> list[tuple[str, str, str]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            out.append((parts[4], parts[sep + 1], parts[sep + 3] if len(parts) > sep + 3 else ""))
    return out


def _layer_dirs(d: DaemonProc, cid: str) -> list[Path]:
    return [d.root / "overlay2" / cid, d.root / "overlay2" / f"{cid}-init"]


def _data_left(d: DaemonProc) -> list[str]:
    """What of removed containers is still on disk in the layer and record directories renamed out
    of their stores, beyond the emptied skeletons kept for the next creates (a layer's empty
    `diff/` and `work/`, a record's files blanked: zeros, their blocks kept)."""
    left: list[str] = []
    for entry in os.scandir(d.root / "overlay2"):
        if entry.name.startswith(".staging-"):
            left += [str(p) for p in (Path(entry.path) / "diff", Path(entry.path) / "work")
                     if p.is_dir() and not p.is_symlink() and any(p.iterdir())]
    for entry in os.scandir(d.root / "containers"):
        if entry.name.startswith(".rm-"):
            left += [f.path for f in os.scandir(entry.path)
                     if not f.is_file(follow_symlinks=False) or Path(f.path).read_bytes().strip(b"\0")]
    return left


def test_create_start_pause_stop_rm_as_the_document_shows(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    cid = c.create("busybox", ["sleep", "300"], name="walk")
    assert len(cid) == 64 and all(ch in "0123456789abcdef" for ch in cid)

    # create: the rw and init layer directories, their l/ links, the metadata; nothing mounted
    for layer in _layer_dirs(ctrd, cid):
        assert {"diff", "link", "lower", "work"} <= {p.name for p in layer.iterdir()}
        link = (layer / "link").read_text().strip()
        target = ctrd.root / "overlay2" / "l" / link
        assert target.is_symlink() and target.resolve() == (layer / "diff").resolve()
    init_diff = ctrd.root / "overlay2" / f"{cid}-init" / "diff"
    assert (init_diff / "etc" / "hostname").exists() and os.readlink(init_diff / "etc" / "mtab") == "/proc/mounts"
    meta = ctrd.root / "containers" / cid
    assert (meta / "config.v2.json").is_file() and (meta / "hostconfig.json").is_file()
    assert ctrd.mounts() == []
    info = c.inspect("walk")
    assert info["State"]["Status"] == "created" and info["Name"] == "/walk"
    assert info["GraphDriver"]["Data"]["MergedDir"].endswith(f"{cid}/merged")

    # start: overlay on merged with l/ lowerdirs, and the persisted netns (nsfs) at <exec-root>/netns/<12>
    c.start(cid)
    merged = str(ctrd.root / "overlay2" / cid / "merged")
    overlay = [m for m in _mounts() if m[0] == merged]
    assert overlay and overlay[0][1] == "overlay"
    opts = Path("/proc/self/mountinfo").read_text()
    lower_line = next(line for line in opts.splitlines() if f" {merged} " in line)
    lowerdir = lower_line.split("lowerdir=")[1].split(",")[0]
    assert all("/overlay2/l/" in part for part in lowerdir.split(":"))
    netns = str(ctrd.exec_root / "netns" / cid[:12])
    assert (netns, "nsfs") in [(m[0], m[1]) for m in _mounts()]
    info = c.inspect(cid)
    assert info["State"]["Running"] and info["State"]["Pid"] > 0
    assert info["NetworkSettings"]["SandboxKey"] == netns

    # starting a running container is refused with docker's message
    with pytest.raises(FailedPrecondition, match=f"container {cid} is already running"):
        c.start(cid)
    # removing it without force too
    with pytest.raises(FailedPrecondition, match=f"cannot remove running container {cid}: stop the container"):
        c.remove(cid)

    # pause / unpause: the cgroup freezer
    state = Path("/sys/fs/cgroup/freezer") / ctrd.cgroup_parent / cid / "freezer.state"
    assert state.read_text().strip() == "THAWED"
    c.pause(cid)
    assert state.read_text().strip() == "FROZEN"
    assert c.inspect(cid)["State"]["Paused"] is True
    with pytest.raises(FailedPrecondition, match="is paused, unpause it instead"):
        c.start(cid)
    c.resume(cid)
    assert state.read_text().strip() == "THAWED"

    # stop: both mounts gone
    c.stop(cid, timeout=1)
    names = [m[0] for m in _mounts()]
    assert merged not in names and netns not in names
    info = c.inspect(cid)
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137

    # rm: every directory gone
    links = [(layer / "link").read_text().strip() for layer in _layer_dirs(ctrd, cid)]
    c.remove(cid)
    assert not meta.exists()
    for layer in _layer_dirs(ctrd, cid):
        assert not layer.exists()
    for link in links:
        assert not (ctrd.root / "overlay2" / "l" / link).exists()
    # their data, renamed out of the store by rm, is deleted right after rm answers
    deadline = time.monotonic() + 10
    while _data_left(ctrd) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _data_left(ctrd) == []
    assert not (ctrd.exec_root / "shims" / cid).exists()
