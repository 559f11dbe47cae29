"""What ctrd remembers about registries, in docker's `image/overlay2/distribution/` layout.

    diffid-by-digest/sha256/<blob>       the diff id of the layer a blob unpacks to
    v2metadata-by-diffid/sha256/<diff>   [{"Digest", "SourceRepository", "HMAC"}]: where a layer
                                         came from (push checks it and mounts across repositories)
    repodigests.json                     {"name@sha256:..": image id} (inspect's RepoDigests)

Small files, written atomically; a lost entry only costs a re-upload or a missing RepoDigest.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from daemon.atomic import write_atomic, write_json_atomic
from daemon.images.blobs import DIGEST


class Metadata:
    def __init__(self, image_root: Path) -> None:
        self.dir = Path(image_root) / "distribution"
        self.by_digest = self.dir / "diffid-by-digest" / "sha256"
        self.by_diffid = self.dir / "v2metadata-by-diffid" / "sha256"
        self.repodigests_file = self.dir / "repodigests.json"
        for d in (self.by_digest, self.by_diffid):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            doc = json.loads(self.repodigests_file.read_bytes())
            self._digests: dict[str, str] = {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)}
        except (OSError, ValueError, AttributeError):
            self._digests = {}

    def add_layer(self, blob: str, diff_id: str, source_repo: str) -> None:
        with self._lock:
            write_atomic(self.by_digest / blob.removeprefix("sha256:"), diff_id.encode(), 0o600)
            entries = [e for e in self.sources(diff_id) if e.get("Digest") != blob or e.get("SourceRepository") != source_repo]
            entries.insert(0, {"Digest": blob, "SourceRepository": source_repo, "HMAC": ""})
            write_json_atomic(self.by_diffid / diff_id.removeprefix("sha256:"), entries[:16], 0o600)

    def diff_id(self, blob: str) -> str:
        """The diff id a blob unpacks to ("" when unknown)."""
        try:
            value = (self.by_digest / blob.removeprefix("sha256:")).read_text().strip()
        except OSError:
            return ""
        return value if DIGEST.match(value) else ""

    def sources(self, diff_id: str) -> list[dict[str, Any]]:
        """Blobs known to unpack to `diff_id`, most recent first."""
        try:
            doc = json.loads((self.by_diffid / diff_id.removeprefix("sha256:")).read_bytes())
        except (OSError, ValueError):
            return []
        if not isinstance(doc, list):
            return []
        return [e for e in doc if isinstance(e, dict) and isinstance(e.get("Digest"), str) and DIGEST.match(e["Digest"])]

    def add_repo_digest(self, name: str, digest: str, image_id: str) -> None:
        with self._lock:
            self._digests[f"{name}@{digest}"] = image_id
            write_json_atomic(self.repodigests_file, dict(sorted(self._digests.items())), 0o600)

    def repo_digests(self, image_id: str) -> list[str]:
        with self._lock:
            return sorted(k for k, v in self._digests.items() if v == image_id)

    def image_for(self, ref: str) -> str:
        """The image id a `name@sha256:..` reference was pulled as ("" when unknown)."""
        with self._lock:
            return self._digests.get(ref, "")
