"""TLS to a registry, docker's way: the system's CA store, plus per-registry files in certs.d.

    <certs.d>/<host[:port]>/*.crt              extra CA certificates for that registry
    <certs.d>/<host[:port]>/client.cert + .key a client certificate (mutual TLS)

ctrd reads `/etc/ctrd/certs.d` and then docker's `/etc/docker/certs.d`, so a registry docker
already trusts works unchanged. Registries that are insecure (loopback, --insecure-registry) are
not verified at all, as in docker.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path

from ctrd import errdefs

DEFAULT_DIRS = (Path("/etc/ctrd/certs.d"), Path("/etc/docker/certs.d"))


@lru_cache(maxsize=64)
def context_for(host: str, dirs: tuple[Path, ...]) -> ssl.SSLContext | bool:
    """An SSLContext with the registry's extra CAs / client cert, or True (system defaults only)."""
    found = [d / host for d in dirs if (d / host).is_dir()]
    if not found:
        return True
    ctx = ssl.create_default_context()
    for d in found:
        for ca in sorted(d.glob("*.crt")):
            try:
                ctx.load_verify_locations(cafile=str(ca))
            except (ssl.SSLError, OSError) as exc:
                raise errdefs.InvalidArgument(f"certs.d: bad CA certificate {ca}: {exc}") from None
        for cert in sorted(d.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.exists():
                raise errdefs.InvalidArgument(f"certs.d: client certificate {cert} has no {key.name}")
            try:
                ctx.load_cert_chain(str(cert), str(key))
            except (ssl.SSLError, OSError) as exc:
                raise errdefs.InvalidArgument(f"certs.d: bad client certificate {cert}: {exc}") from None
    return ctx
