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


@pytest.fixture
def make(rootfs: Path, short_tmp: Path) -> Iterator[Factory]:
    made: list[Run] = []

    def factory(args: list[str], mutate: Callable[[dict[str, Any]], None] | None = None, start: bool = True,
                state_dir: str | None = None) -> Run:
        cid = "t" + uuid.uuid4().hex[:10]
        bundle = write_bundle(short_tmp / cid, args, rootfs, cgroups_path=f"/ctrd-rt-test/{cid}", mutate=mutate)
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

    yield factory
    for run in made:
        run.container.delete()
        try:
            os.waitpid(run.container.pid, 0)
        except ChildProcessError:
            pass
        if run.out_r >= 0:
            os.close(run.out_r)
