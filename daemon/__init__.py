"""ctrd, the daemon: metadata, images and layers, networks, the container lifecycle and recovery."""
