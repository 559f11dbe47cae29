"""`ctrctl cp` against a real ctrd: round trips that keep everything, escapes that stay inside the
container's root, and copies to and from stopped and never-started containers."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import CTRCTL, ctl

pytestmark = pytest.mark.root

BIG = 100 * 1024 * 1024


def ctl_bytes(d: DaemonProc, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CTRD_ADDRESS"}
    return subprocess.run([*CTRCTL, "-a", d.address, *args], input=stdin, capture_output=True, timeout=120, env=env)


def make_tree(root: Path) -> None:
    """Directories with odd modes, a setuid file, symlinks (relative, absolute, dangling),
    hardlinks, a fifo, other owners, old mtimes and a 100 MB file."""
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub").chmod(0o750)
    (root / "plain.txt").write_text("plain\n")
    (root / "plain.txt").chmod(0o640)
    (root / "setuid").write_bytes(b"#!/bin/sh\n")
    os.chown(root / "setuid", 1234, 5678)
    (root / "setuid").chmod(0o4755)
    (root / "sub" / "deep" / "owned").write_text("owned\n")
    os.chown(root / "sub" / "deep" / "owned", 4321, 8765)
    os.chown(root / "sub" / "deep", 99, 98)
    os.symlink("../plain.txt", root / "sub" / "rel-link")
    os.symlink("/etc/shadow", root / "abs-link")
    os.symlink("nowhere", root / "dangling")
    os.link(root / "plain.txt", root / "sub" / "hard")
    os.mkfifo(root / "fifo", 0o604)
    with open(root / "big.bin", "wb") as f:
        block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB, not all zeros
        for i in range(BIG // len(block)):
            f.write(block[i % 7 :] + block[: i % 7])
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (1_600_000_000, 1_600_000_000), follow_symlinks=False)


def describe(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a byte-identical copy keeps: type, mode, owner, mtime, content, link target,
    and which names share an inode."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(root))
        content: object = None
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            content = h.hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(p)
        first = inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) else rel
        mtime = int(st.st_mtime) if not stat.S_ISDIR(st.st_mode) else None
        out[rel] = (st.st_mode, st.st_uid, st.st_gid, mtime, content, st.st_size, first)
    return out


def test_cp_round_trip_keeps_everything(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "tree"
    src.mkdir()
    make_tree(src)
    want = describe(src)
    cid = ctrd.c.create("busybox", ["true"], network_mode="none")  # never started: mounted for the copy
    r = ctl(ctrd, "cp", "-a", str(src), f"{cid}:/copied")
    assert r.returncode == 0, r.stderr
    assert ctrd.mounts() == []  # nothing left mounted by a copy into a created container
    back = tmp_path / "back"
    back.mkdir()
    r = ctl(ctrd, "cp", "-a", f"{cid}:/copied", str(back))
    assert r.returncode == 0, r.stderr
    assert describe(back / "copied") == want
    # the tar on stdout names the copied directory and holds the same bytes
    r2 = ctl_bytes(ctrd, "cp", f"{cid}:/copied/big.bin", "-")
    assert r2.returncode == 0, r2.stderr
    with tarfile.open(fileobj=io.BytesIO(r2.stdout)) as tf:
        m = tf.getmember("big.bin")
        data = tf.extractfile(m).read()  # type: ignore[union-attr]
    assert hashlib.sha256(data).hexdigest() == want["big.bin"][4]
    # a tar on stdin lands as it is, owners included
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("fromstdin/x")
        ti.size, ti.uid, ti.gid, ti.mode, ti.mtime = 3, 42, 43, 0o600, 1_500_000_000
        tf.addfile(ti, io.BytesIO(b"abc"))
    r2 = ctl_bytes(ctrd, "cp", "-", f"{cid}:/tmp", stdin=buf.getvalue())
    assert r2.returncode == 0, r2.stderr
    out = tmp_path / "out"
    out.mkdir()
    assert ctl(ctrd, "cp", "-a", f"{cid}:/tmp/fromstdin/x", str(out / "y")).returncode == 0
    st = (out / "y").stat()
    assert ((out / "y").read_bytes(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), int(st.st_mtime)) == (
        b"abc", 42, 43, 0o600, 1_500_000_000)
    # without -a the host copy belongs to the caller (docker's rule)
    assert ctl(ctrd, "cp", f"{cid}:/tmp/fromstdin/x", str(out / "z")).returncode == 0
    assert (out / "z").stat().st_uid == os.getuid()
    # a reader that goes away mid-stream: the daemon ends the copy and unmounts the root
    cut = subprocess.run(f"{' '.join(CTRCTL)} -a {ctrd.address} cp {cid}:/copied - | head -c 1000 >/dev/null",
                         shell=True, timeout=120)
    assert cut.returncode == 0
    deadline = time.monotonic() + 30
    while ctrd.mounts() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ctrd.mounts() == []
    ctrd.c.remove(cid)


def test_cp_into_and_out_of_a_stopped_container(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    cid = ctrd.c.run("busybox", ["sh", "-c", "echo from-run > /made"], network_mode="none")
    assert ctrd.c.wait(cid) == 0
    ctrd.c.wait_status(cid, "exited")
    r = ctl(ctrd, "cp", f"{cid}:/made", str(tmp_path / "made"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "made").read_text() == "from-run\n"
    (tmp_path / "in.txt").write_text("from-host\n")
    r = ctl(ctrd, "cp", str(tmp_path / "in.txt"), f"{cid}:/etc/")
    assert r.returncode == 0, r.stderr
    assert ctrd.mounts() == []
    ctrd.c.start(cid)  # the container sees the copy (it ran `echo` again into /made)
    assert ctrd.c.wait(cid) == 0
    r = ctl(ctrd, "cp", f"{cid}:/etc/in.txt", "-")
    assert r.returncode == 0 and "from-host" in r.stdout
    # a running container: the copy goes to its live root
    live = ctrd.c.run("busybox", ["sleep", "60"], network_mode="none")
    assert ctl(ctrd, "cp", str(tmp_path / "in.txt"), f"{live}:/tmp/live.txt").returncode == 0
    r = ctl(ctrd, "exec", live, "cat", "/tmp/live.txt")
    assert r.stdout == "from-host\n", r.stderr
    # SRC/. is a directory's content: into a new host directory, and into a new container directory
    r = ctl(ctrd, "cp", f"{cid}:/etc/.", str(tmp_path / "etc-copy"))
    assert r.returncode == 0, r.stderr
    assert {"passwd", "in.txt"} <= {p.name for p in (tmp_path / "etc-copy").iterdir()}
    r = ctl(ctrd, "cp", f"{tmp_path / 'etc-copy'}/.", f"{live}:/newdir")
    assert r.returncode == 0, r.stderr
    r = ctl(ctrd, "exec", live, "cat", "/newdir/in.txt")
    assert r.stdout == "from-host\n", r.stderr
    ctrd.c.remove(live, force=True)
    ctrd.c.remove(cid)


def test_cp_paths_and_symlinks_stay_inside_the_container(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    marker = f"ctrd-cp-escape-{os.getpid()}"
    script = (f"echo inside > /etc/{marker}; ln -s /../../../../etc /escape; ln -s ../../../../.. /up; "
              f"ln -s /etc/{marker} /abs; mkdir /box")
    cid = ctrd.c.run("busybox", ["sh", "-c", script], network_mode="none")
    assert ctrd.c.wait(cid) == 0
    host_passwd = Path("/etc/passwd").read_text()
    for path in ("/escape/passwd", "/up/etc/passwd", "/../../../etc/passwd", "/up/up/escape/passwd"):
        rb = ctl_bytes(ctrd, "cp", "-L", f"{cid}:{path}", "-")
        assert rb.returncode == 0, (path, rb.stderr)
        with tarfile.open(fileobj=io.BytesIO(rb.stdout)) as tf:
            data = tf.extractfile(tf.getmembers()[0]).read().decode()  # type: ignore[union-attr]
        assert data != host_passwd and "root:x:0:0" in data, path
    # the symlink itself is copied as a symlink (no -L), its target resolved inside
    rb = ctl_bytes(ctrd, "cp", f"{cid}:/abs", "-")
    with tarfile.open(fileobj=io.BytesIO(rb.stdout)) as tf:
        m = tf.getmembers()[0]
    assert m.issym() and m.linkname == f"/etc/{marker}"
    # into the container through escaping symlinks: lands in the container's /etc, never the host's
    (tmp_path / "drop").write_text("dropped\n")
    for dst in ("/escape/", "/up/etc/", "/../../etc/"):
        r = ctl(ctrd, "cp", str(tmp_path / "drop"), f"{cid}:{dst}")
        assert r.returncode == 0, (dst, r.stderr)
        assert not Path("/etc/drop").exists()
        r = ctl(ctrd, "cp", f"{cid}:/etc/drop", "-")
        assert "dropped" in r.stdout
    # a tar that climbs with `..`, or writes through an absolute symlink of its own
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tf:
        ti = tarfile.TarInfo("../../../../tmp/" + marker)
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    r2 = ctl_bytes(ctrd, "cp", "-", f"{cid}:/box", stdin=bad.getvalue())
    assert r2.returncode == 1 and b"outside of /box" in r2.stderr
    assert not Path(f"/tmp/{marker}").exists()
    sneaky = io.BytesIO()
    with tarfile.open(fileobj=sneaky, mode="w") as tf:
        ti = tarfile.TarInfo("root")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/"
        tf.addfile(ti)
        ti = tarfile.TarInfo(f"root/tmp/{marker}")
        ti.size = 6
        tf.addfile(ti, io.BytesIO(b"caught"))
    r2 = ctl_bytes(ctrd, "cp", "-", f"{cid}:/box", stdin=sneaky.getvalue())
    assert r2.returncode == 0, r2.stderr
    assert not Path(f"/tmp/{marker}").exists()
    r = ctl(ctrd, "cp", f"{cid}:/tmp/{marker}", "-")
    assert "caught" in r.stdout
    # bad input: one line each
    r = ctl(ctrd, "cp", f"{cid}:/no/such", "-")
    assert r.returncode == 1 and r.stderr.strip() == f"Error response from daemon: Could not find the file /no/such in container {cid}"
    r = ctl(ctrd, "cp", "nosuchcontainer:/x", "-")
    assert r.returncode == 1 and r.stderr.strip() == "Error: No such container: nosuchcontainer"
    rb = ctl_bytes(ctrd, "cp", "-", f"{cid}:/etc/passwd", stdin=sneaky.getvalue())
    assert rb.returncode == 1 and b"must be a directory" in rb.stderr
    r = ctl(ctrd, "cp", str(tmp_path / "drop"), f"{cid}:/no/such/dir/x")
    assert r.returncode == 1 and "Could not find the file /no/such/dir in container" in r.stderr, r.stderr
    r = ctl(ctrd, "cp", "a:/x", "b:/y")
    assert r.returncode == 125 and "copying between containers is not supported" in r.stderr
    ctrd.c.remove(cid)


def test_cp_sees_a_running_containers_mounts(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    """A running container's bind mounts, tmpfs and /etc/hostname are what cp reads and writes
    (docker mounts them for the copy); its /proc and /sys are directories without content."""
    shared = tmp_path / "shared"
    shared.mkdir()
    r = ctl(ctrd, "run", "-d", "--network", "none", "--hostname", "cp-live", "-v", f"{shared}:/data",
            "--tmpfs", "/scratch", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    (tmp_path / "f.txt").write_text("through the mount\n")
    assert ctl(ctrd, "cp", str(tmp_path / "f.txt"), f"{cid}:/data/").returncode == 0
    assert (shared / "f.txt").read_text() == "through the mount\n"
    assert ctl(ctrd, "cp", str(tmp_path / "f.txt"), f"{cid}:/scratch/in-tmpfs").returncode == 0
    assert ctl(ctrd, "exec", cid, "cat", "/scratch/in-tmpfs").stdout == "through the mount\n"
    rb = ctl_bytes(ctrd, "cp", f"{cid}:/etc/hostname", "-")
    with tarfile.open(fileobj=io.BytesIO(rb.stdout)) as tf:
        assert tf.extractfile("hostname").read() == b"cp-live\n"  # type: ignore[union-attr]
    rb = ctl_bytes(ctrd, "cp", f"{cid}:/", "-")
    assert rb.returncode == 0, rb.stderr
    with tarfile.open(fileobj=io.BytesIO(rb.stdout)) as tf:
        names = tf.getnames()
    assert "./data/f.txt" in names and "./bin/busybox" in names and "./proc" in names
    assert not [n for n in names if n.startswith(("./proc/", "./sys/"))]
    ctrd.c.remove(cid, force=True)
    assert ctrd.mounts() == []


def _mountns_helpers() -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and b"daemon.files.mountns" in (p / "cmdline").read_bytes():
                out.append(int(p.name))
        except OSError:
            continue
    return out


def test_cp_sees_a_stopped_containers_volumes_binds_and_etc_files(ctrd: DaemonProc, tmp_path: Path) -> None:  # noqa: F811
    """Stopped or never started, a container's volumes, binds and hostname file are what cp reads
    and writes (docker mounts them for the copy), not the layer under them; nothing stays mounted."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "on-host").write_text("bind content\n")
    r = ctl(ctrd, "run", "--network", "none", "--hostname", "cp-stopped", "-v", "cpvol:/data", "-v",
            f"{shared}:/h:ro", "busybox", "sh", "-c", "echo in-volume > /data/f")
    assert r.returncode == 0, r.stderr
    cid = ctl(ctrd, "ps", "-a", "-q", "--no-trunc", "--filter", "volume=cpvol").stdout.strip()
    assert cid and ctrd.c.inspect(cid)["State"]["Status"] == "exited"
    r = ctl(ctrd, "cp", f"{cid}:/data/f", "-")
    assert r.returncode == 0 and "in-volume" in r.stdout, r.stderr
    r = ctl(ctrd, "cp", f"{cid}:/h/on-host", str(tmp_path / "back"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "back").read_text() == "bind content\n"
    rb = ctl_bytes(ctrd, "cp", f"{cid}:/etc/hostname", "-")
    with tarfile.open(fileobj=io.BytesIO(rb.stdout)) as tf:
        assert tf.extractfile("hostname").read() == b"cp-stopped\n"  # type: ignore[union-attr]
    # into the volume: the data lands in the volume, not in the container's layer
    (tmp_path / "new.txt").write_text("copied in\n")
    r = ctl(ctrd, "cp", str(tmp_path / "new.txt"), f"{cid}:/data/")
    assert r.returncode == 0, r.stderr
    assert (ctrd.root / "volumes" / "cpvol" / "_data" / "new.txt").read_text() == "copied in\n"
    assert not (ctrd.root / "overlay2" / cid / "diff" / "data" / "new.txt").exists()
    r = ctl(ctrd, "cp", str(tmp_path / "new.txt"), f"{cid}:/h/")  # a read-only bind stays read-only
    assert r.returncode != 0 and "mounted volume is marked read-only" in r.stderr and not (shared / "new.txt").exists()
    # a read-only rootfs takes a copy into a volume (docker's rule), not elsewhere
    ro = ctl(ctrd, "create", "--network", "none", "--read-only", "-v", "cpvol:/v", "busybox", "true").stdout.strip()
    assert ctl(ctrd, "cp", str(tmp_path / "new.txt"), f"{ro}:/v/ro-copy.txt").returncode == 0
    assert (ctrd.root / "volumes" / "cpvol" / "_data" / "ro-copy.txt").read_text() == "copied in\n"
    r = ctl(ctrd, "cp", str(tmp_path / "new.txt"), f"{ro}:/tmp/")
    assert r.returncode != 0 and "container rootfs is marked read-only" in r.stderr
    ctrd.c.remove(ro)
    # a never-started container sees the volume (its mount point made, as docker does)
    created = ctl(ctrd, "create", "--network", "none", "-v", "cpvol:/mnt/vol", "busybox", "true").stdout.strip()
    r = ctl(ctrd, "cp", f"{created}:/mnt/vol/new.txt", "-")
    assert r.returncode == 0 and "copied in" in r.stdout, r.stderr
    assert ctrd.mounts() == [] and _mountns_helpers() == []
    ctrd.c.remove(created)
    ctrd.c.remove(cid)
    assert ctl(ctrd, "volume", "rm", "cpvol").returncode == 0
