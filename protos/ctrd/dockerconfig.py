"""Registry credentials in docker's `config.json` format, shared by the daemon and ctrctl.

    {"auths": {"localhost:5000": {"auth": base64("user:password")}}}

Docker keys Docker Hub as `https://index.docker.io/v1/` and other registries by host[:port]
(older files use a URL: both are looked up). Credential helpers (`credsStore`) are not run:
a registry whose credentials live in a helper is treated as anonymous. Writes are atomic and
keep every other key of the file (docker's CLI settings live there too).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrd import errdefs

HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", HUB_KEY)


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # OAuth refresh token some registries hand out at login

    def __bool__(self) -> bool:
        return bool(self.username or self.identity_token)


def default_path() -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json (docker's lookup)."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def key_for(registry: str) -> str:
    return HUB_KEY if registry in _HUB_ALIASES else registry


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise errdefs.InvalidArgument(f"cannot read credentials file {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise errdefs.InvalidArgument(f"credentials file {path} must hold a JSON object")
    return doc


def lookup(registry: str, path: Path | None = None) -> Credentials:
    """Stored credentials for `registry` (host[:port]); empty when there are none."""
    auths = _read(path or default_path()).get("auths")
    if not isinstance(auths, dict):
        return Credentials()
    key = key_for(registry)
    entry = auths.get(key)
    if entry is None:
        for k, v in auths.items():  # "https://host/v2/" style keys
            if isinstance(k, str) and k.split("://", 1)[-1].split("/", 1)[0] == key:
                entry = v
                break
    if not isinstance(entry, dict):
        return Credentials()
    token = entry.get("identitytoken") or ""
    auth = entry.get("auth") or ""
    if not isinstance(auth, str) or not isinstance(token, str):
        return Credentials()
    if not auth:
        return Credentials(str(entry.get("username") or ""), str(entry.get("password") or ""), token)
    try:
        user, _, password = base64.b64decode(auth, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise errdefs.InvalidArgument(f"credentials for {registry}: auth is not base64 of user:password") from None
    return Credentials(user, password, token)


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def store(registry: str, creds: Credentials, path: Path | None = None) -> Path:
    path = path or default_path()
    doc = _read(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = doc["auths"] = {}
    entry: dict[str, str] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    if creds.identity_token:
        entry["identitytoken"] = creds.identity_token
    auths[key_for(registry)] = entry
    _write(path, doc)
    return path


def remove(registry: str, path: Path | None = None) -> bool:
    """Forget `registry`'s credentials; False when there were none."""
    path = path or default_path()
    doc = _read(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict) or key_for(registry) not in auths:
        return False
    del auths[key_for(registry)]
    _write(path, doc)
    return True
