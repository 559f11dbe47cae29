"""Image store: docker-compatible image metadata (imagedb, layerdb, repositories.json), import, load, busybox."""
