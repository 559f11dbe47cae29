"""runtime.container.preload: what the shim's launcher imports before it forks shims must cover
every module a container's create, start and delete import, or each start pays for the import
in its create helper (a fork of a shim: cold pages, a sys.path search per module); and what it
reads once for all (the cgroup mount points) is not read again by each create."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rootfs import write_bundle
from tests.runtime_fixtures import rootfs  # noqa: F401

pytestmark = pytest.mark.root

# Run in a fresh interpreter: preload, then a whole container lifecycle, reporting what it
# imported that preload had not (the pytest process has imported everything already).
_SCRIPT = """
import builtins, os, sys
from runtime import container
container.preload()
before = set(sys.modules)
opened = []
real_open = builtins.open
def recording_open(file, *args, **kwargs):
    opened.append(str(file))
    return real_open(file, *args, **kwargs)
builtins.open = recording_open
null = os.open("/dev/null", os.O_RDWR)
c = container.Container.create(sys.argv[1], sys.argv[2], container.Stdio(null, null, null))
c.start()
_, status = os.waitpid(c.pid, 0)
c.delete()
print(os.waitstatus_to_exitcode(status), " ".join(sorted(set(sys.modules) - before)))
print(" ".join(p for p in opened if p.startswith("/proc/self/mount")))
"""


def test_preload_covers_a_whole_container_lifecycle(rootfs: Path, short_tmp: Path) -> None:  # noqa: F811
    cid = f"preload{os.getpid()}"
    bundle = write_bundle(short_tmp / "bundle", ["true"], rootfs, cgroups_path=f"/ctrd-test/{cid}")
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(bundle), cid], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    first, _, mount_reads = out.stdout.partition("\n")
    code, _, imported = first.strip().partition(" ")
    assert code == "0"
    assert imported == "", f"imported after preload: {imported}"
    # the cgroup hierarchies' mount points were read by preload, not again by the create
    assert mount_reads.strip() == ""
