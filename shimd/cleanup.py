"""`ctrd-shim delete`: clean up after a shim that died (or was killed) while its container lived.

Kills what is left of the container through its runtime (the backend recorded in runtime.json),
removes the shim's state dir (never descending into a mount: the rootfs belongs to the daemon)
and returns the exit status the shim recorded in exit.json (255 when it never recorded one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ctrd import errdefs
from shimd import files
from shimd.backends.inprocess import load_and_delete
from shimd.backends.protocol import RUNTIME_LIBRARY_DIRECT, BackendConfig


def _kill_shim(state: Path) -> None:
    try:
        pid = int((state / files.PID_FILE).read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return
    if comm != "ctrd-shim":
        return  # the pid was reused: not ours to kill
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                break
        except (OSError, IndexError):
            break
        time.sleep(0.02)


def _delete_container(info: dict[str, Any], bundle: str | None) -> None:
    config = BackendConfig(str(info["id"]), str(bundle or info.get("bundle", "")), str(info.get("runtime", "")),
                           str(info["runtime_root"]))
    if config.runtime and config.runtime != RUNTIME_LIBRARY_DIRECT:
        res = subprocess.run(
            [config.runtime, "--root", str(config.runtime_root), "delete", "--force", config.container_id],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if res.returncode != 0 and "does not exist" not in res.stderr:
            raise errdefs.Internal(f"{config.runtime} delete {config.container_id}: {res.stderr.strip()}")
        return
    load_and_delete(config, int(info.get("pid", 0)))


def delete(exec_root: Path, container_id: str, bundle: str | None = None) -> dict[str, Any]:
    state = files.state_dir_for(exec_root, container_id)
    _kill_shim(state)
    info = files.read_json(state / files.RUNTIME_FILE)
    if info is not None:
        with contextlib.suppress(errdefs.NotFound):
            _delete_container(info, bundle)
    ex = files.read_json(state / files.EXIT_FILE) or {}
    files.remove_tree(state)
    return {
        "exit_status": int(ex.get("exit_status", files.UNKNOWN_EXIT)),
        "exited_at": float(ex.get("exited_at", time.time())),
    }
