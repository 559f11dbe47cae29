"""The image store: docker's image/overlay2/{imagedb,layerdb,repositories.json} over the layer store.

    imagedb/content/sha256/<hex>   the image config; <hex> = sha256 of these bytes = the image id
    layerdb/sha256/<chain>/        one per stored layer (layerdb.py), shared by every image using it
    repositories.json              {"Repositories": {name: {"name:tag": id}}}

Commit order: layer dirs → layerdb entries → config → tags, each step atomic; start-up garbage
collection removes what a crash left between steps. All methods are synchronous and thread-safe
(one lock around the indexes; extraction itself runs outside it, so imports run concurrently).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ctrd import errdefs, timefmt
from daemon.atomic import write_atomic, write_json_atomic
from daemon.images import archive, busybox, reference
from daemon.images.archive import HOST_ARCH, LayerSource
from daemon.images.blobs import chain_ids, sha256_bytes
from daemon.images.config import ImageConfig, apply_changes
from daemon.images.gc import collect_layers
from daemon.images.ingest import stage_layer, verify
from daemon.images.layerdb import LayerDB, LayerRecord
from daemon.images.records import MAX_LAYERS, Image, ParsedConfig, parse_config
from daemon.images.spool import Progress, seekable, spool_archive
from daemon.images.tee import Keeping, KeptBlob
from daemon.layers.overlay2 import LayerStore
from daemon.tarcap import CappedTarInfo

__all__ = ["Image", "ImageConfig", "ImageStore"]
_Sources = list[LayerSource]
_Strs = list[str]  # the class defines list(); annotations inside it cannot say list[...]


def _now() -> str:
    return timefmt.now()


class ImageStore:
    def __init__(self, root: Path, layers: LayerStore) -> None:
        self.root = Path(root)
        self.layers = layers
        self.meta = self.root / "image" / "overlay2"
        self.content = self.meta / "imagedb" / "content" / "sha256"
        self.content.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.meta / "imagedb" / "metadata" / "sha256").mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp_dir = self.meta / "tmp"  # spool files for archives (also used by the gRPC servicer)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(mode=0o700)
        self.repos_file = self.meta / "repositories.json"
        self.layerdb = LayerDB(self.meta / "layerdb")
        self._lock = threading.RLock()
        self._busybox_lock = threading.Lock()
        self._pending: Counter[str] = Counter()  # chain ids an import in flight relies on
        self._images: dict[str, ParsedConfig] = {}
        self._tags: dict[str, str] = {}
        # set by the registry code: each loaded/imported layer's raw blob is kept for push and save
        self.keep_blobs: Callable[[], KeptBlob] | None = None
        self._load()
        self.gc()

    # ---------------------------------------------------------------- loading
    def _load(self) -> None:
        for rec in list(self.layerdb.records.values()):
            if not self.layers.exists(rec.cache_id):
                self.layerdb.remove(rec.chain_id)  # its directory is gone: the layer is not usable
        for entry in os.scandir(self.content):
            image_id = f"sha256:{entry.name}"
            try:
                data = Path(entry.path).read_bytes()
                if sha256_bytes(data) != image_id:
                    raise ValueError("digest")
                parsed = parse_config(data)
            except (OSError, ValueError, errdefs.CtrdError):
                os.unlink(entry.path)  # a torn or corrupt config is not an image
                continue
            if any(self.layerdb.get(c) is None for c in parsed.chain_ids):
                os.unlink(entry.path)  # its layers never made it: not an image either
                continue
            self._images[image_id] = parsed
        try:
            repos = json.loads(self.repos_file.read_bytes()).get("Repositories", {})
        except (OSError, ValueError, AttributeError):
            repos = {}
        for tags in repos.values() if isinstance(repos, dict) else ():
            for tag, image_id in tags.items() if isinstance(tags, dict) else ():
                if image_id in self._images:
                    self._tags[tag] = image_id
        if not self.repos_file.exists():
            self._save_tags()

    def _save_tags(self) -> None:
        repos: dict[str, dict[str, str]] = {}
        for tag, image_id in sorted(self._tags.items()):
            repos.setdefault(tag.rpartition(":")[0], {})[tag] = image_id
        write_json_atomic(self.repos_file, {"Repositories": repos}, 0o600)

    # ---------------------------------------------------------------- queries
    def _resolve(self, ref: str) -> tuple[str, bool]:
        """(image id, whether `ref` named a tag). Caller holds the lock."""
        if not isinstance(ref, str) or not ref:
            raise errdefs.InvalidArgument("image reference must not be empty")
        if not ref.startswith("sha256:"):
            try:
                tag = reference.normalize(ref)
            except errdefs.InvalidArgument:
                tag = ""
            if tag in self._tags:
                return self._tags[tag], True
        if reference.looks_like_id(ref):
            prefix = ref if ref.startswith("sha256:") else f"sha256:{ref}"
            hits = [i for i in self._images if i.startswith(prefix)]
            if len(hits) == 1:
                return hits[0], False
            if len(hits) > 1:
                raise errdefs.InvalidArgument(f"ambiguous image id prefix: {ref}")
        raise errdefs.NotFound(f"no such image: {ref}")

    def _image(self, image_id: str) -> Image:
        parsed = self._images[image_id]
        chain = self.layerdb.chain(parsed.chain_ids[-1]) if parsed.chain_ids else []
        return Image(
            id=image_id,
            repo_tags=sorted(t for t, i in self._tags.items() if i == image_id),
            config=parsed.config,
            top_layer=chain[0].cache_id if chain else None,
            created=parsed.created,
            size=sum(r.size for r in chain),
            diff_ids=list(parsed.diff_ids),
            architecture=parsed.architecture,
            os=parsed.os,
            comment=parsed.comment,
            author=parsed.author,
        )

    def get(self, ref: str) -> Image:
        with self._lock:
            return self._image(self._resolve(ref)[0])

    def chain_of(self, image_id: str) -> _Strs:
        """The chain ids of an image's layers, base first ([] for an unknown image)."""
        with self._lock:
            parsed = self._images.get(image_id)
            return list(parsed.chain_ids) if parsed else []

    def ensure(self, ref: str) -> Image:
        """get(), but build `busybox:latest` from the host's static busybox when it is absent."""
        try:
            return self.get(ref)
        except errdefs.NotFound:
            if reference.looks_like_id(ref) or reference.normalize(ref) != busybox.REFERENCE:
                raise
        with self._busybox_lock:  # concurrent first runs build it once
            try:
                return self.get(ref)
            except errdefs.NotFound:
                pass
            data, cfg, created = busybox.build()
            self._import_stream(data, [busybox.REFERENCE], cfg, created, "built from the host's busybox", None)
        return self.get(ref)

    def list(self) -> list[Image]:
        with self._lock:
            images = [self._image(i) for i in self._images]
        return sorted(images, key=lambda im: (im.created, im.id), reverse=True)

    def graph_data(self, image: Image, ref: str) -> dict[str, str]:
        """docker's GraphDriver.Data for an image: its top layer's dirs and the layers below it."""
        if not image.top_layer:
            return {}
        top = self.layers.root / image.top_layer
        try:
            lowers = [str(self.layers.diff_dir(p)) for p in self.layers.parents(image.top_layer)]
        except OSError:  # removed concurrently (rmi racing inspect)
            raise errdefs.NotFound(f"no such image: {ref}") from None
        graph = {"MergedDir": f"{top}/merged", "UpperDir": f"{top}/diff", "WorkDir": f"{top}/work"}
        if lowers:
            graph["LowerDir"] = ":".join(lowers)
        return graph

    # ---------------------------------------------------------------- import / load
    def import_archive(
        self,
        fileobj: BinaryIO,
        reference: str = "",
        changes: Sequence[str] = (),
        progress: Progress = None,
    ) -> Image:
        """`docker import`: a rootfs tarball (plain or compressed) as a one-layer image."""
        tags = [_normalize_tag(reference)] if reference else []
        cfg = apply_changes(ImageConfig(), list(changes))  # bad --change fails before any byte is read
        image_id = self._import_stream(fileobj, tags, cfg, _now(), "Imported from -", progress)
        return self.get(image_id)

    def validate_import(self, reference: str = "", changes: Sequence[str] = ()) -> None:
        """Raise InvalidArgument for a bad name or --change, before any archive byte is read."""
        if reference:
            _normalize_tag(reference)
        apply_changes(ImageConfig(), list(changes))

    def _import_stream(
        self, src: BinaryIO, tags: _Strs, cfg: ImageConfig, created: str, comment: str, progress: Progress
    ) -> str:
        with Keeping(self.keep_blobs) as kept:  # (a layer not committed discards its kept blob)
            staged = stage_layer(self.layers, kept.reader(src), "import", progress)
            chain = staged.diff_id
            with self._lock:
                self._pending[chain] += 1
            try:
                self._commit_layer(staged, chain, "", None)
                kept.commit(staged.blob_digest, staged.diff_id)
                config = {
                    "architecture": HOST_ARCH,
                    "comment": comment,
                    "config": {k: v for k, v in cfg.to_docker().items() if v},
                    "created": created,
                    "history": [{"created": created, "comment": comment}],
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [staged.diff_id]},
                }
                return self._commit_image(json.dumps(config, separators=(",", ":")).encode(), tags)
            finally:
                self._release([chain])

    def commit_layer(
        self, parent_id: str, src: Any, make_config: Callable[[dict[str, Any]], dict[str, Any]], tags: _Strs
    ) -> str:
        """`docker commit`: the layer tar `src` on top of image `parent_id`, with the config that
        `make_config(parent's raw config)` returns (rootfs is filled in here); returns the new id."""
        with self._lock:
            parsed = self._images.get(parent_id)
            if parsed is None:
                raise errdefs.NotFound(f"no such image: {parent_id}")
            for c in parsed.chain_ids:
                self._pending[c] += 1
        held = list(parsed.chain_ids)
        try:
            with Keeping(self.keep_blobs) as kept:
                staged = stage_layer(self.layers, kept.reader(src), "commit")
                diff_ids = [*parsed.diff_ids, staged.diff_id]
                chain = chain_ids(diff_ids)[-1]
                with self._lock:
                    self._pending[chain] += 1
                held.append(chain)
                parent_chain = parsed.chain_ids[-1] if parsed.chain_ids else ""
                with self._lock:
                    rec = self.layerdb.get(parent_chain) if parent_chain else None
                self._commit_layer(staged, chain, parent_chain, rec.cache_id if rec else None)
                kept.commit(staged.blob_digest, staged.diff_id)
            config = make_config(json.loads(json.dumps(parsed.raw)))
            config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            return self._commit_image(json.dumps(config, separators=(",", ":")).encode(), tags)
        finally:
            self._release(held)

    def load_archive(self, fileobj: BinaryIO, progress: Progress = None) -> _Strs:
        """`docker load`: docker-save or OCI layout archive (optionally gzip-compressed)."""
        if seekable(fileobj):
            start = fileobj.tell()
            head = fileobj.read(2)
            fileobj.seek(start)
            if head != b"\x1f\x8b":  # a plain archive in a real file: read it in place
                lines = self._load_tar(fileobj)
                if progress:
                    progress(fileobj.tell() - start)
                return lines
        with tempfile.TemporaryFile(dir=self.tmp_dir) as spool:
            spool_archive(fileobj, spool, progress)
            return self._load_tar(spool)

    def _load_tar(self, fileobj: BinaryIO) -> _Strs:
        try:
            tf = tarfile.open(fileobj=fileobj, mode="r:", tarinfo=CappedTarInfo)  # noqa: SIM115 (closed by the with below)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise errdefs.InvalidArgument(f"invalid archive: {e}") from None
        with tf:
            try:
                lines: _Strs = []
                for src in archive.read_images(tf):
                    image_id = self._load_image(src.config, src.layers, src.tags)
                    lines += [f"Loaded image: {t}" for t in src.tags] or [f"Loaded image ID: {image_id}"]
            except (tarfile.TarError, EOFError) as e:
                raise errdefs.InvalidArgument(f"invalid archive: {e}") from None
        return lines

    def register(
        self, config: bytes, sources: _Sources, tags: _Strs, on_layer: Callable[[int, bool], None] | None = None
    ) -> str:
        """A pull's image: `load`'s path and checks; `on_layer(i, existed)` when layer i is in place."""
        return self._load_image(config, sources, tags, on_layer, keep=False)  # its blobs are kept already

    def _load_image(
        self, config: bytes, sources: _Sources, tags: _Strs, on_layer: Callable[[int, bool], None] | None = None,
        keep: bool = True,
    ) -> str:
        parsed = parse_config(config)
        if len(sources) != len(parsed.diff_ids):
            raise errdefs.InvalidArgument(
                f"invalid archive: manifest has {len(sources)} layers, config has {len(parsed.diff_ids)}"
            )
        if len(sources) > MAX_LAYERS:
            raise errdefs.InvalidArgument(f"image has {len(sources)} layers, more than the maximum of {MAX_LAYERS}")
        with self._lock:
            for c in parsed.chain_ids:
                self._pending[c] += 1
        try:
            parent_cache: str | None = None
            for i, src in enumerate(sources):
                chain = parsed.chain_ids[i]
                with self._lock:
                    rec = self.layerdb.get(chain)
                if rec is None:
                    with Keeping(self.keep_blobs if keep else None) as kept:
                        staged = stage_layer(self.layers, kept.reader(src.open()), f"layer {src.name}")
                        try:
                            verify(staged, f"layer {src.name}", src.digest, src.size, parsed.diff_ids[i])
                        except BaseException:
                            self.layers.discard(staged.path)
                            raise
                        rec = self._commit_layer(staged, chain, parsed.chain_ids[i - 1] if i else "", parent_cache)
                        kept.commit(staged.blob_digest, staged.diff_id)
                    if on_layer:
                        on_layer(i, False)
                elif on_layer:
                    on_layer(i, True)
                parent_cache = rec.cache_id
            return self._commit_image(config, tags)
        finally:
            self._release(parsed.chain_ids)

    def _commit_layer(self, staged: Any, chain: str, parent_chain: str, parent_cache: str | None) -> LayerRecord:
        with self._lock:
            rec = self.layerdb.get(chain)
            if rec is not None:  # a concurrent import stored the same layer first
                self.layers.discard(staged.path)
                return rec
            try:
                cache = self.layers.commit(staged.path, parent_cache)
            except BaseException:
                self.layers.discard(staged.path)
                raise
            rec = LayerRecord(chain, staged.diff_id, cache, parent_chain, staged.size)
            self.layerdb.add(rec)
            return rec

    def _commit_image(self, config: bytes, tags: _Strs) -> str:
        parsed = parse_config(config)
        image_id = sha256_bytes(config)
        with self._lock:
            if image_id not in self._images:
                write_atomic(self.content / image_id.removeprefix("sha256:"), config, 0o600)
                self._images[image_id] = parsed
            if tags:
                for t in tags:
                    self._tags[t] = image_id
                self._save_tags()
        return image_id

    def _release(self, chains: _Strs) -> None:
        with self._lock:
            for c in chains:
                self._pending[c] -= 1
                if self._pending[c] <= 0:
                    del self._pending[c]
            self._gc_locked()  # after a failure this removes the layers it had committed

    # ---------------------------------------------------------------- remove / gc
    def remove(
        self, ref: str, force: bool = False, in_use: Callable[[str], bool] = lambda image_id: False
    ) -> tuple[_Strs, _Strs]:
        with self._lock:
            image_id, by_tag = self._resolve(ref)
            tags = sorted(t for t, i in self._tags.items() if i == image_id)
        if by_tag and len(tags) > 1:  # other names keep the image alive
            tag = reference.normalize(ref)
            with self._lock:
                self._tags.pop(tag, None)
                self._save_tags()
            return [tag], []
        short = image_id.removeprefix("sha256:")[:12]
        if not by_tag and len(tags) > 1 and not force:
            raise errdefs.FailedPrecondition(
                f"conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
            )
        used = in_use(image_id)  # outside our lock: the caller's callback may take its own locks
        if used and not force:
            raise errdefs.FailedPrecondition(f"conflict: unable to remove image {ref} (must force) - image {short} is used by a container")
        with self._lock:
            if image_id not in self._images:
                raise errdefs.NotFound(f"no such image: {ref}")
            tags = sorted(t for t, i in self._tags.items() if i == image_id)
            for t in tags:
                del self._tags[t]
            self._save_tags()
            if used:  # forced while a container uses it: untag, keep it (dangling) for that container
                return tags, []
            del self._images[image_id]
            try:
                os.unlink(self.content / image_id.removeprefix("sha256:"))
            except FileNotFoundError:
                pass
            removed = self._gc_locked()
        return tags, [image_id, *removed]

    def gc(self) -> _Strs:
        """Remove layers no image needs and layer dirs nothing knows. Returns removed chain ids."""
        with self._lock:
            return self._gc_locked()

    def _gc_locked(self) -> _Strs:
        wanted: set[str] = set(self._pending)
        for parsed in self._images.values():
            wanted.update(parsed.chain_ids)
        return collect_layers(self.layers, self.layerdb, wanted)

    def tag(self, ref: str, new_ref: str) -> str:
        """`docker tag`: point `new_ref` at the image `ref` names; returns the normalised tag."""
        tag = _normalize_tag(new_ref)
        with self._lock:
            image_id, _ = self._resolve(ref)
            self._tags[tag] = image_id
            self._save_tags()
        return tag


def _normalize_tag(ref: str) -> str:
    return reference.normalize(ref)
