"""Container networking: per-container netns, bridge + IPAM, resolution files, port plans."""
