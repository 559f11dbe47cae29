"""Fixtures shared by the unit tests of the shim's event loop and what runs on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shimd.loop import ShimLoop, new_loop


@pytest.fixture
def loop() -> Iterator[ShimLoop]:
    """A fresh ShimLoop, closed after the test (a test parametrized on `loop` overrides it)."""
    lp = new_loop()
    yield lp
    lp.close()
