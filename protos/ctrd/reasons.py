"""Machine-readable reasons carried beside an error's code and message.

A reason is a stable string that survives every wire (gRPC trailing metadata, the shim framing,
the runtime's sync socket and its JSON log), so that a caller can act on it without matching
message text. Leaf module: standard library only, so that `runtime/` may import it.
"""

from __future__ import annotations

EXEC_NOT_FOUND = "exec-not-found"  # the command does not exist: docker exit code 127
EXEC_NOT_INVOKABLE = "exec-not-invokable"  # the command exists but cannot be run: docker exit code 126
OOM = "oom"  # the container's memory limit killed it
NO_SUCH_IMAGE = "no-such-image"  # create named an image the daemon lacks: the CLI may pull it (docker)

# docker's exit codes for a container whose command could not be executed.
EXIT_CODES: dict[str, int] = {EXEC_NOT_FOUND: 127, EXEC_NOT_INVOKABLE: 126}


def exit_code(reason: str, default: int) -> int:
    """docker's exit code for an error with `reason` (126/127 for exec failures), else `default`."""
    return EXIT_CODES.get(reason, default)
