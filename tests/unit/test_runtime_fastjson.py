"""runtime.fastjson reads and writes exactly what json does (runtime/fastjson.py says why it exists)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from runtime import fastjson, state

VALUES: list[object] = [
    {}, [], "", "x", 0, -1, 2**70, 1.5, -2.5e-10, True, False, None,
    {"id": "c1", "pid": 42, "annotations": {"a": "é\u2028\"\\\n\t"}, "hooks": {"prestart": [{"path": "/h", "args": ["h", "1"]}]}},
    [[[]], {"": {"": None}}, "\x00\x1f"],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_dumps_and_loads_match_json(value: object) -> None:
    text = json.dumps(value)
    assert fastjson.dumps(value) == text
    assert fastjson.loads(text) == value
    assert fastjson.loads(f" \n\t{text}\r\n ") == value


def test_non_finite_numbers_as_json_writes_and_reads_them() -> None:
    assert fastjson.dumps([math.inf, -math.inf]) == json.dumps([math.inf, -math.inf])
    got = fastjson.loads("[NaN, Infinity, -Infinity]")
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text", ["", "   ", "{", "{}x", "[1,]", "nul", '{"a" 1}', '"\\x"', "[1] 2", '{"a":1,}'])
def test_bad_text_fails_as_json_words_it(text: str) -> None:
    with pytest.raises(ValueError) as mine:
        fastjson.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(mine.value) == str(theirs.value)
    assert isinstance(mine.value, json.JSONDecodeError)


def test_what_json_cannot_write_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        fastjson.dumps({"a": {1}})


def test_state_remove_takes_the_directory_and_all_in_it(tmp_path: Path) -> None:
    d = tmp_path / "c1"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "state.json").write_text("{}")
    (d / "sub" / "deeper" / "f").write_text("x")
    os.mkfifo(d / "exec.fifo")
    (d / "link").symlink_to(tmp_path)  # a link to a directory is removed, not followed
    state.remove(str(tmp_path), "c1")
    assert not d.exists() and tmp_path.exists()
    state.remove(str(tmp_path), "c1")  # gone already: no error
