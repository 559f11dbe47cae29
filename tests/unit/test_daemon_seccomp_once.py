"""The daemon resolves a seccomp profile once per (profile, capabilities), hands its default one
to the shim launcher to compile before it forks, and each container still gets its own copy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.security import options, seccomp_default
from daemon.security import seccomp as dsec
from daemon.shims import manager
from runtime import defaults

CAPS = defaults.default_spec(["true"])["process"]["capabilities"]["bounding"]


def spec_with(caps: list[str]) -> dict[str, Any]:
    spec = defaults.default_spec(["true"])
    spec["process"]["capabilities"]["bounding"] = list(caps)
    return spec


def apply(spec: dict[str, Any], security_opt: tuple[str, ...] = ()) -> dict[str, Any]:
    options.apply(spec, security_opt=security_opt, privileged=False, devices=())
    return spec


def test_resolved_once_per_profile_and_capabilities() -> None:
    options._resolved.cache_clear()
    a = apply(spec_with(CAPS))["linux"]["seccomp"]
    b = apply(spec_with(CAPS))["linux"]["seccomp"]
    assert a == b == dsec.resolve(seccomp_default.profile(), CAPS)
    assert options._resolved.cache_info().misses == 1 and options._resolved.cache_info().hits == 1
    admin = apply(spec_with([*CAPS, "CAP_SYS_ADMIN"]))["linux"]["seccomp"]
    assert options._resolved.cache_info().misses == 2
    assert any("unshare" in r["names"] for r in admin["syscalls"])
    assert not any("unshare" in r["names"] for r in a["syscalls"])


def test_each_container_gets_its_own_top_level_and_rule_list() -> None:
    a = apply(spec_with(CAPS))["linux"]["seccomp"]
    a["defaultAction"] = "SCMP_ACT_ALLOW"
    a["syscalls"].clear()
    b = apply(spec_with(CAPS))["linux"]["seccomp"]
    assert b == dsec.resolve(seccomp_default.profile(), CAPS)


def test_a_profile_file_of_the_container_is_cached_by_its_content() -> None:
    mine = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    other = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}
    got = [options.resolved_profile(json.dumps(p), tuple(CAPS)) for p in (mine, other, mine)]
    assert [r["syscalls"][0]["names"] for r in got] == [["read"], ["write"], ["read"]]


def test_warm_profiles_is_the_default_profile_for_docker_caps() -> None:
    assert options.warm_profiles(options.DOCKER_DEFAULTS) == [dsec.resolve(seccomp_default.profile(), CAPS)]
    assert options.warm_profiles(options.Defaults(seccomp="unconfined")) == []
    own = json.dumps({"defaultAction": "SCMP_ACT_LOG"})
    assert options.warm_profiles(options.Defaults(seccomp=own)) == [{"defaultAction": "SCMP_ACT_LOG", "syscalls": []}]


def test_shims_hand_the_profiles_to_the_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = options.warm_profiles(options.DOCKER_DEFAULTS)
    shims = manager.RealShims(tmp_path, profiles)
    started: list[bool] = []

    async def start() -> None:
        started.append(True)

    monkeypatch.setattr(shims.launcher, "start", start)
    asyncio.run(shims.start())
    warm = tmp_path / manager.SECCOMP_WARM_FILE
    assert started and json.loads(warm.read_text()) == profiles
    assert warm.stat().st_mode & 0o777 == 0o600
    assert shims.launcher._seccomp_warm == warm
    assert manager.RealShims(tmp_path / "none").launcher._seccomp_warm is None


def test_launcher_command_line_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.shims import launcher

    seen: list[tuple[str, ...]] = []

    async def spawn(*argv: str, **_: Any) -> Any:
        seen.append(argv)
        raise OSError("not started in a unit test")

    monkeypatch.setattr(launcher.asyncio, "create_subprocess_exec", spawn)
    for warm in (tmp_path / "w.json", None):
        with pytest.raises(OSError):
            asyncio.run(launcher.ShimLauncher(tmp_path, python="py", seccomp_warm=warm).start())
    assert seen[0][-2:] == ("--seccomp-warm", str(tmp_path / "w.json"))
    assert "--seccomp-warm" not in seen[1]
