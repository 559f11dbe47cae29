"""The shim's terminal check against the bundle (run by each backend where the runtime reads the
bundle: in the forked helper by default, so that the parse stays out of the shim's pages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctrd import errdefs
from shimd.backends.bundle import check_terminal


def _bundle(tmp_path: Path, process: dict[str, object]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({"process": process}))
    return tmp_path


@pytest.mark.parametrize("terminal", [True, False])
def test_agreeing_request_and_bundle_pass(tmp_path: Path, terminal: bool) -> None:
    check_terminal(_bundle(tmp_path, {"terminal": terminal, "args": ["sh"]}), terminal)


def test_no_terminal_key_means_no_terminal(tmp_path: Path) -> None:
    check_terminal(_bundle(tmp_path, {"args": ["sh"]}), False)
    with pytest.raises(errdefs.InvalidArgument, match="terminal: the request says True"):
        check_terminal(tmp_path, True)


def test_a_mismatch_names_the_field_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"terminal: the request says False, .*config\.json says the opposite"):
        check_terminal(_bundle(tmp_path, {"terminal": True}), False)


def test_a_missing_or_broken_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"bundle: cannot read .*config\.json"):
        check_terminal(tmp_path, False)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(errdefs.InvalidArgument, match=r"bundle: cannot read .*config\.json"):
        check_terminal(tmp_path, False)
