"""Shared test fixtures and the session-end leak check.

Tiers: tests/unit (no root, fakes), tests/integration (real sockets and processes),
tests/e2e (root: namespaces, overlay, cgroups, netns). Tests marked `root` skip when not root.

Everything a test starts lives under a short temp root (`/tmp/ctrdt-*`, short because unix
socket paths are limited to 108 bytes). At the end of the session the leak check compares the
machine with its state at the start: new mounts, netns files, veth links, ctrd cgroups or
ctrd-shim processes fail the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import leaks

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[leaks.BASELINE] = leaks.snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    baseline = session.config.stash.get(leaks.BASELINE, None)
    if baseline is None:
        return
    found = leaks.diff(baseline, leaks.snapshot(), settle=5.0)
    if found:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "LEAK CHECK FAILED: the tests left these behind:\n  " + "\n  ".join(found)
        if tr is not None:
            tr.write_line(msg, red=True)
        else:
            print(msg)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir under /tmp (unix socket paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ctrdt-", dir="/tmp"))
    try:
        yield path
    finally:
        left = leaks.unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)
    if left:
        pytest.fail("test left mounts behind: " + ", ".join(left))


requires_root = pytest.mark.skipif(not IS_ROOT, reason="needs root")
