"""Real registries for tests and the bench: Debian's docker-registry (distribution 2.8) on loopback,
images put in with skopeo from OCI layouts built here, a token server and a fault-injecting proxy.

    reg = RegistryProc.start(base)                       # plain HTTP on 127.0.0.1:<free port>
    reg = RegistryProc.start(base, htpasswd=("u", "pw")) # Basic auth (htpasswd -B from apache2-utils)
    tok = TokenServer.start(users={"u": "pw"}); reg = RegistryProc.start(base, token=tok)
    layout = make_layout(dir, [ImageSpec("amd64", [layer_bytes])], tag="v1")
    skopeo_copy(f"oci:{layout}:v1", f"docker://{reg.host}/app:v1")
    proxy = FaultProxy.start(reg.host, cut_after=N)      # cuts the first blob GET after N bytes

Readiness is waited for on the registry's own "listening on" log line, never by sleeping.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import http.server
import json
import os
import select
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures import images as fx

READY_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the registry
@dataclass
class RegistryProc:
    base: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, base: Path, htpasswd: tuple[str, str] | None = None, token: TokenServer | None = None,
              tls: tuple[Path, Path] | None = None) -> RegistryProc:
        base.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cfg: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}, "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": str(base / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}"},
        }
        if tls is not None:
            cfg["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        if htpasswd is not None:
            out = subprocess.run(["htpasswd", "-nbB", htpasswd[0], htpasswd[1]], check=True, capture_output=True)
            (base / "htpasswd").write_bytes(out.stdout.strip() + b"\n")
            cfg["auth"] = {"htpasswd": {"realm": "ctrd-test", "path": str(base / "htpasswd")}}
        if token is not None:
            # "silly" auth answers 401 with a Bearer challenge for the right scope and accepts any
            # token: the token server of the test decides who gets one
            cfg["auth"] = {"silly": {"realm": token.realm, "service": "ctrd-test-registry"}}
        (base / "config.yml").write_text(json.dumps(cfg))  # JSON is YAML
        proc = subprocess.Popen(["docker-registry", "serve", str(base / "config.yml")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        reg = cls(base, port, proc)
        reg._wait_ready()
        return reg

    def _wait_ready(self) -> None:
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        buf = b""
        while b"listening on" not in buf:
            ready, _, _ = select.select([fd], [], [], READY_TIMEOUT)
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.stop()
                raise RuntimeError(f"docker-registry did not start:\n{buf.decode(errors='replace')[-3000:]}")
            buf += chunk
        # keep draining its log so it never blocks on a full pipe
        threading.Thread(target=self._drain, args=(fd,), daemon=True).start()

    def _drain(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 65536):
                self.log.append(chunk.decode(errors="replace"))
        except OSError:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def make_tls(d: Path, dns_name: str) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for `dns_name` and 127.0.0.1: (ca.crt, server.crt, server.key)."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*argv: str) -> None:
        subprocess.run(["openssl", *argv], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=ctrd test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={dns_name}")
    (d / "ext.cnf").write_text(f"subjectAltName=DNS:{dns_name},IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt",
        "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.crt", d / "server.crt", d / "server.key"


def skopeo_copy(src: str, dst: str, *extra: str) -> None:
    argv = ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, src, dst]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)


def skopeo_inspect(ref: str, *extra: str) -> bytes:
    argv = ["skopeo", "--insecure-policy", "inspect", "--tls-verify=false", *extra, ref]
    return subprocess.run(argv, check=True, capture_output=True, timeout=120).stdout


# ------------------------------------------------------------------ OCI layouts
@dataclass
class ImageSpec:
    arch: str
    layers: list[bytes]  # uncompressed tars
    compression: str = "gzip"  # gzip / zstd / "" (uncompressed)
    variant: str = ""
    cmd: list[str] = field(default_factory=lambda: ["/bin/sh"])


def _compress(tar: bytes, how: str) -> tuple[bytes, str]:
    media = "application/vnd.oci.image.layer.v1.tar"
    if how == "gzip":
        return gzip.compress(tar, mtime=0), media + "+gzip"
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(tar), media + "+zstd"
    return tar, media


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    d = sha(data)
    (layout / "blobs" / "sha256" / d.removeprefix("sha256:")).write_bytes(data)
    return {"digest": d, "size": len(data)}


def make_layout(layout: Path, images: list[ImageSpec], tag: str) -> Path:
    """An OCI image layout with one tagged entry: a manifest, or an index when several images."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descs = []
    for spec in images:
        layers = []
        for tar in spec.layers:
            data, media = _compress(tar, spec.compression)
            layers.append({"mediaType": media, **_blob(layout, data)})
        config = json.dumps({
            "architecture": spec.arch, "os": "linux", **({"variant": spec.variant} if spec.variant else {}),
            "created": "2026-01-01T00:00:00Z", "config": {"Cmd": spec.cmd},
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in spec.layers]},
            "history": [{"created": "2026-01-01T00:00:00Z"} for _ in spec.layers],
        }, separators=(",", ":")).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
            "layers": layers,
        }).encode()
        plat = {"os": "linux", "architecture": spec.arch, **({"variant": spec.variant} if spec.variant else {})}
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(layout, manifest), "platform": plat})
    if len(descs) == 1:
        top = {k: v for k, v in descs[0].items() if k != "platform"}
    else:
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", **_blob(layout, index)}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return layout


def text_layer(*files: tuple[str, bytes]) -> bytes:
    return fx.layer(*(fx.file(name, data) for name, data in files))


# ------------------------------------------------------------------ token server
class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class TokenServer:
    """GET /token?service=&scope= with optional Basic auth → {"token": ...}; wrong password → 401."""

    users: dict[str, str]
    server: http.server.ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    @classmethod
    def start(cls, users: dict[str, str], anonymous: bool = True) -> TokenServer:
        holder: list[TokenServer] = []

        class Handler(_Quiet):
            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlparse

                q = parse_qs(urlparse(self.path).query)
                authz = self.headers.get("Authorization", "")
                user = ""
                ok = anonymous
                if authz.startswith("Basic "):
                    user, _, pw = base64.b64decode(authz[6:]).decode().partition(":")
                    ok = holder[0].users.get(user) == pw
                holder[0].requests.append({"scope": q.get("scope", []), "service": q.get("service", []), "user": user})
                body = json.dumps({"token": f"tok-{user or 'anon'}"} if ok else {"errors": [{"message": "bad credentials"}]}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        ts = cls(users, srv)
        holder.append(ts)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return ts

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ fault proxy
@dataclass
class FaultProxy:
    """A reverse proxy to a registry that watches and breaks blob downloads.

    cut_after: the first GET of each layer blob (>= cut_min bytes) is cut after this many bytes;
    flip: the first matching blob body has one byte changed; gate: blob GETs wait until it is set
    (so a test can see how many downloads run at once)."""

    upstream: str
    server: http.server.ThreadingHTTPServer
    cut_after: int = -1
    cut_min: int = 0
    flip: bool = False
    gate: threading.Event | None = None
    ungated: frozenset[str] = frozenset()  # blob digests the gate lets through (e.g. the config)
    fail_patch: int = -1  # the n-th PATCH (from 0) of an upload is answered 502 and not forwarded
    patches: int = 0
    ranges: list[str] = field(default_factory=list)
    blob_gets: list[str] = field(default_factory=list)
    active: int = 0
    peak: int = 0
    _cut: set[str] = field(default_factory=set)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_active(self, n: int, timeout: float = READY_TIMEOUT) -> bool:
        """Block until `n` blob downloads are in the proxy at once (an event, not a poll)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.active >= n, timeout)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @classmethod
    def start(cls, upstream: str, **kw: Any) -> FaultProxy:
        holder: list[FaultProxy] = []

        class Handler(_Quiet):
            def _forward(self, method: str) -> None:
                p = holder[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                # Host is kept: the registry builds upload Locations from it, which must lead back here
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                if method == "PATCH":
                    with p._lock:
                        n, p.patches = p.patches, p.patches + 1
                    if n == p.fail_patch:
                        self.send_response(502)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                is_blob = method == "GET" and "/blobs/sha256:" in self.path
                conn = http.client.HTTPConnection(p.upstream, timeout=60)
                try:
                    if is_blob and self.path.rsplit("/", 1)[-1] not in p.ungated:
                        with p._lock:
                            p.active += 1
                            p.peak = max(p.peak, p.active)
                            p._lock.notify_all()
                            p.blob_gets.append(self.path)
                            if "Range" in self.headers:
                                p.ranges.append(self.headers["Range"])
                        if p.gate is not None and self.path.rsplit("/", 1)[-1] not in p.ungated:
                            p.gate.wait(READY_TIMEOUT)
                    conn.request(method, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    digest = self.path.rsplit("/", 1)[-1]
                    cut = False
                    if is_blob and resp.status in (200, 206) and len(data) >= max(p.cut_min, 1):
                        with p._lock:
                            if p.cut_after >= 0 and digest not in p._cut and resp.status == 200:
                                p._cut.add(digest)
                                cut = True
                            elif p.flip and digest not in p._cut:
                                p._cut.add(digest)
                                data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if method == "HEAD":
                        return
                    if cut:
                        self.wfile.write(data[: p.cut_after])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # the cut: mid-body, no error text
                        self.close_connection = True
                        return
                    self.wfile.write(data)
                finally:
                    conn.close()
                    if is_blob and self.path.rsplit("/", 1)[-1] not in p.ungated:
                        with p._lock:
                            p.active -= 1

            def do_GET(self) -> None:
                self._forward("GET")

            def do_HEAD(self) -> None:
                self._forward("HEAD")

            def do_POST(self) -> None:
                self._forward("POST")

            def do_PATCH(self) -> None:
                self._forward("PATCH")

            def do_PUT(self) -> None:
                self._forward("PUT")

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        fp = cls(upstream, srv, **kw)
        holder.append(fp)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return fp

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
