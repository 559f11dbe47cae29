"""diff, export and commit against a real ctrd (diff also against Debian's dockerd, same image)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.dockerd_env import Docker, own_bridge, private_dockerd
from tests.e2e.test_ctrctl_e2e import ctl
from tests.e2e.test_files_cp import ctl_bytes

pytestmark = pytest.mark.root

CHANGES = ("mkdir -p /a/b && touch /a/b/c && rm /bin/ls && echo x >> /etc/passwd && touch /tmp/new"
           " && rm -rf /var && mkdir /var && touch /var/v && mkdir /home/h && rmdir /home/h")
WANT = """A /a
A /a/b
A /a/b/c
C /bin
D /bin/ls
C /etc
C /etc/passwd
C /tmp
A /tmp/new
C /var
A /var/v
"""


def test_diff_lists_changes_as_docker_does(ctrd: DaemonProc) -> None:  # noqa: F811
    cid = ctrd.c.run("busybox", ["sh", "-c", CHANGES], network_mode="none")
    assert ctrd.c.wait(cid) == 0
    r = ctl(ctrd, "diff", cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == WANT
    r = ctl(ctrd, "diff", "nosuch")
    assert r.returncode == 1 and r.stderr.strip() == "Error: No such container: nosuch"
    ctrd.c.remove(cid)


@pytest.fixture
def docker(short_tmp: Path) -> Iterator[Docker]:
    if not (shutil.which("dockerd") and shutil.which("docker")):
        pytest.skip("docker not installed")
    base = short_tmp / "d"
    base.mkdir()
    with own_bridge() as (bridge, _), private_dockerd(base, bridge, "ctrdt-files-docker") as d:
        yield d


def test_diff_matches_dockerd_on_the_same_image(ctrd: DaemonProc, docker: Docker, tmp_path: Path) -> None:  # noqa: F811
    cid = ctrd.c.run("busybox", ["sh", "-c", CHANGES], network_mode="none")  # (busybox is built on first use)
    assert ctrd.c.wait(cid) == 0
    saved = ctl_bytes(ctrd, "save", "busybox")
    assert saved.returncode == 0, saved.stderr
    (tmp_path / "bb.tar").write_bytes(saved.stdout)
    r = docker("load", "-i", str(tmp_path / "bb.tar"))
    assert r.returncode == 0, r.stderr
    r = docker("run", "--name", "d1", "--network", "none", "busybox", "sh", "-c", CHANGES)
    assert r.returncode == 0, r.stderr
    theirs = docker("diff", "d1")
    assert theirs.returncode == 0, theirs.stderr
    ours = ctl(ctrd, "diff", cid)
    # docker walks its directory maps in Go's random order: the same lines, parents first
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines()), (ours.stdout, theirs.stdout)
    # system df and container prune print what docker prints (the figures differ: other layers)
    ours_df, theirs_df = ctl(ctrd, "system", "df").stdout.splitlines(), docker("system", "df").stdout.splitlines()
    assert ours_df[0] == theirs_df[0] and [r[:16] for r in ours_df] == [r[:16] for r in theirs_df]
    ours_p, theirs_p = ctl(ctrd, "container", "prune", "-f").stdout, docker("container", "prune", "-f").stdout
    for out, ident in ((ours_p, cid), (theirs_p, None)):
        lines = out.splitlines()
        assert lines[0] == "Deleted Containers:" and lines[-2] == "" and lines[-1].startswith("Total reclaimed space: ")
        assert ident is None or lines[1] == ident


def test_commit_then_run_sees_the_change_and_the_deletion(ctrd: DaemonProc) -> None:  # noqa: F811
    setup = "mkdir -p /data/keep && echo one > /data/a && echo two > /data/keep/b && echo hi > /hello && rm /etc/group"
    c1 = ctrd.c.run("busybox", ["sh", "-c", setup], network_mode="none", env=["FROM_RUN=1"])
    assert ctrd.c.wait(c1) == 0
    r = ctl(ctrd, "commit", "-m", "first commit", "-a", "Ada <ada@example.org>",
            "-c", 'CMD ["cat", "/hello"]', "-c", "ENV GREETING=hello", "-c", "LABEL tier=test",
            "-c", "WORKDIR /data", "-c", "EXPOSE 8080", "-c", "USER root", c1, "committed:1")
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    r = ctl(ctrd, "run", "--rm", "--network", "none", "committed:1")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    r = ctl(ctrd, "run", "--rm", "--network", "none", "committed:1", "sh", "-c",
            "pwd; echo $GREETING $FROM_RUN; cat /data/a; ls /etc/group")
    assert r.returncode == 1 and r.stdout == "/data\nhello 1\none\n", r.stderr
    doc = json.loads(ctl(ctrd, "image", "inspect", "committed:1").stdout)[0]
    assert doc["Comment"] == "first commit" and doc["Author"] == "Ada <ada@example.org>"
    assert doc["Config"]["Labels"] == {"tier": "test"} and "8080/tcp" in doc["Config"]["ExposedPorts"]
    assert len(doc["RootFS"]["Layers"]) == 2
    # a directory removed and made again (overlay's opaque dir) hides everything it held below
    c2 = ctrd.c.run("committed:1", ["sh", "-c", "rm -rf /data && mkdir /data && echo only > /data/only"],
                    network_mode="none")
    assert ctrd.c.wait(c2) == 0
    r = ctl(ctrd, "commit", c2, "committed:2")
    assert r.returncode == 0, r.stderr
    r = ctl(ctrd, "run", "--rm", "--network", "none", "committed:2", "find", "/data")
    assert r.stdout.split() == ["/data", "/data/only"], r.stderr
    # the layer's tar carries docker's whiteouts (checked in the saved image)
    saved = ctl_bytes(ctrd, "save", "committed:2")
    with tarfile.open(fileobj=io.BytesIO(saved.stdout)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        top = manifest[0]["Layers"][-1]
        with tarfile.open(fileobj=tf.extractfile(top)) as layer:  # type: ignore[arg-type]
            names = layer.getnames()
    assert "data/.wh..wh..opq" in names and "data/only" in names
    # a running container is paused while committed, then runs on
    live = ctrd.c.run("busybox", ["sh", "-c", "echo live > /live; sleep 60"], network_mode="none")
    ctrd.c.wait_status(live, "running")
    r = ctl(ctrd, "commit", live, "committed:live")
    assert r.returncode == 0, r.stderr
    assert ctrd.c.inspect(live)["State"]["Status"] == "running"
    # bad input: one line, nothing made
    r = ctl(ctrd, "commit", "-c", "FROM scratch", c1, "bad:1")
    assert r.returncode == 1 and "FROM is not supported" in r.stderr
    assert ctl(ctrd, "image", "inspect", "bad:1").returncode != 0
    for c in (c1, c2):
        ctrd.c.remove(c)
    ctrd.c.remove(live, force=True)


def test_export_is_the_whole_filesystem(ctrd: DaemonProc) -> None:  # noqa: F811
    cid = ctrd.c.run("busybox", ["sh", "-c", "echo exported > /root/file; rm /bin/ls"], network_mode="none")
    assert ctrd.c.wait(cid) == 0
    r = ctl_bytes(ctrd, "export", cid)
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
        names = set(tf.getnames())
        assert tf.extractfile("root/file").read() == b"exported\n"  # type: ignore[union-attr]
    assert {"bin/busybox", "etc/passwd", "etc/hostname", "root/file"} <= names and "bin/ls" not in names
    assert not any(n.startswith(("/", "./", "..")) for n in names)
    assert subprocess.run(["tar", "-tf", "-"], input=r.stdout, capture_output=True).returncode == 0
    ctrd.c.remove(cid)
