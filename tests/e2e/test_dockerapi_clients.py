"""The Docker Engine API (`<exec-root>/docker.sock`) driven by clients nobody here wrote: the docker
CLI v28 (/usr/local/bin/docker) and docker-py, against a real ctrd."""

from __future__ import annotations

import http.client
import json
import os
import pty
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import registry_env as renv
from tests.daemon_fixtures import DaemonProc, ctrd  # noqa: F401

DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else shutil.which("docker") or "docker"
pytestmark = [pytest.mark.root, pytest.mark.skipif(not shutil.which(DOCKER), reason="needs the docker CLI")]


def sock(d: DaemonProc) -> Path:
    return d.exec_root / "docker.sock"


def dk(d: DaemonProc, *args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = f"unix://{sock(d)}"
    env["DOCKER_CONFIG"] = str(d.base / "docker-config")  # no user's config.json, no credential helpers
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, f"{p.args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self.path = str(path)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.path)
        self.sock = s


def call(d: DaemonProc, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    return call_at(sock(d), method, path, body)


def call_at(socket_path: Path, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    c = UnixHTTP(socket_path)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ------------------------------------------------------------------ the socket and the basics

def test_socket_ping_version_errors(ctrd: DaemonProc) -> None:  # noqa: F811
    assert oct(sock(ctrd).stat().st_mode & 0o777) == "0o660"
    for method in ("GET", "HEAD"):
        status, headers, body = call(ctrd, method, "/_ping")
        assert status == 200 and headers["api-version"] == "1.47" and headers["ostype"] == "linux"
        assert headers["docker-experimental"] == "false" and "builder-version" in headers
        assert body == (b"OK" if method == "GET" else b"")
    status, _, body = call(ctrd, "GET", "/version")
    v = json.loads(body)
    assert status == 200 and v["ApiVersion"] == "1.47" and v["MinAPIVersion"] == "1.24" and v["Os"] == "linux"
    assert call(ctrd, "GET", "/v1.24/version")[0] == 200
    status, _, body = call(ctrd, "GET", "/v1.99/version")
    assert status == 400 and "too new" in json.loads(body)["message"]
    status, _, body = call(ctrd, "GET", "/v1.12/version")
    assert status == 400 and "too old" in json.loads(body)["message"]
    status, _, body = call(ctrd, "GET", "/v1.47/containers/nope/json")
    assert status == 404 and json.loads(body) == {"message": "No such container: nope"}
    assert call(ctrd, "GET", "/nowhere")[0] == 404
    status, _, body = call(ctrd, "POST", "/containers/create", {"Image": "busybox", "HostConfig": {"CpuShares": 3}})
    assert status == 400 and "HostConfig.CpuShares" in json.loads(body)["message"]
    status, _, body = call(ctrd, "POST", "/containers/create", {"Image": "busybox", "HostConfig": {"PidMode": "host"}})
    assert status == 400 and "HostConfig.PidMode" in json.loads(body)["message"]
    assert ctrd.client.list() == []  # nothing half-created
    status, _, body = call(ctrd, "GET", "/swarm")
    assert status == 503 and "not a swarm manager" in json.loads(body)["message"]


def test_docker_cli_version_info_and_run(ctrd: DaemonProc) -> None:  # noqa: F811
    out = ok(dk(ctrd, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"))
    assert out.strip() == "1.47 linux"
    assert ok(dk(ctrd, "info", "--format", "{{.Driver}} {{.OSType}}")).strip() == "overlay2 linux"
    p = dk(ctrd, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n" and "err\n" in p.stderr
    assert ctrd.client.list() == []  # --rm removed it
    assert ok(dk(ctrd, "run", "--rm", "busybox", "cat", "/etc/hostname")).strip()
    assert "busybox" in ok(dk(ctrd, "images", "--format", "{{.Repository}}:{{.Tag}}"))


def test_docker_cli_lifecycle(ctrd: DaemonProc) -> None:  # noqa: F811
    cid = ok(dk(ctrd, "run", "-d", "--name", "web", "-l", "tier=front", "busybox", "sh", "-c",
                "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done")).strip()
    assert len(cid) == 64
    ctrd.client.wait_logged(cid, b"ready\n")
    assert ok(dk(ctrd, "ps", "--format", "{{.Names}} {{.State}}")).split() == ["web", "running"]
    assert ok(dk(ctrd, "ps", "-q", "--filter", "label=tier=front")).strip() == cid[:12]
    assert ok(dk(ctrd, "ps", "-q", "--filter", "label=tier=back")).strip() == ""
    assert ok(dk(ctrd, "logs", "web")) == "ready\n"
    info = json.loads(ok(dk(ctrd, "inspect", "web")))[0]
    assert info["Id"] == cid and info["State"]["Running"] and info["Config"]["Labels"] == {"tier": "front"}
    assert info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == info["NetworkSettings"]["IPAddress"]
    ok(dk(ctrd, "pause", "web"))
    assert ok(dk(ctrd, "inspect", "-f", "{{.State.Status}}", "web")).strip() == "paused"
    ok(dk(ctrd, "unpause", "web"))
    top = ok(dk(ctrd, "top", "web"))
    assert "PID" in top and "sleep" in top
    stats = ok(dk(ctrd, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web"))
    assert stats.split()[0] == "web" and int(stats.split()[1]) >= 1
    ok(dk(ctrd, "stop", "-t", "5", "web"))
    assert ok(dk(ctrd, "inspect", "-f", "{{.State.ExitCode}}", "web")).strip() == "0"
    p = dk(ctrd, "kill", "web")
    assert p.returncode != 0 and "is not running" in p.stderr
    ok(dk(ctrd, "start", "web"))
    ok(dk(ctrd, "kill", "web"))
    assert ok(dk(ctrd, "wait", "web")).strip() == "137"
    ok(dk(ctrd, "rm", "web"))
    p = dk(ctrd, "inspect", "web")
    assert p.returncode != 0 and "No such" in p.stderr


def test_docker_cli_refuses_what_ctrd_does_not_do(ctrd: DaemonProc) -> None:  # noqa: F811
    p = dk(ctrd, "run", "--rm", "--cpu-shares", "512", "busybox", "true")
    assert p.returncode == 125 and "HostConfig.CpuShares: not supported" in p.stderr
    p = dk(ctrd, "run", "--rm", "--link", "other:o", "busybox", "true")
    assert p.returncode == 125 and "HostConfig.Links: not supported" in p.stderr
    assert ctrd.client.list() == []


def test_docker_cli_volumes(ctrd: DaemonProc) -> None:  # noqa: F811
    ok(dk(ctrd, "volume", "create", "--label", "k=v", "vol1"))
    assert ok(dk(ctrd, "volume", "ls", "-q")).split() == ["vol1"]
    mp = ok(dk(ctrd, "volume", "inspect", "-f", "{{.Mountpoint}}", "vol1")).strip()
    assert mp == str(ctrd.root / "volumes" / "vol1" / "_data")
    ok(dk(ctrd, "run", "--rm", "-v", "vol1:/data", "busybox", "sh", "-c", "echo kept > /data/f"))
    assert ok(dk(ctrd, "run", "--rm", "-v", "vol1:/data:ro", "busybox", "cat", "/data/f")) == "kept\n"
    p = dk(ctrd, "run", "--rm", "-v", "vol1:/data:ro", "busybox", "touch", "/data/g")
    assert p.returncode != 0
    ok(dk(ctrd, "run", "--name", "anon", "-v", "/scratch", "busybox", "true"))
    mounts = ok(dk(ctrd, "inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Destination}}{{end}}", "anon"))
    assert mounts.strip() == "volume:/scratch"
    assert len(ok(dk(ctrd, "volume", "ls", "-q")).split()) == 2
    ok(dk(ctrd, "rm", "-v", "anon"))  # its anonymous volume goes with it
    assert ok(dk(ctrd, "volume", "ls", "-q")).split() == ["vol1"]
    p = dk(ctrd, "volume", "rm", "nope")
    assert p.returncode != 0 and "no such volume" in p.stderr
    ok(dk(ctrd, "run", "--rm", "--mount", "type=volume,source=vol2,target=/v", "busybox", "true"))
    ok(dk(ctrd, "volume", "rm", "vol1"))
    assert "vol2" in ok(dk(ctrd, "volume", "prune", "-af"))  # unused named volumes too (-a)
    assert ok(dk(ctrd, "volume", "ls", "-q")) == ""


def test_docker_cli_healthcheck_rename_update(ctrd: DaemonProc) -> None:  # noqa: F811
    ok(dk(ctrd, "run", "-d", "--name", "hc", "--health-cmd", "test -f /ok", "--health-interval", "1s",
          "--health-retries", "1", "busybox", "sh", "-c", "touch /ok; sleep 60"))
    deadline = time.monotonic() + 30
    while ok(dk(ctrd, "inspect", "-f", "{{.State.Health.Status}}", "hc")).strip() != "healthy":
        assert time.monotonic() < deadline, "never healthy"
        time.sleep(0.2)
    assert "(healthy)" in ok(dk(ctrd, "ps", "--format", "{{.Status}}"))
    assert ok(dk(ctrd, "ps", "-q", "--filter", "health=healthy")).strip()
    ok(dk(ctrd, "rename", "hc", "hc2"))
    ok(dk(ctrd, "update", "--memory", "64m", "--restart", "on-failure:2", "hc2"))
    out = ok(dk(ctrd, "inspect", "-f", "{{.Name}} {{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}", "hc2"))
    assert out.split() == ["/hc2", str(64 << 20), "on-failure"]
    p = dk(ctrd, "update", "--cpu-shares", "3", "hc2")
    assert p.returncode != 0 and "CpuShares" in p.stderr
    ok(dk(ctrd, "rm", "-f", "hc2"))


def test_docker_cli_cp_diff_export_commit_prune_df(ctrd: DaemonProc) -> None:  # noqa: F811
    host = ctrd.base / "cp"
    host.mkdir()
    (host / "up.txt").write_text("from host\n")
    ok(dk(ctrd, "run", "-d", "--name", "fc", "busybox", "sh", "-c", "echo in > /in.txt; echo ready; sleep 60"))
    ctrd.client.wait_logged("fc", b"ready\n")
    ok(dk(ctrd, "cp", "fc:/in.txt", str(host / "in.txt")))
    assert (host / "in.txt").read_text() == "in\n"
    ok(dk(ctrd, "cp", str(host / "up.txt"), "fc:/tmp/"))
    assert ok(dk(ctrd, "cp", "fc:/tmp/up.txt", "-")).find("from host") >= 0  # a tar stream on stdout
    p = dk(ctrd, "cp", "fc:/nope", str(host))
    assert p.returncode != 0 and "nope" in p.stderr
    diff = ok(dk(ctrd, "diff", "fc")).splitlines()
    assert "A /in.txt" in diff and "A /tmp/up.txt" in diff
    tar = subprocess.run(f"{DOCKER} export fc | tar t", shell=True, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DOCKER_HOST": f"unix://{sock(ctrd)}"})
    assert "in.txt" in tar.stdout.split()
    image = ok(dk(ctrd, "commit", "fc", "snap:1")).strip()
    assert image.startswith("sha256:")
    assert ok(dk(ctrd, "run", "--rm", "snap:1", "cat", "/in.txt")) == "in\n"
    ok(dk(ctrd, "rm", "-f", "fc"))
    ok(dk(ctrd, "create", "--name", "idle", "busybox", "true"))
    cid = ctrd.client.list()[0].id
    assert cid in ok(dk(ctrd, "container", "prune", "-f"))
    assert ctrd.client.list() == []
    assert "snap:1" in ok(dk(ctrd, "image", "prune", "-af"))
    assert "Images" in ok(dk(ctrd, "system", "df"))


def test_docker_cli_networks_and_events(ctrd: DaemonProc) -> None:  # noqa: F811
    since = f"{time.time():.3f}"
    ok(dk(ctrd, "network", "create", "--subnet", "10.89.231.0/24", "--label", "k=v", "dapinet"))
    assert "dapinet" in ok(dk(ctrd, "network", "ls", "--format", "{{.Name}}")).split()
    ok(dk(ctrd, "run", "-d", "--name", "srv", "--network", "dapinet", "--network-alias", "www", "busybox",
          "httpd", "-f", "-p", "80", "-h", "/etc"))
    assert ok(dk(ctrd, "run", "--rm", "--network", "dapinet", "busybox", "sh", "-c",
                 "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://www/hostname && break; sleep 0.2; done")).strip()
    nets = ok(dk(ctrd, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "dapinet"))
    assert nets.split() == ["srv"]
    ok(dk(ctrd, "run", "-d", "--name", "side", "busybox", "sleep", "60"))
    ok(dk(ctrd, "network", "connect", "dapinet", "side"))
    nets = ok(dk(ctrd, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "side"))
    assert sorted(nets.split()) == ["bridge", "dapinet"]
    ok(dk(ctrd, "network", "disconnect", "dapinet", "side"))
    ok(dk(ctrd, "rm", "-f", "srv", "side"))
    ok(dk(ctrd, "network", "rm", "dapinet"))
    assert "dapinet" not in ok(dk(ctrd, "network", "ls"))
    until = f"{time.time():.3f}"
    ev = ok(dk(ctrd, "events", "--since", since, "--until", until, "--filter", "container=side",
               "--format", "{{.Action}}")).split()
    assert ev[:2] == ["create", "start"] and ev[-1] == "destroy"


@pytest.fixture
def registry(short_tmp: Path) -> Iterator[renv.RegistryProc]:
    if not shutil.which("docker-registry"):
        pytest.skip("needs docker-registry")
    reg = renv.RegistryProc.start(short_tmp / "reg")
    try:
        yield reg
    finally:
        reg.stop()


def test_docker_cli_tag_push_pull_save_load(ctrd: DaemonProc, registry: renv.RegistryProc) -> None:  # noqa: F811
    ok(dk(ctrd, "run", "--rm", "busybox", "true"))  # busybox exists from here on
    ref = f"{registry.host}/dapi/bb:1"
    ok(dk(ctrd, "tag", "busybox", ref))
    out = ok(dk(ctrd, "push", ref))
    assert "digest: sha256:" in out
    ok(dk(ctrd, "rmi", ref))
    out = ok(dk(ctrd, "pull", ref))
    assert f"Status: Downloaded newer image for {ref}" in out
    digests = json.loads(ok(dk(ctrd, "image", "inspect", "-f", "{{json .RepoDigests}}", ref)))
    assert digests and digests[0].startswith(f"{registry.host}/dapi/bb@sha256:")
    tar = ctrd.base / "bb.tar"
    ok(dk(ctrd, "save", "-o", str(tar), ref))
    ok(dk(ctrd, "rmi", ref))
    assert f"Loaded image: {ref}" in ok(dk(ctrd, "load", "-i", str(tar)))
    assert ok(dk(ctrd, "run", "--rm", ref, "echo", "pulled")) == "pulled\n"
    p = dk(ctrd, "pull", f"{registry.host}/dapi/none:1")
    assert p.returncode != 0 and "manifest unknown" in p.stderr


def test_docker_cli_stdin_pipe_half_close_and_tty(ctrd: DaemonProc) -> None:  # noqa: F811
    # the CLI half-closes after stdin ends; the output must still arrive
    assert ok(dk(ctrd, "run", "-i", "--rm", "busybox", "cat", stdin="x\n")) == "x\n"
    blob = "".join(f"{i:07d}\n" for i in range(40000))  # 320 KB through the hijacked connection
    out = ok(dk(ctrd, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done >&2", stdin=blob))
    assert out == blob
    # -t: a terminal, raw bytes, the exit code
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{sock(ctrd)}", DOCKER_CONFIG=str(ctrd.base / "docker-config"))
    p = subprocess.Popen([DOCKER, "run", "-it", "--rm", "busybox", "sh", "-c", "tty; exit 5"],
                         stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    got = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the CLI exited and closed the terminal
                break
            if not chunk:
                break
            got += chunk
    finally:
        os.close(master)
    assert p.wait(30) == 5, got
    assert b"/dev/pts/" in got
    ok(dk(ctrd, "run", "-t", "--name", "ttylog", "busybox", "echo", "raw"))
    assert ok(dk(ctrd, "logs", "ttylog")).rstrip("\r\n") == "raw"  # a terminal's bytes, no frame headers
    ok(dk(ctrd, "rm", "ttylog"))
    assert ctrd.client.list() == []


def test_docker_cli_exec(ctrd: DaemonProc) -> None:  # noqa: F811
    cid = ok(dk(ctrd, "run", "-d", "--name", "ex", "busybox", "sleep", "60")).strip()
    assert ok(dk(ctrd, "exec", "ex", "cat", "/etc/hostname")).strip() == cid[:12]
    assert dk(ctrd, "exec", "ex", "sh", "-c", "echo e >&2; exit 7").returncode == 7
    assert ok(dk(ctrd, "exec", "-i", "ex", "cat", stdin="piped\n")) == "piped\n"
    ok(dk(ctrd, "exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d"))
    deadline = time.monotonic() + 20
    while dk(ctrd, "exec", "ex", "cat", "/tmp/d").stdout != "detached\n":
        assert time.monotonic() < deadline, "the detached exec never wrote its file"
        time.sleep(0.1)
    ok(dk(ctrd, "rm", "-f", "ex"))


# ------------------------------------------------------------------ docker-py

def test_docker_py(ctrd: DaemonProc) -> None:  # noqa: F811
    docker = pytest.importorskip("docker")
    c = docker.DockerClient(base_url=f"unix://{sock(ctrd)}", timeout=60)
    try:
        assert c.ping() and c.version()["ApiVersion"] == "1.47"
        out = c.containers.run("busybox", ["sh", "-c", "echo hi; echo err >&2"], remove=True, stderr=True)
        assert out == b"hi\nerr\n"
        with pytest.raises(docker.errors.ContainerError) as exc:
            c.containers.run("busybox", ["sh", "-c", "exit 4"], remove=True)
        assert exc.value.exit_status == 4
        ct = c.containers.run("busybox", ["sh", "-c", "echo up; sleep 60"], detach=True, name="pyc", labels={"a": "b"})
        ct.reload()
        assert ct.status == "running"
        assert [x.name for x in c.containers.list(filters={"label": "a=b"})] == ["pyc"]
        assert c.containers.list(filters={"label": "a=c"}) == []
        code, out = ct.exec_run(["sh", "-c", "echo in; exit 3"])
        assert (code, out) == (3, b"in\n")
        ct.kill()
        assert ct.wait()["StatusCode"] == 137
        assert ct.logs() == b"up\n"
        ct.remove()
        with pytest.raises(docker.errors.NotFound):
            c.containers.get("pyc")
        with pytest.raises(docker.errors.APIError) as api:
            c.containers.run("busybox", "true", cpu_shares=5, remove=True)
        assert api.value.status_code == 400 and "CpuShares" in str(api.value)
        net = c.networks.create("pynet", labels={"x": "y"})
        assert c.networks.get("pynet").attrs["Labels"] == {"x": "y"}
        net.remove()
        assert any("busybox:latest" in i.tags for i in c.images.list())
    finally:
        c.close()
