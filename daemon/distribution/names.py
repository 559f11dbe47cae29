"""Remote references: `NAME[:TAG|@DIGEST]` → registry domain, repository path, tag or digest.

Docker's rules: a first component with a dot or a colon, or `localhost`, is a registry domain;
otherwise the image lives on Docker Hub (`docker.io`, served by `registry-1.docker.io`) and a
one-component name gets the `library/` prefix. The familiar name (what `images` shows) drops
`docker.io/` and `library/` again.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ctrd import errdefs
from daemon.images import reference
from daemon.images.blobs import DIGEST

HUB_DOMAIN = "docker.io"
HUB_HOST = "registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class RemoteRef:
    domain: str  # "docker.io", "localhost:5000", "registry.example.com"
    path: str  # repository path on that registry: "library/busybox", "app"
    tag: str  # "" when pulled by digest
    digest: str  # "" when pulled by tag

    @property
    def host(self) -> str:
        """host[:port] to connect to."""
        return HUB_HOST if self.domain == HUB_DOMAIN else self.domain

    @property
    def familiar(self) -> str:
        """The repository name as `images` shows it (docker.io/library/ dropped)."""
        if self.domain != HUB_DOMAIN:
            return f"{self.domain}/{self.path}"
        return self.path.removeprefix("library/") if self.path.count("/") == 1 else self.path

    @property
    def local_tag(self) -> str:
        """`name:tag` the pulled image is tagged with ("" for a pull by digest)."""
        return f"{self.familiar}:{self.tag}" if self.tag else ""

    @property
    def canonical(self) -> str:
        return f"{self.familiar}@{self.digest}" if self.digest else self.local_tag

    @property
    def object(self) -> str:
        """What to GET under /manifests/: the digest when there is one, else the tag."""
        return self.digest or self.tag


def parse(ref: str) -> RemoteRef:
    """Parse `NAME[:TAG][@DIGEST]`; InvalidArgument with docker's wording when malformed."""
    if not isinstance(ref, str) or not ref.strip():
        raise errdefs.InvalidArgument("invalid reference format: image name must not be empty")
    name_tag, at, digest = ref.partition("@")
    if at and not DIGEST.match(digest):
        raise errdefs.InvalidArgument(f"invalid reference format: bad digest in {ref[:300]!r} (want sha256:<64 hex>)")
    slash = name_tag.rfind("/")
    explicit_tag = name_tag.rfind(":") > slash
    name, tag = reference.split(name_tag)  # validates name and tag; folds docker.io/library/
    if not explicit_tag:
        tag = "" if at else reference.DEFAULT_TAG
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = HUB_DOMAIN, name if "/" in name else f"library/{name}"
    return RemoteRef(domain, path, tag, digest if at else "")


def hostname(host: str) -> str:
    """`host[:port]` → host (IPv6 literals in brackets kept bare)."""
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """docker treats localhost and 127.0.0.0/8 (and ::1) registries as insecure by default."""
    h = hostname(host)
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False
