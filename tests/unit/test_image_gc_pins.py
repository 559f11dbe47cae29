"""Image-layer gc reads the layers under containers (a file and a readlink per container) only when
some layer could go: a start-up's gc, where every layer is wanted, reads none of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from daemon.images.gc import collect_layers

A, B, ORPHAN = "a" * 64, "b" * 64, "c" * 64


@dataclass
class Rec:
    chain_id: str
    cache_id: str


@dataclass
class FakeLayerDB:
    records: dict[str, Rec] = field(default_factory=dict)

    def chain(self, chain_id: str) -> list[str]:
        return [chain_id]

    def remove(self, chain_id: str) -> None:
        del self.records[chain_id]


@dataclass
class FakeLayers:
    dirs: set[str]
    containers: set[str]
    under: dict[str, list[str]]  # init layer -> its parents
    reads: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def layer_ids(self) -> set[str]:
        return set(self.dirs)

    def container_layer_ids(self) -> set[str]:
        return set(self.containers)

    def parents(self, cache_id: str) -> list[str]:
        self.reads.append(cache_id)
        return self.under.get(cache_id, [])

    def remove_layer(self, cache_id: str) -> None:
        self.removed.append(cache_id)
        self.dirs.discard(cache_id)


def _run(layers: FakeLayers, db: FakeLayerDB, wanted: set[str]) -> list[str]:
    return collect_layers(cast(Any, layers), cast(Any, db), wanted)


def test_every_layer_wanted_reads_no_container() -> None:
    layers = FakeLayers({A, B, "ctr", "ctr-init"}, {"ctr"}, {"ctr-init": [B, A]})
    db = FakeLayerDB({"sha256:a": Rec("sha256:a", A), "sha256:b": Rec("sha256:b", B)})
    assert _run(layers, db, {"sha256:a", "sha256:b"}) == []
    assert layers.reads == [] and layers.removed == []


def test_a_candidate_under_a_container_stays_and_an_unwanted_free_one_goes() -> None:
    layers = FakeLayers({A, B, ORPHAN, "ctr", "ctr-init"}, {"ctr"}, {"ctr-init": [A]})
    db = FakeLayerDB({"sha256:a": Rec("sha256:a", A), "sha256:b": Rec("sha256:b", B)})
    assert _run(layers, db, set()) == ["sha256:b"]  # A is under the container: kept, its record too
    assert layers.reads == ["ctr-init"]  # read once, for every candidate
    assert sorted(layers.removed) == sorted([B, ORPHAN])  # ORPHAN: a dir no record knows; each removed once
    assert set(db.records) == {"sha256:a"}
