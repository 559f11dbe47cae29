"""Escape catalogue cases the runtime itself must stop (issue 17): no host fd survives into a
container or an exec'd process (CVE-2024-21626), and a container process cannot reach the host
interpreter through /proc/<pid>/exe of a process joining it with exec (CVE-2019-5736)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import Container, ProcessSpec, Stdio
from tests.rootfs import make_busybox_rootfs, write_bundle

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-esc-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _drain(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def _exec(c: Container, script: str) -> str:
    r, w = os.pipe()
    try:
        pid = c.exec(ProcessSpec(args=("sh", "-c", script), env=("PATH=/bin",)), Stdio(w, w, w))
    finally:
        os.close(w)
    out = _drain(r)
    os.waitpid(pid, 0)
    return out


def test_cve_2024_21626_only_stdio_is_open_in_init_and_exec(rootfs: Path, short_tmp: Path) -> None:
    # a host fd the caller holds open (not close-on-exec) must not reach the container
    leak = os.open("/", os.O_RDONLY)
    os.set_inheritable(leak, True)
    cid = "e" + uuid.uuid4().hex[:10]
    bundle = write_bundle(short_tmp / cid, ["sh", "-c", "ls /proc/self/fd; exec sleep 100"], rootfs,
                          cgroups_path=f"/ctrd-rt-test/{cid}")
    r, w = os.pipe()
    try:
        c = Container.create(bundle, cid, Stdio(w, w, w))
    finally:
        os.close(w)
        os.close(leak)
    try:
        c.start()
        first = os.read(r, 4096).decode()
        # `ls` itself holds one more fd (the directory it reads)
        assert sorted(int(x) for x in first.split()) == [0, 1, 2, 3], first
        listing = _exec(c, "ls /proc/self/fd; for f in 0 1 2; do readlink /proc/self/fd/$f; done")
        lines = listing.split()
        assert sorted(int(x) for x in lines[:-3]) == [0, 1, 2, 3], listing
        assert all(t.startswith("pipe:") for t in lines[-3:]), listing
    finally:
        c.kill(9)
        os.waitpid(c.pid, 0)
        os.close(r)
        c.delete()


def test_cve_2019_5736_host_interpreter_unreachable_through_exec(rootfs: Path, short_tmp: Path) -> None:
    exe = os.path.realpath(sys.executable)
    before = hashlib.sha256(Path(exe).read_bytes()).hexdigest()
    # the container's init watches for new processes and tries to open their exe for writing
    attacker = ("while :; do for p in /proc/[0-9]*; do "
                "[ \"${p#/proc/}\" = 1 ] && continue; "
                "( exec 3>>\"$p/exe\" ) 2>/dev/null && echo OPENED-$p; "
                "t=$(readlink \"$p/exe\" 2>/dev/null); "
                "[ -n \"$t\" ] && [ \"$t\" != /bin/busybox ] && echo HOSTEXE-$t; "
                "done; done")
    cid = "v" + uuid.uuid4().hex[:10]
    bundle = write_bundle(short_tmp / cid, ["sh", "-c", attacker], rootfs, cgroups_path=f"/ctrd-rt-test/{cid}")
    r, w = os.pipe()
    try:
        c = Container.create(bundle, cid, Stdio(w, w, w))
    finally:
        os.close(w)
    try:
        c.start()
        for _ in range(30):
            assert _exec(c, "true") == ""
    finally:
        c.kill(9)
        os.waitpid(c.pid, 0)
        c.delete()
    out = _drain(r)
    # every exec'd process is non-dumpable until it has exec'd: its exe (the host interpreter)
    # can be neither opened nor even named from inside; afterwards it is the container's busybox
    hits = [line for line in out.splitlines() if line.startswith(("OPENED", "HOSTEXE"))]
    assert hashlib.sha256(Path(exe).read_bytes()).hexdigest() == before
    assert hits == []
