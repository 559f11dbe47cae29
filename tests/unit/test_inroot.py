"""ctrd.inroot: paths opened inside a container's root never leave it — absolute and relative
symlinks, `..`, both with openat2(RESOLVE_IN_ROOT) and the user-space walk; the daemon's
passwd/group lookups read the image's files even when they are symlinks to host paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrd import inroot
from ctrd.errdefs import InvalidArgument
from daemon.containers.bundle import resolve_user
from daemon.security.limits import _group_id


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(inroot, "_have_openat2", None if request.param == "openat2" else False)
    yield str(request.param)


@pytest.fixture
def host_and_root(tmp_path: Path) -> tuple[Path, Path]:
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/shadow").write_text("hostonly:x:4242:4242::/root:/bin/sh\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/shadow").write_text("imageuser:x:1000:1000::/home:/bin/sh\n")
    return host, root


def test_absolute_symlink_to_a_host_path_reads_the_roots_file(mode: str, host_and_root: tuple[Path, Path]) -> None:
    host, root = host_and_root
    (root / "etc/passwd").symlink_to(host / "etc/shadow")  # absolute: the host's path, taken inside root
    with pytest.raises(FileNotFoundError):
        inroot.read_in_root(str(root), "/etc/passwd")  # root has no <host>/etc/shadow
    os.makedirs(root / str(host).lstrip("/") / "etc")
    (root / str(host).lstrip("/") / "etc/shadow").write_text("inside\n")
    assert inroot.read_in_root(str(root), "/etc/passwd") == b"inside\n"


def test_dotdot_and_relative_links_stop_at_the_root(mode: str, host_and_root: tuple[Path, Path]) -> None:
    _host, root = host_and_root
    depth = "../" * (len(root.parts) + 3)
    (root / "up").symlink_to(f"{depth}etc")
    assert inroot.read_in_root(str(root), "/up/shadow").startswith(b"imageuser")
    assert inroot.read_in_root(str(root), "/../../../etc/shadow").startswith(b"imageuser")
    fd = inroot.open_in_root(str(root), "/up")
    try:
        assert inroot.fd_path(fd) == str(root / "etc")
    finally:
        os.close(fd)


def test_loops_fifos_and_missing_files(mode: str, tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError):
        inroot.read_in_root(str(tmp_path), "/a")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        inroot.read_in_root(str(tmp_path), "/fifo")  # never blocks on a FIFO
    assert inroot.read_text_in_root(tmp_path, "/missing") is None


def test_user_and_group_lookups_never_read_host_files(mode: str, host_and_root: tuple[Path, Path]) -> None:
    host, root = host_and_root
    (root / "etc/passwd").symlink_to(host / "etc/shadow")
    (root / "etc/group").symlink_to(host / "etc/shadow")
    with pytest.raises(InvalidArgument, match="unable to find user hostonly"):
        resolve_user(root, "hostonly")
    with pytest.raises(InvalidArgument, match="unable to find group hostonly"):
        _group_id(root, "hostonly")
    (root / "etc/passwd").unlink()
    (root / "etc/passwd").write_text("app:x:1000:1001::/home/app:/bin/sh\n")
    assert resolve_user(root, "app") == (1000, 1001, [])


def test_numeric_user_is_a_uid_never_a_name_cve_2016_3697(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("1000:x:0:0::/root:/bin/sh\n")
    assert resolve_user(tmp_path, "1000")[0] == 1000


@pytest.mark.parametrize("user", ["2147483648", "4294967296", "99999999999999999999", "0:4294967296"])
def test_ids_beyond_31_bits_are_refused_cve_2024_40635(tmp_path: Path, user: str) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(f"{user.split(':')[0]}:x:0:0::/root:/bin/sh\n")  # a name that maps to 0
    with pytest.raises(InvalidArgument, match=r"^user: uids and gids must be in range 0-2147483647"):
        resolve_user(tmp_path, user)
    assert resolve_user(tmp_path, "2147483647")[0] == 2147483647
