"""A container's layer pair is made durable in one round of fsyncs before create_container_layers
returns, and a crash at any step of it leaves what the next create or start-up removes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon import atomic
from daemon.layers import initlayer, overlay2
from daemon.layers.overlay2 import LayerStore

CID = "c" * 64


def store_with_image(tmp_path: Path) -> tuple[LayerStore, str]:
    store = LayerStore(tmp_path / "overlay2")
    staging = store.new_staging()
    (staging / "diff" / "bin").mkdir()
    return store, store.commit(staging, None)


def test_one_round_of_fsyncs_covers_every_new_name_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, top = store_with_image(tmp_path)
    rounds: list[list[Path]] = []
    real = overlay2.fsync_paths
    monkeypatch.setattr(overlay2, "fsync_paths", lambda paths: rounds.append(list(paths)) or real(paths))
    store.create_container_layers(CID, top)
    assert len(rounds) == 1
    root = tmp_path / "overlay2"
    want = {root, root / "l"}
    for layer in (f"{CID}-init", CID):
        want |= {root / layer, root / layer / "link", root / layer / "lower"}
    assert set(rounds[0]) == want
    # the pair is complete and consistent
    init_short = (root / f"{CID}-init" / "link").read_text()
    assert (root / CID / "lower").read_text().split(":")[0] == f"l/{init_short}"
    assert os.readlink(root / "l" / init_short) == f"../{CID}-init/diff"
    assert (root / f"{CID}-init" / "link").stat().st_mode & 0o777 == 0o644


def test_a_reused_pair_fsyncs_its_rewritten_files_the_links_and_the_root_not_its_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, top = store_with_image(tmp_path)
    root = tmp_path / "overlay2"
    store.create_container_layers("a" * 64, None)  # no parent: skeletons without lower and work/
    store.create_container_layers(CID, top)
    store.remove_container_layers(CID)
    store.remove_container_layers("a" * 64)  # taken first (last in)
    rounds: list[list[Path]] = []
    real = overlay2.fsync_paths
    monkeypatch.setattr(overlay2, "fsync_paths", lambda paths: rounds.append(list(paths)) or real(paths))
    store.create_container_layers("d" * 64, top)  # its init layer gains lower and work/
    store.create_container_layers("e" * 64, top)  # the same entries as before
    files = {root / f"{i}{s}" / n for i in ("d" * 64, "e" * 64) for s in ("-init", "") for n in ("link", "lower")}
    assert set(rounds[0]) | set(rounds[1]) == files | {root, root / "l", root / f"{'d' * 64}-init"}
    assert all((f.parent / "work").is_dir() for f in files)


def test_fsync_paths_syncs_files_and_directories_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_text("x")
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    atomic.fsync_paths([tmp_path / "f", tmp_path])
    atomic.fsync_paths([tmp_path])
    atomic.fsync_paths([])
    assert len(synced) == 3
    with pytest.raises(FileNotFoundError):
        atomic.fsync_paths([tmp_path / "f", tmp_path / "missing"])


class Crash(BaseException):
    """A kill -9 in the middle: nothing after it runs, not even `except Exception` cleanups."""


@pytest.mark.parametrize("at", ["init_link", "second_place", "fsync"])
def test_a_crash_between_steps_leaves_what_the_next_attempt_and_start_up_remove(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
    store, top = store_with_image(tmp_path)
    root = tmp_path / "overlay2"
    with monkeypatch.context() as mp:
        if at == "init_link":
            real_symlink = os.symlink

            def symlink(target: str, path: Path) -> None:
                if target.startswith(f"../{overlay2.INIT_TEMPLATE}/"):
                    raise Crash()
                real_symlink(target, path)

            mp.setattr(overlay2.os, "symlink", symlink)
        elif at == "second_place":
            real_place = LayerStore._place
            calls: list[int] = []

            def place(self: LayerStore, *a: object) -> tuple[str, list[Path]]:
                calls.append(1)
                if len(calls) == 2:
                    raise Crash()
                return real_place(self, *a)  # type: ignore[arg-type]

            mp.setattr(LayerStore, "_place", place)
        else:
            mp.setattr(overlay2, "fsync_paths", lambda paths: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            store.create_container_layers(CID, top)
    # a daemon started again: leftovers of the staging area go, dangling links go
    LayerStore(root)
    assert not [p for p in root.iterdir() if p.name.startswith(overlay2.STAGING_PREFIX)]
    assert all(os.path.exists(p) for p in (root / "l").iterdir())
    # create again (recovery's removal of unowned pairs is the same call as this one's first step)
    store.create_container_layers(CID, top)
    assert store.container_layer_ids() == {CID}
    assert {p.name for p in root.iterdir()} == {"l", top, f"{CID}-init", CID, overlay2.INIT_TEMPLATE}
    assert len(list((root / "l").iterdir())) == 3
    store.remove_container_layers(CID)
    # the pair's emptied skeletons stay for the next creates, under staging names
    assert {p.name for p in root.iterdir() if not p.name.startswith(overlay2.STAGING_PREFIX)} == {
        "l", top, overlay2.INIT_TEMPLATE}
    assert (root / overlay2.INIT_TEMPLATE / "diff" / "etc" / "hosts").is_file()  # shared: it stays
    LayerStore(root)
    assert {p.name for p in root.iterdir()} == {"l", top, overlay2.INIT_TEMPLATE}


def test_every_init_layer_links_to_the_one_template_which_start_up_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, top = store_with_image(tmp_path)
    root = tmp_path / "overlay2"
    template = root / overlay2.INIT_TEMPLATE / "diff"
    for cid in (CID, "d" * 64):
        store.create_container_layers(cid, top)
        diff = root / f"{cid}-init" / "diff"
        assert diff.is_symlink() and diff.resolve() == template.resolve()
        assert store.exists(f"{cid}-init") and store.parents(cid)[0] == f"{cid}-init"
    assert sorted(p.relative_to(template).as_posix() for p in template.rglob("*")) == sorted(
        [*initlayer.DIRS, *initlayer.FILES, *(n for n, _ in initlayer.SYMLINKS)])
    assert os.readlink(template / "etc" / "mtab") == "/proc/mounts"
    assert all((template / d).stat().st_mode & 0o777 == 0o755 for d in (*initlayer.DIRS, *initlayer.FILES))
    # a crash while the template was made (or a hand that removed a part): the next start-up
    # completes it, durably, before any container links to it
    (template / "etc" / "hosts").unlink()
    (template / "etc" / "mtab").unlink()
    os.symlink("/elsewhere", template / "etc" / "mtab")
    (template / "proc").chmod(0o700)
    synced: list[Path] = []
    real = overlay2.fsync_paths
    monkeypatch.setattr(overlay2, "fsync_paths", lambda paths: synced.extend(paths) or real(paths))
    LayerStore(root)
    assert (template / "etc" / "hosts").is_file() and os.readlink(template / "etc" / "mtab") == "/proc/mounts"
    assert (template / "proc").stat().st_mode & 0o777 == 0o755
    assert {template / "etc" / "hosts", template / "etc", template, root} <= set(synced)
    assert store.layer_ids() == {top, f"{CID}-init", CID, f"{'d' * 64}-init", "d" * 64}
    store.remove_container_layers(CID)
    assert template.is_dir() and (template / "etc" / "hostname").is_file()


def test_the_record_staged_with_the_layers_commits_by_one_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.containers import store as store_mod
    from daemon.containers.store import CONFIG, ContainerStore
    from tests.unit.test_daemon_record import make

    s = ContainerStore(tmp_path)
    c, crashed = make(), make("e" * 64, "crashed")
    fsyncs: list[int] = []
    with monkeypatch.context() as mp:
        mp.setattr(os, "fsync", lambda fd: fsyncs.append(fd))
        staged, dirty = s.stage_new(c)
        s.stage_new(crashed)  # a create killed after staging, before its commit
    assert fsyncs == []  # the caller makes them durable, in the layers' round
    assert dirty == [s.container_dir(c.id) / "hostconfig.json", staged, tmp_path / "containers"]
    assert staged.stat().st_mode & 0o777 == 0o600 and not (s.container_dir(c.id) / CONFIG).exists()
    synced: list[Path] = []
    real = store_mod.fsync_dir
    monkeypatch.setattr(store_mod, "fsync_dir", lambda p: synced.append(p) or real(p))
    s.commit_new(c, staged)
    assert synced == [s.container_dir(c.id)] and not staged.exists()
    loaded, garbage = ContainerStore(tmp_path).load_all()
    assert [x.id for x in loaded] == [c.id] and loaded[0].name == c.name
    assert garbage == [crashed.id] and not s.container_dir(crashed.id).exists()


def test_create_makes_layers_hostconfig_and_record_durable_in_one_round_before_the_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from daemon.containers import manager
    from daemon.containers.store import CONFIG, SPARE, ContainerStore
    from tests.unit.test_daemon_record import make

    layers, top = store_with_image(tmp_path)
    records = ContainerStore(tmp_path / "containers")
    c = make()
    events: list[object] = []
    monkeypatch.setattr(manager, "fsync_paths", lambda paths: events.append(set(paths)))
    monkeypatch.setattr(overlay2, "fsync_paths", lambda paths: events.append(("layers alone", paths)))
    real_commit = records.commit_new
    monkeypatch.setattr(records, "commit_new", lambda c, staged: events.append("rename") or real_commit(c, staged))
    manager.ContainerManager._make_new(SimpleNamespace(layers=layers, store=records), c, top)  # type: ignore[arg-type]
    assert len(events) == 2 and events[1] == "rename"
    root, d = tmp_path / "overlay2", records.container_dir(c.id)
    assert {root, root / "l", root / c.id, root / c.id / "link", d / "hostconfig.json",
            d / SPARE, d.parent} <= events[0]  # type: ignore[operator]
    assert (d / CONFIG).is_file() and layers.container_layer_ids() == {c.id}
