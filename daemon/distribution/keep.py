"""Keeping the raw blob of a layer that came in by `image load`/`import`, so push and save can send it.

The image store tees each layer's bytes here while it extracts them (ImageStore.keep_blobs); once
the layer is committed the file becomes a content-store blob under the digest the store measured,
and the distribution metadata learns which diff id it unpacks to. A failed import discards it.
"""

from __future__ import annotations

import os
import secrets

from daemon.distribution.content import ContentStore
from daemon.distribution.metadata import Metadata


class KeptBlob:
    def __init__(self, content: ContentStore, meta: Metadata) -> None:
        self.content = content
        self.meta = meta
        self.path = content.ingest / f"keep-{secrets.token_hex(8)}"
        self.f = open(self.path, "wb")  # noqa: SIM115 (closed by commit or discard)

    def write(self, data: bytes, /) -> int:
        return self.f.write(data)

    def commit(self, blob_digest: str, diff_id: str) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        if self.content.has(blob_digest):
            self.path.unlink(missing_ok=True)
        else:
            self.content.commit(self.path, blob_digest)
        self.meta.add_layer(blob_digest, diff_id, "")

    def discard(self) -> None:
        self.f.close()
        self.path.unlink(missing_ok=True)
