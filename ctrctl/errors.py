"""CLI failures and docker's exit codes.

Docker's codes: 125 for a flag error or a daemon error on run/create, 126 when the command
cannot be invoked, 127 when it is not found, 1 for a failed verb otherwise. The daemon tells
126/127 apart with the errdefs reason (trailing metadata `ctrd-reason`), never by message text.
"""

from __future__ import annotations

from ctrd import reasons

EXIT_FAILURE = 1
EXIT_DAEMON = 125


class CliError(Exception):
    """A failure printed as one line on stderr; `line` is printed as is."""

    def __init__(self, line: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(line)
        self.line = line
        self.exit_code = exit_code


class UsageError(CliError):
    """A bad flag or argument, caught before any request is sent (docker: exit 125)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Error: {message}", EXIT_DAEMON)


class Unreachable(CliError):
    """The daemon socket does not answer."""

    def __init__(self, address: str) -> None:
        super().__init__(f"Cannot connect to ctrd at {address}: is the daemon running?", EXIT_FAILURE)
        self.address = address


def flag_error(flag: str, value: str, why: str) -> UsageError:
    """Docker's wording for a bad flag value: names the flag and the value."""
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {why}')


def exit_code_for(reason: str, default: int) -> int:
    """Exit code for a daemon error: 126/127 for exec failures, else the verb's default."""
    return reasons.exit_code(reason, default)
