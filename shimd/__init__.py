"""ctrd-shim: one asyncio process per container that owns its processes, stdio and exit status."""
