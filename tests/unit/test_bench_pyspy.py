"""bench.pyspy: summary of py-spy's collapsed stacks (per process, self and inclusive shares)."""

from __future__ import annotations

import pytest

from bench.pyspy import process_name, short, summarize_collapsed

RAW = (
    'process 10:"/usr/bin/python3 /usr/local/bin/ctrd --root /tmp/x";<module> (ctrd:8);'
    "start (daemon/containers/manager.py:120);mount (daemon/layers/mount.py:40) 30\n"
    'process 10:"/usr/bin/python3 /usr/local/bin/ctrd --root /tmp/x";<module> (ctrd:8);'
    "start (daemon/containers/manager.py:121);write (daemon/atomic.py:12) 10\n"
    'process 10:"/usr/bin/python3 /usr/local/bin/ctrd --root /tmp/x";'
    'process 22:"/usr/bin/python3 /usr/local/bin/ctrd-shim";run (shimd/main.py:5) 60\n'
    "garbage line without count\n"
)


def test_process_name_and_short_frames() -> None:
    assert process_name('process 10:"/usr/bin/python3 /usr/local/bin/ctrd --root /tmp/x"') == "ctrd"
    assert process_name('process 7:"/usr/bin/python3.11 -m bench.run"') == "bench.run"
    assert short("start (daemon/containers/manager.py:120)") == "start (daemon/containers/manager.py)"


def test_summary_shares_add_up_per_process_and_frame() -> None:
    s = summarize_collapsed(RAW)
    assert s["samples"] == 100
    assert dict(map(tuple, s["by_process"])) == {"ctrd-shim": 60.0, "ctrd": 40.0}
    top_self = dict(map(tuple, s["top_self"]))
    assert top_self["ctrd-shim: run (shimd/main.py)"] == 60.0
    assert top_self["ctrd: mount (daemon/layers/mount.py)"] == 30.0
    inclusive = dict(map(tuple, s["top_inclusive"]))
    # both ctrd stacks pass through start(): line numbers differ, the function is one
    assert inclusive["ctrd: start (daemon/containers/manager.py)"] == pytest.approx(40.0)


def test_empty_profile() -> None:
    assert summarize_collapsed("") == {"samples": 0}
