"""ctrd, the daemon: metadata, images and layers, networks, the container lifecycle and recovery."""

from ctrd.version import __version__ as __version__  # one version for the distribution (ctrd/version.py)
