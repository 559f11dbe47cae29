"""Tar writing (whiteout conversion with fake whiteouts) and extraction that never leaves its root."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.files import tarwrite
from daemon.files.extract import extract


def test_overlay_whiteouts_become_oci_whiteouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "gone").write_text("")  # stands for a 0/0 character device
    (upper / "data").mkdir()  # stands for a trusted.overlay.opaque=y directory
    (upper / "data" / "only").write_text("only\n")
    (upper / "etc" / "kept").write_text("kept\n")
    os.symlink("kept", upper / "etc" / "link")
    os.link(upper / "etc" / "kept", upper / "etc" / "hard")
    monkeypatch.setattr(tarwrite, "is_whiteout", lambda st: stat.S_ISREG(st.st_mode) and st.st_size == 0)
    monkeypatch.setattr(tarwrite, "is_opaque", lambda fd: os.readlink(f"/proc/self/fd/{fd}").endswith("/data"))
    buf = io.BytesIO()
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY)
    try:
        w = tarwrite.TreeWriter(buf, whiteouts=True)
        w.add_dir(fd, "", os.fstat(fd), header=False)
        w.close()
    finally:
        os.close(fd)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert set(members) == {"data", "data/.wh..wh..opq", "data/only", "etc", "etc/.wh.gone", "etc/hard", "etc/kept",
                            "etc/link"}
    assert members["etc/.wh.gone"].isreg() and members["etc/.wh.gone"].size == 0
    assert members["etc/kept"].islnk() and members["etc/kept"].linkname == "etc/hard"  # first seen wins
    assert members["etc/link"].issym() and members["etc/link"].linkname == "kept"


def _tar(*entries: tarfile.TarInfo, data: bytes = b"x") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for ti in entries:
            if ti.isreg():
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    buf.seek(0)
    return buf


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = kind, link, 0o644
    return ti


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    r = tmp_path / "root"
    (r / "dst").mkdir(parents=True)
    (r / "etc").mkdir()
    os.symlink("/", r / "rootlink")
    os.symlink("../../../..", r / "dst" / "up")
    fd = os.open(r, os.O_RDONLY | os.O_DIRECTORY)
    yield r, fd
    os.close(fd)


def test_members_through_symlinks_land_inside_the_root(root: tuple[Path, int], tmp_path: Path) -> None:
    r, fd = root
    marker = f"ctrd-unit-{os.getpid()}"
    extract(fd, ["dst"], "/dst", _tar(_info(f"up/etc/{marker}"), _info("abs", tarfile.SYMTYPE, "/etc"),
                                       _info(f"abs/{marker}-2")))
    assert (r / "etc" / marker).read_bytes() == b"x"
    assert (r / "etc" / f"{marker}-2").read_bytes() == b"x"
    assert not Path(f"/etc/{marker}").exists() and not (tmp_path / "etc").exists()


@pytest.mark.parametrize(("entry", "message"), [
    (_info("../../evil"), "is outside of /dst"),
    (_info("a/../../evil"), "is outside of /dst"),
    (_info("link", tarfile.SYMTYPE, "../../../evil"), "symlink target"),
    (_info("hard", tarfile.LNKTYPE, "../etc/passwd"), "hardlink target"),
])
def test_escapes_are_refused(root: tuple[Path, int], entry: tarfile.TarInfo, message: str) -> None:
    _r, fd = root
    with pytest.raises(errdefs.InvalidArgument, match=message):
        extract(fd, ["dst"], "/dst", _tar(entry))


def test_no_overwrite_dir_non_dir(root: tuple[Path, int]) -> None:
    r, fd = root
    (r / "dst" / "d").mkdir()
    with pytest.raises(errdefs.InvalidArgument, match="cannot overwrite directory"):
        extract(fd, ["dst"], "/dst", _tar(_info("d")), no_overwrite_dir_non_dir=True)
    extract(fd, ["dst"], "/dst", _tar(_info("d")))  # docker's default: replaced
    assert (r / "dst" / "d").is_file()
