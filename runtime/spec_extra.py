"""The rest of `linux.resources`: hugetlb limits, net_cls/net_prio, memory swappiness and the OOM
killer switch, and `unified` (cgroup v2 files by name). None of it is dropped silently: a host
that cannot honour a field makes create fail naming it (runtime.cgroup_v1_more / cgroup_v2)."""

from __future__ import annotations

from runtime.errors import SpecError
from runtime.spec_fields import as_object
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_PAGE_SIZE = r"[0-9]+[KMG]B"
_IFACE = r"[A-Za-z0-9_.:@-]{1,15}"
_UNIFIED_KEY = r"[a-z0-9_]+\.[a-z0-9_.]+"


def _matches(pattern: str, text: str) -> bool:
    """`re` only for a spec that has these rare fields: it is ~5 ms of every `ctrd-runtime create`
    otherwise (runtime/value.py has the measurement)."""
    import re

    return re.fullmatch(pattern, text) is not None


class Extra(Value):
    hugepage_limits: tuple[tuple[str, int], ...] = ()  # (pageSize "2MB", limit bytes)
    net_class_id: int | None = None
    net_priorities: tuple[tuple[str, int], ...] = ()  # (interface, priority)
    swappiness: int | None = None
    oom_kill_disable: bool | None = None
    unified: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.hugepage_limits or self.net_class_id is not None or self.net_priorities
                    or self.swappiness is not None or self.oom_kill_disable or self.unified)


def _int(v: Any, where: str, lo: int, hi: int) -> int | None:
    """An optional integer where 0 means 0 (not "unset", as for the limits in spec_fields)."""
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SpecError(where, f"{v!r} is not in {lo}..{hi}")
    return v


def extra_from_oci(r: Any) -> Extra:
    huge: list[tuple[str, int]] = []
    for i, h in enumerate(r.get("hugepageLimits") or []):
        where = f"linux.resources.hugepageLimits[{i}]"
        h = as_object(h, where)
        size = h.get("pageSize")
        if not isinstance(size, str) or not _matches(_PAGE_SIZE, size):
            raise SpecError(f"{where}.pageSize", f"{size!r} is not a page size like 2MB or 1GB")
        lim = _int(h.get("limit"), f"{where}.limit", 0, 1 << 62)
        if lim is None:
            raise SpecError(f"{where}.limit", "is required")
        huge.append((size, lim))
    net = as_object(r.get("network") or {}, "linux.resources.network")
    prios: list[tuple[str, int]] = []
    for i, p in enumerate(net.get("priorities") or []):
        where = f"linux.resources.network.priorities[{i}]"
        p = as_object(p, where)
        name = p.get("name")
        if not isinstance(name, str) or not _matches(_IFACE, name):
            raise SpecError(f"{where}.name", f"{name!r} is not an interface name")
        prio = _int(p.get("priority"), f"{where}.priority", 0, (1 << 32) - 1)
        if prio is None:
            raise SpecError(f"{where}.priority", "is required")
        prios.append((name, prio))
    mem = as_object(r.get("memory") or {}, "linux.resources.memory")
    oom = mem.get("disableOOMKiller")
    if oom is not None and not isinstance(oom, bool):
        raise SpecError("linux.resources.memory.disableOOMKiller", "must be true or false")
    unified = as_object(r.get("unified") or {}, "linux.resources.unified")
    for k, v in unified.items():
        if not _matches(_UNIFIED_KEY, k) or k.startswith("cgroup."):
            raise SpecError(f"linux.resources.unified.{k}", "is not a controller file name like memory.high")
        if not isinstance(v, str):
            raise SpecError(f"linux.resources.unified.{k}", "must be a string")
    return Extra(
        hugepage_limits=tuple(huge),
        net_class_id=_int(net.get("classID"), "linux.resources.network.classID", 0, (1 << 32) - 1),
        net_priorities=tuple(prios),
        swappiness=_int(mem.get("swappiness"), "linux.resources.memory.swappiness", 0, 100),
        oom_kill_disable=oom,
        unified=tuple(sorted(unified.items())),
    )
