"""Seccomp for the runtime: `linux.seccomp` of any engine's config.json, applied as runc applies it.

    profile = seccomp.parse(spec_json["linux"]["seccomp"])   # SpecError names the bad field
    loader = seccomp.prepare(profile, cache_dir)             # parent: compile once per content hash
    loader.load()                                            # child: one seccomp(2) call

Where it is loaded (runtime.init): with process.noNewPrivileges false, before the capabilities
are dropped (loading a filter without no_new_privs needs CAP_SYS_ADMIN); with it true, as late
as possible, after the credentials and the argv[0] lookup, just before READY and execve. That is
runc's order (standard_init_linux.go); the profile must allow what the runtime does after the
load (setresuid, capset, prctl, chdir, the start handshake, execve), as with runc.

Compiler choice, measured on this machine (2 cores shared with other work, load ~5; Python 3.11;
Debian 12's libseccomp 2.5.4), docker's default profile for x86_64+x86+x32:
- `pyseccomp` 0.1.2 (PyPI, a ctypes binding; last release 2021, untyped for mypy, no arch-name
  resolver): 12 ms to import (ctypes.util.find_library runs `ldconfig -p`); compiling the rules:
  23.4 ms p50 (15 runs, interleaved);
- Debian's python3-seccomp: built for Debian's python, not importable from ours;
- our typed ctypes binding of the same documented C API (`libseccomp.py`): 0.28 ms to load;
  compiling the rules: 23.1 ms p50 — the same BPF, byte for byte (7984 bytes, 998 instructions),
  since libseccomp does the work either way.
So the binding is ours (no import cost, typed, nothing unmaintained in the start path); the rule
compiler is libseccomp. The ENOSYS stub (`bpf.py`, 11 instructions) is emitted by us, as runc
emits its own. A compiled program is cached by content hash (`cache.py`): a warm start costs
~0.6 ms (key, read, loader), never a compile.
"""

from __future__ import annotations

import copy

from runtime.errors import SetupError
from runtime.seccomp import cache, libseccomp
from runtime.seccomp import profile as _profile
from runtime.seccomp.load import Loader
from runtime.seccomp.profile import Profile, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Loader", "Profile", "features", "loader_for", "parse", "parse_known", "prepare", "supported", "warm"]

# A Loader only reads its program in load(): one per (program, flags) serves every container.
_LOADERS: dict[tuple[str, int], Loader] = {}
# The documents warm() was given, with their profiles: a container's `linux.seccomp` equal to one
# of them (a C-level comparison, ~0.02 ms for docker's profile) is not parsed again (~0.2 ms in a
# freshly forked create helper).
_WARM_DOCS: list[tuple[Any, Profile]] = []


def parse_known(doc: Any) -> Profile:
    """`parse(doc)`, answered from the warmed documents when `doc` equals one of them (Python's
    equality: a `true` where the warmed one has 1 matches too, and means the same filter)."""
    for known, profile in _WARM_DOCS:
        if doc == known:
            return profile
    return parse(doc)


def prepare(p: Profile, cache_dir: str | None) -> Loader:
    """The loader for `p`, compiled now or taken from the cache. A host without libseccomp
    refuses the container (never runs it unfiltered)."""
    try:
        digest, program = cache.program(p, cache_dir)
    except libseccomp.LibseccompError as exc:
        raise SetupError(f"linux.seccomp: {exc.strerror or exc}") from None
    flags = p.flag_bits
    loader = _LOADERS.get((digest, flags))
    if loader is None:
        loader = _LOADERS[(digest, flags)] = Loader(program, flags, digest)
    return loader


def warm(doc: Any, rounds: int = 10) -> Loader:
    """Parse, compile (or read from the cache) and keep the loader of the OCI `linux.seccomp`
    object `doc`, in this process: the shim launcher calls this with the daemon's default profile
    before it forks, so that no container start pays for libseccomp's load, the compile-cache
    read or the first (slow, unspecialised) runs of the parser. SpecError/SetupError as `prepare`."""
    profile = parse(doc)
    loader = prepare(profile, cache.DEFAULT_DIR)
    for _ in range(rounds):  # CPython 3.11 specialises a function after a few calls
        prepare(parse(doc), cache.DEFAULT_DIR)
    if not any(doc == known for known, _ in _WARM_DOCS):
        _WARM_DOCS.append((copy.deepcopy(doc), profile))
    for _ in range(rounds):
        parse_known(doc)
    return loader


def loader_for(p: Profile | None) -> Loader | None:
    """A container's filter (its spec's `seccomp`), with the machine-wide cache; None without one."""
    return None if p is None else prepare(p, cache.DEFAULT_DIR)


def supported() -> bool:
    """Whether this host can compile profiles (libseccomp present) — `ctrd-runtime features`."""
    try:
        libseccomp.lib()
    except OSError:
        return False
    return True


def features() -> dict[str, Any]:
    """The `linux.seccomp` part of `ctrd-runtime features` (runc's field names)."""
    if not supported():
        return {"enabled": False}
    lib = libseccomp.lib()
    archs = [a for a, name in _profile.ARCHITECTURES.items() if lib.arch_token(name)]
    actions = sorted(_profile.ACTIONS - {"SCMP_ACT_NOTIFY"})
    flags = sorted(_profile.FLAGS)
    return {"enabled": True, "actions": actions, "operators": sorted(_profile.OPERATORS), "archs": archs,
            "knownFlags": flags, "supportedFlags": flags}
