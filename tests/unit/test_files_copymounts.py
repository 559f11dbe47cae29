"""What cp mounts for a stopped container (plan order, what is left out), and where the mount
helper makes mount points: inside the root, symlinks taken against it (no root needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.containers.record import Config, Container, HostConfig, MountSpec
from daemon.files.mountns import mountpoint
from daemon.files.rootfs import copy_mounts
from daemon.files.service import in_writable_mount


def _container(*mounts: MountSpec, read_only: bool = False) -> Container:
    return Container(id="c" * 64, name="c", created=0.0, path="true", args=(), image_id="img",
                     config=Config(hostname="c", image="img"),
                     host_config=HostConfig(mounts=tuple(mounts), read_only_rootfs=read_only))


def test_plan_etc_files_then_mounts_parents_first(tmp_path: Path) -> None:
    (tmp_path / "hostname").write_text("c\n")
    (tmp_path / "hosts").write_text("")
    c = _container(MountSpec("bind", "/srv/a/b", "/host/ab", read_only=True),
                   MountSpec("volume", "/srv", "/vols/v/_data", name="v", driver="local"),
                   MountSpec("tmpfs", "/scratch", origin="tmpfs"),
                   MountSpec("bind", "/etc/hosts", "/host/hosts"))
    plan = copy_mounts(c, tmp_path)
    assert [(m["source"], m["target"], m["ro"]) for m in plan] == [
        (str(tmp_path / "hostname"), "/etc/hostname", False),  # resolv.conf: never written; hosts: a user mount
        ("/vols/v/_data", "/srv", False),
        ("/host/hosts", "/etc/hosts", False),
        ("/host/ab", "/srv/a/b", True),
    ]
    assert copy_mounts(_container(), tmp_path / "nothing-here") == []


def test_mountpoints_are_made_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "escape")  # absolute: the container's /<outside>, not the host's
    os.symlink("../..", root / "etc" / "up")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert mountpoint(fd, "/escape/data", True) == [*str(outside).strip("/").split("/"), "data"]
        assert (root / str(outside).lstrip("/") / "data").is_dir() and not (outside / "data").exists()
        assert mountpoint(fd, "/etc/up/hostname", False) == ["hostname"]
        assert (root / "hostname").is_file()
        assert mountpoint(fd, "/etc", True) == ["etc"]  # there already: left as it is
    finally:
        os.close(fd)


def test_copy_into_mounts_follows_docker_rules() -> None:

    c = _container(MountSpec("volume", "/data", "/vols/v/_data", name="v"),
                   MountSpec("bind", "/data/ro", "/host/ro", read_only=True), read_only=True)
    assert in_writable_mount(c, "/data") and in_writable_mount(c, "/data/sub")
    assert not in_writable_mount(c, "/database") and not in_writable_mount(c, "/tmp")
    with pytest.raises(errdefs.FailedPrecondition, match=r"^mounted volume is marked read-only$"):
        in_writable_mount(c, "/data/ro/x")
