"""docker rename and docker update: the two changes a container's record takes after create.

update writes the new limits into the running container's cgroups through its shim (the shim's
runtime backend, as `runc update`), then into hostconfig.json, so the next start applies them too.
"""

from __future__ import annotations

import asyncio
import dataclasses

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2
from daemon.containers import validate
from daemon.containers.record import Container, HostConfig, RestartPolicy
from daemon.containers.state import is_alive
from daemon.containers.store import ContainerStore
from daemon.security import limits
from daemon.shims.api import Limits, ShimTask


def check_update(c: Container, req: container_pb2.UpdateRequest, ncpu: int) -> tuple[HostConfig, Limits]:
    """The new HostConfig and what the running container's cgroups must change to."""
    h = c.host_config
    memory = nano = pids = None
    if req.HasField("memory"):
        if req.memory < -1 or 0 < req.memory < validate.MIN_MEMORY:
            raise InvalidArgument("memory: minimum memory limit allowed is 6MB")
        memory = req.memory if req.memory > 0 else -1
        h = dataclasses.replace(h, memory=max(req.memory, 0))
    if req.HasField("nano_cpus"):
        if req.nano_cpus < 0 or (req.nano_cpus and not 10_000_000 <= req.nano_cpus <= ncpu * 1_000_000_000):
            raise InvalidArgument(f"nano_cpus: range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
        nano = req.nano_cpus
        h = dataclasses.replace(h, nano_cpus=req.nano_cpus)
    if req.HasField("pids_limit"):
        value = limits.check_pids_limit(req.pids_limit if req.pids_limit > 0 else -1)
        pids = value if value > 0 else -1
        h = dataclasses.replace(h, pids_limit=value)
    if req.HasField("restart_policy"):
        name = req.restart_policy.name or "no"
        count = req.restart_policy.maximum_retry_count
        if name not in validate.RESTART_NAMES:
            raise InvalidArgument(f"restart_policy: invalid restart policy {name!r} (no, always, on-failure[:N], unless-stopped)")
        if count < 0 or (count and name != "on-failure"):
            raise InvalidArgument(f"restart_policy.maximum_retry_count: cannot be used with restart policy {name!r}")
        if h.auto_remove and name != "no":
            raise InvalidArgument("restart_policy: cannot be updated because AutoRemove is enabled for the container")
        h = dataclasses.replace(h, restart_policy=RestartPolicy(name, count))
    return h, Limits(memory, nano, pids)


async def update_locked(c: Container, req: container_pb2.UpdateRequest, ncpu: int, shim: ShimTask | None,
                        store: ContainerStore) -> None:
    host, lim = check_update(c, req, ncpu)
    if shim is not None and is_alive(c.status) and (lim.memory, lim.nano_cpus, lim.pids_limit) != (None, None, None):
        await shim.update(lim)
    c.host_config = host
    await asyncio.to_thread(store.write_host_config, c)


async def rename_locked(c: Container, new_name: str, store: ContainerStore) -> str:
    """The old name; AlreadyExists when the new one is taken (docker's message)."""
    if not new_name:
        raise InvalidArgument("name: a new name is required")
    name = validate.check_name(new_name)
    old = c.name
    if name == old:
        raise InvalidArgument(f"name: renaming a container with the same name as its current name ({old})")
    store.reserve_name(name)
    try:
        c.name = name
        await asyncio.to_thread(store.save, c)
    except BaseException:
        c.name = old
        store.release_name(name)
        raise
    store.rename(c, old)
    return old
