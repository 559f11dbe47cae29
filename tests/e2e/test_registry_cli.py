"""ctrctl pull / push / tag / save / login / logout against a real ctrd and a real docker-registry.

The image is a busybox rootfs put in the registry by skopeo; the pulled image runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.images.archive import HOST_ARCH
from tests import registry_env as renv
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_ctrctl_e2e import CTRCTL
from tests.rootfs import make_busybox_rootfs

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("docker-registry", "skopeo", "htpasswd")),
                       reason="needs docker-registry, skopeo and htpasswd (scripts/install-deps.sh)"),
]


def ctl(d: DaemonProc, *args: str, stdin: str | None = None, docker_config: Path | None = None,
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CTRD_ADDRESS", "DOCKER_CONFIG")}
    if docker_config is not None:
        env["DOCKER_CONFIG"] = str(docker_config)
    return subprocess.run([*CTRCTL, "-a", d.address, *args], capture_output=True, text=True, timeout=120,
                          env=env, input=stdin)


def _busybox_layer(tmp: Path) -> bytes:
    root = make_busybox_rootfs(tmp / "bbroot")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for p in sorted(root.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(root)), recursive=False)
    shutil.rmtree(root)
    return buf.getvalue()


@pytest.fixture
def registry(short_tmp: Path) -> Iterator[renv.RegistryProc]:
    reg = renv.RegistryProc.start(short_tmp / "reg", htpasswd=("ada", "s3cret"))
    try:
        spec = renv.ImageSpec(HOST_ARCH, [_busybox_layer(short_tmp), renv.text_layer(("msg", b"from the registry\n"))],
                              cmd=["/bin/cat", "/msg"])
        layout = renv.make_layout(short_tmp / "layout", [spec], "t")
        renv.skopeo_copy(f"oci:{layout}:t", f"docker://{reg.host}/bb:1", "--dest-creds=ada:s3cret")
        yield reg
    finally:
        reg.stop()


def test_login_pull_run_tag_push_save_logout(ctrd: DaemonProc, registry: renv.RegistryProc,  # noqa: F811
                                             short_tmp: Path) -> None:
    cfg = short_tmp / "dockercfg"
    ref = f"{registry.host}/bb:1"

    r = ctl(ctrd, "pull", ref, docker_config=cfg)
    assert r.returncode == 1 and r.stderr.startswith("Error: unauthorized:") and len(r.stderr.splitlines()) == 1

    r = ctl(ctrd, "login", "-u", "ada", "--password-stdin", registry.host, stdin="wrong\n", docker_config=cfg)
    assert r.returncode == 1 and not (cfg / "config.json").exists()
    assert r.stderr == f"Error: unauthorized: incorrect username or password for {registry.host}\n"
    r = ctl(ctrd, "login", "-u", "ada", "--password-stdin", registry.host, stdin="s3cret\n", docker_config=cfg)
    assert r.returncode == 0 and r.stdout.strip() == "Login Succeeded", r.stderr
    stored = json.loads((cfg / "config.json").read_text())
    assert stored["auths"][registry.host]["auth"]  # docker's format: base64 user:password

    r = ctl(ctrd, "pull", ref, docker_config=cfg)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1: Pulling from " + f"{registry.host}/bb"
    assert sum(line.endswith(": Pull complete") for line in lines) == 2
    remote = json.loads(renv.skopeo_inspect(f"docker://{ref}", "--creds=ada:s3cret"))
    assert lines[-2:] == [f"Digest: {remote['Digest']}", f"Status: Downloaded newer image for {ref}"]

    r = ctl(ctrd, "run", "--rm", "--network", "none", ref)
    assert (r.returncode, r.stdout) == (0, "from the registry\n"), r.stderr

    info = json.loads(ctl(ctrd, "image", "inspect", ref).stdout)[0]
    raw = renv.skopeo_inspect(f"docker://{ref}", "--config", "--raw", "--creds=ada:s3cret")
    assert info["Id"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert info["RepoDigests"] == [f"{registry.host}/bb@{remote['Digest']}"]
    r = ctl(ctrd, "images", "--digests")
    assert r.stdout.splitlines()[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert [f"{registry.host}/bb", "1", remote["Digest"]] in [line.split()[:3] for line in r.stdout.splitlines()]

    assert ctl(ctrd, "tag", ref, f"{registry.host}/copy:2").returncode == 0
    r = ctl(ctrd, "push", f"{registry.host}/copy:2", docker_config=cfg)
    assert r.returncode == 0, r.stderr
    assert "Mounted from bb" in r.stdout
    pushed = json.loads(renv.skopeo_inspect(f"docker://{registry.host}/copy:2", "--creds=ada:s3cret"))
    assert r.stdout.splitlines()[-1].startswith(f"2: digest: {pushed['Digest']} size: ")

    out = short_tmp / "saved.tar"
    r = ctl(ctrd, "save", "-o", str(out), ref, "ghost:1")
    assert r.returncode == 1 and r.stderr == "Error: no such image: ghost:1\n"
    assert not out.exists() and not list(short_tmp.glob("saved.tar*"))  # nothing half-written
    assert ctl(ctrd, "save", "-o", str(out), ref).returncode == 0
    assert ctl(ctrd, "rmi", ref, f"{registry.host}/copy:2").returncode == 0
    r = ctl(ctrd, "image", "load", "-i", str(out))
    assert r.stdout.strip() == f"Loaded image: {ref}", r.stderr
    assert json.loads(ctl(ctrd, "image", "inspect", ref).stdout)[0]["Id"] == info["Id"]

    r = ctl(ctrd, "pull", "-q", f"{registry.host}/bb:nope", docker_config=cfg)
    assert r.returncode == 1 and r.stderr.startswith("Error: ") and "manifest unknown" in r.stderr
    r = ctl(ctrd, "pull", "--platform", "linux/s390x", ref, docker_config=cfg)
    assert r.returncode == 1 and "does not match the specified platform: wanted linux/s390x" in r.stderr

    r = ctl(ctrd, "logout", registry.host, docker_config=cfg)
    assert r.returncode == 0 and registry.host not in json.loads((cfg / "config.json").read_text())["auths"]


def test_kill9_mid_pull_then_a_rerun_completes(ctrd: DaemonProc, registry: renv.RegistryProc,  # noqa: F811
                                              short_tmp: Path) -> None:
    import threading

    cfg = short_tmp / "dockercfg"
    from ctrd import dockerconfig

    gate = threading.Event()
    raw = renv.skopeo_inspect(f"docker://{registry.host}/bb:1", "--raw", "--creds=ada:s3cret")
    proxy = renv.FaultProxy.start(registry.host, gate=gate, ungated=frozenset({json.loads(raw)["config"]["digest"]}))
    try:
        dockerconfig.store(proxy.host, dockerconfig.Credentials("ada", "s3cret"), cfg / "config.json")
        ref = f"{proxy.host}/bb:1"
        env = {k: v for k, v in os.environ.items() if k not in ("CTRD_ADDRESS",)}
        env["DOCKER_CONFIG"] = str(cfg)
        pull = subprocess.Popen([*CTRCTL, "-a", ctrd.address, "pull", ref], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        # both layer downloads are at the registry, held by the gate
        assert proxy.wait_active(2, 30), pull.communicate(timeout=30)
        ingest = ctrd.root / "content" / "ingest"
        assert len(list(ingest.iterdir())) == 2
        ctrd.kill9()
        _out, err = pull.communicate(timeout=30)
        assert pull.returncode == 1 and len(err.splitlines()) == 1, err
        gate.set()
        ctrd.start()
        assert list(ingest.iterdir()) == []  # the killed daemon's partial downloads are gone
        r = ctl(ctrd, "pull", ref, docker_config=cfg)
        assert r.returncode == 0, r.stderr
        r = ctl(ctrd, "run", "--rm", "--network", "none", ref)
        assert (r.returncode, r.stdout) == (0, "from the registry\n"), r.stderr
    finally:
        gate.set()
        proxy.stop()
