"""Seccomp for the runtime: `linux.seccomp` of any engine's config.json, applied as runc applies it.

    profile = seccomp.parse(spec_json["linux"]["seccomp"])   # SpecError names the bad field
    loader = seccomp.prepare(profile, cache_dir)             # parent: compile once per content hash
    loader.load()                                            # child: one seccomp(2) call

Where it is loaded (runtime.init): with process.noNewPrivileges false, before the capabilities
are dropped (loading a filter without no_new_privs needs CAP_SYS_ADMIN); with it true, as late
as possible, after the credentials and the argv[0] lookup, just before READY and execve. That is
runc's order (standard_init_linux.go); the profile must allow what the runtime does after the
load (setresuid, capset, prctl, chdir, the start handshake, execve), as with runc.

Compiler choice, measured on this machine (Python 3.11, Debian 12's libseccomp 2.5.4):
- `pyseccomp` 0.1.2 (PyPI, a ctypes binding; last release 2021, untyped, no arch-name resolver):
  ~10 ms to import (it finds libc and libseccomp with ctypes.util.find_library, which runs
  `ldconfig -p`);
- Debian's python3-seccomp: built for Debian's python, not importable from ours;
- our ~150-line typed ctypes binding of the documented C API (`libseccomp.py`): ~1 ms to load;
  compiling docker's default profile for x86_64+x86+x32 is done by libseccomp either way
  (see bench/ and tests/unit/test_seccomp_*.py for the figures).
So the binding is ours; the rule compiler is libseccomp. The ENOSYS stub (`bpf.py`) is emitted by
us, as runc emits its own. Programs are cached by content hash (`cache.py`), so libseccomp is
loaded (~1 ms) but never asked to compile on a warm start.
"""

from __future__ import annotations

from typing import Any

from runtime.seccomp import cache, libseccomp
from runtime.seccomp import profile as _profile
from runtime.seccomp.load import Loader
from runtime.seccomp.profile import Profile, parse

__all__ = ["Loader", "Profile", "features", "parse", "prepare", "supported"]


def prepare(p: Profile, cache_dir: str | None) -> Loader:
    """The loader for `p`, compiled now or taken from the cache."""
    digest, program = cache.program(p, cache_dir)
    return Loader(program, p.flag_bits, digest)


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
