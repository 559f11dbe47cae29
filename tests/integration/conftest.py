"""Fixtures shared by the integration tier's ctrctl tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.ctrctl_fake import FakeDaemon


@pytest.fixture
def fake(short_tmp: Path) -> Iterator[FakeDaemon]:
    """A fake ctrd (grpc.aio) on a socket of the test's own: ctrctl's peer in these tests."""
    d = FakeDaemon(str(short_tmp / "ctrd.sock")).start()
    try:
        yield d
    finally:
        d.stop()
