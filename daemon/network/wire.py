"""Framing between the NetworkManager and its helper: 4-byte big-endian length + JSON object."""

from __future__ import annotations

import json
import struct
from typing import Any

from ctrd import errdefs

HEADER = struct.Struct(">I")
MAX_FRAME = 16 << 20


def encode(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise errdefs.Internal("network helper: frame is not a json object")
    return obj


def error_reply(e: BaseException) -> dict[str, Any]:
    if isinstance(e, errdefs.CtrdError):
        return {"ok": False, "code": e.code, "message": e.message, "reason": e.reason}
    return {"ok": False, "code": errdefs.Internal.code, "message": f"network helper: {type(e).__name__}: {e}"}


def unwrap(reply: dict[str, Any]) -> Any:
    """The result of a reply, or the errdefs error it carries."""
    if reply.get("ok"):
        return reply.get("result")
    raise errdefs.from_code(str(reply.get("code", "internal")), str(reply.get("message", "")), str(reply.get("reason", "")))
