"""The OCI `process` object (config.json's and an exec's): args, env, user, capabilities, rlimits."""

from __future__ import annotations

import os
import resource

from runtime import caps
from runtime.errors import SpecError
from runtime.spec_fields import as_object, ident, strs, uint
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RLIMITS: dict[str, int] = {
    name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")
}
RLIM_INFINITY = 2**64 - 1


class Capabilities(Value):
    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


class Rlimit(Value):
    type: int
    soft: int
    hard: int


class ProcessSpec(Value):
    """The OCI `process` object, parsed."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None
    capabilities: Capabilities | None = None  # None: leave the credentials' capabilities as they are
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (rows, cols): process.consoleSize

    @classmethod
    def from_oci(cls, obj: Any, where: str = "process") -> ProcessSpec:
        p = as_object(obj, where)
        args = strs(p.get("args"), f"{where}.args")
        if not args:
            raise SpecError(f"{where}.args", "must not be empty")
        if not args[0]:
            raise SpecError(f"{where}.args[0]", "must not be empty")
        env = strs(p.get("env", []), f"{where}.env")
        for i, e in enumerate(env):
            if "=" not in e or e.startswith("="):
                raise SpecError(f"{where}.env[{i}]", f"{e!r} is not KEY=value")
        cwd = p.get("cwd", "/")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise SpecError(f"{where}.cwd", f"{cwd!r} is not an absolute path")
        user = as_object(p.get("user", {}), f"{where}.user")
        uid = ident(user.get("uid", 0), f"{where}.user.uid")
        gid = ident(user.get("gid", 0), f"{where}.user.gid")
        raw_gids = user.get("additionalGids") or []
        if not isinstance(raw_gids, list):
            raise SpecError(f"{where}.user.additionalGids", "must be a list")
        gids = tuple(ident(g, f"{where}.user.additionalGids[{i}]") for i, g in enumerate(raw_gids))
        umask = user.get("umask")
        if umask is not None and (not isinstance(umask, int) or not 0 <= umask <= 0o777):
            raise SpecError(f"{where}.user.umask", f"{umask!r} is not a mode")
        capabilities = None
        if p.get("capabilities") is not None:
            c = as_object(p["capabilities"], f"{where}.capabilities")
            capabilities = Capabilities(
                **{k: _caps(c.get(k, []), f"{where}.capabilities.{k}")
                   for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
            )
        rlimits = []
        for i, r in enumerate(p.get("rlimits") or []):
            r = as_object(r, f"{where}.rlimits[{i}]")
            if r.get("type") not in RLIMITS:
                raise SpecError(f"{where}.rlimits[{i}].type", f"unknown rlimit {r.get('type')!r}")
            soft = uint(r.get("soft"), f"{where}.rlimits[{i}].soft", 2**64 - 1)
            hard = uint(r.get("hard"), f"{where}.rlimits[{i}].hard", 2**64 - 1)
            if soft > hard:
                raise SpecError(f"{where}.rlimits[{i}]", "soft limit is above the hard limit")
            rlimits.append(Rlimit(RLIMITS[r["type"]], _rlim(soft), _rlim(hard)))
        nnp = p.get("noNewPrivileges", False)
        if not isinstance(nnp, bool):
            raise SpecError(f"{where}.noNewPrivileges", "must be a boolean")
        oom = p.get("oomScoreAdj")
        if oom is not None and (not isinstance(oom, int) or isinstance(oom, bool) or not -1000 <= oom <= 1000):
            raise SpecError(f"{where}.oomScoreAdj", f"{oom!r} is not in -1000..1000")
        terminal = bool(p.get("terminal", False))
        return cls(tuple(args), tuple(env), cwd, uid, gid, gids, umask, capabilities, tuple(rlimits), nnp, oom, terminal,
                   _console_size(p.get("consoleSize"), f"{where}.consoleSize"))


def _console_size(v: Any, where: str) -> tuple[int, int] | None:
    if v is None:
        return None
    size = as_object(v, where)
    rows = uint(size.get("height", 0), f"{where}.height", 0xFFFF)
    cols = uint(size.get("width", 0), f"{where}.width", 0xFFFF)
    return (rows, cols) if rows and cols else None


def _rlim(v: int) -> int:
    return resource.RLIM_INFINITY if v >= RLIM_INFINITY else v


def _caps(v: Any, where: str) -> tuple[str, ...]:
    names = strs(v, where)
    for n in names:
        if n not in caps.NUMBERS:
            raise SpecError(where, f"unknown capability {n!r}")
    return tuple(dict.fromkeys(names))
