"""The domain services the Docker API translates to: the same objects the gRPC servicers use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from daemon.cleanup.service import Cleanup
from daemon.containers.manager import ContainerManager
from daemon.distribution.service import Distribution
from daemon.files.service import Files
from daemon.images.store import ImageStore
from daemon.network.usernets import UserNetworks


@dataclass
class Backend:
    manager: ContainerManager
    images: ImageStore | None = None
    dist: Distribution | None = None
    networks: UserNetworks | None = None
    image_in_use: Callable[[str], bool] = lambda image_id: False
    files: Files | None = None  # cp (archive), export, changes, commit
    cleanup: Cleanup | None = None  # prune and system df
