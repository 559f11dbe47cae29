"""From a profile in docker's format to the config.json `linux.seccomp` of one container.

As docker does it (moby/profiles seccomp_linux.go): the architectures are the native one and its
sub-architectures from `archMap` (or the profile's own `architectures`); a rule is kept when its
`includes` all hold and none of its `excludes` does — `caps` against the container's final
bounding set, `arches` against the native Go architecture name, `minKernel` against the running
kernel. What is left is plain OCI (names, action, errnoRet, args), which any runtime applies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from ctrd import seccomp as vocab
from ctrd.errdefs import InvalidArgument
from daemon.kernel import kernel_version

MAX_PROFILE_BYTES = 1 << 20  # docker's own profile is ~20 KB
# uname machine -> (Go architecture name, SCMP_ARCH_* name)
_ARCH: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "i686": ("386", "SCMP_ARCH_X86"), "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"), "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}


def native_arch() -> tuple[str, str]:
    m = os.uname().machine
    return _ARCH.get(m, (m, "SCMP_ARCH_" + m.upper()))


def _kernel_at_least(want: Any, kernel: tuple[int, int], where: str) -> bool:
    if not isinstance(want, str):
        raise InvalidArgument(f"{where}: {want!r} is not a kernel version")
    got = kernel_version(want)
    if got == (0, 0):
        raise InvalidArgument(f"{where}: {want!r} is not a kernel version")
    return kernel >= got


def _strs(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise InvalidArgument(f"{where}: must be a list of strings")
    return v


def _keep(rule: dict[str, Any], caps: frozenset[str], goarch: str, kernel: tuple[int, int], where: str) -> bool:
    exc = rule.get("excludes") or {}
    inc = rule.get("includes") or {}
    if not isinstance(exc, dict) or not isinstance(inc, dict):
        raise InvalidArgument(f"{where}: includes and excludes must be objects")
    if goarch in _strs(exc.get("arches"), f"{where}.excludes.arches"):
        return False
    if any(c in caps for c in _strs(exc.get("caps"), f"{where}.excludes.caps")):
        return False
    if exc.get("minKernel") and _kernel_at_least(exc["minKernel"], kernel, f"{where}.excludes.minKernel"):
        return False
    arches = _strs(inc.get("arches"), f"{where}.includes.arches")
    if arches and goarch not in arches:
        return False
    if not all(c in caps for c in _strs(inc.get("caps"), f"{where}.includes.caps")):
        return False
    return not (inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], kernel, f"{where}.includes.minKernel"))


def resolve(profile: dict[str, Any], capabilities: Iterable[str], *, machine: tuple[str, str] | None = None,
            kernel: tuple[int, int] | None = None, where: str = "seccomp") -> dict[str, Any]:
    """The OCI linux.seccomp for a container whose bounding set is `capabilities`."""
    if not isinstance(profile, dict):
        raise InvalidArgument(f"{where}: the profile must be a JSON object")
    goarch, scmp = machine or native_arch()
    kernel = kernel or kernel_version()
    caps = frozenset(capabilities)
    archs = _strs(profile.get("architectures"), f"{where}.architectures")
    arch_map = profile.get("archMap") or []
    if archs and arch_map:
        raise InvalidArgument(f"{where}: use either 'architectures' or 'archMap', not both")
    if not isinstance(arch_map, list):
        raise InvalidArgument(f"{where}.archMap: must be a list")
    for i, a in enumerate(arch_map):
        if not isinstance(a, dict):
            raise InvalidArgument(f"{where}.archMap[{i}]: must be an object")
        if a.get("architecture") == scmp:
            archs = [scmp, *_strs(a.get("subArchitectures"), f"{where}.archMap[{i}].subArchitectures")]
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction")}
    for key in ("defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"):
        if profile.get(key) is not None:
            out[key] = profile[key]
    if archs:
        out["architectures"] = archs
    syscalls = profile.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise InvalidArgument(f"{where}.syscalls: must be a list")
    rules = []
    for i, r in enumerate(syscalls):
        rw = f"{where}.syscalls[{i}]"
        if not isinstance(r, dict):
            raise InvalidArgument(f"{rw}: must be an object")
        names = _strs(r.get("names"), f"{rw}.names")
        if r.get("name"):
            if names:
                raise InvalidArgument(f"{rw}: use either 'name' or 'names', not both")
            names = [str(r["name"])]
        if not _keep(r, caps, goarch, kernel, rw):
            continue
        rule: dict[str, Any] = {"names": names, "action": r.get("action")}
        for key in ("errnoRet", "args"):
            if r.get(key) is not None:
                rule[key] = r[key]
        rules.append(rule)
    out["syscalls"] = rules
    return out


def read_profile(path: str, field: str = "security_opt") -> dict[str, Any]:
    """A profile file (docker's or OCI's format): the daemon's --seccomp-profile."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise InvalidArgument(f"{field}: seccomp profile {path}: {(exc.strerror or str(exc)).lower()}")
    if len(raw) > MAX_PROFILE_BYTES:
        raise InvalidArgument(f"{field}: seccomp profile {path} is larger than {MAX_PROFILE_BYTES} bytes")
    return parse_profile(raw, path, field)


def parse_profile(raw: bytes | str, name: str, field: str = "security_opt") -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: seccomp profile {name} is not valid json: {exc}")
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{field}: seccomp profile {name} must be a JSON object")
    return obj


def check_oci(profile: dict[str, Any], where: str) -> None:
    """A resolved profile against the OCI vocabulary (ctrd.seccomp): the runtime would refuse the
    same values at every start; refusing them at create names the field once."""
    _action(profile.get("defaultAction"), f"{where}.defaultAction")
    for i, arch in enumerate(profile.get("architectures") or []):
        if arch not in vocab.ARCHITECTURES:
            raise InvalidArgument(f"{where}.architectures[{i}]: unknown architecture {arch!r}")
    for i, flag in enumerate(profile.get("flags") or []):
        if flag not in vocab.FLAGS:
            raise InvalidArgument(f"{where}.flags[{i}]: unsupported flag {flag!r}")
    for i, rule in enumerate(profile.get("syscalls") or []):
        rw = f"{where}.syscalls[{i}]"
        if not rule.get("names"):
            raise InvalidArgument(f"{rw}.names: must be a non-empty list of syscall names")
        _action(rule.get("action"), f"{rw}.action")
        args = rule.get("args") or []
        if not isinstance(args, list):
            raise InvalidArgument(f"{rw}.args: must be a list")
        for j, a in enumerate(args):
            if not isinstance(a, dict):
                raise InvalidArgument(f"{rw}.args[{j}]: must be an object")
            index = a.get("index")
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= vocab.MAX_ARG_INDEX:
                raise InvalidArgument(f"{rw}.args[{j}].index: {index!r} is not an argument index in 0..5")
            if a.get("op") not in vocab.OPERATORS:
                raise InvalidArgument(f"{rw}.args[{j}].op: unknown operator {a.get('op')!r}")


def _action(v: Any, where: str) -> None:
    if v not in vocab.ACTIONS:
        raise InvalidArgument(f"{where}: unknown action {v!r}")
    if v in vocab.UNSUPPORTED_ACTIONS:
        raise InvalidArgument(f"{where}: {v} (seccomp user notification) is not supported")
