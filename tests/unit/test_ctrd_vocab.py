"""The shared vocabulary of `ctrd`: signals, RFC 3339 times, container ids, reasons, libc."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time

import pytest

from ctrd import errdefs, ids, libc, reasons, signals, timefmt

# -- signals: what docker accepts -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "num"), [
    ("SIGTERM", 15), ("TERM", 15), ("term", 15), ("sigkill", 9), ("KILL", 9), (" 9 ", 9), ("1", 1), ("64", 64),
    ("SIGUSR1", int(signal.SIGUSR1)), ("SIGRTMIN", int(signal.SIGRTMIN)), ("RTMIN", int(signal.SIGRTMIN)),
    ("SIGRTMIN+3", int(signal.SIGRTMIN) + 3), ("rtmin+3", int(signal.SIGRTMIN) + 3),
    ("SIGRTMAX-2", int(signal.SIGRTMAX) - 2), ("RTMAX", int(signal.SIGRTMAX)),
])
def test_signal_names_and_numbers(text: str, num: int) -> None:
    assert signals.parse(text) == num


@pytest.mark.parametrize("text", ["", "0", "65", "-1", "SIGNOPE", "NOPE", "SIGRTMIN+99", "SIGRTMAX-99",
                                  "SIGRTMIN-1", "SIG_DFL", "9x"])
def test_bad_signals_are_refused_with_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="invalid signal"):
        signals.parse(text)


def test_signal_name() -> None:
    assert signals.name(15) == "SIGTERM"
    assert signals.name(int(signal.SIGRTMIN)) == "SIGRTMIN"
    assert signals.name(int(signal.SIGRTMIN) + 1) == str(int(signal.SIGRTMIN) + 1)


# -- RFC 3339 ------------------------------------------------------------------------------------


def test_rfc3339_nano_trims_trailing_zeros_like_go() -> None:
    assert timefmt.rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert timefmt.rfc3339_nano(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    assert timefmt.rfc3339_nano(1_000_000_123) == "1970-01-01T00:00:01.000000123Z"


def test_rfc3339_has_nine_digits_and_go_zero_time() -> None:
    assert timefmt.rfc3339(0) == timefmt.ZERO_TIME == "0001-01-01T00:00:00Z"
    assert timefmt.rfc3339(1.5) == "1970-01-01T00:00:01.500000000Z"
    assert timefmt.rfc3339(1_700_000_000.9999999999) == "2023-11-14T22:13:21.000000000Z"  # rounds up


def test_rfc3339_local_keeps_nanoseconds_and_the_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert timefmt.rfc3339_local(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
        monkeypatch.setenv("TZ", "EST+5")
        time.tzset()
        assert timefmt.rfc3339_local(1_700_000_000_000_000_000) == "2023-11-14T17:13:20.000000000-05:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_now_is_rfc3339_utc_and_parses_back() -> None:
    before = time.time()
    text = timefmt.now()
    assert text.endswith("Z") and "T" in text
    assert before - 1 <= timefmt.parse_rfc3339(text) <= time.time() + 1


@pytest.mark.parametrize(("text", "ts"), [
    ("", 0.0), (timefmt.ZERO_TIME, 0.0), ("0001-01-01T00:00:00.000000000Z", 0.0),
    ("1970-01-01T00:01:00Z", 60.0), ("1970-01-01T00:01:00.5Z", 60.5),
    ("1970-01-01T00:01:00.123456789Z", 60.123456789), ("1970-01-01T01:01:00+01:00", 60.0),
    ("1969-12-31T23:01:00-01:00", 60.0), ("1970-01-01T01:01:00+0100", 60.0), ("1970-01-02", 86400.0),
    ("1970-01-01T00:01", 60.0), ("1970-01-01 00:01:00z", 60.0),
])
def test_parse_rfc3339(text: str, ts: float) -> None:
    assert timefmt.parse_rfc3339(text) == pytest.approx(ts, abs=1e-9)


def test_parse_round_trips_every_format() -> None:
    ns = 1_700_000_000_123_456_789
    for text in (timefmt.rfc3339_nano(ns), timefmt.rfc3339(ns / 1e9), timefmt.rfc3339_local(ns)):
        assert timefmt.parse_rfc3339(text) == pytest.approx(ns / 1e9, abs=1e-6)


def test_parse_without_a_zone_is_utc_or_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        assert timefmt.parse_rfc3339("1970-01-01T00:00:00") == 0.0
        assert timefmt.parse_rfc3339("1970-01-01T00:00:00", local=True) == 5 * 3600
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("text", ["garbage", "2023-13-01T00:00:00Z", "2023-11-14T25:00:00Z", "2023-11-14T22:13:20Q",
                                  "yesterday", "1700000000"])
def test_parse_refuses_what_is_not_rfc3339(text: str) -> None:
    with pytest.raises(ValueError):
        timefmt.parse_rfc3339(text)


# -- container ids and names -----------------------------------------------------------------------


@pytest.mark.parametrize("cid", ["a", "a" * 64, "web.1", "my_c-2", "x+y", "A1", "a" * ids.MAX_ID])
def test_valid_ids(cid: str) -> None:
    assert ids.valid_id(cid)


@pytest.mark.parametrize("cid", ["", "a/b", "..", "../x", "x..y", ".hidden", "-x", "_x", "a b", "a\nb",
                                 "a" * (ids.MAX_ID + 1), "é", "web\n", "١٢"])
def test_invalid_ids(cid: str) -> None:
    assert not ids.valid_id(cid)


def test_full_ids_and_names() -> None:
    assert ids.is_full_id("0123456789abcdef" * 4)
    assert not ids.is_full_id("0123456789ABCDEF" * 4) and not ids.is_full_id("ab")
    assert ids.valid_name("web") and ids.valid_name("/web_1.a-b")
    assert not ids.valid_name("w") and not ids.valid_name("-web") and not ids.valid_name("we b")
    # a trailing newline (which a `$` regex lets through) and non-ASCII letters are not names
    assert not ids.valid_name("web\n") and not ids.valid_name("wéb") and not ids.valid_name("//web")
    assert not ids.is_full_id("0123456789abcdef" * 4 + "\n")


# -- reasons -------------------------------------------------------------------------------------


def test_reasons_give_dockers_exit_codes_and_are_errdefs_reasons() -> None:
    assert reasons.exit_code(reasons.EXEC_NOT_FOUND, 125) == 127
    assert reasons.exit_code(reasons.EXEC_NOT_INVOKABLE, 125) == 126
    assert reasons.exit_code(reasons.OOM, 125) == 125 and reasons.exit_code("", 1) == 1
    assert errdefs.REASON_EXEC_NOT_FOUND is reasons.EXEC_NOT_FOUND


# -- libc ----------------------------------------------------------------------------------------


def test_libc_check_raises_oserror_with_errno_and_path() -> None:
    assert libc.check(0, "x") == 0
    rc = libc.umount2(b"/nonexistent-ctrd-vocab-test", 0)
    with pytest.raises(OSError) as ei:
        libc.check(rc, "umount2", "/nonexistent-ctrd-vocab-test")
    assert ei.value.errno in (errno.ENOENT, errno.EPERM, errno.EINVAL)
    assert ei.value.filename == "/nonexistent-ctrd-vocab-test"
    assert str(ei.value.strerror).startswith("umount2: ")


def test_libc_prctl_reads_the_process_name() -> None:
    buf = ctypes.create_string_buffer(16)
    assert libc.check(libc.prctl(16, ctypes.addressof(buf), 0, 0, 0), "prctl") == 0  # PR_GET_NAME
    with open(f"/proc/{os.getpid()}/comm", "rb") as f:
        assert buf.value == f.read().strip()
