"""The spare create helper (shimd.backends.spare): forked by the shim before Create, handed the
container's config and stdio over a socketpair, then the create helper as a fresh fork would be.
No root: the "container" is a /bin/sh child of the helper, as in test_shim_forked_start.

Each scenario runs in a fresh interpreter (tests.fresh)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shimd import spawn
from shimd.backends.forked import ForkedBackend, fork_spare
from shimd.backends.protocol import BackendConfig, Stdio
from shimd.reaper import Reaper
from tests.fresh import in_fresh_interpreter


class _Echo:
    """Stands in for runtime.container.Container: create runs `echo <container id>` on the
    stdio it was given; start does nothing."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @classmethod
    def create(cls, bundle: str, container_id: str, stdio: Any, state_dir: str = "",
               terminal: bool | None = None) -> _Echo:
        return cls(spawn.spawn(["/bin/sh", "-c", f"echo {container_id} from $(basename {bundle})"],
                               stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr))

    def start(self) -> None:
        pass


class _Runtime:
    Container = _Echo
    Stdio = Stdio


def _run(scenario: Callable[[Reaper, Path], Awaitable[None]], tmp: Path) -> None:
    async def main() -> None:
        reaper = Reaper()
        reaper.install(asyncio.get_running_loop())
        try:
            await scenario(reaper, tmp)
        finally:
            reaper.uninstall()

    asyncio.run(asyncio.wait_for(main(), 30))


def _bundle(tmp: Path) -> Path:
    b = tmp / "bndl"
    b.mkdir()
    (b / "config.json").write_text(json.dumps({"process": {"args": ["sh"], "terminal": False}}))
    return b


def _read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 4096):
        out += chunk
    return out


async def _echo_create(backend: ForkedBackend) -> tuple[int, bytes]:
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    try:
        pid = await backend.create(Stdio(null, w, null), start=True)
    finally:
        os.close(w)
        os.close(null)
    try:
        return pid, _read_all(r)
    finally:
        os.close(r)


async def spare_answers_create(reaper: Reaper, tmp: Path) -> None:
    bundle = _bundle(tmp)
    spare = fork_spare(reaper, runtime=_Runtime)
    backend = ForkedBackend(BackendConfig("c1", str(bundle), "", str(tmp / "rt")), reaper, tmp, runtime=_Runtime)
    assert backend.adopt_spare(spare)
    second = fork_spare(reaper, runtime=_Runtime)
    assert not backend.adopt_spare(second)  # one is enough: refused
    await second.discard()

    def no_fork() -> int:
        raise AssertionError("create forked a helper although it had a spare")

    real_fork, os.fork = os.fork, no_fork  # type: ignore[assignment]
    try:
        pid, out = await _echo_create(backend)
    finally:
        os.fork = real_fork
    assert pid > 0 and pid != spare.pid
    assert out == b"c1 from bndl\n"  # the config and the stdout fd crossed over
    await asyncio.wait_for(backend.start(), 10)
    assert (await spare.exited).status == 0  # the spare was the helper: it answered and exited


async def spare_discarded_or_dead(reaper: Reaper, tmp: Path) -> None:
    bundle = _bundle(tmp)
    unused = fork_spare(reaper, runtime=_Runtime)
    await unused.discard()
    assert unused.exited.result().status == 0  # it saw its EOF and exited: no SIGKILL was needed

    dead = fork_spare(reaper, runtime=_Runtime)
    os.kill(dead.pid, signal.SIGKILL)
    await dead.exited
    backend = ForkedBackend(BackendConfig("c2", str(bundle), "", str(tmp / "rt")), reaper, tmp, runtime=_Runtime)
    assert backend.adopt_spare(dead)
    _, out = await _echo_create(backend)  # a fresh fork instead
    assert out == b"c2 from bndl\n"
    await asyncio.wait_for(backend.start(), 10)


async def spare_of_another_runtime(reaper: Reaper, tmp: Path) -> None:
    spare = fork_spare(reaper)  # the runtime library's
    backend = ForkedBackend(BackendConfig("c3", str(tmp), "", str(tmp / "rt")), reaper, tmp, runtime=_Runtime)
    assert not backend.adopt_spare(spare)
    await spare.discard()


@pytest.mark.parametrize("scenario", ["spare_answers_create", "spare_discarded_or_dead", "spare_of_another_runtime"])
def test_spare_create_helper(scenario: str, tmp_path: Path) -> None:
    in_fresh_interpreter(__name__, "run_scenario", scenario, str(tmp_path))


def run_scenario(name: str, tmp: str) -> None:
    _run(globals()[name], Path(tmp))
