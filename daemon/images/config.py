"""The runnable part of an image config (docker's `config` object) and `--change` instructions."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from ctrd import errdefs


@dataclass(frozen=True, slots=True)
class ImageConfig:
    env: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp"
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None  # docker's Healthcheck object (HEALTHCHECK)

    def to_docker(self) -> dict[str, Any]:
        """docker's image `Config` object (null for empty lists, like docker)."""
        return {
            "Env": list(self.env) or None,
            "Cmd": list(self.cmd) or None,
            "Entrypoint": list(self.entrypoint) or None,
            "WorkingDir": self.working_dir,
            "User": self.user,
            "StopSignal": self.stop_signal or None,
            "ExposedPorts": {p: {} for p in self.exposed_ports} or None,
            "Labels": dict(self.labels) or None,
            "Volumes": {v: {} for v in self.volumes} or None,
            **({"Healthcheck": dict(self.healthcheck)} if self.healthcheck else {}),
        }


def _str_list(obj: dict[str, Any], key: str, shell_ok: bool = False) -> list[str]:
    value = obj.get(key)
    if value is None:
        return []
    if isinstance(value, str) and shell_ok:  # tolerated: some tools write Cmd as a plain string
        return ["/bin/sh", "-c", value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errdefs.InvalidArgument(f"image config: {key} must be a list of strings")
    return list(value)


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errdefs.InvalidArgument(f"image config: {key} must be a string")
    return value


def _keys(obj: dict[str, Any], key: str) -> list[str]:
    value = obj.get(key) or {}
    if not isinstance(value, dict):
        raise errdefs.InvalidArgument(f"image config: {key} must be an object")
    return [str(k) for k in value]


def _check_volume(path: str) -> str:
    # An image's VOLUME must stay inside the rootfs (moby CVE: "/../../etc/shadow" copied host files).
    if not path.startswith("/") or ".." in path.split("/") or "\x00" in path:
        raise errdefs.InvalidArgument(f"image config: invalid volume path {path!r}")
    return path


def from_docker(cfg: object) -> ImageConfig:
    """Parse docker's `config` object; InvalidArgument names the bad field."""
    if cfg is None:
        return ImageConfig()
    if not isinstance(cfg, dict):
        raise errdefs.InvalidArgument("image config: config must be an object")
    labels = cfg.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise errdefs.InvalidArgument("image config: Labels must map strings to strings")
    return ImageConfig(
        env=_str_list(cfg, "Env"),
        cmd=_str_list(cfg, "Cmd", shell_ok=True),
        entrypoint=_str_list(cfg, "Entrypoint", shell_ok=True),
        working_dir=_str(cfg, "WorkingDir"),
        user=_str(cfg, "User"),
        stop_signal=_str(cfg, "StopSignal"),
        exposed_ports=_keys(cfg, "ExposedPorts"),
        labels={str(k): v for k, v in labels.items()},
        volumes=[_check_volume(v) for v in _keys(cfg, "Volumes")],
        healthcheck=_healthcheck(cfg.get("Healthcheck")),
    )


def _healthcheck(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errdefs.InvalidArgument("image config: Healthcheck must be an object")
    test = value.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(t, str) for t in test)):
        raise errdefs.InvalidArgument("image config: Healthcheck.Test must be a list of strings")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not isinstance(value.get(key, 0), int):
            raise errdefs.InvalidArgument(f"image config: Healthcheck.{key} must be an integer")
    return dict(value)


def _exec_form(arg: str) -> list[str]:
    arg = arg.strip()
    if arg.startswith("["):
        try:
            value = json.loads(arg)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", arg]


def _pairs(arg: str, what: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(arg)
    except ValueError as e:
        raise errdefs.InvalidArgument(f"invalid change: {what} {arg!r}: {e}") from None
    if len(words) >= 2 and "=" not in words[0]:  # legacy "ENV KEY value with spaces"
        return [(words[0], " ".join(words[1:]))]
    out = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise errdefs.InvalidArgument(f"invalid change: {what} {arg!r}: expected KEY=VALUE")
        out.append((key, value))
    return out


def apply_changes(base: ImageConfig, changes: list[str] | tuple[str, ...]) -> ImageConfig:
    """Apply Dockerfile-style instructions (`docker import --change`)."""
    cfg = base
    for change in changes:
        instr, _, arg = change.strip().partition(" ")
        instr, arg = instr.upper(), arg.strip()
        if not arg:
            raise errdefs.InvalidArgument(f"invalid change: {change!r}: missing argument")
        if instr == "ENV":
            env = [e for e in cfg.env]
            for k, v in _pairs(arg, instr):
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            cfg = replace(cfg, env=env)
        elif instr == "LABEL":
            cfg = replace(cfg, labels={**cfg.labels, **dict(_pairs(arg, instr))})
        elif instr == "CMD":
            cfg = replace(cfg, cmd=_exec_form(arg))
        elif instr == "ENTRYPOINT":
            cfg = replace(cfg, entrypoint=_exec_form(arg))
        elif instr == "WORKDIR":
            cfg = replace(cfg, working_dir=arg)
        elif instr == "USER":
            cfg = replace(cfg, user=arg)
        elif instr == "STOPSIGNAL":
            cfg = replace(cfg, stop_signal=arg)
        elif instr == "EXPOSE":
            ports = list(cfg.exposed_ports)
            for p in arg.split():
                port = p if "/" in p else f"{p}/tcp"
                num, _, proto = port.partition("/")
                if not num.isdigit() or not 0 < int(num) < 65536 or proto not in ("tcp", "udp", "sctp"):
                    raise errdefs.InvalidArgument(f"invalid change: EXPOSE {p!r}: invalid port")
                if port not in ports:
                    ports.append(port)
            cfg = replace(cfg, exposed_ports=ports)
        elif instr == "VOLUME":
            vols = _exec_form(arg) if arg.startswith("[") else arg.split()
            if vols[:2] == ["/bin/sh", "-c"]:
                raise errdefs.InvalidArgument(f"invalid change: VOLUME {arg!r}")
            try:
                added = [_check_volume(v) for v in vols if v not in cfg.volumes]
            except errdefs.InvalidArgument as e:
                raise errdefs.InvalidArgument(f"invalid change: VOLUME {arg!r}: {e}") from None
            cfg = replace(cfg, volumes=[*cfg.volumes, *added])
        else:
            raise errdefs.InvalidArgument(f"invalid change: {instr} is not supported (in {change!r})")
    return cfg
