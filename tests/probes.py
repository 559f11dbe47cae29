"""The static syscall probe (tests/syscall_probe.c) for the seccomp e2e tests, built with the
host's C compiler: `probe NAME...` prints NAME=errno per line (0 = the call ran)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("syscall_probe.c")


def build(dest: Path) -> Path:
    """Compile the probe (static, so it runs in a busybox rootfs) to `dest`."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler: scripts/install-deps.sh installs gcc and libc6-dev")
    subprocess.run([cc, "-static", "-O1", "-o", str(dest), str(SOURCE)], check=True, capture_output=True)
    return dest


def parse(out: str) -> dict[str, int]:
    """{name: errno} from the probe's output lines (other lines ignored)."""
    res = {}
    for line in out.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and value.isdigit():
            res[name] = int(value)
    return res
