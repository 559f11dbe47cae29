"""docker diff's classification over fake layers."""

from __future__ import annotations

from daemon.files.changes import ADD, DELETE, LETTERS, MODIFY, Node, classify

DIR = 0o40755
FILE = 0o100644


class FakeLower:
    def __init__(self, nodes: list[Node], names: dict[str, list[str]] | None = None) -> None:
        self.nodes = {n.path: n for n in nodes}
        self._names = names or {}

    def stat(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def names(self, path: str) -> list[str]:
        return self._names.get(path, [])


def d(path: str, mtime: int = 1, **kw: object) -> Node:
    return Node(path, is_dir=True, mode=DIR, mtime_ns=mtime, **kw)  # type: ignore[arg-type]


def f(path: str, size: int = 1, mtime: int = 1, **kw: object) -> Node:
    return Node(path, mode=FILE, size=size, mtime_ns=mtime, **kw)  # type: ignore[arg-type]


def lines(out: list[tuple[str, int]]) -> list[str]:
    return [f"{LETTERS[k]} {p}" for p, k in out]


def test_added_deleted_modified_and_parents() -> None:
    lower = FakeLower([d("/etc"), f("/etc/passwd", 10), d("/bin"), f("/bin/ls"), d("/home"), d("/tmp")])
    upper = [
        d("/a", 5), d("/a/b", 5), f("/a/b/c"),
        d("/bin", 9), Node("/bin/ls", whiteout=True, mode=0o20000),
        d("/etc"), f("/etc/passwd", 12, 7),
        d("/home", 8),  # copied up, its own mtime changed, nothing under it: not reported
        d("/tmp", 3), f("/tmp/new"),
    ]
    assert lines(classify(upper, lower)) == [
        "A /a", "A /a/b", "A /a/b/c", "C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "C /tmp", "A /tmp/new"]


def test_opaque_directory_hides_and_deletes_what_was_below() -> None:
    lower = FakeLower([d("/data"), f("/data/a"), d("/data/keep"), f("/data/keep/b"), f("/data/same")],
                      {"/data": ["a", "keep", "same"]})
    upper = [d("/data", 2, opaque=True), f("/data/only"), f("/data/same")]
    # /data/same exists below but the opaque dir hides it: it is new content
    assert lines(classify(upper, lower)) == ["C /data", "A /data/only", "A /data/same", "D /data/a", "D /data/keep"]


def test_mode_and_owner_changes_are_modifications() -> None:
    lower = FakeLower([d("/srv"), f("/srv/x")])
    upper = [Node("/srv", is_dir=True, mode=0o40700, mtime_ns=1), f("/srv/x", uid=5)]
    assert classify(upper, lower) == [("/srv", MODIFY), ("/srv/x", MODIFY)]


def test_whiteout_of_nothing_below_is_silent_and_a_file_replacing_a_dir_is_a_change() -> None:
    lower = FakeLower([f("/thing"), d("/x")])
    upper = [Node("/ghost", whiteout=True), d("/thing"), f("/thing/in"), f("/x", 3)]
    assert classify(upper, lower) == [("/thing", MODIFY), ("/thing/in", ADD), ("/x", MODIFY)]
    assert DELETE == 2
