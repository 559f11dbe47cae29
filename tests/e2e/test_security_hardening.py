"""Issue 17's "found by probing" list, each as a regression test against a real ctrd: the data root
is not readable by other local users, docker's per-CPU thermal_throttle masks."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from runtime.defaults import thermal_throttle_paths
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import ctl

pytestmark = pytest.mark.root

SECRET = "CTRD_SECRET=hunter2-in-env"


def _read_as(uid: int, gid: int, path: Path) -> str:
    """Fork, drop to uid/gid, try to read `path`: 'read' or the errno name."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, only _exit
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                with open(path, "rb") as f:
                    f.read()
                out = b"read"
            except OSError as exc:
                out = (os.strerror(exc.errno or 0)).encode()
            os.write(w, out)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read().decode()
    os.waitpid(pid, 0)
    return answer


def _nobody() -> tuple[int, int]:
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def test_data_root_is_not_world_readable(ctrd: DaemonProc) -> None:  # noqa: F811
    uid, gid = _nobody()
    # the test's temp dir (mkdtemp: 0700) must be traversable, or the test could not fail
    os.chmod(ctrd.base, 0o755)
    control = ctrd.base / "control.json"
    control.write_text("{}")
    os.chmod(control, 0o644)
    assert _read_as(uid, gid, control) == "read"  # the probe itself works

    cid = ctrd.c.create("busybox", ["true"], env=[SECRET], network_mode="none")
    cdir = ctrd.root / "containers" / cid
    for name in ("config.v2.json", "hostconfig.json"):
        assert SECRET.encode() in (cdir / "config.v2.json").read_bytes()
        assert stat.S_IMODE(os.stat(cdir / name).st_mode) == 0o600, name
        assert _read_as(uid, gid, cdir / name) != "read", name
    assert stat.S_IMODE(os.stat(ctrd.root).st_mode) == 0o710
    assert stat.S_IMODE(os.stat(ctrd.root / "containers").st_mode) == 0o710

    # an older ctrd's modes are tightened at start
    ctrd.stop()
    os.chmod(ctrd.root, 0o755)
    os.chmod(ctrd.root / "containers", 0o755)
    os.chmod(cdir, 0o755)
    for name in ("config.v2.json", "hostconfig.json"):
        os.chmod(cdir / name, 0o644)
    assert _read_as(uid, gid, cdir / "config.v2.json") == "read"  # as an older ctrd left it
    ctrd.start()
    assert stat.S_IMODE(os.stat(ctrd.root).st_mode) == 0o710
    assert stat.S_IMODE(os.stat(ctrd.root / "containers").st_mode) == 0o710
    for name in ("config.v2.json", "hostconfig.json"):
        assert stat.S_IMODE(os.stat(cdir / name).st_mode) == 0o600, name
        assert _read_as(uid, gid, cdir / name) != "read", name
    ctrd.c.remove(cid)


def test_thermal_throttle_is_masked_per_cpu(ctrd: DaemonProc) -> None:  # noqa: F811
    """GHSA-6fw5-f8r9-fgfm: each CPU's thermal_throttle counters are masked, as docker does."""
    paths = thermal_throttle_paths()
    if not paths:
        pytest.skip("this host's CPUs have no thermal_throttle directory (a VM): nothing to mask")
    script = "; ".join(f"echo {p}=$(ls -A {p} | wc -l)" for p in paths)
    r = ctl(ctrd, "run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"{p}=0" for p in paths]  # masked: an empty read-only tmpfs
    assert all(os.listdir(p) for p in paths)  # while the host's are not empty
