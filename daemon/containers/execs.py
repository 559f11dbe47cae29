"""The daemon's exec store: docker's exec configs, in memory as docker keeps them.

An exec is created here only (its command, options and container); the shim hears of it when it
starts. A daemon restart forgets every exec (a created, never started one is lost, as docker's).
The execs of a container are dropped with the container. Once started, an exec stays until its
container goes, so `exec inspect` answers after it exited.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ctrd import errdefs

MAX_PER_CONTAINER = 1024  # created or finished execs kept per container (docker keeps all)


@dataclass
class ExecConfig:
    id: str
    container_id: str
    args: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    privileged: bool = False
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0

    def check_startable(self) -> None:
        """docker's refusals for a second start."""
        if self.exit_code is not None:
            raise errdefs.FailedPrecondition(f"Error: Exec command {self.id} has already run")
        if self.started:
            raise errdefs.FailedPrecondition(f"Error: Exec command {self.id} is already running")

    def inspect(self) -> dict[str, Any]:
        """docker's exec inspect object."""
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.args[0] if self.args else "",
                "arguments": list(self.args[1:]),
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": self.exit_code is not None,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "Pid": self.pid,
        }

    def command_line(self) -> str:
        return " ".join(self.args)


class ExecStore:
    def __init__(self) -> None:
        self._by_id: dict[str, ExecConfig] = {}

    def new_id(self) -> str:
        eid = secrets.token_hex(32)
        while eid in self._by_id:
            eid = secrets.token_hex(32)
        return eid

    def add(self, e: ExecConfig) -> None:
        if sum(1 for x in self._by_id.values() if x.container_id == e.container_id) >= MAX_PER_CONTAINER:
            raise errdefs.FailedPrecondition(
                f"container {e.container_id} already has {MAX_PER_CONTAINER} execs: remove the container to drop them")
        self._by_id[e.id] = e

    def get(self, exec_id: str) -> ExecConfig:
        e = self._by_id.get(exec_id)
        if e is None or not exec_id:
            raise errdefs.NotFound(f"No such exec instance: {exec_id}")
        return e

    def of_container(self, container_id: str) -> Iterator[ExecConfig]:
        return (e for e in list(self._by_id.values()) if e.container_id == container_id)

    def drop_container(self, container_id: str) -> None:
        for e in list(self.of_container(container_id)):
            del self._by_id[e.id]

    def __len__(self) -> int:
        return len(self._by_id)
