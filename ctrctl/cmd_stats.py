"""`stats`: docker's resource table (CPU % from two samples, as docker computes it)."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ctrctl.client import Client, RpcError, StatusCode, daemon_error
from ctrctl.errors import EXIT_FAILURE
from ctrctl.format import bytes_size, short_id, tabulate
from ctrd import errdefs
from ctrd.v1 import container_pb2

HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]


@dataclass(slots=True)
class _Series:
    name: str
    samples: list[Any] = field(default_factory=list)
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event)


def cpu_percent(prev: Any, cur: Any) -> float:
    cpu = cur.cpu_usage_ns - prev.cpu_usage_ns
    system = cur.system_cpu_ns - prev.system_cpu_ns
    if cpu <= 0 or system <= 0:
        return 0.0
    return float(cpu / system * (cur.online_cpus or 1) * 100.0)


def host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def stats_row(series: _Series, trunc: bool) -> list[str]:
    if not series.samples:
        return ["--", series.name, "--", "-- / --", "--", "--"]
    cur = series.samples[-1]
    cpu = cpu_percent(series.samples[-2], cur) if len(series.samples) > 1 else 0.0
    # No limit: docker shows the host's memory (the daemon is on this host: unix socket).
    limit = cur.memory_limit or host_memory()
    mem_pct = cur.memory_usage / limit * 100 if limit else 0.0
    ident = short_id(cur.id) if trunc else cur.id
    return [ident, cur.name.removeprefix("/") or series.name, f"{cpu:.2f}%",
            f"{bytes_size(cur.memory_usage)} / {bytes_size(limit)}", f"{mem_pct:.2f}%",
            str(cur.pids_current)]


def _collect(client: Client, series: _Series, limit: int | None) -> None:
    call = client.containers.Stats(container_pb2.StatsRequest(id=series.name, stream=True))
    try:
        for resp in call:
            series.samples = [*series.samples[-1:], resp]
            if limit is not None:
                limit -= 1
                if limit <= 0:
                    break
    except RpcError as err:
        if err.code() != StatusCode.CANCELLED:
            series.error = daemon_error(errdefs_of(client, err), EXIT_FAILURE, container=series.name).line
    finally:
        call.cancel()
        series.done.set()


def errdefs_of(client: Client, err: RpcError) -> errdefs.CtrdError:
    return client.native(err)


def stats(args: argparse.Namespace) -> int:
    client = Client(args.address)
    names = list(args.containers)
    if not names:
        try:
            resp = client.call(client.containers.List, container_pb2.ListRequest(all=args.all))
        except errdefs.CtrdError as exc:
            raise daemon_error(exc, EXIT_FAILURE)
        names = [c.id for c in resp.containers]
    series = [_Series(n) for n in names]
    threads = [threading.Thread(target=_collect, args=(client, s, 2 if args.no_stream else None), daemon=True)
               for s in series]
    for t in threads:
        t.start()
    trunc = not args.no_trunc
    if args.no_stream:
        for t in threads:
            t.join(timeout=10.0)
        sys.stdout.write(tabulate([HEADER] + [stats_row(s, trunc) for s in series if not s.error]))
        for s in series:
            if s.error:
                print(s.error, file=sys.stderr)
        return EXIT_FAILURE if any(s.error for s in series) else 0
    clear = "\033[2J\033[H" if sys.stdout.isatty() else ""
    while True:
        time.sleep(1.0)
        sys.stdout.write(clear + tabulate([HEADER] + [stats_row(s, trunc) for s in series if not s.error]))
        sys.stdout.flush()
        if all(s.done.is_set() and not t.is_alive() for s, t in zip(series, threads, strict=True)):
            return EXIT_FAILURE if any(s.error for s in series) else 0
