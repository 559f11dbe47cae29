"""A profile is compiled once per process and content: loaders memoised by the profile's content,
the shim launcher's warm-up (`--seccomp-warm`) before it forks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from daemon.security import seccomp as dsec
from daemon.security import seccomp_default
from runtime import container as runtime_library
from runtime import defaults, errors, seccomp
from runtime.seccomp import cache
from shimd.launch import launcher

CAPS = defaults.default_spec(["true"])["process"]["capabilities"]["bounding"]


def oci(caps: list[str] = CAPS) -> dict[str, Any]:
    return dsec.resolve(seccomp_default.profile(), caps, machine=("amd64", "SCMP_ARCH_X86_64"), kernel=(6, 1))


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """Counts compiles; the memos start empty and the disk cache is a fresh directory."""
    cache.clear_memo()
    monkeypatch.setattr(seccomp, "_LOADERS", {})
    monkeypatch.setattr(seccomp, "_WARM_DOCS", [])
    monkeypatch.setattr(cache, "DEFAULT_DIR", str(tmp_path / "cache"))
    calls: list[int] = []
    real = cache.compile_profile
    monkeypatch.setattr(cache, "compile_profile", lambda *a: calls.append(1) or real(*a))
    return calls


def test_equal_profiles_from_separate_documents_share_one_loader(compiles: list[int]) -> None:
    first = seccomp.loader_for(seccomp.parse(oci()))
    # a document parsed again (as each container's config.json is) finds it by content
    again = seccomp.loader_for(seccomp.parse(json.loads(json.dumps(oci()))))
    assert again is first and compiles == [1]
    other = seccomp.loader_for(seccomp.parse(oci([*CAPS, "CAP_SYS_ADMIN"])))
    assert other is not first and other.program != first.program and compiles == [1, 1]


def test_the_memo_is_keyed_by_content_not_by_a_digest_collision(compiles: list[int]) -> None:
    doc = oci()
    a = seccomp.loader_for(seccomp.parse(doc))
    doc["syscalls"][0]["names"] = doc["syscalls"][0]["names"][:-1]  # one syscall fewer
    b = seccomp.loader_for(seccomp.parse(doc))
    assert a.digest != b.digest and a is not b and compiles == [1, 1]


def test_warm_keeps_the_loader_so_a_forked_start_compiles_nothing(compiles: list[int], tmp_path: Path) -> None:
    warmed = seccomp.warm(oci(), rounds=2)
    assert compiles == [1]
    for bpf in (tmp_path / "cache").iterdir():
        bpf.unlink()  # no disk cache either: only the memo can answer
    pid = os.fork()
    if pid == 0:  # a shim's create helper: a fork of the warmed launcher, parsing its own config.json
        same = seccomp.loader_for(seccomp.parse(json.loads(json.dumps(oci())))) is warmed
        os._exit(0 if same and compiles == [1] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_warmed_document_is_not_parsed_again(compiles: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    seccomp.warm(oci(), rounds=1)
    parsed: list[int] = []
    real = seccomp.parse
    monkeypatch.setattr(seccomp, "parse", lambda doc: parsed.append(1) or real(doc))
    known = seccomp.parse_known(json.loads(json.dumps(oci())))  # each config.json: a new, equal document
    assert parsed == [] and known == real(oci())
    other = oci([*CAPS, "CAP_SYS_ADMIN"])
    assert seccomp.parse_known(other) == real(other) and parsed == [1]
    bad = oci()
    bad["syscalls"][0]["action"] = "SCMP_ACT_NOPE"  # not equal to the warmed one: parsed, and refused
    with pytest.raises(errors.SpecError, match=r"linux\.seccomp\.syscalls\[0\]\.action"):
        seccomp.parse_known(bad)


def test_warm_refuses_a_bad_profile_with_its_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "_WARM_DOCS", [])
    bad = oci()
    bad["defaultAction"] = "SCMP_ACT_NOPE"
    with pytest.raises(errors.SpecError, match=r"linux\.seccomp\.defaultAction"):
        runtime_library.warm_seccomp(bad)


def test_launcher_warms_the_profiles_of_its_file(compiles: list[int], tmp_path: Path) -> None:
    path = tmp_path / "warm.json"
    path.write_text(json.dumps([oci()]))
    launcher.warm_seccomp(path)
    assert compiles == [1]
    seccomp.loader_for(seccomp.parse(oci()))
    assert compiles == [1]


@pytest.mark.parametrize("content", [None, "not json", '{"not": "a list"}', '[{"defaultAction": 3}]'])
def test_launcher_warm_up_never_fails_the_launcher(compiles: list[int], tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "warm.json"
    if content is not None:
        path.write_text(content)
    launcher.warm_seccomp(path)  # logs and goes on: the start that uses a bad profile reports it
    launcher.warm_seccomp(None)
    assert compiles == []
