"""layerdb: chain id → stored layer (docker's image/overlay2/layerdb/sha256/<chain>/).

    diff       the layer's diff id (sha256 of its uncompressed tar)
    cache-id   its directory under overlay2/
    parent     the parent's chain id (absent for a base layer)
    size       bytes of regular files

A layer shared by several images has one chain id and so is stored once. Entries are written into
a temporary directory and renamed into place (atomic). Not thread-safe by itself: the image store
calls it under its lock.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from daemon.atomic import fsync_dir, write_atomic
from daemon.images.blobs import DIGEST


@dataclass(frozen=True, slots=True)
class LayerRecord:
    chain_id: str
    diff_id: str
    cache_id: str
    parent: str  # chain id, "" for a base layer
    size: int


class LayerDB:
    def __init__(self, root: Path) -> None:
        self.dir = root / "sha256"
        self.tmp = root / "tmp"
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(mode=0o700)
        self.records: dict[str, LayerRecord] = {}
        for entry in os.scandir(self.dir):
            rec = self._read(entry.name)
            if rec is None:
                shutil.rmtree(entry.path, ignore_errors=True)  # unreadable: a torn entry from a crash
            else:
                self.records[rec.chain_id] = rec

    def _read(self, hexid: str) -> LayerRecord | None:
        path = self.dir / hexid
        try:
            diff = (path / "diff").read_text().strip()
            cache = (path / "cache-id").read_text().strip()
            size = int((path / "size").read_text().strip() or "0")
            parent = (path / "parent").read_text().strip() if (path / "parent").exists() else ""
        except (OSError, ValueError):
            return None
        chain = f"sha256:{hexid}"
        if not DIGEST.match(chain) or not DIGEST.match(diff) or not cache or "/" in cache:
            return None
        return LayerRecord(chain, diff, cache, parent, size)

    def get(self, chain_id: str) -> LayerRecord | None:
        return self.records.get(chain_id)

    def add(self, rec: LayerRecord) -> None:
        staging = self.tmp / secrets.token_hex(8)
        staging.mkdir(mode=0o700)
        write_atomic(staging / "diff", rec.diff_id.encode())
        write_atomic(staging / "cache-id", rec.cache_id.encode())
        write_atomic(staging / "size", str(rec.size).encode())
        if rec.parent:
            write_atomic(staging / "parent", rec.parent.encode())
        os.rename(staging, self.dir / rec.chain_id.removeprefix("sha256:"))
        fsync_dir(self.dir)
        self.records[rec.chain_id] = rec

    def remove(self, chain_id: str) -> None:
        self.records.pop(chain_id, None)
        path = self.dir / chain_id.removeprefix("sha256:")
        if path.exists():
            doomed = self.tmp / secrets.token_hex(8)
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def chain(self, top: str) -> list[LayerRecord]:
        """The records from `top` down to the base."""
        out = []
        cur = self.records.get(top)
        while cur is not None:
            out.append(cur)
            cur = self.records.get(cur.parent) if cur.parent else None
        return out
