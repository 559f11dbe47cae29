"""daemon.tarcap: huge extended headers are refused from their size field, before being read."""

from __future__ import annotations

import io
import tarfile

import pytest

from daemon import tarcap


class _Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, n: int | None = -1) -> bytes:
        self.largest = max(self.largest, n or 0)
        return super().read(n)


def _archive(kind: bytes, size: int) -> bytes:
    hdr = tarfile.TarInfo("././@LongLink")
    hdr.type = kind
    hdr.size = size
    return hdr.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape") + b"\0" * 2048  # truncated body


@pytest.mark.parametrize(("kind", "name"), [(tarfile.XHDTYPE, "pax extended header"),
                                            (tarfile.GNUTYPE_LONGNAME, "GNU long-name header")])
@pytest.mark.parametrize("mode", ["r|", "r:"])
def test_huge_extended_header_is_refused_before_reading(kind: bytes, name: str, mode: str) -> None:
    size = 1 << 30
    src = _Counting(_archive(kind, size))
    with pytest.raises(tarcap.HeaderTooLarge) as exc:
        tarfile.open(fileobj=src, mode=mode, tarinfo=tarcap.CappedTarInfo)  # type: ignore[call-overload]  # noqa: SIM115
    assert f"{name} '././@LongLink' at offset 0 is {size} bytes" in str(exc.value)
    assert src.largest < 1 << 20  # the body was never asked for


def test_small_extended_headers_still_work() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("é/" + "x" * 300)
        tf.addfile(ti, io.BytesIO(b""))
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:", tarinfo=tarcap.CappedTarInfo) as tf:  # type: ignore[call-overload]
        assert [m.name for m in tarcap.members(tf)] == ["é/" + "x" * 300]


def test_member_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tarcap, "MAX_MEMBERS", 3)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(5):
            tf.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:") as tf, pytest.raises(tarfile.TarError, match="more than 3 members"):
        tarcap.members(tf)
