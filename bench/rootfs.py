"""The one busybox rootfs every engine runs: a directory, a rootfs tarball, an OCI archive, bundles.

Built from the host's static busybox (copy + applet symlinks), so no registry is needed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

IMAGE_NAME = "bbbench"
IMAGE_REF = f"{IMAGE_NAME}:latest"
CONTAINERD_REF = f"docker.io/library/{IMAGE_REF}"
DIRS = ("proc", "sys", "dev", "etc", "tmp", "root", "run")


def is_static(binary: Path) -> bool:
    # A static ELF has no PT_INTERP; the 'ldd' answer differs by distro, the header does not.
    data = binary.read_bytes()[:4096]
    return data[:4] == b"\x7fELF" and b"/ld-linux" not in data and b"ld-musl" not in data


def applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    return sorted({a.strip() for a in out.split() if a.strip() and a.strip() != "busybox"})


def build_rootfs(dest: Path, busybox: Path = Path("/bin/busybox")) -> Path:
    if not busybox.exists():
        raise FileNotFoundError(f"{busybox} not found: apt-get install busybox-static")
    if not is_static(busybox):
        raise ValueError(f"{busybox} is dynamically linked: install busybox-static")
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "bin").mkdir(parents=True)
    for d in DIRS:
        (dest / d).mkdir(exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    for name in applets(busybox):
        (dest / "bin" / name).symlink_to("busybox")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    return dest


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def build_tarball(rootfs: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(rootfs.rglob("*")):
            tar.add(entry, arcname=str(entry.relative_to(rootfs)), recursive=False, filter=_tar_filter)
    return dest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_oci_archive(layer_tar: Path, dest: Path, ref: str = CONTAINERD_REF) -> Path:
    """An OCI image-layout archive with one uncompressed layer (ctr image import / ctrd image load)."""
    layer = layer_tar.read_bytes()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }, sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": len(manifest),
                       "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}}],
    }, sort_keys=True).encode()
    with tarfile.open(dest, "w") as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", index)
        for digest, data in ((layer_digest, layer), (config_digest, config), (manifest_digest, manifest)):
            _add_bytes(tar, "blobs/sha256/" + digest.removeprefix("sha256:"), data)
    return dest


def build_bundle(runc: str, rootfs: Path, bundle: Path, args: list[str]) -> Path:
    """An OCI bundle from `runc spec` (runc's own defaults), running args on the shared rootfs read-only."""
    bundle.mkdir(parents=True, exist_ok=True)
    cfg_path = bundle / "config.json"
    if cfg_path.exists():
        cfg_path.unlink()
    subprocess.run([runc, "spec", "--bundle", str(bundle)], check=True)
    cfg = json.loads(cfg_path.read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["process"]["env"] = ["PATH=/bin", "HOME=/root"]
    # docker's defaults: no ambient (nor inheritable) capabilities; raising ambient caps that are not
    # inheritable is refused by the kernel, which runc skips silently and a strict runtime does not.
    cfg["process"].get("capabilities", {}).pop("ambient", None)
    # docker's default spec sets no rlimits either (runc spec adds RLIMIT_NOFILE 1024/1024).
    cfg["process"].pop("rlimits", None)
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    cfg["hostname"] = "bench"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    return bundle
