"""/containers/...: create, list, inspect, the lifecycle verbs, wait, logs, attach, top, stats, prune."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ctrd import errdefs, timefmt
from ctrd.errdefs import InvalidArgument
from daemon.containers.manager import ContainerManager
from daemon.containers.record import Container
from daemon.containers.state import Status, is_alive
from daemon.dockerapi import attach, views
from daemon.dockerapi import filters as flt
from daemon.dockerapi.backend import Backend
from daemon.dockerapi.create import spec_from_docker, update_request
from daemon.dockerapi.http import Reply, Request, empty, json_reply
from daemon.dockerapi.params import time_param
from daemon.dockerapi.routing import Router, version_tuple
from daemon.dockerapi.streams import frame, stream_type
from daemon.dockerapi.system import go_arch
from daemon.logs import LogQuery

LIST_FILTERS = frozenset({"name", "id", "status", "label", "ancestor", "exited", "network", "before", "since",
                          "health", "volume", "publish", "expose", "is-task"})
WAIT_CONDITIONS = ("not-running", "next-exit", "removed", "")


def networks_of(m: ContainerManager, c: Container) -> dict[str, Any]:
    """NetworkSettings.Networks as the domain builds it for inspect."""
    return m.monitor.network.networks_view(c.id, c.host_config.network_mode or "bridge", c.network)


def _matches(c: Container, f: flt.Filters, by_ref: dict[str, Container]) -> bool:
    for key, values in f.items():
        if not values:
            continue
        if key == "label":
            if not flt.label_matches(dict(c.config.labels), values):
                return False
            continue
        if key == "name":
            ok = any(v.lstrip("/") in c.name for v in values)
        elif key == "id":
            ok = any(c.id.startswith(v) for v in values)
        elif key == "status":
            ok = c.status.value in values
        elif key == "ancestor":
            ok = c.config.image in values or c.image_id in values or any(c.image_id.startswith(v) for v in values)
        elif key == "exited":
            ok = c.status is Status.EXITED and str(c.state.exit_code) in values
        elif key == "network":
            ok = c.host_config.network_mode in values
        elif key in ("before", "since"):
            ref = by_ref.get(values[0])
            if ref is None:
                raise errdefs.NotFound(f"No such container: {values[0]}")
            ok = c.created < ref.created if key == "before" else c.created > ref.created
        elif key == "publish":
            ports = {f"{p.container_port}/{p.protocol}" for p in c.host_config.port_bindings} | {
                str(p.container_port) for p in c.host_config.port_bindings}
            ok = any(v in ports for v in values)
        elif key == "expose":
            ok = any(v in c.config.exposed_ports or f"{v}/tcp" in c.config.exposed_ports for v in values)
        elif key == "health":
            ok = (c.state.health.status if c.state.health is not None else "none") in values
        elif key == "is-task":
            ok = "false" in values
        elif key == "volume":
            ok = any(m.source in values or m.target in values for m in c.host_config.mounts)
        else:
            ok = False
        if not ok:
            return False
    return True


def register(r: Router, b: Backend) -> None:
    m = b.manager

    def get(req: Request) -> Container:
        try:
            return m.get(req.params["id"])
        except errdefs.NotFound:
            raise errdefs.NotFound(f"No such container: {req.params['id']}") from None

    async def create(req: Request) -> Reply:
        body = await req.json()
        name = req.q("name").lstrip("/")
        spec = spec_from_docker(body, name)
        if req.q("platform") not in ("", "linux", f"linux/{go_arch()}"):
            raise InvalidArgument(f"platform: {req.q('platform')} is not this host's platform")
        try:
            cid, warnings = await m.create(spec)
        except errdefs.InvalidArgument as exc:
            if exc.reason == errdefs.REASON_NO_SUCH_IMAGE:
                raise errdefs.NotFound(f"No such image: {spec.image}") from None
            raise
        return json_reply({"Id": cid, "Warnings": warnings}, 201)

    async def list_(req: Request) -> Reply:
        f = flt.parse(req.q("filters"), LIST_FILTERS)
        all_ = req.qbool("all")
        limit = req.qint("limit", -1) or -1
        everything = m.list_containers(True)
        by_ref = {}
        for c in everything:
            by_ref[c.id] = by_ref[c.id[:12]] = by_ref[c.name] = c
        out = []
        for c in sorted(everything, key=lambda c: c.created, reverse=True):
            shown = all_ or c.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING) or "status" in f \
                or "exited" in f or limit > 0 or "before" in f or "since" in f
            if shown and _matches(c, f, by_ref):
                out.append(c)
        if limit > 0:
            out = out[:limit]
        v = version_tuple(req.api_version)
        return json_reply([views.list_entry(c, networks_of(m, c), v) for c in out])

    async def inspect(req: Request) -> Reply:
        c = get(req)
        return json_reply(views.inspect(c, m.inspect(c.id), version_tuple(req.api_version)))

    async def start(req: Request) -> Reply:
        c = get(req)
        await req.drain()
        if c.status in (Status.RUNNING, Status.PAUSED):
            return empty(304)
        await m.start(c.id)
        return empty()

    async def stop(req: Request) -> Reply:
        c = get(req)
        if c.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
            return empty(304)
        await m.stop(c.id, req.qint("t", req.qint("timeout")), req.q("signal"))
        return empty()

    async def restart(req: Request) -> Reply:
        c = get(req)
        await m.restart(c.id, req.qint("t", req.qint("timeout")))
        return empty()

    async def kill(req: Request) -> Reply:
        c = get(req)
        if not is_alive(c.status):
            raise errdefs.FailedPrecondition(f"Cannot kill container: {req.params['id']}: container {c.id} is not running")
        await m.kill(c.id, req.q("signal"))
        return empty()

    async def pause(req: Request) -> Reply:
        await m.pause(get(req).id)
        return empty()

    async def unpause(req: Request) -> Reply:
        await m.resume(get(req).id)
        return empty()

    async def delete(req: Request) -> Reply:
        c = get(req)
        if req.qbool("link"):
            raise InvalidArgument("link: container links are not supported by ctrd")
        if is_alive(c.status) and not req.qbool("force"):
            state = "paused" if c.status is Status.PAUSED else "running"
            raise errdefs.FailedPrecondition(
                f"cannot remove container \"/{c.name}\": container is {state}: "
                + ("Unpause and then stop the container before attempting removal or force remove"
                   if state == "paused" else "stop the container before removing or force remove"))
        await m.remove(c.id, req.qbool("force"), remove_volumes=req.qbool("v"))
        return empty()

    async def wait(req: Request) -> None:
        c = get(req)
        cond = req.q("condition")
        if cond not in WAIT_CONDITIONS:
            raise InvalidArgument(f"condition: invalid condition {cond!r} (not-running, next-exit, removed)")
        waiting = asyncio.ensure_future(m.wait(c.id, cond))
        await asyncio.sleep(0)  # registered before the headers say so
        stream = await req.stream()  # the headers go now: the client knows the wait is registered
        try:
            code, err = await waiting
        finally:
            waiting.cancel()
        await stream.write_json({"StatusCode": code, "Error": {"Message": err} if err else None})
        await stream.close()

    async def logs(req: Request) -> None:
        c = get(req)
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        if not stdout and not stderr:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        tail = req.q("tail", "all")
        try:
            ntail = -1 if tail in ("all", "") else int(tail)
        except ValueError:
            raise InvalidArgument(f"tail: invalid value {tail!r}") from None
        now = time.time()
        q = LogQuery(tail=ntail, since=time_param(req.q("since"), now, "since"), until=time_param(req.q("until"), now, "until"),
                     stdout=stdout, stderr=stderr, follow=req.qbool("follow"))
        stamps = req.qbool("timestamps")
        tty = c.config.tty  # one raw stream with a terminal, docker's frames without
        stream = await req.stream(stream_type(req.api_version, tty))
        async for e in m.logs(c.id, q):
            data = (e.time.encode() + b" " + e.data) if stamps else e.data
            await stream.write(data if tty else frame(e.stream, data))
        await stream.close()

    async def attach_(req: Request) -> None:
        c = get(req)
        tty = c.config.tty
        if not req.qbool("stream", True):  # logs=1 alone: the log so far, then the connection ends
            q = LogQuery(stdout=req.qbool("stdout"), stderr=req.qbool("stderr"))
            entries = m.logs(c.id, q) if req.qbool("logs") else None
            conn = await req.hijack(stream_type(req.api_version, tty))
            try:
                if entries is not None:
                    async for e in entries:
                        await conn.write(e.data if tty else frame(e.stream, e.data))
            finally:
                await conn.close()
            return
        o = attach.open_message(req, c.id)
        o.logs = req.qbool("logs")
        await attach.hijacked_session(req, lambda requests: m.attach(o, requests), tty)

    async def resize(req: Request) -> Reply:
        c = get(req)
        await m.resize(c.id, req.qint("h", 0) or 0, req.qint("w", 0) or 0)
        return Reply(200, b"", "")

    async def rename(req: Request) -> Reply:
        c = get(req)
        name = req.q("name").lstrip("/")
        if not name:
            raise InvalidArgument("name: a new name is required")
        await m.rename(c.id, name)
        return empty()

    async def update(req: Request) -> Reply:
        c = get(req)
        await m.update(update_request(c.id, await req.json()))
        return json_reply({"Warnings": []})

    async def top(req: Request) -> Reply:
        c = get(req)
        if not is_alive(c.status):
            raise errdefs.FailedPrecondition(f"container {c.id} is not running")
        titles, rows = await m.top(c.id)
        return json_reply({"Titles": titles, "Processes": rows})

    async def stats(req: Request) -> None:
        c = get(req)
        streaming = req.qbool("stream", True)
        one_shot = req.qbool("one-shot")
        stream = await req.stream()
        prev: dict[str, Any] = _cpu_zero()
        pre_read = timefmt.rfc3339(0)
        if not streaming and not one_shot:  # docker samples twice, a second apart, for the CPU %
            prev, _ = await _sample(m, c.id)
            pre_read = timefmt.rfc3339(time.time())
            await asyncio.sleep(1.0)
        while True:
            cur, st = await _sample(m, c.id)
            read = timefmt.rfc3339(time.time())
            await stream.write_json({
                "read": read, "preread": pre_read,
                "pids_stats": {"current": st.pids_current, **({"limit": st.pids_limit} if st.pids_limit else {})},
                "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                                "io_queue_recursive": None, "io_service_time_recursive": None,
                                "io_wait_time_recursive": None, "io_merged_recursive": None,
                                "io_time_recursive": None, "sectors_recursive": None},
                "num_procs": 0, "storage_stats": {},
                "cpu_stats": cur, "precpu_stats": prev,
                "memory_stats": {"usage": st.memory_usage, "limit": st.memory_limit or _mem_total(), "stats": {}}
                if is_alive(c.status) else {},
                "name": "/" + c.name, "id": c.id,
                "networks": await asyncio.to_thread(_net_stats, c.state.pid if is_alive(c.status) else 0),
            })
            if not streaming:
                break
            prev, pre_read = cur, read
            await asyncio.sleep(1.0)
        await stream.close()

    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("POST", "/containers/{id}/attach", attach_)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/stats", stats)
    r.add("DELETE", "/containers/{id}", delete)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/update", update)


def _cpu_zero() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": 0, "online_cpus": 0, "throttling_data": {"periods": 0, "throttled_periods": 0,
                                                                         "throttled_time": 0}}


async def _sample(m: Any, cid: str) -> tuple[dict[str, Any], Any]:
    _, st = await m.stats(cid)
    return {"cpu_usage": {"total_usage": st.cpu_usage_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": _system_cpu_ns(), "online_cpus": os.cpu_count() or 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}, st


def _net_stats(pid: int) -> dict[str, Any]:
    """docker's per-interface counters, from the container's own /proc/<pid>/net/dev."""
    out: dict[str, Any] = {}
    if not pid:
        return out
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(":")
        v = [int(x) for x in rest.split()]
        if name.strip() == "lo" or len(v) < 16:
            continue
        out[name.strip()] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                             "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}
    return out


def _mem_total() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")

