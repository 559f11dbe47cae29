"""The issue's "Done when" through the daemon: the real-tool whiteout archive loads over the API and a
container from it does not see the deleted file; image rm is refused while a container uses it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctrd import errdefs
from ctrd.v1 import container_pb2 as cpb
from ctrd.v1 import image_pb2 as ipb
from daemon.layers.overlay2 import INIT_TEMPLATE
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.fixtures import images as fx

pytestmark = pytest.mark.root


def _load(d: DaemonProc, path: Path) -> list[str]:
    data = path.read_bytes()
    chunks = (ipb.LoadRequest(chunk=data[i : i + 4096]) for i in range(0, len(data), 4096))
    return list(d.c.call(d.c.images, "Load", chunks).loaded)


def test_whiteout_fixture_through_the_daemon(ctrd: DaemonProc) -> None:  # noqa: F811
    c = ctrd.c
    assert _load(ctrd, fx.FIXTURES / "whiteout-oci.tar") == ["Loaded image: whiteout:v1"]
    assert _load(ctrd, fx.FIXTURES / "whiteout-docker.tar") == ["Loaded image: whiteout:v1"]
    images = c.call(c.images, "List", ipb.ImageListRequest()).images
    assert [list(i.repo_tags) for i in images] == [["whiteout:v1"]]

    # The image has no shell: borrow the host's static busybox through a read-only bind.
    bb = cpb.Mount(type="bind", source="/bin/busybox", target="/busybox", read_only=True)
    script = "test ! -e /etc/secret && test ! -e /data/old.txt && test -e /data/keep.txt && test -e /new.txt && echo clean"
    cid = c.run("whiteout:v1", ["/busybox", "sh", "-c", script], mounts=[bb], network_mode="none")
    assert c.wait(cid) == 0
    assert [e.data for e in c.logs(cid)] == [b"clean\n"]

    with pytest.raises(errdefs.FailedPrecondition):
        c.call(c.images, "Remove", ipb.ImageRemoveRequest(reference="whiteout:v1"))
    with pytest.raises(errdefs.NotFound, match="no such image"):
        c.call(c.images, "Inspect", ipb.ImageInspectRequest(reference="nothere:1"))
    c.remove(cid)
    rm = c.call(c.images, "Remove", ipb.ImageRemoveRequest(reference="whiteout:v1"))
    assert list(rm.untagged) == ["whiteout:v1"] and len(rm.deleted) == 3
    assert os.listdir(ctrd.root / "overlay2" / "l") == []
    # left: at most the removed container's two layers, kept (emptied) for the next creates
    left = [p for p in os.listdir(ctrd.root / "overlay2") if p not in ("l", INIT_TEMPLATE)]
    assert len(left) <= 2 and all(p.startswith(".staging-rm-") for p in left), left
