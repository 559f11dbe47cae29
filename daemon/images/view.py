"""What image inspect shows: docker's keys, built from the image record and the layer store."""

from __future__ import annotations

from typing import Any

from daemon.images.store import ImageStore


def inspect(store: ImageStore, ref: str) -> dict[str, Any]:
    image = store.get(ref)
    graph = store.graph_data(image, ref)
    return {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": image.comment,
        "Created": image.created,
        "DockerVersion": "",
        "Author": image.author,
        "Config": {"Hostname": "", "Domainname": "", **image.config.to_docker()},
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }
