"""The volume store with a fake mounter: records, recovery, in-use refusals, prune, mount counts;
the container side (resolve, copy-up) on plain directories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ctrd.errdefs import FailedPrecondition, InvalidArgument, NotFound
from daemon.containers.record import Config, Container, HostConfig, MountSpec
from daemon.containers.volumes import ContainerVolumes
from daemon.volumes import copyup, names
from daemon.volumes.local import MountOptions
from daemon.volumes.store import VolumeStore


class FakeMounter:
    def __init__(self) -> None:
        self.mounted: dict[Path, MountOptions] = {}
        self.calls: list[str] = []

    def mount(self, opts: MountOptions, target: Path) -> None:
        assert target not in self.mounted
        self.mounted[target] = opts
        self.calls.append(f"mount {target.parent.name}")

    def unmount(self, target: Path) -> None:
        self.mounted.pop(target, None)
        self.calls.append(f"unmount {target.parent.name}")

    def is_mounted(self, target: Path) -> bool:
        return target in self.mounted


TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}


def _store(tmp_path: Path, mounter: FakeMounter | None = None) -> VolumeStore:
    s = VolumeStore(tmp_path, mounter or FakeMounter())
    s.load()
    return s


def test_create_lays_out_like_docker_and_is_idempotent(tmp_path: Path) -> None:
    s = _store(tmp_path)
    v, made = s.create("data", labels={"a": "b"})
    assert made and v.mountpoint == str(tmp_path / "volumes" / "data" / "_data")
    assert (tmp_path / "volumes" / "data" / "_data").is_dir()
    rec = json.loads((tmp_path / "volumes" / "data" / "volume.json").read_text())
    assert rec["Name"] == "data" and rec["Labels"] == {"a": "b"}
    again, made = s.create("data")
    assert not made and again == v
    obj = v.to_json()
    assert set(obj) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert obj["Options"] is None and obj["Scope"] == "local"
    anon, _ = s.create()
    assert len(anon.name) == 64 and anon.anonymous and anon.labels == {names.ANONYMOUS_LABEL: ""}
    with pytest.raises(InvalidArgument, match=r"^name: "):
        s.create("../etc")
    with pytest.raises(InvalidArgument, match=r"^driver: "):
        s.create("x1", driver="nfs")
    assert not (tmp_path / "volumes" / "x1").exists()


def test_records_are_recovered_and_interrupted_creates_dropped(tmp_path: Path) -> None:
    s = _store(tmp_path)
    s.create("keep", labels={"k": "v"}, options=TMPFS)
    (tmp_path / "volumes" / "half" / "_data").mkdir(parents=True)  # a create killed before its record
    (tmp_path / "volumes" / "bad").mkdir()
    (tmp_path / "volumes" / "bad" / "volume.json").write_text("{not json")
    s2 = _store(tmp_path)
    assert [v.name for v in s2.list_volumes()] == ["keep"]
    assert s2.get("keep").options == TMPFS and s2.get("keep").labels == {"k": "v"}
    assert not (tmp_path / "volumes" / "half").exists()
    assert (tmp_path / "volumes" / "bad").exists()  # unreadable: left alone for a person to look at


def test_a_recordless_directory_still_mounted_is_never_deleted(tmp_path: Path) -> None:
    m = FakeMounter()
    data = tmp_path / "volumes" / "gone" / "_data"
    data.mkdir(parents=True)
    (data / "precious").write_text("host data\n")
    m.mounted[data] = MountOptions("none", "/srv", 4096, "")
    s = _store(tmp_path, m)  # loads without failing
    assert s.list_volumes() == [] and (data / "precious").exists()


def test_list_filters(tmp_path: Path) -> None:
    s = _store(tmp_path)
    users: dict[str, list[str]] = {"used": ["c1"]}
    s.users = lambda name: users.get(name, [])
    s.create("used", labels={"env": "prod"})
    s.create("idle", labels={"env": "dev", "x": ""})

    def ls(*filters: tuple[str, str]) -> list[str]:
        return [v.name for v in s.list_volumes(filters)]

    assert ls() == ["idle", "used"]
    assert ls(("name", "dl")) == ["idle"]
    assert ls(("label", "env")) == ["idle", "used"]
    assert ls(("label", "env=prod")) == ["used"]
    assert ls(("label", "env"), ("label", "x")) == ["idle"]
    assert ls(("dangling", "true")) == ["idle"]
    assert ls(("dangling", "false")) == ["used"]
    assert ls(("name", "used"), ("name", "idle")) == ["idle", "used"]
    assert ls(("driver", "local")) == ["idle", "used"]
    with pytest.raises(InvalidArgument, match=r"^filters: "):
        ls(("colour", "red"))
    with pytest.raises(InvalidArgument, match=r"^filters: "):
        ls(("dangling", "maybe"))


def test_remove_in_use_not_found_and_force(tmp_path: Path) -> None:
    s = _store(tmp_path)
    s.users = lambda name: ["aaa", "bbb"] if name == "v1" else []
    s.create("v1")
    with pytest.raises(FailedPrecondition) as exc:
        s.remove("v1")
    assert exc.value.message == "remove v1: volume is in use - [aaa, bbb]"
    with pytest.raises(FailedPrecondition):
        s.remove("v1", force=True)  # force never removes a volume in use (docker)
    s.remove("v1", ignore=("aaa", "bbb"))
    assert not (tmp_path / "volumes" / "v1").exists()
    with pytest.raises(NotFound, match="no such volume"):
        s.remove("v1")
    s.remove("v1", force=True)


def test_prune_anonymous_by_default_all_with_flag(tmp_path: Path) -> None:
    s = _store(tmp_path)
    anon, _ = s.create()
    used_anon, _ = s.create()
    s.users = lambda name: ["c"] if name == used_anon.name else []
    s.create("named", labels={"keep": "no"})
    Path(anon.mountpoint, "f").write_bytes(b"x" * 1000)
    os.link(Path(anon.mountpoint, "f"), Path(anon.mountpoint, "hardlink"))  # counted once
    removed, space = s.prune()
    assert removed == [anon.name] and space == 1000
    assert s.prune(all_=True, filters=[("label", "keep=yes")]) == ([], 0)
    with pytest.raises(InvalidArgument, match=r"^filters: "):
        s.prune(filters=[("until", "1h")])
    assert s.prune(all_=True, filters=[("label!", "keep=no")]) == ([], 0)  # label! as docker's prune
    assert s.prune(all_=True, filters=[("label", "keep")])[0] == ["named"]
    assert [v.name for v in s.list_volumes()] == [used_anon.name]


def test_driver_option_volumes_mount_for_the_first_holder_only(tmp_path: Path) -> None:
    m = FakeMounter()
    s = _store(tmp_path, m)
    v, _ = s.create("tv", options=TMPFS)
    plain, _ = s.create("plain")
    assert s.acquire("plain", "c1") == plain.mountpoint and m.calls == []  # a plain directory: no mount
    assert s.acquire("tv", "c1") == v.mountpoint
    s.acquire("tv", "c2")
    assert m.calls == ["mount tv"] and m.mounted[Path(v.mountpoint)].data == "size=1m"
    with pytest.raises(FailedPrecondition, match=r"volume is in use - \[c1, c2\]"):
        s.remove("tv")  # held, even with no container record naming it
    s.release("tv", "c1")
    assert m.calls == ["mount tv"]
    s.release("tv", "c2")
    assert m.calls == ["mount tv", "unmount tv"] and not m.mounted
    s.release("tv", "c2")  # idempotent


def test_restart_reconciles_mounts_with_running_containers(tmp_path: Path) -> None:
    m = FakeMounter()
    s = _store(tmp_path, m)
    for name in ("held", "stale", "shared", "restarted"):
        s.create(name, options=TMPFS)
    for name, holder in (("held", "c1"), ("stale", "c2"), ("shared", "c3"), ("shared", "c4"), ("restarted", "c5")):
        s.acquire(name, holder)
    # kill -9: the mounts stay; a new daemon loads them, then recovers the containers
    s2 = _store(tmp_path, m)
    assert s2.mounted() == ["held", "restarted", "shared", "stale"]
    s2.release("shared", "c4")  # c4 died meanwhile: its clean-up must not take c3's mount away
    assert Path(s2.get("shared").mountpoint) in m.mounted
    s2.acquire("restarted", "c5")  # a restart policy started c5 again: the mount is adopted, not stacked
    m.calls.clear()
    s2.reconcile({"held": ["c1"], "shared": ["c3"], "restarted": ["c5"]})
    assert m.calls == ["unmount stale"]
    assert s2.mounted() == ["held", "restarted", "shared"]
    s2.create("idle", options=TMPFS)
    s2.close()  # shutdown: what running containers hold stays (live-restore)
    assert s2.mounted() == ["held", "restarted", "shared"]
    for name, holder in (("held", "c1"), ("shared", "c3"), ("restarted", "c5")):
        s2.release(name, holder)
    assert not m.mounted


def test_volumes_of_a_create_in_flight_are_in_use(tmp_path: Path) -> None:
    s = _store(tmp_path)
    cv = ContainerVolumes(s, lambda: [])
    _host, made = cv.resolve(HostConfig(mounts=(MountSpec("volume", "/d", origin="binds"),)), [], _no_lookup, "c9")
    assert s.prune() == ([], 0)  # anonymous and unused, but its container is being created
    with pytest.raises(FailedPrecondition, match=r"in use - \[c9\]"):
        s.remove(made[0])
    cv.created("c9")  # the create failed (no record): now it is unused
    assert s.prune()[0] == made


def _no_lookup(ref: str) -> Container:
    raise NotFound(ref)


def test_never_deletes_through_a_mount(tmp_path: Path) -> None:
    m = FakeMounter()
    s = _store(tmp_path, m)
    v, _ = s.create("bindvol", options={"type": "none", "o": "bind", "device": str(tmp_path)})
    m.mounted[Path(v.mountpoint)] = MountOptions("none", str(tmp_path), 4096, "")  # mounted behind our back
    with pytest.raises(Exception, match="still mounted"):
        s.remove("bindvol")
    assert (tmp_path / "volumes").exists()


# ---------------------------------------------------------------------------------- containers


def _container(cid: str, *mounts: MountSpec, volumes_from: tuple[str, ...] = ()) -> Container:
    return Container(id=cid, name=cid, created=0.0, path="true", args=(), image_id="img",
                     config=Config(hostname=cid, image="img"),
                     host_config=HostConfig(mounts=tuple(mounts), volumes_from=volumes_from))


def test_resolve_named_anonymous_image_and_volumes_from(tmp_path: Path) -> None:
    s = _store(tmp_path)
    containers: dict[str, Container] = {}
    cv = ContainerVolumes(s, lambda: list(containers.values()))
    src = _container("src", MountSpec("volume", "/shared", name="", origin="binds"),
                     MountSpec("bind", "/b", str(tmp_path), origin="binds"))
    host, made = cv.resolve(src.host_config, [], containers.__getitem__)
    src = _container("src", *host.mounts)
    containers["src"] = src
    anon = host.mounts[0]
    assert anon.anonymous and len(anon.name) == 64 and anon.source == s.get(anon.name).mountpoint and made == [anon.name]

    mine = HostConfig(mounts=(MountSpec("volume", "/data", name="named", origin="binds"),
                              MountSpec("volume", "/img1", name="named2", origin="mounts")),
                      volumes_from=("src:ro",))
    host, made = cv.resolve(mine, ["/img1/", "/img2", "//img2/"], containers.__getitem__)
    by_target = {m.target: m for m in host.mounts}
    assert sorted(by_target) == ["/b", "/data", "/img1", "/img2", "/shared"]
    assert by_target["/img1"].name == "named2"  # the user's mount wins over the image's VOLUME
    assert by_target["/img2"].anonymous and by_target["/img2"].origin == "image"
    assert by_target["/shared"].name == anon.name and by_target["/shared"].read_only
    assert not by_target["/shared"].anonymous  # rm -v of this container never takes src's volume
    assert by_target["/b"].read_only and by_target["/b"].type == "bind"
    assert sorted(made) == sorted(["named", "named2", by_target["/img2"].name])
    containers["c2"] = _container("c2", *host.mounts)
    assert sorted(cv.users(anon.name)) == ["c2", "src"]
    cv.remove_anonymous(containers.pop("c2"))
    assert anon.name in [v.name for v in s.list_volumes()]  # src still uses it
    assert by_target["/img2"].name not in [v.name for v in s.list_volumes()]


def test_failed_resolve_removes_what_it_made(tmp_path: Path) -> None:
    s = _store(tmp_path)
    cv = ContainerVolumes(s, lambda: [])

    def lookup(ref: str) -> Container:
        raise NotFound(f"no such container: {ref}")

    before = s.list_volumes()
    with pytest.raises(InvalidArgument, match=r"^volumes_from: no such container: ghost"):
        cv.resolve(HostConfig(mounts=(MountSpec("volume", "/d", name="new1", origin="binds"),),
                              volumes_from=("ghost",)), [], lookup)
    assert s.list_volumes() == before
    with pytest.raises(InvalidArgument, match=r"^volumes_from: invalid mode"):
        cv.resolve(HostConfig(volumes_from=("x:rx",)), [], lookup)


def test_copy_up_only_into_empty_volumes_and_never_outside_the_root(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "app").mkdir(parents=True)
    (rootfs / "app" / "f").write_text("image\n")
    os.chmod(rootfs / "app", 0o750)
    (rootfs / "escape").symlink_to(tmp_path)  # absolute: resolves outside the root on the host
    src = copyup.source_in_rootfs(rootfs, "/app")
    assert src == rootfs / "app"
    assert copyup.source_in_rootfs(rootfs, "/escape") is None
    assert copyup.source_in_rootfs(rootfs, "/../..") is None
    assert copyup.source_in_rootfs(rootfs, "/missing") is None
    vol = tmp_path / "vol"
    vol.mkdir()
    assert copyup.populate(src, vol) and (vol / "f").read_text() == "image\n"
    assert oct(vol.stat().st_mode & 0o777) == "0o750"  # the directory's own mode comes too
    (vol / "f").write_text("mine\n")
    assert not copyup.populate(src, vol) and (vol / "f").read_text() == "mine\n"


def test_ps_mounts_local_volumes_and_volume_filter_as_docker() -> None:
    from daemon.containers import view

    c = _container("c1", MountSpec("volume", "/data", "/root/volumes/pgdata/_data", name="pgdata", driver="local"),
                   MountSpec("bind", "/etc/x", "/srv/x"),
                   MountSpec("tmpfs", "/run", origin="tmpfs"),  # --tmpfs: not in Mounts (docker)
                   MountSpec("tmpfs", "/cache", origin="mounts"))
    assert view.mount_names(c) == ["", "pgdata", "/srv/x"]  # by destination: /cache, /data, /etc/x
    assert view.local_volume_count(c) == 1
    for hit in ("pgdata", "/data", "/srv/x", "/etc/x"):
        assert view.matches(c, {"volume": hit}), hit
    for miss in ("/root/volumes/pgdata/_data", "pg", "/run"):
        assert not view.matches(c, {"volume": miss}), miss
