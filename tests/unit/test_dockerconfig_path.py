"""Credentials docker already has are found where docker keeps them: $DOCKER_CONFIG, else ~/.docker."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ctrd import dockerconfig
from ctrd.dockerconfig import Credentials


def _write(path: Path, registry: str, user: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {registry: {"auth": base64.b64encode(f"{user}:pw".encode()).decode()}}}))


def test_user_config_then_docker_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    _write(home / ".docker" / "config.json", "reg.example:5000", "from-home")
    assert dockerconfig.default_path() == home / ".docker" / "config.json"
    assert dockerconfig.lookup("reg.example:5000") == Credentials("from-home", "pw")

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "elsewhere"))
    assert dockerconfig.default_path() == tmp_path / "elsewhere" / "config.json"
    assert not dockerconfig.lookup("reg.example:5000")  # ~/.docker is no longer read
    _write(tmp_path / "elsewhere" / "config.json", "reg.example:5000", "from-env")
    assert dockerconfig.lookup("reg.example:5000") == Credentials("from-env", "pw")
    dockerconfig.store("other:1", Credentials("u", "p"))  # writes go where reads come from
    assert "other:1" in json.loads((tmp_path / "elsewhere" / "config.json").read_text())["auths"]
    assert "other:1" not in json.loads((home / ".docker" / "config.json").read_text())["auths"]
