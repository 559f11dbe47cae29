"""What the container manager needs from the image store (unit tests plug a fake in here)."""

from __future__ import annotations

from typing import Protocol

from daemon.containers.validate import ImageConfigLike


class ImageLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def top_layer(self) -> str | None: ...
    @property
    def config(self) -> ImageConfigLike: ...


class Images(Protocol):
    def get(self, ref: str) -> ImageLike: ...
    def ensure(self, ref: str) -> ImageLike: ...
