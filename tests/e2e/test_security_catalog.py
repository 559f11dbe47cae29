"""More of the escape catalogue (shared/research/security-test-catalog.md §2.3) through ctrctl and a
real ctrd (root): cgroup-v1 release_agent (CVE-2022-0492), read-only cgroup mounts
(CVE-2023-25809), and no fresh procfs behind the masks even with seccomp off (moby
TestRunUnshareProc)."""

from __future__ import annotations

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_security_escapes import run

pytestmark = pytest.mark.root


def test_cve_2022_0492_no_cgroup_mount_and_no_release_agent_write(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "busybox", "sh", "-c",
                    "mkdir -p /mnt/cg; mount -t cgroup -o rdma cgroup /mnt/cg && echo MOUNTED; "
                    "for f in /sys/fs/cgroup/release_agent /sys/fs/cgroup/*/release_agent; do "
                    "[ -e \"$f\" ] && echo /tmp/x > \"$f\" && echo WROTE $f; done; "
                    "unshare -U -r -m -C true && echo UNSHARED; true")
    assert code == 0, out
    assert "MOUNTED" not in out and "WROTE" not in out and "UNSHARED" not in out, out
    assert "mount" in out and "unshare" in out  # both ran and said why they failed


def test_cve_2023_25809_every_cgroup_mount_is_read_only(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "busybox", "grep", " /sys/fs/cgroup", "/proc/mounts")
    assert code == 0 and out.strip(), out
    for line in out.splitlines():
        assert "ro" in line.split()[3].split(","), line


def test_no_fresh_procfs_behind_the_masks_even_unconfined(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c",
                    "unshare -p -m -f -r true && echo NAMESPACES-OK; "
                    "unshare -p -m -f -r mount -t proc proc /proc && echo MOUNTED; "
                    "mkdir -p /p2; unshare -p -m -f -r mount -t proc proc /p2 && echo MOUNTED2; true")
    assert code == 0, out
    assert "NAMESPACES-OK" in out, out  # unconfined: the namespaces themselves are allowed ...
    assert "MOUNTED" not in out, out  # ... but the kernel refuses procfs where the real one is masked
