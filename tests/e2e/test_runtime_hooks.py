"""OCI hooks through `ctrd-runtime` as runc runs them: each kind at its point of the lifecycle with
the state JSON on stdin, args and env honoured; a failing or hanging prestart hook fails create
with an error naming it and leaves nothing behind; a failing poststop hook only warns."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_runtime_cli import Cli, _leftovers
from tests.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.root

HOST_KINDS = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ctrdt-hrfs-", dir="/tmp"))
    try:
        yield make_busybox_rootfs(d / "rootfs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cli(short_tmp: Path, rootfs: Path) -> Iterator[Cli]:
    c = Cli(short_tmp, rootfs)
    yield c
    for cid in c.ids:
        c("delete", "--force", cid)


def _recorder(kind: str, log: str) -> dict[str, Any]:
    """A hook that appends `<kind> <HOOKVAR> <state json>` to `log`."""
    # One write per record: startContainer (in the container) and poststart (in `start`) run at
    # the same time, as with runc.
    return {"path": "/bin/sh", "args": ["sh", "-c", f's=$(cat); echo "{kind} $HOOKVAR $s" >> {log}'],
            "env": [f"HOOKVAR=v-{kind}"], "timeout": 20}


def _records(log: Path) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for line in log.read_text().splitlines():
        kind, var, state = line.split(" ", 2)
        out.append((kind, var, json.loads(state)))
    return out


def _wait_stopped(cli: Cli, cid: str) -> None:
    deadline = time.monotonic() + 20  # generous: a loaded machine is slow, not wrong
    while cli.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_every_hook_kind_runs_in_order_with_the_state(cli: Cli, short_tmp: Path) -> None:
    cid = "h" + uuid.uuid4().hex[:10]
    name = f"hooks-{cid}.log"
    host_log = cli.rootfs / name  # the same file seen from the host and from inside the container

    def mutate(spec: dict[str, Any]) -> None:
        spec["annotations"] = {"org.test": "yes"}
        spec["hooks"] = {k: [_recorder(k, str(host_log))] for k in HOST_KINDS}
        spec["hooks"]["startContainer"] = [_recorder("startContainer", f"/{name}")]

    try:
        _, bundle = cli.bundle(["sleep", "30"], mutate=mutate, cid=cid)
        p = cli("create", "--bundle", str(bundle), "--pid-file", str(short_tmp / "pid"), cid, out=short_tmp / "out")
        assert p.returncode == 0, p.stderr
        pid = int((short_tmp / "pid").read_text())
        assert [r[0] for r in _records(host_log)] == ["prestart", "createRuntime", "createContainer"]
        assert cli("start", cid).returncode == 0
        assert cli("kill", cid, "KILL").returncode == 0
        _wait_stopped(cli, cid)
        p = cli("delete", cid)
        assert p.returncode == 0, p.stderr
        records = _records(host_log)
    finally:
        host_log.unlink(missing_ok=True)
    kinds = [r[0] for r in records]
    assert kinds[:3] == ["prestart", "createRuntime", "createContainer"]
    assert sorted(kinds[3:5]) == ["poststart", "startContainer"]
    assert kinds[5:] == ["poststop"]
    by_kind = {kind: (var, state) for kind, var, state in records}
    for kind, (var, state) in by_kind.items():
        assert var == f"v-{kind}"  # env honoured (and nothing of the runtime's own)
        assert (state["id"], state["bundle"], state["annotations"]) == (cid, str(bundle), {"org.test": "yes"})
        assert state["ociVersion"]
    # As runc: the runtime-side hooks see the host pid, the container-side ones their own pid 1.
    assert {k: (s["status"], s["pid"]) for k, (_, s) in by_kind.items()} == {
        "prestart": ("creating", pid), "createRuntime": ("creating", pid), "createContainer": ("creating", 1),
        "startContainer": ("created", 1), "poststart": ("running", pid), "poststop": ("stopped", pid)}
    assert _leftovers(cid, cli) == []


@pytest.mark.parametrize("hook, message", [
    ({"path": "/bin/sh", "args": ["sh", "-c", "echo no network for you >&2; exit 3"]},
     "hooks.prestart[1]: /bin/sh exited with status 3: no network for you"),
    ({"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1},
     "hooks.prestart[1]: /bin/sleep did not finish in 1s: killed"),
    ({"path": "/nonexistent/hook"}, "hooks.prestart[1]: cannot run /nonexistent/hook: no such file or directory"),
])
def test_failing_prestart_fails_create_and_leaves_nothing(cli: Cli, short_tmp: Path, hook: dict[str, Any],
                                                          message: str) -> None:
    ok = {"path": "/bin/true", "args": ["true"]}
    cid, bundle = cli.bundle(["true"], mutate=lambda s: s.update(hooks={"prestart": [ok, hook]}))
    p = cli("create", "--bundle", str(bundle), cid, out=short_tmp / "out")
    assert p.returncode == 1
    assert message in p.stderr, p.stderr
    log = [json.loads(line) for line in cli.log.read_text().splitlines()]
    assert log[-1]["level"] == "error" and message in log[-1]["msg"]
    assert cli("state", cid).returncode != 0
    assert _leftovers(cid, cli) == []


def test_failing_create_container_hook_fails_create(cli: Cli, short_tmp: Path) -> None:
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}
    cid, bundle = cli.bundle(["true"], mutate=lambda s: s.update(hooks={"createContainer": [hook]}))
    p = cli("create", "--bundle", str(bundle), cid, out=short_tmp / "out")
    assert p.returncode == 1
    assert "hooks.createContainer[0]: /bin/sh exited with status 7" in p.stderr, p.stderr
    assert _leftovers(cid, cli) == []


def test_failing_poststop_only_warns(cli: Cli, short_tmp: Path) -> None:
    marker = short_tmp / "second-ran"
    hooks = {"poststop": [{"path": "/bin/false", "args": ["false"]},
                          {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}
    cid, bundle = cli.bundle(["true"], mutate=lambda s: s.update(hooks=hooks))
    assert cli("run", "--bundle", str(bundle), "--keep", cid, out=short_tmp / "out").returncode == 0
    p = cli("delete", cid)
    assert p.returncode == 0
    assert "warning: hooks.poststop[0]: /bin/false exited with status 1" in p.stderr
    assert marker.exists()  # the hooks after a failed one still run
    assert _leftovers(cid, cli) == []


def test_features_lists_the_hooks(cli: Cli) -> None:
    p = cli("features")
    assert json.loads(p.stdout)["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                                            "poststart", "poststop"]
