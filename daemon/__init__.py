"""ctrd, the daemon: metadata, images and layers, networks, the container lifecycle and recovery."""

__version__ = "0.1.0"
