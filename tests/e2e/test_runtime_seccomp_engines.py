"""Another engine's linux.seccomp is honoured: containerd's `ctr run --seccomp` writes its default
profile into config.json; with ctrd-runtime as the runc binary the container is filtered, and the
syscall probe gets the same answers as under runc."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests import probes
from tests.e2e.test_runtime_containerd import Ctr, ctr  # noqa: F401
from tests.e2e.test_runtime_seccomp import PROBES
from tests.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.root


def test_containerd_default_profile_is_applied_like_runc(ctr: Ctr, short_tmp: Path) -> None:  # noqa: F811
    rootfs = make_busybox_rootfs(short_tmp / "rootfs")
    probes.build(rootfs / "bin" / "probe")
    script = "grep Seccomp: /proc/self/status; probe " + " ".join(p for p in PROBES if p != "add_key")
    answers = {}
    for runtime in (ctr.runtime, "runc"):
        cid = "cs" + uuid.uuid4().hex[:8]
        p = ctr("run", "--rm", "--seccomp", "--runc-binary", runtime, "--cgroup", f"/ctrd-rt-test/{cid}",
                "--env", "PATH=/bin:/usr/bin", "--rootfs", str(rootfs), cid, "/bin/sh", "-c", script)
        assert p.returncode == 0, p.stderr
        assert "Seccomp:\t2" in p.stdout, (runtime, p.stdout)
        answers[runtime] = probes.parse(p.stdout)
    ours, runc = answers[ctr.runtime], answers["runc"]
    assert ours["keyctl"] == 1 and ours["unshare_user"] == 1
    assert ours == runc
