"""A container's rootfs mount and unmount are serialised with each other, not with other
containers': an unmount that waits (for the upper file system's sync) holds up only its own
container."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from daemon.layers import mounts
from daemon.layers.overlay2 import LayerStore


def _ids_in_two_stripes(store: LayerStore) -> tuple[str, str]:
    a = "a" * 64
    for ch in "bcdef0123456789":
        b = ch * 64
        if store._mount_lock(b) is not store._mount_lock(a):
            return a, b
    raise AssertionError("every id landed in one stripe")


def test_a_slow_unmount_holds_up_its_own_container_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LayerStore(tmp_path / "overlay2")
    slow, other = _ids_in_two_stripes(store)
    entered = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def unmount(target: Path) -> bool:
        cid = target.parent.name
        calls.append(cid)
        if cid == slow and not entered.is_set():
            entered.set()
            assert release.wait(10)
        return False

    monkeypatch.setattr(mounts, "unmount", unmount)
    first = threading.Thread(target=store.unmount, args=(slow,))
    first.start()
    assert entered.wait(10)
    # another container's unmount runs while the first one waits
    done_other = threading.Event()

    def unmount_other() -> None:
        store.unmount(other)
        done_other.set()

    threading.Thread(target=unmount_other).start()
    assert done_other.wait(10)
    # the same container's next mount operation waits for the first one
    second = threading.Thread(target=store.unmount, args=(slow,))
    second.start()
    second.join(0.2)
    assert second.is_alive() and calls.count(slow) == 1
    release.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert calls.count(slow) == 2
