"""`WWW-Authenticate` challenges (RFC 7235) and the registry token flow.

A registry answers 401 with either `Basic realm=...` (htpasswd) or
`Bearer realm="https://auth/token",service="registry",scope="repository:app:pull"`; for Bearer the
client asks the realm for a token (anonymously, or with Basic credentials) for the scopes it needs
and retries with `Authorization: Bearer <token>`. Tokens are cached per scope set.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from ctrd.dockerconfig import Credentials

# token68 or auth-params; a quoted-string may contain commas and escaped quotes
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower-case: "basic" / "bearer"
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in one header value (a server may offer several schemes)."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        if header[pos] in ", ":
            pos += 1
            continue
        m = _SCHEME.match(header, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while pos < len(header):
            p = _PARAM.match(header, pos)
            # a bare word followed by space is the next challenge's scheme, not a parameter
            if not p or not p.group(0).strip():
                break
            value = p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[p.group(1).lower()] = value
            pos = p.end()
        out.append(Challenge(scheme, params))
    return out


def basic_header(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def token_from(doc: object) -> str:
    """The token in a token-endpoint answer: `token`, or OAuth2's `access_token`."""
    if isinstance(doc, dict):
        for key in ("token", "access_token"):
            value = doc.get(key)
            if isinstance(value, str) and value:
                return value
    return ""
