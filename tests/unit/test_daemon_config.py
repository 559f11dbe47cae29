"""ctrd's flags, its TOML config file, and their precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctrd.errdefs import InvalidArgument
from daemon.config import Config
from daemon.main import load


def test_defaults_are_dockers_shape() -> None:
    cfg = load([])
    assert cfg == Config()
    assert str(cfg.root) == "/var/lib/ctrd" and str(cfg.exec_root) == "/run/ctrd"
    assert str(cfg.address) == "/run/ctrd/ctrd.sock" and cfg.pid_file == Path("/run/ctrd/ctrd.pid")
    assert cfg.live_restore is False and cfg.stop_timeout == 10 and cfg.runtime == ""


def test_toml_then_flags_win(tmp_path: Path) -> None:
    conf = tmp_path / "ctrd.toml"
    conf.write_text('root = "/tmp/a"\nexec-root = "/tmp/b"\nlive-restore = true\nbridge = "br0"\nshutdown_timeout = 3\n')
    cfg = load(["--config", str(conf), "--bridge", "br1", "--cgroup-parent", "ctrdt-x", "--runtime", "runc"])
    assert cfg.root == Path("/tmp/a") and cfg.exec_root == Path("/tmp/b") and cfg.live_restore is True
    assert cfg.bridge == "br1" and cfg.cgroup_parent == "ctrdt-x" and cfg.runtime == "runc"
    assert cfg.shutdown_timeout == 3


@pytest.mark.parametrize(
    ("text", "args", "field"),
    [
        ('nonsense = 1\n', [], "config"),
        ('root = [\n', [], "config"),
        ("", ["--address", "/tmp/" + "x" * 120], "address"),
        ("", ["--cgroup-parent", "../escape"], "cgroup_parent"),
    ],
)
def test_bad_config(tmp_path: Path, text: str, args: list[str], field: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(text)
    with pytest.raises(InvalidArgument) as exc:
        load(["--config", str(conf), *args])
    assert exc.value.message.startswith(field + ":")


def test_firewall_flags_default_on_and_take_docker_spellings(tmp_path: Path) -> None:
    c = load([])
    assert (c.iptables, c.ip_masq, c.ip_forward) == (True, True, True)
    c = load(["--iptables=false", "--ip-masq", "false", "--ip-forward=0"])
    assert (c.iptables, c.ip_masq, c.ip_forward) == (False, False, False)
    assert load(["--ip-masq=false", "--ip-masq"]).ip_masq is True  # a bare flag means true; the last wins
    cfg = tmp_path / "ctrd.toml"
    cfg.write_text("iptables = false\nip-masq = false\n")
    c = load(["--config", str(cfg)])
    assert (c.iptables, c.ip_masq, c.ip_forward) == (False, False, True)


def test_firewall_flag_with_a_bad_value_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load(["--iptables=maybe"])
    assert "want true or false, not 'maybe'" in capsys.readouterr().err
