"""The shim's state files (runtime.json, exit.json): written by hand for flat records, as
json.dumps(sort_keys=True) would write them, through the encoder for anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shimd import files

FLAT = [
    {},
    {"id": "c1", "bundle": "/run/ctrd/shims/c1", "runtime": "", "runtime_root": "/x/runtime", "pid": 0,
     "log_path": "/var/lib/ctrd/containers/c1/c1-json.log"},
    {"pid": 4242, "exit_status": 137, "exited_at": 1765150000.123456, "oom_killed": True},
    {"b": -1, "a": None, "c": False, "d": 10**30, "e": 0.1, "f": -0.0, "g": 1e300, "h": 5e-324},
    {"quoted": 'a "b" \\c', "ctl": "\x00\x01\n\t\x7f", "utf": "é漢字\U0001f600", "lone": "\ud800"},
]

NOT_FLAT: list[dict[Any, Any]] = [
    {"list": [1, 2]},
    {"nested": {"a": 1}},
    {"nan": float("nan")},
    {"inf": float("inf")},
    {1: "int key"},
    {"tuple": (1,)},
]


@pytest.mark.parametrize("obj", FLAT)
def test_flat_records_read_as_json_dumps_writes_them(obj: dict[str, Any]) -> None:
    assert files.flat_json(obj) == json.dumps(obj, sort_keys=True)


@pytest.mark.parametrize("obj", NOT_FLAT)
def test_other_records_are_left_to_the_encoder(obj: dict[Any, Any]) -> None:
    assert files.flat_json(obj) is None


def test_an_int_or_str_subclass_is_left_to_the_encoder() -> None:
    class Code(int):
        pass

    assert files.flat_json({"a": Code(3)}) is None
    assert files.flat_json({"a": True, "b": 1}) == '{"a": true, "b": 1}'


@pytest.mark.parametrize("obj", FLAT + NOT_FLAT[:-2])
def test_write_json_writes_what_json_dumps_writes(tmp_path: Path, obj: dict[str, Any]) -> None:
    target = tmp_path / "runtime.json"
    files.write_json(target, obj)
    assert target.read_text() == json.dumps(obj, sort_keys=True)
    assert not list(tmp_path.glob(".*.tmp"))
