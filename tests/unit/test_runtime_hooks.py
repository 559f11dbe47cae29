"""Hooks without root: parsing config.json's `hooks` (each bad field named) and running one hook
(state on stdin, args, env, exit status, timeout, output in the error)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from runtime import hooks
from runtime.errors import SetupError, SpecError
from runtime.spec_hooks import Hook, Hooks, hooks_from_oci, to_oci


def test_parse_keeps_order_args_env_timeout_and_round_trips() -> None:
    raw = {"prestart": [{"path": "/a", "args": ["a", "1"], "env": ["X=1"], "timeout": 5}, {"path": "/b"}],
           "poststop": [{"path": "/c"}]}
    h = hooks_from_oci(raw)
    assert h.prestart == (Hook("hooks.prestart[0]", "/a", ("a", "1"), ("X=1",), 5), Hook("hooks.prestart[1]", "/b"))
    assert h.poststop[0].where == "hooks.poststop[0]" and h.createRuntime == ()
    assert to_oci(h) == raw
    assert hooks_from_oci(None) == Hooks()


@pytest.mark.parametrize("raw, field", [
    ({"prestart": {"path": "/a"}}, "hooks.prestart"),
    ({"poststart": [{"path": "rel"}]}, "hooks.poststart[0].path"),
    ({"createRuntime": [{"path": "/a", "timeout": 0}]}, "hooks.createRuntime[0].timeout"),
    ({"createContainer": [{"path": "/a", "args": "x"}]}, "hooks.createContainer[0].args"),
    ({"startContainer": [{"path": "/a", "env": [1]}]}, "hooks.startContainer[0].env"),
    ([], "hooks"),
])
def test_parse_names_the_bad_field(raw: object, field: str) -> None:
    with pytest.raises(SpecError) as e:
        hooks_from_oci(raw)
    assert e.value.field == field


def test_run_passes_state_args_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTRD_LEAK", "leaked")
    out = tmp_path / "out"
    hook = Hook("hooks.prestart[0]", "/bin/sh", ("sh", "-c", f'echo "$0 $1 $V $CTRD_LEAK"> {out}; cat >> {out}', "one"),
                ("V=two",))
    state = hooks.state_json("c1", 42, "creating", "/b", {"k": "v"})
    hooks.run(hook, state)
    first, second = out.read_text().split("\n", 1)
    assert first == "one  two "  # $1 unset; only the hook's own env, nothing of the runtime's
    assert json.loads(second) == {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 42,
                                  "bundle": "/b", "annotations": {"k": "v"}}


def test_run_reports_status_and_output() -> None:
    hook = Hook("hooks.poststart[2]", "/bin/sh", ("sh", "-c", "echo bad thing >&2; exit 4"))
    with pytest.raises(SetupError, match=r"^hooks\.poststart\[2\]: /bin/sh exited with status 4: bad thing$"):
        hooks.run(hook, b"{}")
    hook = Hook("hooks.poststart[0]", "/bin/sh", ("sh", "-c", "kill -9 $$"))
    with pytest.raises(SetupError, match=r"killed by signal 9"):
        hooks.run(hook, b"{}")


def test_run_kills_at_the_timeout() -> None:
    hook = Hook("hooks.prestart[0]", "/bin/sleep", ("sleep", "60"), timeout=1)
    t0 = time.monotonic()
    with pytest.raises(SetupError, match=r"did not finish in 1s"):
        hooks.run(hook, b"{}")
    assert time.monotonic() - t0 < 30


def test_run_logged_runs_all_and_returns_failures() -> None:
    h = hooks_from_oci({"poststop": [{"path": "/bin/false"}, {"path": "/bin/true"}, {"path": "/nonexistent"}]})
    failures = hooks.run_logged(h, "poststop", b"{}")
    assert failures == ["hooks.poststop[0]: /bin/false exited with status 1",
                        "hooks.poststop[2]: cannot run /nonexistent: no such file or directory"]
