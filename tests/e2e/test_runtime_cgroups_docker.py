"""cpuset through Debian's dockerd: `docker run --runtime ctrd --cpuset-cpus 0` gives
`Cpus_allowed_list: 0` as runc does, and `docker update --cpuset-cpus` moves a running ctrd
container; `docker top` with ps arguments and `docker info` through the runtime."""
# The tests take the fixtures `bridge` and `docker` (imported below) as parameters.
# ruff: noqa: F811

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.dockerd_env import Docker
from tests.e2e.test_runtime_hooks_docker import _image, bridge, docker  # noqa: F401


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cpus")
def test_cpuset_cpus_like_runc_and_update(docker: Docker, short_tmp: Path) -> None:
    image = _image(docker, short_tmp)
    for runtime in ("ctrd", "runc"):
        r = docker("run", "--rm", "--network", "none", "--runtime", runtime, "--cpuset-cpus", "0", image,
                   "grep", "Cpus_allowed_list", "/proc/self/status")
        assert r.returncode == 0, (runtime, r.stderr)
        assert r.stdout == "Cpus_allowed_list:\t0\n", (runtime, r.stdout)
    r = docker("run", "-d", "--network", "none", "--runtime", "ctrd", "--cpuset-cpus", "0", image, "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    r = docker("update", "--cpuset-cpus", "1", cid)
    assert r.returncode == 0, r.stderr
    # `docker update` returns once the runtime has written the cgroup: no wait.
    r = docker("exec", cid, "grep", "Cpus_allowed_list", "/proc/1/status")
    assert (r.returncode, r.stdout) == (0, "Cpus_allowed_list:\t1\n"), r.stderr


def test_docker_top_with_ps_arguments_and_info(docker: Docker, short_tmp: Path) -> None:
    """`docker top` asks the runtime for the container's pids (`ps --format json`) and runs the
    host's ps with the user's arguments; `docker info` lists the runtime."""
    image = _image(docker, short_tmp)
    r = docker("run", "-d", "--network", "none", "--runtime", "ctrd", image, "sh", "-c", "sleep 61 & exec sleep 62")
    assert r.returncode == 0, r.stderr
    r = docker("top", r.stdout.strip(), "-o", "pid,args")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split(None, 1)[1] for line in lines[1:]) == ["sleep 61", "sleep 62"]
    r = docker("info", "--format", "{{json .Runtimes}}")
    assert r.returncode == 0 and '"ctrd"' in r.stdout, r.stdout
