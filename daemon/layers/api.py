"""What the container manager needs from the layer store (unit tests plug a fake in here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol


class Layers(Protocol):
    def create_container_layers(self, container_id: str, image_top_layer: str | None) -> None: ...
    def place_container_layers(self, container_id: str, image_top_layer: str | None) -> list[Path]: ...  # to fsync
    def mount(self, container_id: str, *, volatile: bool = False) -> Path: ...  # volatile: see LayerStore.mount
    def merged_dir(self, container_id: str) -> Path: ...  # where mount() puts the rootfs
    def unmount(self, container_id: str) -> bool: ...  # True: it was mounted
    def is_mounted(self, container_id: str) -> bool: ...
    def remove_container_layers(self, container_id: str) -> None: ...
    def detach_container_layers(self, container_id: str) -> list[Path]: ...  # for dispose()
    def dispose(self, doomed: Sequence[Path]) -> None: ...  # delete (or keep to reuse) detached layers
    def graph_data(self, container_id: str) -> dict[str, str]: ...
    def container_layer_ids(self) -> Iterable[str]: ...
