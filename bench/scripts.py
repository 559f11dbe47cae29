"""Where our console scripts are: beside the interpreter running the bench (sys.executable's
directory), which is what `pip install` made and what a user's dockerd (`--add-runtime`) or
containerd (`--runc-binary`) would be configured with. Never `shutil.which` first: on this machine
PATH finds pyenv's bash shim (/root/.pyenv/shims/*), which adds ~70 ms to every call."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def console_script(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)
