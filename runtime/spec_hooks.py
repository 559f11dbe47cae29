"""The `hooks` object of config.json: each kind a list of {path, args, env, timeout}.

Names follow the runtime spec; `prestart` is deprecated there but is what docker 20.10 uses for
its network setup (libnetwork-setkey), so it is kept and run like runc runs it.
"""

from __future__ import annotations

import os

from runtime.errors import SpecError
from runtime.spec_fields import as_object, strs
from runtime.value import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


class Hook(Value):
    where: str  # "hooks.prestart[0]": names the hook in every error
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None  # seconds; None: wait as long as it runs (runc's default)


class Hooks(Value):
    prestart: tuple[Hook, ...] = ()
    createRuntime: tuple[Hook, ...] = ()  # the spec's own names, as attributes
    createContainer: tuple[Hook, ...] = ()
    startContainer: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()

    def of(self, kind: str) -> tuple[Hook, ...]:
        hooks: tuple[Hook, ...] = getattr(self, kind)
        return hooks


def hooks_from_oci(v: Any) -> Hooks:
    if v is None:
        return Hooks()
    obj = as_object(v, "hooks")
    parsed: dict[str, tuple[Hook, ...]] = {}
    for kind in KINDS:
        items = obj.get(kind) or []
        if not isinstance(items, list):
            raise SpecError(f"hooks.{kind}", "must be a list")
        parsed[kind] = tuple(_hook(h, f"hooks.{kind}[{i}]") for i, h in enumerate(items))
    return Hooks(**parsed)


def _hook(v: Any, where: str) -> Hook:
    h = as_object(v, where)
    path = h.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise SpecError(f"{where}.path", f"{path!r} is not an absolute path")
    timeout = h.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0):
        raise SpecError(f"{where}.timeout", f"{timeout!r} is not a positive number of seconds")
    return Hook(where=where, path=path, args=tuple(strs(h.get("args") or [], f"{where}.args")),
                env=tuple(strs(h.get("env") or [], f"{where}.env")), timeout=timeout)


def to_oci(hooks: Hooks) -> dict[str, list[dict[str, Any]]]:
    """The hooks back in config.json's shape (kept in state.json, as runc keeps them in its state,
    so that start and delete run what create was given even if the bundle changed or is gone)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        items = []
        for h in hooks.of(kind):
            item: dict[str, Any] = {"path": h.path}
            if h.args:
                item["args"] = list(h.args)
            if h.env:
                item["env"] = list(h.env)
            if h.timeout is not None:
                item["timeout"] = h.timeout
            items.append(item)
        if items:
            out[kind] = items
    return out
