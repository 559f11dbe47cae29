"""Section `network`: bridge setup+teardown with and without ctrd's firewall chains (same run,
interleaved), and an A lookup of a container's name at the embedded resolver from inside another
container on the same user network.

Rows (p50/p90):
- bridge_firewall / bridge_no_firewall — NetworkManager setup(bridge)+teardown, as in
  `python -m bench.network_bench` (run in the sandbox, a fresh bridge per round), rounds of the two
  interleaved so other load on the machine weighs on both alike;
- dns_lookup — `bench.dns_probe` in the client container's network namespace, asking 127.0.0.11 for
  the other container's name (one UDP query and its answer per sample).
"""

from __future__ import annotations

import json
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
}
TARGETS_MS = {"bridge_firewall": 10.0, "bridge_no_firewall": 10.0, "dns_lookup": 1.0}
ROUNDS = 4
NETWORK = "benchdns"


def row(key: str, samples_ms: list[float], **extra: Any) -> dict[str, Any]:
    s = summarize(samples_ms)
    print(f"  {LABELS[key]:<72} p50 {s.p50:8.3f} ms   p90 {s.p90:8.3f} ms   (n={s.n})", flush=True)
    return {"label": LABELS[key], "summary": s.as_dict(), "target_p50_ms": TARGETS_MS[key],
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


def measure(ctx: Context) -> dict[str, Any]:
    return {**bridge_rows(ctx), **dns_row(ctx)}
