"""The import contracts in pyproject.toml hold, and each kind fails when an arrow breaks it.

Like the proto-freshness test, it works on a scratch copy of the tree: one clean copy must pass
lint-imports, and each copy with one forbidden import added must fail on the contract it breaks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("daemon", "shimd", "runtime", "ctrctl", "protos/ctrd")
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The scratch copy first on the path, ahead of the editable install of the real tree.
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'protos'}"}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    out = _lint(_copy_tree(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(("module", "added", "contract"), [
    # an upward arrow inside shimd: a backend reaching the shim's task (also a cycle)
    ("shimd/backends/forked.py", "import shimd.task", "shimd layers"),
    # shimd using a part of the runtime other than the container library
    ("shimd/task.py", "import runtime.spec", "shimd imports from the runtime only the container library"),
    # the daemon reaching into the runtime beyond its OCI defaults
    ("daemon/shims/client.py", "import runtime.container", "the daemon imports from the runtime only its OCI defaults"),
    # a cycle inside the runtime, which no other contract covers
    ("runtime/caps.py", "import runtime.container", "no import cycles"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, added: str, contract: str) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{added}  # noqa\n")
    out = _lint(tree)
    assert out.returncode == 1, out.stdout + out.stderr
    _, _, broken = out.stdout.partition("Broken contracts")
    assert any(line.startswith(contract) for line in broken.splitlines()), out.stdout
