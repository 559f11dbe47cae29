"""`ctrd-runtime` verbs beyond the lifecycle, in runc 1.1's shapes: `--version`, `ps` (pids as
JSON, or the host's ps filtered to the container's processes), `events` (`--stats` once, or a
stats stream every `--interval` with OOM events), `update`, `features`, `spec`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

from runtime import caps, defaults, errors, seccomp, spec_hooks, spec_resources, spec_rootfs, stats_json
from runtime import spec as spec_mod
from runtime.cli_args import Args
from runtime.container import Container, Status
from runtime.version import OCI_VERSION, package_version, version_text

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
__all__ = ["package_version", "version_text"]  # moved to runtime.version; kept importable here


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "500ms", "1m30s") in seconds; must be positive, as runc requires."""
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"--interval: {text!r} is not a duration like 5s or 500ms")
    if total <= 0:
        raise ValueError("--interval: duration interval must be greater than 0")
    return total


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))  # Go's encoding/json: compact


def cmd_ps(a: Args) -> int:
    c = Container.load(a.id, state_dir=a.root)
    pids = c.pids()
    if a.format == "json":
        print(_dump(pids))
        return 0
    args = list(a.ps_args)
    if args[:1] == ["--"]:
        args = args[1:]  # `ps ID -- -ef`: the separator is ours, not ps's
    p = subprocess.run(["ps", *(args or ["-ef"])], capture_output=True, text=True)
    if p.returncode != 0:
        raise errors.RuntimeErr(f"ps exited with status {p.returncode}: {(p.stderr or p.stdout).strip()}")
    lines = p.stdout.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise errors.RuntimeErr("couldn't find PID field in ps output")
    col = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_events(a: Args) -> int:
    c = Container.load(a.id, state_dir=a.root)
    if c.status() == Status.STOPPED:
        raise errors.IncorrectStatus(f"container with id {a.id} is not running")
    if a.stats:
        print(_dump({"type": "stats", "id": a.id, "data": stats_json.stats(c.cgroup)}))
        return 0
    interval = parse_duration(a.interval)
    ooms = c.stats().oom_kills
    while c.status() != Status.STOPPED:
        now = c.stats().oom_kills
        if now > ooms:
            print(_dump({"type": "oom", "id": a.id}))
        ooms = now
        print(_dump({"type": "stats", "id": a.id, "data": stats_json.stats(c.cgroup)}), flush=True)
        sys.stdout.flush()
        time.sleep(interval)  # the stream's own period, as runc's ticker
    return 0


def cmd_update(a: Args) -> int:
    c = Container.load(a.id, state_dir=a.root)
    obj: dict[str, Any] = {}
    if a.resources:
        try:
            if a.resources == "-":
                text = sys.stdin.read()
            else:
                with open(a.resources) as f:
                    text = f.read()
            obj = json.loads(text)
        except (OSError, ValueError) as exc:
            raise errors.SpecError("linux.resources", f"cannot read {a.resources}: {exc}")
    if a.memory is not None:
        obj.setdefault("memory", {})["limit"] = a.memory
    if a.pids_limit is not None:
        obj.setdefault("pids", {})["limit"] = a.pids_limit
    if a.cpu_shares is not None:
        obj.setdefault("cpu", {})["shares"] = a.cpu_shares
    if a.cpu_quota is not None:
        obj.setdefault("cpu", {})["quota"] = a.cpu_quota
    if a.cpu_period is not None:
        obj.setdefault("cpu", {})["period"] = a.cpu_period
    if a.cpuset_cpus is not None:
        obj.setdefault("cpu", {})["cpus"] = a.cpuset_cpus
    if a.cpuset_mems is not None:
        obj.setdefault("cpu", {})["mems"] = a.cpuset_mems
    if a.blkio_weight is not None:
        obj.setdefault("blockIO", {})["weight"] = a.blkio_weight
    c.update(spec_resources.resources_from_oci(obj))
    return 0


def cmd_no_criu(a: Args) -> int:
    """checkpoint / restore: runc's verbs, which need CRIU; ctrd-runtime has no CRIU support and
    says so (engines show the message) rather than failing on an unknown verb."""
    raise errors.RuntimeErr(f"{a.verb} is not supported: ctrd-runtime has no CRIU support")


def cmd_features(a: Args) -> int:
    print(json.dumps({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(spec_hooks.KINDS),
        "mountOptions": sorted([*spec_rootfs.MOUNT_FLAGS, *spec_rootfs.PROPAGATION]),
        "linux": {
            "namespaces": sorted(spec_mod.NAMESPACE_FLAGS),
            "capabilities": list(caps.NAMES[: caps.LAST_CAP + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": seccomp.features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        # runc names its own build here (org.opencontainers.runc.*); checkpoint/restore (CRIU) is
        # out of scope and says so.
        "annotations": {
            "io.ctrd.runtime.version": package_version(),
            "io.ctrd.runtime.checkpoint.enabled": "false",
        },
    }, indent=4))
    return 0


def cmd_spec(a: Args) -> int:
    path = os.path.join(a.bundle, "config.json")
    if os.path.exists(path):
        raise errors.RuntimeErr(f"{path} exists: remove it first")
    with open(path, "w") as f:
        json.dump(defaults.default_spec(["sh"]), f, indent=2)
    return 0
