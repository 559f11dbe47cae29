"""A minimal busybox rootfs for tests and benchmarks (from the static /bin/busybox)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUSYBOX = "/bin/busybox"
_APPLETS: list[str] | None = None


def _applets() -> list[str]:
    global _APPLETS
    if _APPLETS is None:
        out = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True).stdout
        _APPLETS = [line.strip() for line in out.splitlines() if line.strip()]
    return _APPLETS


def make_busybox_rootfs(dest: Path) -> Path:
    """Populate dest (created if missing) with bin/busybox, an applet symlink for every applet,
    /etc/passwd and /etc/group (root and nobody), and empty proc, sys, dev, tmp dirs. Returns dest."""
    dest = Path(dest)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    for full in _applets():
        link = dest / full
        if full == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "user:x:1000:1000:user:/home/user:/bin/sh\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n")
    return dest


def write_bundle(
    bundle: Path,
    args: list[str],
    rootfs: Path,
    *,
    cgroups_path: str = "",
    hostname: str = "ctr",
    mutate: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Write <bundle>/config.json with docker's defaults (runtime.defaults) for `args` on `rootfs`
    (an absolute path, so many bundles can share one read-only-used rootfs). Returns the bundle."""
    from runtime.defaults import default_spec

    bundle = Path(bundle)
    bundle.mkdir(parents=True, exist_ok=True)
    spec = default_spec(args, rootfs=str(rootfs))
    spec["hostname"] = hostname
    if cgroups_path:
        spec["linux"]["cgroupsPath"] = cgroups_path
    if mutate is not None:
        mutate(spec)
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle
