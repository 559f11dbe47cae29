"""A container's record is rewritten without a new inode per write (an exchange with its spare),
and a removed container's directory is emptied and reused by the next create: nothing of the
removed container (its environment, its log, its name files) reaches the next one."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from daemon import atomic
from daemon.containers.store import CONFIG, HOSTCONFIG, SKELETONS, SPARE, ContainerStore
from daemon.network.files import write_container_files
from tests.unit.test_daemon_record import make


def _inodes(d: Path) -> dict[str, int]:
    return {e.name: e.inode() for e in os.scandir(d)}


def test_an_exchange_swaps_the_file_with_its_spare(tmp_path: Path) -> None:
    path, spare = tmp_path / "f", tmp_path / ".f.spare"
    atomic.replace_by_exchange(path, spare, b"one", 0o600)  # new: written as write_atomic does
    assert path.read_bytes() == b"one" and not spare.exists()
    atomic.replace_by_exchange(path, spare, b"two", 0o600)
    first = _inodes(tmp_path)
    atomic.replace_by_exchange(path, spare, b"three", 0o600)
    # the two inodes swap names: none made, none freed; the spare holds the old data
    assert _inodes(tmp_path) == {"f": first[".f.spare"], ".f.spare": first["f"]}
    assert path.read_bytes() == b"three" and spare.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o600


def test_writes_in_place_keep_the_files_blocks_and_cut_them_to_the_new_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A truncation to 0 would free the data block, which ext4 without a journal mounted with
    # `discard` discards inside the syscall (daemon/atomic.py): the file is opened without
    # O_TRUNC, overwritten from 0 and cut to the new length (within its block: nothing freed).
    opened: list[int] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append(flags)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    f = tmp_path / "name"
    atomic.write_private(f, b"x" * 3000, 0o600)
    ino = f.stat().st_ino
    atomic.write_private(f, b"short", 0o640)
    assert f.read_bytes() == b"short" and f.stat().st_ino == ino and f.stat().st_mode & 0o777 == 0o640
    path, spare = tmp_path / "f", tmp_path / ".f.spare"
    for data in (b"a" * 3000, b"b" * 2000, b"c", b"dd"):
        atomic.replace_by_exchange(path, spare, data, 0o600)
    assert path.read_bytes() == b"dd" and spare.read_bytes() == b"c"
    assert opened and not any(flags & os.O_TRUNC for flags in opened)


def test_an_exchange_that_fails_midway_leaves_the_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, spare = tmp_path / "f", tmp_path / ".f.spare"
    atomic.replace_by_exchange(path, spare, b"old", 0o600)
    atomic.replace_by_exchange(path, spare, b"older?", 0o600)

    def fail(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", fail)
    with pytest.raises(OSError, match="No space"):
        atomic.replace_by_exchange(path, spare, b"new", 0o600)
    assert path.read_bytes() == b"older?"


def test_without_the_exchange_a_rename_replaces_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "_renameat2", None)
    path, spare = tmp_path / "f", tmp_path / ".f.spare"
    for data in (b"a", b"b"):
        atomic.replace_by_exchange(path, spare, data, 0o600)
    assert path.read_bytes() == b"b" and not spare.exists()


def test_saves_reuse_the_records_two_inodes_and_a_reload_reads_the_last(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    c = make()
    s.commit_new(c, s.stage_new(c)[0])
    s.save(c)
    d = s.container_dir(c.id)
    before = set(_inodes(d).values())
    for n in range(3):
        c.name = f"n{n}"
        s.save(c, durable=n % 2 == 0)
    assert set(_inodes(d).values()) == before and set(os.listdir(d)) == {CONFIG, SPARE, HOSTCONFIG}
    (loaded,), _ = ContainerStore(tmp_path).load_all()
    assert loaded.name == "n2"


def test_a_removed_containers_directory_is_emptied_and_reused(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    old = make()
    old.config = dataclasses.replace(old.config, env=("SECRET=1",))
    s.commit_new(old, s.stage_new(old)[0])
    s.save(old)
    d = s.container_dir(old.id)
    write_container_files(d, hostname="old", ip="10.0.0.2", extra_hosts=[], dns=[], host_network=False,
                          host_resolv=tmp_path / "none")
    (d / f"{old.id}-json.log").write_text('{"log":"secret\\n"}\n')
    (d / f"{old.id}-json.log.1").write_text("rotated\n")
    (d / "mounts").mkdir()
    doomed = s.detach(old.id)
    assert doomed is not None
    kept = doomed.stat().st_ino
    blocks = {p.name: p.stat().st_blocks for p in doomed.iterdir() if p.is_file()}
    s.dispose(doomed)
    # the kept files hold zeros and keep their blocks (a truncation would free them: a discard)
    assert doomed.is_dir() and all(not p.read_bytes().strip(b"\0") for p in doomed.iterdir())
    assert all(p.stat().st_blocks == blocks[p.name] > 0 for p in doomed.iterdir())
    assert sorted(os.listdir(doomed)) == sorted([HOSTCONFIG, SPARE, "hostname", "hosts", "resolv.conf"])
    new = make("e" * 64, "new")
    staged, _ = s.stage_new(new)
    d = s.container_dir(new.id)
    assert d.stat().st_ino == kept and not doomed.exists()
    s.commit_new(new, staged)
    assert b"SECRET" not in (d / CONFIG).read_bytes() + (d / HOSTCONFIG).read_bytes()
    assert not (d / "hostname").read_bytes().strip(b"\0") and not list(d.glob("*json.log*"))
    names = write_container_files(d, hostname="new", ip=None, extra_hosts=[], dns=[], host_network=False,
                                  host_resolv=tmp_path / "none")
    assert Path(names["/etc/hostname"]).read_text() == "new\n"
    (loaded,), garbage = ContainerStore(tmp_path).load_all()
    assert loaded.id == new.id and garbage == []


def test_the_kept_directories_are_bounded_and_a_start_deletes_them(tmp_path: Path) -> None:
    s = ContainerStore(tmp_path)
    made = [make(f"{n:064x}", f"c{n}") for n in range(SKELETONS + 2)]
    for c in made:
        s.commit_new(c, s.stage_new(c)[0])
    for c in made:
        doomed = s.detach(c.id)
        assert doomed is not None
        s.dispose(doomed)
    left = [p for p in (tmp_path / "containers").iterdir()]
    assert len(left) == SKELETONS and all(p.name.startswith(".rm-") for p in left)
    loaded, garbage = ContainerStore(tmp_path).load_all()
    assert loaded == [] and len(garbage) == SKELETONS and not list((tmp_path / "containers").iterdir())


def test_the_name_files_are_rewritten_in_place(tmp_path: Path) -> None:
    for hostname in ("a", "b"):
        write_container_files(tmp_path, hostname=hostname, ip=None, extra_hosts=[], dns=[], host_network=False,
                              host_resolv=tmp_path / "none")
        if hostname == "a":
            first = _inodes(tmp_path)
    assert _inodes(tmp_path) == first and (tmp_path / "hostname").read_text() == "b\n"
    assert (tmp_path / "hosts").stat().st_mode & 0o777 == 0o644
