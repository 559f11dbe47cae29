"""The runc-like runtime: turns an OCI bundle into an isolated, hardened process (library and CLI).

    from runtime import Container, Stdio, ProcessSpec, Status, Stats, errors
"""

from runtime import errors
from runtime.container import Container, ProcessSpec, Stats, Status, Stdio

__all__ = ["Container", "ProcessSpec", "Stats", "Status", "Stdio", "errors"]
