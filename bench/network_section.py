"""Section `network`: bridge setup+teardown with and without ctrd's firewall chains (same run,
interleaved), and an A lookup of a container's name at the embedded resolver from inside another
container on the same user network.

Rows (p50/p90):
- bridge_firewall / bridge_no_firewall — NetworkManager setup(bridge)+teardown, as in
  `python -m bench.network_bench` (run in the sandbox, a fresh bridge per round), rounds of the two
  interleaved so other load on the machine weighs on both alike;
- dns_lookup — `bench.dns_probe` in the client container's network namespace, asking 127.0.0.11 for
  the other container's name (one UDP query and its answer per sample);
- port_download_ctrd / port_download_docker — a 1 GiB download (busybox httpd, a sparse file) through
  a port published on 127.0.0.1: ctrd's shim relay vs docker's docker-proxy (userland proxy, docker's
  default), one download each per round, rounds interleaved; the row is ms per download and its
  `mib_per_s` the throughput;
- port_connect_ctrd / port_connect_docker — connect + `GET /small` + the answer + close through the
  same ports (`bench.port_probe`, run in the sandbox's network namespace where both engines are).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.context import Context
from bench.ctrd_daemon import CtrdClient, describe_error
from bench.rootfs import IMAGE_REF
from bench.stats import summarize
from ctrd.v1 import container_pb2, network_pb2, network_pb2_grpc

LABELS: dict[str, str] = {
    "bridge_firewall": "bridge setup+teardown, with ctrd's firewall chains",
    "bridge_no_firewall": "bridge setup+teardown, without firewall rules (--iptables=false)",
    "dns_lookup": "DNS A lookup of a container name, from inside a container (127.0.0.11)",
    "port_download_ctrd": "1 GiB download through a published 127.0.0.1 port, ctrd (shim relay)",
    "port_download_docker": "1 GiB download through a published 127.0.0.1 port, docker (docker-proxy)",
    "port_connect_ctrd": "connect + GET /small through a published 127.0.0.1 port, ctrd",
    "port_connect_docker": "connect + GET /small through a published 127.0.0.1 port, docker",
}
TARGETS_MS: dict[str, float | None] = {"bridge_firewall": 10.0, "bridge_no_firewall": 10.0, "dns_lookup": 1.0}
PORT_BYTES = 1 << 30
PORT_ROUNDS = 3
SERVE = ["sh", "-c", f"mkdir -p /w && dd if=/dev/zero of=/w/big bs=1 count=0 seek={PORT_BYTES} 2>/dev/null"
         " && printf ok > /w/small && exec httpd -f -p 80 -h /w"]
ROUNDS = 4
NETWORK = "benchdns"


def row(key: str, samples_ms: list[float], **extra: Any) -> dict[str, Any]:
    s = summarize(samples_ms)
    print(f"  {LABELS[key]:<72} p50 {s.p50:8.3f} ms   p90 {s.p90:8.3f} ms   (n={s.n})", flush=True)
    return {"label": LABELS[key], "summary": s.as_dict(), "target_p50_ms": TARGETS_MS.get(key),
            "samples_ms": [round(x, 4) for x in samples_ms], **extra}


def _skipped(keys: tuple[str, ...], why: str) -> dict[str, Any]:
    print(f"  network rows {', '.join(keys)} skipped: {why}", flush=True)
    return {k: {"label": LABELS[k], "skipped": why} for k in keys}


def bridge_rows(ctx: Context) -> dict[str, Any]:
    per = max(5, ctx.runs // 2)
    samples: dict[str, list[float]] = {"bridge_firewall": [], "bridge_no_firewall": []}
    try:
        for r in range(ROUNDS):
            for key in samples:
                out = ctx.work / f"netbench-{r}-{key}.json"
                argv = [sys.executable, "-m", "bench.network_bench", "-n", str(per), "--warmup", str(ctx.warmup),
                        "--json", str(out)]
                if key == "bridge_no_firewall":
                    argv.append("--no-firewall")
                ctx.sandbox.run(argv, timeout=300)
                samples[key].extend(json.loads(out.read_text())["setup_plus_teardown_samples_ms"])
    except Exception as exc:
        return _skipped(tuple(samples), f"failed: {describe_error(exc)}")
    return {k: row(k, v, rounds=ROUNDS) for k, v in samples.items()}


def dns_row(ctx: Context) -> dict[str, Any]:
    if ctx.ctrd is None:
        return _skipped(("dns_lookup",), f"ctrd daemon not available: {ctx.ctrd_skip}")
    client = CtrdClient(ctx.ctrd.address)
    nets: Any = network_pb2_grpc.NetworkServiceStub(client.channel)  # type: ignore[no-untyped-call]
    made: list[str] = []
    try:
        nets.Create(network_pb2.NetworkCreateRequest(name=NETWORK), timeout=60)
        for name in ("benchweb", "benchclient"):
            made.append(client.create(IMAGE_REF, ["sleep", "600"], NETWORK, name=name))
            client.start(made[-1])
        info = json.loads(client.containers.Inspect(container_pb2.InspectRequest(id=made[1]), timeout=10).json)
        key = info["NetworkSettings"]["SandboxKey"]
        want = json.loads(client.containers.Inspect(container_pb2.InspectRequest(id=made[0]), timeout=10).json)
        res = ctx.sandbox.run(["nsenter", f"--net={key}", sys.executable, "-m", "bench.dns_probe", "benchweb",
                               str(ctx.runs * 10), "--warmup", str(ctx.warmup)], timeout=120)
        got = json.loads(res.stdout)
        if got["address"] != want["NetworkSettings"]["IPAddress"]:
            raise RuntimeError(f"benchweb resolved to {got['address']}, not {want['NetworkSettings']['IPAddress']}")
        return {"dns_lookup": row("dns_lookup", got["samples_ms"], address=got["address"])}
    except Exception as exc:
        return _skipped(("dns_lookup",), f"failed: {describe_error(exc)}")
    finally:
        for cid in made:
            try:
                client.remove(cid, force=True)
            except Exception as exc:
                ctx.note(f"removing dns bench container {cid[:12]}: {describe_error(exc)}")
        try:
            nets.Remove(network_pb2.NetworkRemoveRequest(id=NETWORK), timeout=60)
        except Exception as exc:
            if made or "not found" not in describe_error(exc):
                ctx.note(f"removing network {NETWORK}: {describe_error(exc)}")
        client.close()


def _ctrd_server(ctx: Context, client: CtrdClient) -> tuple[str, int]:
    spec = container_pb2.ContainerSpec(
        name=ctx.next_id("benchport"), image=IMAGE_REF, cmd=SERVE, cmd_set=True, network_mode="bridge",
        port_bindings=[container_pb2.PortBinding(host_ip="127.0.0.1", container_port=80)],
    )
    cid = str(client.containers.Create(container_pb2.CreateRequest(spec=spec), timeout=60).id)
    client.start(cid)
    info = json.loads(client.containers.Inspect(container_pb2.InspectRequest(id=cid), timeout=10).json)
    return cid, int(info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])


def _docker_server(ctx: Context) -> tuple[str, int]:
    assert ctx.dockerd is not None
    d = ctx.dockerd
    run = subprocess.run(d.docker("run", "-d", "-p", "127.0.0.1::80", IMAGE_REF, *SERVE), capture_output=True,
                         text=True, timeout=120, env=d.env, check=True)
    cid = run.stdout.strip()
    port = subprocess.run(d.docker("port", cid, "80/tcp"), capture_output=True, text=True, timeout=30, env=d.env,
                          check=True).stdout.split()[0]
    return cid, int(port.rsplit(":", 1)[1])


def _probe(ctx: Context, port: int, connects: int) -> dict[str, Any]:
    res = ctx.sandbox.run([sys.executable, "-m", "bench.port_probe", str(port), "--bytes", str(PORT_BYTES),
                           "--downloads", "1", "--connects", str(connects), "--warmup", str(ctx.warmup)],
                          timeout=600)
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def port_rows(ctx: Context) -> dict[str, Any]:
    """The same download and connects through ctrd's and docker's published ports, interleaved."""
    keys = ("port_download_ctrd", "port_download_docker", "port_connect_ctrd", "port_connect_docker")
    if ctx.ctrd is None:
        return _skipped(keys, f"ctrd daemon not available: {ctx.ctrd_skip}")
    if ctx.dockerd is None:
        return _skipped(keys, "dockerd not running (the docker-proxy figure is the peer)")
    client = CtrdClient(ctx.ctrd.address)
    made: list[tuple[str, str]] = []
    samples: dict[str, list[float]] = {k: [] for k in keys}
    mibs: dict[str, list[float]] = {"ctrd": [], "docker": []}
    try:
        cid, cport = _ctrd_server(ctx, client)
        made.append(("ctrd", cid))
        did, dport = _docker_server(ctx)
        made.append(("docker", did))
        per = max(10, ctx.runs * 3 // PORT_ROUNDS)
        for _ in range(PORT_ROUNDS):
            for engine, port in (("ctrd", cport), ("docker", dport)):
                got = _probe(ctx, port, per)
                samples[f"port_download_{engine}"] += [x * 1000 for x in got["download_s"]]
                samples[f"port_connect_{engine}"] += got["connect_ms"]
                mibs[engine] += got["download_mib_per_s"]
    except Exception as exc:
        return _skipped(keys, f"failed: {describe_error(exc)}")
    finally:
        for engine, ref in made:
            try:
                if engine == "ctrd":
                    client.remove(ref, force=True)
                else:
                    assert ctx.dockerd is not None
                    subprocess.run(ctx.dockerd.docker("rm", "-f", ref), capture_output=True, timeout=120,
                                   env=ctx.dockerd.env, check=True)
            except Exception as exc:
                ctx.note(f"removing {engine} port bench container {ref[:12]}: {describe_error(exc)}")
        client.close()
    out = {}
    for key in keys:
        engine = key.rsplit("_", 1)[1]
        extra = {"mib_per_s": [round(x, 1) for x in mibs[engine]]} if "download" in key else {}
        out[key] = row(key, samples[key], rounds=PORT_ROUNDS, **extra)
        if extra:
            print(f"    {engine}: {summarize(mibs[engine]).p50:.0f} MiB/s p50", flush=True)
    return out


def measure(ctx: Context) -> dict[str, Any]:
    return {**bridge_rows(ctx), **dns_row(ctx), **port_rows(ctx)}
