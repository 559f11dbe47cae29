"""What each CLI call loads before it answers: the verbs engines call per container (`ctrd-runtime
start|state|kill|delete`, `--version`) and ctrctl's hot verbs import only what they use (the
measurements are in the comments of runtime/cli.py, runtime/record.py and ctrctl/format.py; the
timings are bench's `engines` section, never asserted here).

Each call runs in a fresh interpreter with -S and the test's sys.path, so that this machine's
site-packages .pth files (which import modules of their own) do not hide a regression. The
`ctrd-runtime` calls run a real verb on a stand-in container: a state file of a CLI-created
container whose init is a child process that writes the exec fifo, as runtime.init does; its
cgroup is a path nobody made, so no root is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import state

# Modules only create/run/exec need (the spec parser and the create/init machinery, ctypes
# syscalls), the less used verbs' module, and heavy standard modules the lifecycle verbs avoid.
LIFECYCLE_NEVER = ("runtime.spec", "runtime.create", "runtime.init", "runtime.spawn", "runtime.syscalls",
                   "runtime.exec_in", "runtime.cli_verbs", "runtime.hooks", "runtime.spec_hooks",
                   "runtime.spec_resources", "runtime.cgroup_v2_devices", "runtime.seccomp", "ctypes",
                   "dataclasses", "inspect", "typing", "importlib.metadata", "subprocess", "pathlib", "tempfile")
VERSION_NEVER = ("runtime.container", "runtime.cgroups", "runtime.state", *LIFECYCLE_NEVER)
# Standard modules start/kill/delete (and state's error path) do without (runtime/cli.py has the
# measurement): argparse (runtime.cli_args), json and re (runtime.fastjson, ctrd.ids), enum and
# signal (runtime.container, ctrd.signals).
LEAN_NEVER = ("argparse", "json", "re", "enum", "signal", "gettext", "locale", "shutil")

# The probe itself imports nothing beyond the interpreter's own start-up modules.
_PROBE = """
import sys
out, argv = sys.argv[1], sys.argv[2:]
try:
    from {module} import main
    code = main(argv)
except SystemExit as exc:
    code = exc.code
finally:
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
sys.exit(code)
"""


def _loaded(tmp: Path, module: str, argv: list[str]) -> tuple[int, set[str], str]:
    out = tmp / "modules.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    p = subprocess.run([sys.executable, "-S", "-c", _PROBE.format(module=module), str(out), *argv],
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    return p.returncode, set(out.read_text().split("\n")), p.stdout + p.stderr


def _baseline(tmp: Path) -> set[str]:
    out = tmp / "base.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-S", "-c",
                    f"import sys; open({str(out)!r}, 'w').write('\\n'.join(sorted(sys.modules)))"],
                   env=env, check=True, timeout=60)
    return set(out.read_text().split("\n"))


def _assert_not_loaded(loaded: set[str], base: set[str], never: tuple[str, ...], what: str) -> None:
    extra = loaded - base
    bad = sorted(m for m in extra if any(m == n or m.startswith(n + ".") for n in never))
    assert not bad, f"{what} imported {bad}"


@pytest.fixture
def cli_container(tmp_path: Path) -> Iterator[tuple[Path, str, subprocess.Popen[bytes]]]:
    """A CLI-created container as `ctrd-runtime create` leaves it: state.json with fifo=True, the
    exec fifo, and an init (here a plain child) blocked writing the fifo until `start` reads it."""
    root, cid = tmp_path / "root", "startup-probe"
    d = root / cid
    d.mkdir(parents=True)
    fifo = d / state.FIFO
    os.mkfifo(fifo)
    init = subprocess.Popen([sys.executable, "-S", "-c",
                             f"f = open({str(fifo)!r}, 'w'); f.write('0'); f.close()\n"
                             "import time\nwhile True: time.sleep(1)"])
    try:
        st = state.State(id=cid, pid=init.pid, start_time=state.proc_start_time(init.pid), bundle=str(tmp_path),
                         rootfs=str(tmp_path / "rootfs"), created="2026-12-06T00:00:00Z", owner="root",
                         cgroup_kind="v1", cgroups_path=f"/ctrd-unit-never-made-{os.getpid()}/{cid}", fifo=True)
        state.save(str(root), st)
        yield root, cid, init
    finally:
        init.kill()
        init.wait()


def test_ctrd_runtime_lifecycle_verbs_load_only_the_state_and_cgroup_modules(
        tmp_path: Path, cli_container: tuple[Path, str, subprocess.Popen[bytes]]) -> None:
    root, cid, init = cli_container
    base = _baseline(tmp_path)
    g = ["--root", str(root), "--log", str(tmp_path / "log.json"), "--log-format", "json"]
    for verb in (["start", cid], ["state", cid], ["kill", cid, "18"], ["kill", cid, "KILL"]):
        code, loaded, out = _loaded(tmp_path, "runtime.cli", [*g, *verb])
        assert code == 0, out
        _assert_not_loaded(loaded, base, LIFECYCLE_NEVER, f"ctrd-runtime {verb[0]}")
        if verb[0] == "start" or verb[-1] == "18":  # a number (SIGCONT), as engines send it: no names
            _assert_not_loaded(loaded, base, LEAN_NEVER, f"ctrd-runtime {' '.join(verb)}")
        assert "runtime.container" in loaded  # the probe ran the verb, not just the parser
        if verb[0] == "state":
            assert json.loads(out)["status"] == "running"
    init.wait(timeout=30)
    code, loaded, out = _loaded(tmp_path, "runtime.cli", [*g, "delete", cid])
    assert code == 0, out
    _assert_not_loaded(loaded, base, LIFECYCLE_NEVER, "ctrd-runtime delete")
    _assert_not_loaded(loaded, base, LEAN_NEVER, "ctrd-runtime delete")
    assert not (root / cid).exists()
    # a missing container: the error path of the same verbs
    code, loaded, out = _loaded(tmp_path, "runtime.cli", [*g, "state", cid])
    assert code == 1 and f"container {cid} does not exist" in out
    _assert_not_loaded(loaded, base, LIFECYCLE_NEVER, "ctrd-runtime state (missing)")
    _assert_not_loaded(loaded, base, LEAN_NEVER, "ctrd-runtime state (missing)")


def test_ctrd_runtime_version_loads_nothing_of_the_library(tmp_path: Path) -> None:
    code, loaded, out = _loaded(tmp_path, "runtime.cli", ["--version"])
    assert code == 0 and out.startswith("ctrd-runtime version "), out
    _assert_not_loaded(loaded, _baseline(tmp_path), (*VERSION_NEVER, *LEAN_NEVER), "ctrd-runtime --version")


# What `ctrd-runtime create|run|exec` loads (the spec, create/init and seccomp machinery) without
# the standard modules it does without: runtime/value.py has the measurement.
CREATE_NEVER = ("typing", "re", "json", "shutil", "argparse", "dataclasses", "inspect", "tempfile", "pathlib",
                "socket", "signal", "enum", "functools", "collections")  # runtime/sigs.py


def test_ctrd_runtime_create_path_loads_no_typing_re_json_or_enum(tmp_path: Path) -> None:
    modules = ["runtime.cli", "runtime.container", "runtime.create", "runtime.spec", "runtime.init", "runtime.spawn",
               "runtime.exec_in", "runtime.hooks", "runtime.seccomp", "runtime.sync", "runtime.rootfs",
               "runtime.userns", "runtime.console"]
    out_file = tmp_path / "create.txt"
    probe = (f"import sys; import {', '.join(modules)}; "
             f"open({str(out_file)!r}, 'w').write('\\n'.join(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-S", "-c", probe], env=env, check=True, timeout=60)
    loaded = set(out_file.read_text().split("\n"))
    assert set(modules) <= loaded
    _assert_not_loaded(loaded, _baseline(tmp_path), CREATE_NEVER, "the create path")


CTRCTL_NEVER = ("ctrctl.template", "importlib.metadata", "grpc", "decimal", "html")


@pytest.mark.parametrize("argv", [["version"], ["ps", "-a"], ["inspect", "x"], ["logs", "x"], ["stop", "x"],
                                  ["rm", "x"], ["start", "x"], ["exec", "x", "true"],
                                  ["run", "--rm", "--network", "none", "img", "true"]])
def test_ctrctl_hot_verbs_skip_the_template_engine_and_package_metadata(tmp_path: Path, argv: list[str]) -> None:
    """Against an address nobody listens on: the verb imports what it needs to reach the daemon and
    fails with the unreachable-daemon message."""
    sock = tmp_path / "nobody.sock"
    code, loaded, out = _loaded(tmp_path, "ctrctl.main", ["-a", str(sock), *argv])
    assert code != 0 and str(sock) in out, out
    assert "ctrctl.h2grpc" in loaded  # it did try the daemon
    _assert_not_loaded(loaded, _baseline(tmp_path), CTRCTL_NEVER, f"ctrctl {argv[0]}")
