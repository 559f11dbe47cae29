"""Errors raised by the runtime library, one small tree.

runtime/ must not import the API package's error classes (`ctrd.errdefs`), so each class carries
`code`, the errdefs code string its caller maps it to (`ctrd.errdefs.from_code(err.code,
err.message, err.reason)`). The reasons are the shared ones of `ctrd.reasons`.

    RuntimeErr                      code "internal"; `.reason` "" or one of ctrd.reasons
    ├── SpecError(field)            invalid_argument: config.json is malformed or a field is wrong
    ├── InvalidID                   invalid_argument: the container id is unusable
    ├── ContainerExists             already_exists
    ├── ContainerNotFound           not_found
    ├── IncorrectStatus             failed_precondition: wrong state for the operation
    ├── ExecError                   invalid_argument with a reason: the user's command cannot be executed
    ├── SetupError                  internal: a namespace/mount/cgroup/credential step failed in the child
    └── CgroupError                 internal: creating, writing or removing a cgroup failed

Messages are lower-case and name the field, path or id that failed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # annotations only: `typing` is ~3 ms of every ctrd-runtime call (runtime/cli.py)
if TYPE_CHECKING:
    from typing import ClassVar, Self


class RuntimeErr(Exception):
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        return self.message

    @classmethod
    def rebuild(cls, message: str, reason: str = "") -> Self:
        """The error again from its wire form (the child's ERROR packet): message and reason."""
        return cls(message, reason=reason)


class SpecError(RuntimeErr):
    code = "invalid_argument"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"config.json: {field}: {problem}" if field else f"config.json: {problem}")
        self.field = field

    @classmethod
    def rebuild(cls, message: str, reason: str = "") -> Self:
        err = cls.__new__(cls)
        RuntimeErr.__init__(err, message, reason=reason)  # the message already names the field
        err.field = ""
        return err


class InvalidID(RuntimeErr):
    code = "invalid_argument"


class ContainerExists(RuntimeErr):
    code = "already_exists"


class ContainerNotFound(RuntimeErr):
    code = "not_found"


class IncorrectStatus(RuntimeErr):
    code = "failed_precondition"


class ExecError(RuntimeErr):
    code = "invalid_argument"


class SetupError(RuntimeErr):
    code = "internal"


class CgroupError(RuntimeErr):
    code = "internal"


# The child reports failures as (kind, message, reason); the parent rebuilds the class from `kind`.
KINDS: dict[str, type[RuntimeErr]] = {
    "spec": SpecError,
    "exec": ExecError,
    "setup": SetupError,
    "cgroup": CgroupError,
}


def from_kind(kind: str, message: str, reason: str = "") -> RuntimeErr:
    return KINDS.get(kind, SetupError).rebuild(message, reason)
