"""`run`/`create` of a missing image pull it first (docker's `--pull missing|always|never`), and
`save` writes an OCI layout that skopeo reads — a real ctrd, a real docker-registry on loopback.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.images.archive import HOST_ARCH
from tests import registry_env as renv
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401
from tests.e2e.test_registry_cli import _busybox_layer, ctl

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("docker-registry", "skopeo")),
                       reason="needs docker-registry and skopeo (scripts/install-deps.sh)"),
]


def _push(short_tmp: Path, reg: renv.RegistryProc, busybox: bytes, msg: bytes, ref: str) -> None:
    spec = renv.ImageSpec(HOST_ARCH, [busybox, renv.text_layer(("msg", msg))], cmd=["/bin/cat", "/msg"])
    layout = renv.make_layout(short_tmp / f"layout-{msg.hex()}", [spec], "t")
    renv.skopeo_copy(f"oci:{layout}:t", f"docker://{reg.host}/{ref}")


@pytest.fixture
def registry(short_tmp: Path) -> Iterator[tuple[renv.RegistryProc, bytes]]:
    reg = renv.RegistryProc.start(short_tmp / "reg")
    try:
        busybox = _busybox_layer(short_tmp)
        _push(short_tmp, reg, busybox, b"one\n", "bb:1")
        yield reg, busybox
    finally:
        reg.stop()


def test_run_and_create_pull_a_missing_image(ctrd: DaemonProc, registry: tuple[renv.RegistryProc, bytes],  # noqa: F811
                                             short_tmp: Path) -> None:
    reg, busybox = registry
    cfg = short_tmp / "dockercfg"  # no credentials: the registry is anonymous
    ref = f"{reg.host}/bb:1"

    r = ctl(ctrd, "run", "--rm", "--network", "none", "--pull", "never", ref, docker_config=cfg)
    assert (r.returncode, r.stdout, r.stderr) == (125, "", f"Error: No such image: {ref}\n")
    assert ctl(ctrd, "image", "inspect", ref).returncode == 1  # nothing was pulled

    r = ctl(ctrd, "run", "--rm", "--network", "none", ref, "echo", "ok", docker_config=cfg)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    err = r.stderr.splitlines()
    assert err[:2] == [f"Unable to find image '{ref}' locally", f"1: Pulling from {reg.host}/bb"], r.stderr
    assert sum(line.endswith(": Pull complete") for line in err) == 2
    assert err[-1] == f"Status: Downloaded newer image for {ref}"

    # present now: missing (the default) does not pull again
    r = ctl(ctrd, "run", "--rm", "--network", "none", ref, docker_config=cfg)
    assert (r.returncode, r.stdout, r.stderr) == (0, "one\n", "")

    # the tag moves in the registry: only --pull always sees it
    _push(short_tmp, reg, busybox, b"two\n", "bb:1")
    r = ctl(ctrd, "run", "--rm", "--network", "none", ref, docker_config=cfg)
    assert (r.returncode, r.stdout) == (0, "one\n"), r.stderr
    r = ctl(ctrd, "run", "--rm", "--network", "none", "--pull", "always", ref, docker_config=cfg)
    assert (r.returncode, r.stdout) == (0, "two\n"), r.stderr
    err = r.stderr.splitlines()
    assert err[0] == f"1: Pulling from {reg.host}/bb" and "Unable to find" not in r.stderr, r.stderr
    assert sum(line.endswith(": Pull complete") for line in err) == 1  # the busybox layer was already here

    # create pulls too, and prints only the id on stdout; a pull that fails is exit 125
    other = f"{reg.host}/bb:2"
    _push(short_tmp, reg, busybox, b"one\n", "bb:2")
    r = ctl(ctrd, "create", "--network", "none", other, docker_config=cfg)
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r.stderr
    assert r.stderr.startswith(f"Unable to find image '{other}' locally\n")
    assert ctl(ctrd, "rm", r.stdout.strip()).returncode == 0
    r = ctl(ctrd, "run", "--rm", f"{reg.host}/bb:nope", docker_config=cfg)
    assert r.returncode == 125 and "manifest unknown" in r.stderr.splitlines()[-1], r.stderr
    assert r.stderr.startswith(f"Unable to find image '{reg.host}/bb:nope' locally\n")


def test_save_is_an_oci_archive_skopeo_reads(ctrd: DaemonProc, registry: tuple[renv.RegistryProc, bytes],  # noqa: F811
                                             short_tmp: Path) -> None:
    reg, _ = registry
    ref = f"{reg.host}/bb:1"
    assert ctl(ctrd, "pull", "-q", ref, docker_config=short_tmp / "dockercfg").returncode == 0
    out = short_tmp / "saved.tar"
    r = ctl(ctrd, "save", "-o", str(out), ref)
    assert r.returncode == 0, r.stderr
    remote = json.loads(renv.skopeo_inspect(f"docker://{ref}"))
    saved = json.loads(renv.skopeo_inspect(f"oci-archive:{out}"))
    assert saved["Layers"] == remote["Layers"] and saved["Architecture"] == HOST_ARCH
    config = renv.skopeo_inspect(f"oci-archive:{out}", "--config", "--raw")
    image_id = json.loads(ctl(ctrd, "image", "inspect", ref).stdout)[0]["Id"]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image_id
