"""The create helper forked ahead of the Create request (shimd.backends.forked.prefork): a Create
of the forked backend hands it the request and the fds instead of forking; an unused one exits.
Real processes and fd passing; no root (the runtime refuses the bundle, which has no config.json:
that answer coming back is the proof the spare ran the create)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ctrd import errdefs
from shimd.backends import forked
from shimd.backends.protocol import BackendConfig, Stdio
from shimd.reaper import Reaper

CID = "d" * 64


def run(coro_fn):  # type: ignore[no-untyped-def]
    async def main() -> None:
        reaper = Reaper()
        reaper.install(asyncio.get_running_loop())
        try:
            await coro_fn(reaper)
        finally:
            forked.drop_spare()
            reaper.uninstall()

    asyncio.run(main())


def test_create_is_answered_by_the_spare_without_a_fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(reaper: Reaper) -> None:
        forked.prefork(reaper)
        spare = forked._SPARE[0]
        forked.prefork(reaper)  # one spare at a time
        assert len(forked._SPARE) == 1

        def no_fork() -> int:
            raise AssertionError("forked although a spare was waiting")

        monkeypatch.setattr(forked.os, "fork", no_fork)
        (tmp_path / "bundle").mkdir()
        backend = forked.ForkedBackend(BackendConfig(CID, str(tmp_path / "bundle"), "", str(tmp_path / "rt")),
                                       reaper, tmp_path)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            with pytest.raises(errdefs.CtrdError, match=rf"create {CID}: .*config\.json"):
                await backend.create(Stdio(null, null, null))
        finally:
            os.close(null)
        assert not forked._SPARE
        await asyncio.wait_for(spare.exited, 10)  # it reported, then exited, and was reaped

    run(body)


def test_without_a_spare_create_forks_as_before(tmp_path: Path) -> None:
    async def body(reaper: Reaper) -> None:
        assert not forked._SPARE
        (tmp_path / "bundle").mkdir()
        backend = forked.ForkedBackend(BackendConfig(CID, str(tmp_path / "bundle"), "", str(tmp_path / "rt")),
                                       reaper, tmp_path)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            with pytest.raises(errdefs.CtrdError, match=rf"create {CID}: .*config\.json"):
                await backend.create(Stdio(null, null, null))
        finally:
            os.close(null)

    run(body)


def test_an_unused_spare_exits_when_dropped(tmp_path: Path) -> None:
    async def body(reaper: Reaper) -> None:
        forked.prefork(reaper)
        spare = forked._SPARE[0]
        forked.drop_spare()  # e.g. the Create chose runc: EOF on its socket
        ex = await asyncio.wait_for(spare.exited, 10)
        assert ex.status == 0 and not forked._SPARE

    run(body)
