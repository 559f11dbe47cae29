"""The OCI-binary backend's errors: the code and reason ctrd-runtime logs beside its message are
used as they are; a runtime that logs neither (runc) gives a plain Internal with its message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctrd import errdefs, reasons
from runtime import cli
from shimd.backends.oci_binary import LogError, last_error, to_error

WHAT = "ctrd-runtime create c1"


def write(log: Path, *records: object) -> Path:
    log.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return log


def test_the_last_error_line_wins_and_other_lines_are_skipped(tmp_path: Path) -> None:
    log = write(tmp_path / "log", {"level": "error", "msg": "first", "code": "not_found"}, "not json",
                {"level": "warning", "msg": "noise"}, {"level": "error", "msg": "second", "code": "invalid_argument",
                                                        "reason": reasons.EXEC_NOT_FOUND}, [1, 2])
    assert last_error(log) == LogError("second", "invalid_argument", reasons.EXEC_NOT_FOUND)
    assert last_error(tmp_path / "missing") is None
    assert last_error(write(tmp_path / "empty", {"level": "info", "msg": "ok"})) is None


@pytest.mark.parametrize(("code", "cls"), [
    ("not_found", errdefs.NotFound), ("already_exists", errdefs.AlreadyExists),
    ("invalid_argument", errdefs.InvalidArgument), ("failed_precondition", errdefs.FailedPrecondition),
    ("unavailable", errdefs.Unavailable), ("internal", errdefs.Internal), ("no-such-code", errdefs.Internal),
])
def test_a_logged_code_is_the_taxonomy_error(code: str, cls: type[errdefs.CtrdError]) -> None:
    err = to_error(LogError("container c1 is running, not created", code), WHAT)
    assert type(err) is cls and err.message == f"{WHAT}: container c1 is running, not created" and err.reason == ""


def test_a_logged_reason_survives() -> None:
    err = to_error(LogError('exec: "x": executable file not found in $PATH', "invalid_argument",
                            reasons.EXEC_NOT_FOUND), WHAT)
    assert isinstance(err, errdefs.InvalidArgument) and err.reason == reasons.EXEC_NOT_FOUND


def test_a_foreign_runtime_gives_internal_with_its_message_never_a_guess(tmp_path: Path) -> None:
    # runc's own words for a missing command and a missing container: no code, so no reason or class
    # is guessed from the text.
    log = write(tmp_path / "log", {"level": "error", "msg": 'runc create failed: unable to start container process: '
                                   'exec: "x": executable file not found in $PATH', "time": "2026-12-06T00:00:00Z"})
    err = to_error(last_error(log), WHAT)
    assert type(err) is errdefs.Internal and err.reason == "" and "executable file not found" in err.message
    err = to_error(LogError("container does not exist"), WHAT)
    assert type(err) is errdefs.Internal and err.message == f"{WHAT}: container does not exist"
    # a reason without a code is not trusted either, nor a code that is not a string
    log = write(tmp_path / "log2", {"level": "error", "msg": "m", "reason": reasons.EXEC_NOT_FOUND},
                {"level": "error", "msg": "m", "code": 3})
    assert last_error(log) == LogError("m")


def test_no_log_line_falls_back_to_stderr_then_to_the_verb() -> None:
    assert to_error(None, WHAT, "boom").message == f"{WHAT}: boom"
    assert to_error(None, WHAT).message == f"{WHAT} failed"
    assert type(to_error(None, WHAT)) is errdefs.Internal


def test_what_ctrd_runtime_logs_maps_back_to_the_same_error(tmp_path: Path) -> None:
    """The writer (runtime/cli.py) and the reader agree: an error logged by ctrd-runtime comes back
    with its code and reason."""
    log = tmp_path / "log"
    writer = cli._Log(str(log), "json")
    writer.error('exec: "x": permission denied', "invalid_argument", reasons.EXEC_NOT_INVOKABLE)
    err = to_error(last_error(log), WHAT)
    assert isinstance(err, errdefs.InvalidArgument) and err.reason == reasons.EXEC_NOT_INVOKABLE
    writer.error("container c1 does not exist", "not_found")
    assert type(to_error(last_error(log), WHAT)) is errdefs.NotFound
