"""The real `ctrctl` command (subprocess) against the in-test fake daemon (tests/integration/ctrctl_fake.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.ctrctl_fake import FakeDaemon

_SCRIPT = Path(sys.executable).parent / "ctrctl"
CTRCTL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ctrctl.main"]


def ctl(sock: str, *args: str, timeout: float = 30, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CTRD_ADDRESS"}
    r = subprocess.run([*CTRCTL, "-a", sock, *args], capture_output=True, timeout=timeout, env=env,
                       input=stdin if stdin is not None else b"")
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def test_run_streams_output_and_exits_with_the_container_code(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"
    methods = fake.methods()
    # (the order Logs, Wait, Start is asserted deterministically in tests/unit/test_ctrctl_attach.py)
    assert {"Create", "Logs", "Wait", "Start"} <= set(methods)
    assert "Remove" in methods and fake.containers == {}
    create = next(req for m, req in fake.calls if m == "Create")
    assert list(create.spec.cmd) == ["sh", "-c", "echo out; echo err >&2; exit 3"] and create.spec.cmd_set


def test_run_without_rm_keeps_the_container(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "run", "--name", "keep", "busybox", "true")
    assert r.returncode == 0, r.stderr
    r = ctl(fake.socket_path, "ps", "-a")
    assert r.returncode == 0
    header, row = r.stdout.splitlines()
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert re.match(r"^[0-9a-f]{12}   busybox   \"true\"\s+\S.* ago\s+Exited \(0\) .* ago\s+keep$", row), row


def test_run_missing_command_exits_127_with_the_exec_error(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "run", "--rm", "busybox", "nosuchcmd-ctrctl")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == ['Error: exec: "nosuchcmd-ctrctl": executable file not found in $PATH']
    assert fake.containers == {}


def test_logs_follow_once_after_start_when_the_daemon_ends_early_streams(fake: FakeDaemon) -> None:
    # ctrd ends a follow stream at once on a container that is not running yet: the one stream
    # is opened after Start (Wait before it), and still carries the whole output.
    fake.end_follow_unless_running = True
    r = ctl(fake.socket_path, "run", "--rm", "busybox", "sh", "-c", "echo zero; sleep 0.3; echo one; echo two")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "zero\none\ntwo\n"
    methods = fake.methods()
    assert methods.count("Logs") == 1
    assert methods.index("Start") < methods.index("Logs") < methods.index("Remove")  # Wait: unit-tested


def test_sigint_is_forwarded_to_the_container(fake: FakeDaemon) -> None:
    script = 'trap "echo got-int; exit 7" INT; echo ready; while :; do sleep 0.1; done'
    p = subprocess.Popen([*CTRCTL, "-a", fake.socket_path, "run", "--rm", "busybox", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 7, err
    assert "got-int" in out
    assert any(m == "Kill" and req.signal == "SIGINT" for m, req in fake.calls)


def test_unreachable_daemon(short_tmp: Path) -> None:
    sock = str(short_tmp / "none.sock")
    r = ctl(sock, "ps")
    assert r.returncode == 1
    assert r.stderr == f"Cannot connect to ctrd at {sock}: is the daemon running?\n"


def test_no_such_container(fake: FakeDaemon) -> None:
    for verb in (["stop"], ["rm", "-f"], ["logs"], ["kill"], ["start"]):
        r = ctl(fake.socket_path, *verb, "foo")
        assert r.returncode == 1, verb
        assert r.stderr == "Error: No such container: foo\n", verb


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--memory", "12zz"], "--memory"),
        (["-p", "99999:80"], "--publish"),
        (["--stop-timeout", "-1"], "--stop-timeout"),
        (["--cpus", "abc"], "--cpus"),
        (["--restart", "sometimes"], "--restart"),
        (["--name", "bad name"], "container name"),
        (["-v", "relative"], "--volume"),
        (["--mount", "type=volume,target=/x,bogus=1"], "--mount"),
        (["--log-opt", "max-size=big"], "--log-opt"),
        (["--add-host", "h:notanip"], "--add-host"),
        (["--bogus-flag"], "--bogus-flag"),
        (["--pull", "sometimes"], "--pull"),
    ],
)
def test_bad_flags_exit_125_and_send_nothing(fake: FakeDaemon, flags: list[str], named: str) -> None:
    r = ctl(fake.socket_path, "run", "--rm", *flags, "busybox", "true")
    assert r.returncode == 125
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], r.stderr
    assert fake.calls == []


def test_daemon_side_create_errors_exit_125(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "run", "--rm", "--pull", "never", "nosuchimage", "true")
    assert (r.returncode, r.stderr) == (125, "Error: No such image: nosuchimage:latest\n")
    r = ctl(fake.socket_path, "create", "--pull", "never", "reg.example:5000/a/b@sha256:" + "0" * 64)
    assert (r.returncode, r.stderr) == (125, f"Error: No such image: reg.example:5000/a/b@sha256:{'0' * 64}\n")
    r = ctl(fake.socket_path, "create", "--network", "nonet", "busybox")
    assert (r.returncode, r.stderr) == (125, "Error: network nonet not found\n")
    assert fake.containers == {}


def test_detached_run_ps_formats_inspect_stop(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "run", "-d", "--name", "web", "-l", "tier=front", "-p", "8080:80",
            "busybox", "sleep", "30")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert ctl(fake.socket_path, "ps", "-q").stdout == cid[:12] + "\n"
    assert ctl(fake.socket_path, "ps", "-q", "--no-trunc").stdout == cid + "\n"
    assert ctl(fake.socket_path, "ps", "-q", "-f", "label=tier=back").stdout == ""
    lines = ctl(fake.socket_path, "ps", "--format", "json").stdout.splitlines()
    obj = json.loads(lines[0])
    assert {"ID", "Names", "Image", "Command", "CreatedAt", "Status", "State", "Ports"} <= obj.keys()
    assert (obj["ID"], obj["Names"], obj["State"], obj["Ports"]) == (cid[:12], "web", "running",
                                                                   "0.0.0.0:8080->80/tcp")
    assert obj["Status"].startswith("Up ")
    assert ctl(fake.socket_path, "ps", "--format", "{{.Names}} {{.State}}").stdout == "web running\n"
    out = ctl(fake.socket_path, "inspect", "web", cid[:5])
    objs = json.loads(out.stdout)
    assert out.stdout.startswith("[\n    {")
    assert [o["Id"] for o in objs] == [cid, cid]
    assert ctl(fake.socket_path, "inspect", "-f", "{{.State.Status}}", "web").stdout == "running\n"
    go = ('{{range .Config.Cmd}}{{.}};{{end}} {{len .Config.Cmd}} {{index .Config.Labels "tier"}} '
          '{{if .State.Running}}up{{else}}down{{end}} {{json .Config.Cmd}} {{upper .Name}} {{join .Config.Cmd ","}}')
    r = ctl(fake.socket_path, "inspect", "-f", go, "web")
    assert (r.returncode, r.stdout) == (0, 'sleep;30; 2 front up ["sleep","30"] /WEB sleep,30\n'), r.stderr
    table = ctl(fake.socket_path, "ps", "--format", "table {{.Names}}\\t{{lower .State}}")
    assert table.stdout.splitlines() == ["NAMES   STATE", "web     running"]
    top = ctl(fake.socket_path, "top", "web")
    assert top.returncode == 0 and top.stdout.startswith("PID")
    r = ctl(fake.socket_path, "stop", "-t", "1", "web")
    assert (r.returncode, r.stdout) == (0, "web\n")
    assert ctl(fake.socket_path, "wait", "web").stdout == "143\n"
    assert ctl(fake.socket_path, "rm", "web").stdout == "web\n"
    r = ctl(fake.socket_path, "inspect", "web")
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error: No such object: web\n")


def test_an_unsupported_template_action_is_one_line_and_sends_nothing(fake: FakeDaemon) -> None:
    for argv in (["ps", "--format", "{{template \"x\"}}"], ["inspect", "-f", "{{if .Id}}x", "web"],
                 ["images", "--format", "{{nosuch .ID}}"], ["events", "--format", "{{index}}"]):
        r = ctl(fake.socket_path, *argv)
        assert r.returncode == 125 and r.stdout == "", (argv, r)
        assert r.stderr.startswith("Error: template parsing error: ") and r.stderr.count("\n") == 1, r.stderr
    assert fake.calls == []


def test_logs_tail_timestamps_and_start_attach(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "create", "--name", "lg", "busybox", "sh", "-c", "echo a; echo b; exit 4")
    assert r.returncode == 0 and fake.containers[r.stdout.strip()].state == "created"
    r = ctl(fake.socket_path, "start", "-a", "lg")
    assert (r.returncode, r.stdout) == (4, "a\nb\n")
    r = ctl(fake.socket_path, "start", "-a", "lg")  # a second run shows its own output only
    assert (r.returncode, r.stdout) == (4, "a\nb\n")
    assert ctl(fake.socket_path, "logs", "--tail", "1", "lg").stdout == "b\n"
    stamped = ctl(fake.socket_path, "logs", "-t", "lg").stdout.splitlines()
    assert len(stamped) == 4 and re.match(r"^\d{4}-\d\d-\d\dT\S+Z a$", stamped[0])
    r = ctl(fake.socket_path, "logs", "--since", "yesterday", "lg")
    assert r.returncode == 125 and "--since" in r.stderr


def test_events_window(fake: FakeDaemon) -> None:
    assert ctl(fake.socket_path, "run", "--rm", "--name", "ev", "busybox", "true").returncode == 0
    fake.wait_for("the die of ev", lambda: fake.happened("die", "ev"))  # run returns at the exit, before it
    r = ctl(fake.socket_path, "events", "--since", "1m", "--until", "0s", "-f", "event=die")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    assert re.match(r"^\S+ container die [0-9a-f]{64} \(exitCode=0, image=busybox, name=ev\)$", lines[0]), lines


def test_images_import_inspect_rm(fake: FakeDaemon, short_tmp: Path) -> None:
    tar = short_tmp / "rootfs.tar"
    tar.write_bytes(os.urandom(3 * (1 << 20) + 5))
    r = ctl(fake.socket_path, "image", "import", str(tar), "mine:1", "-c", "CMD [\"sh\"]")
    assert r.returncode == 0, r.stderr
    ident = r.stdout.strip()
    assert ident.startswith("sha256:")
    assert ("ImportBytes", tar.stat().st_size) in fake.calls
    r = ctl(fake.socket_path, "images")
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert ["mine", "1", ident[7:19]] == rows[1][:3] or ["mine", "1", ident[7:19]] == rows[2][:3]
    assert "4.26MB" in r.stdout
    assert json.loads(ctl(fake.socket_path, "image", "inspect", "mine:1").stdout)[0]["Id"] == ident
    r = ctl(fake.socket_path, "rmi", "mine:1")
    assert r.stdout == f"Untagged: mine:1\nDeleted: {ident}\n"
    r = ctl(fake.socket_path, "image", "rm", "mine:1")
    assert (r.returncode, r.stderr) == (1, "Error: No such image: mine:1\n")
    r = ctl(fake.socket_path, "image", "import", str(short_tmp / "missing.tar"))
    assert r.returncode == 1 and "missing.tar" in r.stderr


def test_version_info_stats_completion(fake: FakeDaemon) -> None:
    r = ctl(fake.socket_path, "version")
    assert r.returncode == 0 and "Client:" in r.stdout and "0.0-fake" in r.stdout
    r = ctl(fake.socket_path, "info")
    assert r.returncode == 0 and " Containers: 0\n" in r.stdout and " FakeKey: true\n" in r.stdout
    assert ctl(fake.socket_path, "run", "-d", "--name", "st", "busybox", "sleep", "30").returncode == 0
    r = ctl(fake.socket_path, "stats", "--no-stream")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    assert "st" in row.split() and "20.00%" in row and "1MiB / 1GiB" in row
    assert ctl(fake.socket_path, "rm", "-f", "st").returncode == 0
    script = ctl(fake.socket_path, "completion", "bash").stdout
    assert "complete -F _ctrctl ctrctl" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_version_prints_client_then_unreachable(short_tmp: Path) -> None:
    r = ctl(str(short_tmp / "x.sock"), "version")
    assert r.returncode == 1
    assert r.stdout.startswith("Client:\n")
    assert "Cannot connect to ctrd at" in r.stderr


def test_image_import_and_load_from_stdin(fake: FakeDaemon) -> None:
    data = os.urandom(1 << 20 | 77)
    r = ctl(fake.socket_path, "image", "import", "-", "piped:2", stdin=data)
    assert r.returncode == 0, r.stderr
    assert ("ImportBytes", len(data)) in fake.calls
    r = ctl(fake.socket_path, "image", "load", stdin=data)
    assert (r.returncode, r.stdout) == (0, "Loaded image: loaded:latest\n")
    assert ("LoadBytes", len(data)) in fake.calls
    r = ctl(fake.socket_path, "image", "load", stdin=b"")
    assert (r.returncode, r.stderr) == (1, "Error: archive: empty input\n")


def test_address_from_environment_and_default(fake: FakeDaemon) -> None:
    env = {**os.environ, "CTRD_ADDRESS": fake.socket_path}
    r = subprocess.run([*CTRCTL, "ps", "-q"], capture_output=True, text=True, env=env, timeout=30)
    assert (r.returncode, r.stdout) == (0, "")
    assert fake.methods() == ["List"]


@pytest.mark.parametrize("verb", [["logs", "-f", "tail"], ["events"]])
def test_following_verbs_end_on_sigint(fake: FakeDaemon, verb: list[str]) -> None:
    r = ctl(fake.socket_path, "run", "-d", "--name", "tail", "busybox", "sh", "-c",
            "echo first; exec sleep 30")
    assert r.returncode == 0, r.stderr
    p = subprocess.Popen([*CTRCTL, "-a", fake.socket_path, *verb], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None
        if verb[0] == "logs":
            assert p.stdout.readline() == "first\n"
        else:
            fake.wait_for("an events subscription", lambda: fake.subscriptions == 1)
            assert ctl(fake.socket_path, "kill", "tail").returncode == 0
            assert " container kill " in p.stdout.readline()
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130


def test_no_arguments_and_group_help() -> None:
    r = subprocess.run([*CTRCTL], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "run" in r.stdout
    r = subprocess.run([*CTRCTL, "image"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "import" in r.stdout and "load" in r.stdout
    r = subprocess.run([*CTRCTL, "run", "-it", "busybox", "sh"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and r.stderr.strip() == "the input device is not a TTY"


def test_ps_last_latest_and_rm_v(fake: FakeDaemon) -> None:
    for name in ("c1", "c2", "c3"):
        assert ctl(fake.socket_path, "create", "--name", name, "busybox").returncode == 0
    assert ctl(fake.socket_path, "ps", "-q").stdout == ""  # created, not running
    assert len(ctl(fake.socket_path, "ps", "-l", "-q").stdout.split()) == 1
    assert len(ctl(fake.socket_path, "ps", "-n", "2", "-q").stdout.split()) == 2
    assert len(ctl(fake.socket_path, "ps", "-a", "-q").stdout.split()) == 3
    r = ctl(fake.socket_path, "ps", "-n", "x")
    assert r.returncode == 125 and "--last" in r.stderr
    assert ctl(fake.socket_path, "rm", "-fv", "c1", "c2", "c3").stdout == "c1\nc2\nc3\n"


def test_run_into_a_closed_pipe_ends_and_removes(fake: FakeDaemon) -> None:
    cmd = " ".join([*CTRCTL, "-a", fake.socket_path, "run", "--rm", "busybox", "yes"])
    r = subprocess.run(["bash", "-c", cmd + ' | head -n 3; echo "rc=${PIPESTATUS[0]}"'], capture_output=True,
                       text=True, timeout=60)
    assert r.stdout == "y\ny\ny\nrc=141\n", r.stderr
    assert r.stderr == ""
    assert fake.containers == {}


def test_exec(fake: FakeDaemon) -> None:
    assert ctl(fake.socket_path, "run", "-d", "--name", "ex", "busybox", "sleep", "30").returncode == 0
    r = ctl(fake.socket_path, "exec", "-e", "X=42", "ex", "sh", "-c", "echo $X; echo e >&2; exit 6")
    assert (r.returncode, r.stdout, r.stderr) == (6, "42\n", "e\n")
    r = ctl(fake.socket_path, "exec", "ex", "nosuchcmd-ctrctl")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    r = ctl(fake.socket_path, "exec", "nope", "true")
    assert (r.returncode, r.stderr) == (1, "Error: No such container: nope\n")
    assert ctl(fake.socket_path, "rm", "-f", "ex").returncode == 0


def test_start_attach_to_a_running_container(fake: FakeDaemon, short_tmp: Path) -> None:
    go = short_tmp / "go"  # the container prints "late" once the test has seen the attach follow
    script = f"echo early; while [ ! -e {go} ]; do sleep 0.02; done; echo late"
    r = ctl(fake.socket_path, "run", "-d", "--name", "att", "busybox", "sh", "-c", script)
    assert r.returncode == 0
    fake.wait_for("early in the log", lambda: fake.logged("att", b"early\n"))
    attach = subprocess.Popen([*CTRCTL, "-a", fake.socket_path, "start", "-a", "att"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        fake.wait_for("the attach following the log", lambda: fake.followers == 1)
        go.touch()
        out, err = attach.communicate(timeout=30)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
    assert (attach.returncode, out) == (0, "late\n"), err  # new output only, like docker attach
    go.unlink()  # started again, it waits (keeps running) for the second start below
    r = ctl(fake.socket_path, "start", "att", "att")  # exited: starts again; then "already running"
    assert r.returncode == 1 and r.stdout == "att\n" and "already running" in r.stderr
    assert ctl(fake.socket_path, "rm", "-f", "att").returncode == 0
