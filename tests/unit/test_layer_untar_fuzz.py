"""Property tests for layer extraction: whatever the entries, nothing lands outside the layer, and bad
input fails as InvalidArgument (never another exception type)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctrd import errdefs
from daemon.layers.untar import extract_layer
from tests.fixtures import images as fx

# A small grammar, so that "symlink out, then write through it" sequences come up often.
NAMES = ["a", "a/b", "a/b/c", "..", "../x", "/x", ".wh.a", "a/.wh..wh..opq"]
# "@OUT" is replaced by the absolute path of a directory outside the layer. No target names a real host
# path: if extraction were broken, the fuzzer must not write into the host's /etc.
TARGETS = ["a", "@OUT", "../../outside", "..", "a/b"]


def _entry(kind: str, name: str, target: str, data: bytes, out: Path) -> fx.Entry:
    target = target.replace("@OUT", str(out))
    if kind == "file":
        return fx.file(name, data)
    if kind == "dir":
        return fx.directory(name)
    if kind == "symlink":
        return fx.symlink(name, target)
    return fx.hardlink(name, target)


Spec = tuple[str, str, str, bytes]
KINDS = ["file", "dir", "symlink", "hardlink"]
single = st.tuples(st.sampled_from(KINDS), st.sampled_from(NAMES), st.sampled_from(TARGETS), st.binary(max_size=64))


def _through(t: tuple[str, str, str, str, str, bytes]) -> list[Spec]:
    """A link, then an entry written through it (the sequence tar-slip attacks are made of)."""
    link_kind, name, target, kind, leaf, data = t
    return [(link_kind, name, target, b""), (kind, f"{name}/{leaf}", target, data)]


pair = st.tuples(
    st.sampled_from(["symlink", "symlink", "hardlink"]),
    st.sampled_from(["a", "a/b"]),
    st.sampled_from(TARGETS),
    st.sampled_from(KINDS),
    st.sampled_from(["b", "..", "x/y", ".wh.b", ".wh..wh..opq"]),
    st.binary(max_size=16),
).map(_through)
entries = st.lists(st.one_of(single.map(lambda e: [e]), pair), min_size=1, max_size=5).map(
    lambda groups: [e for g in groups for e in g]
)


def _snapshot(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries)
def test_extraction_never_escapes(spec: list[Spec]) -> None:
    box = Path(tempfile.mkdtemp(prefix="ctrdt-fz-", dir="/tmp"))
    try:
        outside = box / "outside"
        outside.mkdir()
        (outside / "canary").write_text("canary")
        dest = box / "layer" / "diff"
        dest.mkdir(parents=True)
        before = _snapshot(outside)
        tar = fx.layer(*(_entry(*e, outside) for e in spec))
        try:
            extract_layer(io.BytesIO(tar), dest, "fuzz")
        except errdefs.InvalidArgument:
            pass
        except PermissionError:
            assert os.geteuid() != 0  # whiteouts need root; as root nothing may fail this way
        assert _snapshot(outside) == before
        assert (outside / "canary").read_text() == "canary"
        assert sorted(os.listdir(box)) == ["layer", "outside"]
        assert os.listdir(box / "layer") == ["diff"]
    finally:
        shutil.rmtree(box)


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.booleans())
def test_truncated_or_corrupted_layers_fail_cleanly(cut: int, flip: bool) -> None:
    tar = fx.layer(fx.directory("d"), fx.file("d/f", b"x" * 3000), fx.symlink("l", "d/f"), fx.file("g", b"y" * 100))
    data = bytearray(tar[: min(cut, len(tar))])
    if flip and data:
        data[len(data) // 2] ^= 0xFF
    dest = Path(tempfile.mkdtemp(prefix="ctrdt-fz-", dir="/tmp"))
    try:
        extract_layer(io.BytesIO(bytes(data)), dest, "fuzz")
    except errdefs.InvalidArgument:
        pass
    finally:
        shutil.rmtree(dest)
