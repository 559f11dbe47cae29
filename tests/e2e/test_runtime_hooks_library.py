"""OCI hooks on the library path the shim uses (Container.create/start/delete in-process, no
state dir): the same points as the CLI, and here startContainer strictly before poststart (start
returns only once the init has exec'd)."""
# The tests take the fixtures `make` and `rootfs` (imported below) as parameters.
# ruff: noqa: F811

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime import errors
from tests.e2e.test_runtime_hooks import _recorder, _records
from tests.runtime_fixtures import Factory, make, rootfs  # noqa: F401

pytestmark = pytest.mark.root

KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def test_library_runs_every_hook_in_order(make: Factory, rootfs: Path) -> None:
    name = f"hooks-{uuid.uuid4().hex[:10]}.log"
    log = rootfs / name

    def mutate(spec: dict[str, Any]) -> None:
        spec["hooks"] = {k: [_recorder(k, f"/{name}" if k == "startContainer" else str(log))] for k in KINDS}

    try:
        run = make(["true"], mutate=mutate)
        assert run.wait() == (0, "")
        run.container.delete()
        records = _records(log)
    finally:
        log.unlink(missing_ok=True)
    assert [r[0] for r in records] == KINDS
    assert records[0][2]["pid"] == run.container.pid


def test_library_failing_prestart_raises_naming_the_hook(make: Factory) -> None:
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 2"]}
    with pytest.raises(errors.SetupError, match=r"^hooks\.prestart\[0\]: /bin/sh exited with status 2: nope$"):
        make(["true"], mutate=lambda s: s.update(hooks={"prestart": [hook]}))
