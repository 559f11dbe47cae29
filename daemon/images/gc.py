"""Image-layer garbage collection: the layers no image (or import in flight) wants, and layer
directories nothing knows (an import that crashed before its layerdb entry)."""

from __future__ import annotations

from ctrd import errdefs
from daemon.images.layerdb import LayerDB
from daemon.layers.overlay2 import INIT_SUFFIX, LayerStore


def collect_layers(layers: LayerStore, layerdb: LayerDB, wanted: set[str]) -> list[str]:
    """Remove the stored layers whose chain id is not in `wanted`; returns the removed chain ids."""
    dirs = layers.layer_ids()  # before listing containers: see overlay2.py on ordering
    containers = layers.container_layer_ids()
    # Layers under a container's -init stay whatever the images say (an `rm -f` must not pull
    # the floor from under a container); a later gc() collects them. Read only when some layer
    # is a candidate: it is a file read and a readlink per layer of every container, and the
    # gc of a start-up, where usually every layer is wanted, took 75-84 ms of a restart with 1000
    # containers, 9-10 ms so (2026-12-07).
    pinned: set[str] | None = None

    def pins() -> set[str]:
        nonlocal pinned
        if pinned is None:
            pinned = set()
            for cid in containers:
                try:
                    pinned.update(layers.parents(cid + INIT_SUFFIX))
                except OSError:
                    continue
        return pinned

    removed: list[str] = []
    # Top layers first: a parent must outlive its children's `lower` links.
    for rec in sorted(layerdb.records.values(), key=lambda r: -len(layerdb.chain(r.chain_id))):
        if rec.chain_id in wanted or rec.cache_id in pins():
            continue
        try:
            layers.remove_layer(rec.cache_id)
        except errdefs.CtrdError:
            continue  # mounted somewhere: keep its record, try again next time
        layerdb.remove(rec.chain_id)
        removed.append(rec.chain_id)
        dirs.discard(rec.cache_id)  # gone: not an orphan for the loop below to remove again
    known = {r.cache_id for r in layerdb.records.values()}
    for d in dirs:
        owner = d.removesuffix(INIT_SUFFIX)
        if d not in known and owner not in containers and len(d) == 64 and d not in pins():
            try:
                layers.remove_layer(d)  # a layer dir from an import that crashed before layerdb
            except errdefs.CtrdError:
                continue
    return removed
