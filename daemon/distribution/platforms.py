"""Platforms (`os/arch[/variant]`) and picking one manifest from a manifest list or OCI index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctrd import errdefs
from daemon.images.archive import HOST_ARCH


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)


def host() -> Platform:
    return Platform("linux", HOST_ARCH, "v8" if HOST_ARCH == "arm64" else "")


def parse(text: str) -> Platform:
    """`--platform` value; empty means the host's."""
    if not text:
        return host()
    parts = text.lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise errdefs.InvalidArgument(f"invalid platform {text!r}: want os/arch[/variant]")
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else "")


def _variant(arch: str, variant: str) -> str:
    # arm64 images usually omit the variant; "v8" is what they mean (containerd normalises so too)
    return "v8" if arch == "arm64" and not variant else variant


def select(manifests: list[Any], want: Platform, what: str) -> dict[str, Any]:
    """The descriptor in an index that best matches `want`; NotFound naming what is there."""
    best: tuple[int, dict[str, Any]] | None = None
    seen: list[str] = []
    for d in manifests:
        if not isinstance(d, dict):
            continue
        plat = d.get("platform")
        if not isinstance(plat, dict):
            continue
        os_, arch = str(plat.get("os", "")), str(plat.get("architecture", ""))
        variant = str(plat.get("variant", "") or "")
        seen.append(str(Platform(os_, arch, variant)))
        if os_ != want.os or arch != want.arch:
            continue
        if want.variant and _variant(arch, variant) != _variant(want.arch, want.variant):
            continue
        score = 2 if _variant(arch, variant) == _variant(want.arch, want.variant) else 1
        if best is None or score > best[0]:
            best = (score, d)
    if best is None:
        have = ", ".join(seen) or "none"
        raise errdefs.NotFound(f"{what}: no matching manifest for {want} in the manifest list (has: {have})")
    return best[1]
