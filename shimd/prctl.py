"""prctl(2) helpers: the process name and the child-subreaper flag (a leaf: imports no shimd code).

The libc binding is ctrd.libc's, looked up once at import: the launcher imports this module
before it forks, so every shim shares the lookup instead of repeating it.
"""

from __future__ import annotations

import ctypes

from ctrd import libc

PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

_prctl = libc.prctl


def name_buffer(name: bytes) -> ctypes.Array[ctypes.c_char]:
    """A process name ready for set_comm_from: built before a fork, so the child allocates nothing."""
    return ctypes.create_string_buffer(name[:15])


def set_comm_from(buf: ctypes.Array[ctypes.c_char]) -> None:
    """prctl(PR_SET_NAME) from a buffer made by name_buffer."""
    _prctl(PR_SET_NAME, ctypes.addressof(buf), 0, 0, 0)


def set_comm(name: bytes) -> None:
    """prctl(PR_SET_NAME): what ps, top and the test leak check see as the process name."""
    set_comm_from(name_buffer(name))


def set_child_subreaper(on: bool) -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to us, not to init."""
    if _prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
