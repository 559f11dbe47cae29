"""Compiled programs, keyed by content: sha256 of (format, libseccomp version, native arch,
the profile's canonical JSON). Kept in memory for this process and on disk in one machine-wide
0700 directory (`/run/ctrd-runtime/seccomp/<key>.bpf`, written atomically), so a profile is
compiled once per boot, not once per container start: the shims give the runtime a state
directory per container, so a cache under it would never be hit again. Sharing is safe because
the name is the content's hash; a caller that cannot write there (not root) keeps the memo only.
"""

from __future__ import annotations

import hashlib
import os

from runtime.seccomp import bpf
from runtime.seccomp import libseccomp as ls
from runtime.seccomp.compile import compile_profile
from runtime.seccomp.profile import Profile

FORMAT = 2  # bumped when the compiler's output changes (2: binary-tree rules)
DEFAULT_DIR = "/run/ctrd-runtime/seccomp"
_MEMO: dict[str, bytes] = {}
# Profile -> (key, program): a frozen Profile hashes and compares by content, ~20x cheaper than
# its key (repr + sha256), so a profile this process has seen (the shim launcher warms the
# daemon's default one before it forks) costs a dict lookup per container start.
_BY_PROFILE: dict[Profile, tuple[str, bytes]] = {}


def key(p: Profile, lib: ls.Lib) -> str:
    h = hashlib.sha256(f"{FORMAT}\0{lib.version}\0{lib.native_arch}\0".encode())
    h.update(p.canonical())
    return h.hexdigest()


def program(p: Profile, cache_dir: str | None) -> tuple[str, bytes]:
    """(key, program): from memory, from the disk cache, or compiled now (and stored)."""
    seen = _BY_PROFILE.get(p)
    if seen is not None:
        return seen
    k, data = _program(p, cache_dir)
    _BY_PROFILE[p] = (k, data)
    return k, data


def _program(p: Profile, cache_dir: str | None) -> tuple[str, bytes]:
    lib = ls.lib()
    k = key(p, lib)
    hit = _MEMO.get(k)
    if hit is not None:
        return k, hit
    path = os.path.join(cache_dir, f"{k}.bpf") if cache_dir else ""
    if path:
        try:
            with open(path, "rb") as f:
                data = f.read(bpf.MAX_INSNS * bpf.INSN.size + 1)
            bpf.check(data)
            _MEMO[k] = data
            return k, data
        except (OSError, ValueError):
            pass  # missing or damaged: compile again and replace it
    data = compile_profile(p, lib)
    _MEMO[k] = data
    if path and cache_dir:
        _store(cache_dir, path, data)
    return k, data


def _store(cache_dir: str, path: str, data: bytes) -> None:
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        pass  # a read-only or full root only costs a compile next time


def clear_memo() -> None:
    _MEMO.clear()
    _BY_PROFILE.clear()
