"""`ctrd-runtime --version` in runc's shape (`runc version X` first, `spec: ...`), which dockerd
and containerd parse. Its own module so that `--version` loads nothing else of the runtime."""

from __future__ import annotations

import sys

from ctrd.version import __version__

OCI_VERSION = "1.0.2"  # the runtime-spec version this runtime implements (runtime.defaults uses it)


def package_version() -> str:
    return __version__


def version_text() -> str:
    # sys.version's first word is what platform.python_version() returns (it parses the same
    # string), without importing platform.
    return f"ctrd-runtime version {package_version()}\nspec: {OCI_VERSION}\npython: {sys.version.split()[0]}"
