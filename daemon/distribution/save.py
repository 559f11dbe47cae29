"""`image save`: a tar that both `docker load` and `image load` accept.

Laid out as docker 25+ writes it — an OCI image layout (oci-layout, index.json, blobs/sha256/)
with docker's manifest.json beside it pointing into blobs/ — so one archive serves both readers.
Layers are the registry blobs they were pulled as (docker's loader and ours decompress them and
check the diff ids), so saving needs no re-packing and the layer digests stay the registry's.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import BinaryIO

from ctrd import errdefs
from daemon.distribution import manifest as mf
from daemon.distribution.content import ContentStore
from daemon.distribution.metadata import Metadata
from daemon.distribution.push import oci_type, plan
from daemon.images import reference
from daemon.images.blobs import sha256_bytes
from daemon.images.store import ImageStore


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def save(images: ImageStore, content: ContentStore, meta: Metadata, refs: list[str], out: BinaryIO) -> None:
    if not refs:
        raise errdefs.InvalidArgument("save: at least one image is required")
    entries = []
    index = []
    blobs: dict[str, Path | bytes] = {}
    for ref in refs:
        config, layers = plan(images, content, meta, ref)
        image = images.get(ref)
        tags = image.repo_tags if reference.looks_like_id(ref) or ref.startswith("sha256:") else [reference.normalize(ref)]
        cfg_digest = sha256_bytes(config)
        blobs[cfg_digest] = config
        for b in layers:
            blobs[b.digest] = b.path
        doc = {
            "schemaVersion": 2,
            "mediaType": mf.OCI_MANIFEST,
            "config": {"mediaType": mf.OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
            "layers": [{"mediaType": oci_type(b.media_type), "digest": b.digest, "size": b.size} for b in layers],
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        m_digest = sha256_bytes(body)
        blobs[m_digest] = body
        for t in tags or [""]:
            ann = {"io.containerd.image.name": t, "org.opencontainers.image.ref.name": t.rpartition(":")[2]} if t else {}
            index.append({"mediaType": mf.OCI_MANIFEST, "digest": m_digest, "size": len(body), **({"annotations": ann} if ann else {})})
        entries.append({
            "Config": "blobs/sha256/" + cfg_digest.removeprefix("sha256:"),
            "RepoTags": tags,
            "Layers": ["blobs/sha256/" + b.digest.removeprefix("sha256:") for b in layers],
        })
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_dir(tf, "blobs")
        _add_dir(tf, "blobs/sha256")
        for digest, src in blobs.items():
            name = "blobs/sha256/" + digest.removeprefix("sha256:")
            if isinstance(src, bytes):
                _add_bytes(tf, name, src)
            else:
                with open(src, "rb") as f:
                    info = tf.gettarinfo(fileobj=f, arcname=name)
                    info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = 0o644, 0, 0, "", "", 0
                    tf.addfile(info, f)
        _add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tf, "index.json", json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": index}).encode())
        _add_bytes(tf, "manifest.json", json.dumps(entries).encode())
