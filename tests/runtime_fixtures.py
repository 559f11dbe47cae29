"""The runtime library's e2e fixtures: a busybox rootfs, and containers made from it that are
deleted (and reaped) at the end of the test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime import Container, Stdio
from tests.rootfs import make_busybox_rootfs, write_bundle


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-rfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Run:
    container: Container
    out_r: int

    def wait(self) -> tuple[int, str]:
        _, status = os.waitpid(self.container.pid, 0)
        return os.waitstatus_to_exitcode(status), self.read()

    def read(self) -> str:
        chunks = []
        while chunk := os.read(self.out_r, 65536):
            chunks.append(chunk)
        os.close(self.out_r)
        self.out_r = -1
        return b"".join(chunks).decode()


Factory = Callable[..., Run]


def run_factory(rootfs: Path, tmp: Path, made: list[Run], prefix: str = "t") -> Factory:
    """A factory of started (or only created) containers on `rootfs`, each recorded in `made` for
    `delete_all`; `mutate` edits the bundle's config.json first."""

    def factory(args: list[str], mutate: Callable[[dict[str, Any]], None] | None = None, start: bool = True,
                state_dir: str | None = None) -> Run:
        cid = prefix + uuid.uuid4().hex[:10]
        bundle = write_bundle(tmp / cid, args, rootfs, cgroups_path=f"/ctrd-rt-test/{cid}", mutate=mutate)
        r, w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY)
        try:
            c = Container.create(bundle, cid, Stdio(null, w, w), state_dir=state_dir)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            os.close(null)
        run = Run(c, r)
        made.append(run)
        if start:
            c.start()
        return run

    return factory


def delete_all(made: list[Run]) -> None:
    for run in made:
        run.container.delete()
        try:
            os.waitpid(run.container.pid, 0)
        except ChildProcessError:
            pass
        if run.out_r >= 0:
            os.close(run.out_r)


@pytest.fixture
def make(rootfs: Path, short_tmp: Path) -> Iterator[Factory]:
    made: list[Run] = []
    yield run_factory(rootfs, short_tmp, made)
    delete_all(made)
