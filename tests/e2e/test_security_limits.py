"""--read-only, --shm-size, --ulimit, --sysctl, --group-add, --pids-limit and --device-cgroup-rule
through ctrctl and a real ctrd, each checked by its effect inside the container (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.security.limits import DEFAULT_PIDS_LIMIT
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import ctl

pytestmark = pytest.mark.root


def run(d: DaemonProc, *args: str) -> tuple[int, str]:
    r = ctl(d, "run", "--rm", *args)
    return r.returncode, r.stdout + r.stderr


def test_read_only_root_keeps_dockers_writable_exceptions(ctrd: DaemonProc) -> None:  # noqa: F811
    script = ("mount | grep ' / '; touch /probe 2>/dev/null && echo root=rw || echo root=ro; "
              "for d in /dev /dev/shm /dev/mqueue; do touch $d/probe && echo $d=rw || echo $d=ro; done; "
              "echo x > /proc/self/comm && echo proc=ok")
    code, out = run(ctrd, "--network", "none", "--read-only", "busybox", "sh", "-c", script)
    assert code == 0, out
    root_line = next(line for line in out.splitlines() if " on / " in line)
    assert "(ro," in root_line, root_line
    assert "root=ro" in out and "/dev=rw" in out and "/dev/shm=rw" in out and "/dev/mqueue=rw" in out, out
    assert "proc=ok" in out, out
    code, out = run(ctrd, "--network", "none", "busybox", "sh", "-c", script)
    assert "root=rw" in out and "(rw," in next(x for x in out.splitlines() if " on / " in x), out


def _shm_kib(out: str) -> int:
    line = out.strip().splitlines()[-1].split()
    return int(line[1])


def test_shm_size(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--network", "none", "busybox", "df", "-k", "/dev/shm")
    assert code == 0, out
    assert _shm_kib(out) == 65536
    code, out = run(ctrd, "--network", "none", "--shm-size", "128m", "busybox", "df", "-k", "/dev/shm")
    assert code == 0, out
    assert _shm_kib(out) == 131072
    code, out = run(ctrd, "--shm-size", "0", "busybox", "true")
    assert code == 125 and "--shm-size" in out and len(out.strip().splitlines()) == 1, out


def _limit(out: str, title: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(title))
    return line[len(title):].split()[:2]


def test_ulimits_reach_the_process(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--network", "none", "--ulimit", "nofile=1024:2048", "--ulimit", "core=0",
                    "--ulimit", "nproc=100:200", "--ulimit", "fsize=-1", "busybox", "cat", "/proc/self/limits")
    assert code == 0, out
    assert _limit(out, "Max open files") == ["1024", "2048"]
    assert _limit(out, "Max core file size") == ["0", "0"]
    assert _limit(out, "Max processes") == ["100", "200"]
    assert _limit(out, "Max file size") == ["unlimited", "unlimited"]
    code, out = run(ctrd, "--ulimit", "nofiles=10", "busybox", "true")
    assert code == 125 and "nofiles" in out and len(out.strip().splitlines()) == 1, out
    code, out = run(ctrd, "--ulimit", "nofile=20:10", "busybox", "true")
    assert code == 125 and "ulimits: nofile" in out and len(out.strip().splitlines()) == 1, out


def test_namespaced_sysctls_apply_and_others_are_refused(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--network", "none", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1048576",
                    "--sysctl", "fs.mqueue.msg_max=20", "busybox", "sh", "-c",
                    "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max")
    assert code == 0, out
    assert out.split() == ["1", "1048576", "20"]
    host_shmmax = Path("/proc/sys/kernel/shmmax").read_text().strip()
    assert host_shmmax != "1048576"
    for key in ("vm.swappiness=1", "kernel.hostname=x", "fs.file-max=10"):
        code, out = run(ctrd, "--sysctl", key, "busybox", "true")
        assert code == 125 and key.split("=")[0] in out and len(out.strip().splitlines()) == 1, out
    code, out = run(ctrd, "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true")
    assert code == 125 and "net.ipv4.ip_forward" in out and len(out.strip().splitlines()) == 1, out
    assert ctl(ctrd, "ps", "-a", "-q").stdout.strip() == ""  # nothing half-created


def test_group_add_by_gid_and_by_name(ctrd: DaemonProc) -> None:  # noqa: F811
    code, out = run(ctrd, "--network", "none", "--group-add", "4242", "--group-add", "nobody", "busybox", "id", "-G")
    assert code == 0, out
    assert set(out.split()) == {"0", "4242", "65534"}, out
    code, out = run(ctrd, "--network", "none", "--group-add", "nosuchgroup", "busybox", "true")
    assert code != 0 and "nosuchgroup" in out, out


def _pids_max(d: DaemonProc, *flags: str) -> str:
    code, out = run(d, "--network", "none", *flags, "busybox", "cat", "/sys/fs/cgroup/pids/pids.max")
    assert code == 0, out
    return out.strip()


def test_pids_limit_has_a_finite_default(ctrd: DaemonProc) -> None:  # noqa: F811
    assert _pids_max(ctrd) == str(DEFAULT_PIDS_LIMIT)
    assert _pids_max(ctrd, "--pids-limit", "50") == "50"
    assert _pids_max(ctrd, "--pids-limit", "-1") == "max"
    r = ctl(ctrd, "create", "--name", "pidsdef", "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert json.loads(ctl(ctrd, "inspect", "pidsdef").stdout)[0]["HostConfig"]["PidsLimit"] == DEFAULT_PIDS_LIMIT
    assert ctl(ctrd, "rm", "pidsdef").returncode == 0


def test_device_cgroup_rule_opens_a_device(ctrd: DaemonProc) -> None:  # noqa: F811
    # /dev/net/tun (c 10:200) is outside docker's default allow list: a node made with mknod
    # cannot be opened until a rule allows it.
    script = "mknod /tmp/tun c 10 200 && (exec 3</tmp/tun) 2>/dev/null && echo open=ok || echo open=denied"
    code, out = run(ctrd, "--network", "none", "busybox", "sh", "-c", script)
    assert code == 0 and "open=denied" in out, out
    code, out = run(ctrd, "--network", "none", "--device-cgroup-rule", "c 10:200 rwm", "busybox", "sh", "-c",
                    script + "; cat /sys/fs/cgroup/devices/devices.list")
    assert code == 0 and "open=ok" in out, out
    assert "c 10:200 rwm" in out.splitlines(), out
    code, out = run(ctrd, "--device-cgroup-rule", "x 1:3 rwm", "busybox", "true")
    assert code == 125 and "--device-cgroup-rule" in out and len(out.strip().splitlines()) == 1, out
    code, out = run(ctrd, "--device-cgroup-rule", "c 1:3 rwx", "busybox", "true")
    assert code == 125 and "device_cgroup_rules" in out and len(out.strip().splitlines()) == 1, out
