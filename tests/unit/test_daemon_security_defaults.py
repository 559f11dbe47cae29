"""The daemon's --seccomp-profile and --no-new-privileges: loaded and checked once at start-up (a
bad file is one line and exit 2), then the defaults of every container's bundle, which its own
--security-opt overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctrd.errdefs import InvalidArgument
from daemon import config, main
from daemon.security import options, seccomp_default
from daemon.security import seccomp as dsec
from tests.unit.test_daemon_record import make

NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}


def spec_with(security_opt: tuple[str, ...] = (), privileged: bool = False,
              defaults: options.Defaults | None = None) -> dict[str, Any]:
    from runtime.defaults import default_spec

    spec = default_spec(["true"])
    options.apply(spec, security_opt=security_opt, privileged=privileged, devices=(), all_caps=[], defaults=defaults)
    return spec


def test_flags_reach_the_config(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(NO_MKDIR))
    cfg = main.load(["--seccomp-profile", str(path), "--no-new-privileges"])
    assert cfg.no_new_privileges is True and cfg.seccomp_profile == str(path)
    assert json.loads(cfg.security_defaults.seccomp) == NO_MKDIR
    assert main.load([]).security_defaults == options.Defaults("builtin", False)
    assert main.load(["--seccomp-profile", "unconfined", "--no-new-privileges=false"]).security_defaults == \
        options.Defaults("unconfined", False)
    toml = tmp_path / "c.toml"
    toml.write_text(f'seccomp-profile = "{path}"\nno-new-privileges = true\n')
    assert main.load(["--config", str(toml)]).security_defaults.no_new_privileges is True
    toml.write_text('seccomp_default = "unconfined"\n')  # derived, never a key
    with pytest.raises(InvalidArgument, match="unknown key"):
        main.load(["--config", str(toml)])


@pytest.mark.parametrize(("content", "needle"), [
    (None, "seccomp_profile: seccomp profile"),
    ("{not json", "is not valid json"),
    ("[1]", "must be a JSON object"),
    (json.dumps({"defaultAction": "SCMP_ACT_NOPE"}), "seccomp_profile.defaultAction: unknown action"),
])
def test_a_bad_profile_stops_the_daemon_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      content: str | None, needle: str) -> None:
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidArgument) as info:
        config.build({"seccomp_profile": str(path)})
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert main.main(["--seccomp-profile", str(path), "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ctrd: seccomp_profile")


def test_defaults_apply_where_the_container_says_nothing() -> None:
    custom = options.Defaults(json.dumps(NO_MKDIR), True)
    spec = spec_with(defaults=custom)
    assert spec["linux"]["seccomp"] == dsec.resolve(NO_MKDIR, spec["process"]["capabilities"]["bounding"])
    assert spec["process"]["noNewPrivileges"] is True
    # the container's own options win
    spec = spec_with(("seccomp=builtin", "no-new-privileges=false"), defaults=custom)
    assert spec["linux"]["seccomp"] == dsec.resolve(seccomp_default.profile(), spec["process"]["capabilities"]["bounding"])
    assert spec["process"]["noNewPrivileges"] is False
    assert "seccomp" not in spec_with(("seccomp=unconfined",), defaults=custom)["linux"]
    assert "seccomp" not in spec_with(privileged=True, defaults=custom)["linux"]  # docker: privileged is unconfined
    assert "seccomp" not in spec_with(defaults=options.Defaults("unconfined"))["linux"]
    assert spec_with(("seccomp=builtin",), defaults=options.Defaults("unconfined"))["linux"]["seccomp"]
    # without daemon defaults: docker's
    spec = spec_with()
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO" and not spec["process"]["noNewPrivileges"]


def test_bundle_takes_the_daemon_defaults(tmp_path: Path) -> None:
    from daemon.containers.bundle import build_spec
    from tests.daemon_fakes import write_rootfs_files

    write_rootfs_files(tmp_path)
    spec = build_spec(make(), tmp_path, {}, "", "ctrd", options.Defaults("unconfined", True))
    assert "seccomp" not in spec["linux"] and spec["process"]["noNewPrivileges"] is True
