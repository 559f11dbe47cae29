"""bench.procmem: smaps_rollup/status parsing and shim lookup on a fake /proc tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.procmem import (
    ancestor_with_comm,
    parse_smaps_rollup,
    parse_threads,
    ppid_of,
    read_procmem,
    summarize_mem,
    uss_of,
)

ROLLUP = """55d0c0a00000-7ffc4d1f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               13272 kB
Pss:                2950 kB
Pss_Anon:           2300 kB
Shared_Clean:      10100 kB
Shared_Dirty:        200 kB
Private_Clean:       372 kB
Private_Dirty:      2600 kB
Swap:                  0 kB
"""


def fake_proc(root: Path, pid: int, ppid: int, comm: str, rollup: str = ROLLUP, threads: int = 1) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    (d / "stat").write_text(f"{pid} ({comm} x) S {ppid} {pid} {pid} 0 -1\n")
    (d / "status").write_text(f"Name:\t{comm}\nThreads:\t{threads}\nVmRSS:\t  13272 kB\n")
    (d / "smaps_rollup").write_text(rollup)


def test_parse_smaps_rollup_and_uss() -> None:
    fields = parse_smaps_rollup(ROLLUP)
    assert fields["Rss"] == 13272
    assert fields["Pss"] == 2950
    assert uss_of(fields) == 372 + 2600
    assert parse_threads("Name:\tx\nThreads:\t11\n") == 11


def test_read_procmem_and_ppid_with_spaces_in_comm(tmp_path: Path) -> None:
    fake_proc(tmp_path, 40, 1, "containerd-shim", threads=11)
    m = read_procmem(40, tmp_path)
    assert (m.rss_kb, m.pss_kb, m.uss_kb, m.threads) == (13272, 2950, 2972, 11)
    assert ppid_of(40, tmp_path) == 1


def test_ancestor_with_comm_finds_the_shim_above_the_container(tmp_path: Path) -> None:
    fake_proc(tmp_path, 10, 1, "ctrd")
    fake_proc(tmp_path, 20, 1, "ctrd-shim")
    fake_proc(tmp_path, 30, 20, "sh")
    fake_proc(tmp_path, 31, 30, "sleep")
    assert ancestor_with_comm(31, "ctrd-shim", tmp_path) == 20
    assert ancestor_with_comm(10, "ctrd-shim", tmp_path) is None
    assert ancestor_with_comm(99, "ctrd-shim", tmp_path) is None


def test_summarize_mem_in_mb() -> None:
    from bench.procmem import ProcMem

    s = summarize_mem([ProcMem(1, 1024, 2048, 1024, 1), ProcMem(2, 3072, 4096, 2048, 3)])
    assert s["count"] == 2
    assert s["pss_mb_p50"] == pytest.approx(3.0)
    assert s["rss_mb_mean"] == pytest.approx(2.0)
    assert s["threads_p50"] == 2
    assert summarize_mem([]) == {}
