"""The in-root path resolver over a fake tree: every symlink stays inside the container's root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctrd import errdefs
from daemon.files import resolve
from daemon.files.paths import clean, go_file_mode

# a fake tree: path -> link target ("" = exists, not a link); absent = missing
TREE = {
    "/etc": "", "/etc/passwd": "", "/bin": "", "/usr": "", "/usr/lib": "",
    "/escape": "/../../../etc",      # absolute, climbing above the root
    "/up": "../../../../..",         # relative, climbing above the root
    "/lib": "usr/lib",               # relative, inside
    "/usr/lib/self": "../lib",       # relative in a subdirectory
    "/loop1": "/loop2", "/loop2": "/loop1",
    "/shadow": "/etc/shadow",        # points at a path that does not exist in the root
}


def fake_readlink(parts: list[str]) -> str | None:
    path = "/" + "/".join(parts)
    if path not in TREE:
        return ""
    return TREE[path] or None


@pytest.mark.parametrize(("path", "want"), [
    ("/etc/passwd", "/etc/passwd"),
    ("/escape/passwd", "/etc/passwd"),
    ("/up/etc/passwd", "/etc/passwd"),
    ("/up/up/escape/passwd", "/etc/passwd"),
    ("/../../etc/passwd", "/etc/passwd"),
    ("etc/../../../etc/passwd", "/etc/passwd"),
    ("/lib/x", "/usr/lib/x"),
    ("/usr/lib/self/self/self", "/usr/lib"),
    ("/shadow", "/etc/shadow"),
    ("/missing/../etc", "/etc"),
    ("/", "/"),
])
def test_canonical_stays_inside(path: str, want: str) -> None:
    assert "/" + "/".join(resolve.canonical(path, fake_readlink)) == want


def test_last_component_kept_when_asked() -> None:
    assert resolve.canonical("/escape/../escape", fake_readlink, follow_last=False) == ["escape"]
    assert resolve.canonical("/up", fake_readlink, follow_last=False) == ["up"]


def test_symlink_loops_are_an_error() -> None:
    with pytest.raises(errdefs.InvalidArgument, match="too many levels"):
        resolve.canonical("/loop1/x", fake_readlink)


def test_lexical_clean() -> None:
    assert clean("/a/b/../../../c/./d/") == ["c", "d"]


def test_go_file_mode() -> None:
    assert go_file_mode(0o40755) == (1 << 31) | 0o755
    assert go_file_mode(0o120777) == (1 << 27) | 0o777
    assert go_file_mode(0o104755) == (1 << 23) | 0o755
    assert go_file_mode(0o20666) == (1 << 26) | (1 << 21) | 0o666


def test_real_tree_resolution_and_open(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    os.symlink("/../../etc", root / "escape")
    os.symlink("../../../..", root / "up")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in ("/escape/passwd", "/up/etc/passwd", "/up/up/escape/passwd"):
            parts = resolve.resolve(fd, path)
            assert parts == ["etc", "passwd"]
            f = resolve.open_parts(fd, parts, os.O_RDONLY)
            try:
                assert os.read(f, 100) == b"inside\n"
            finally:
                os.close(f)
        # a symlink on the way is never followed by open_parts itself
        with pytest.raises(OSError):
            resolve.open_parts(fd, ["escape", "passwd"], os.O_RDONLY)
    finally:
        os.close(fd)
