"""ctrctl: flag parsing and validation -> ContainerSpec (no daemon)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ctrctl import flags, mounts
from ctrctl.errors import UsageError
from ctrctl.parser import build
from ctrctl.spec import build_spec
from ctrd.v1 import container_pb2


def spec_of(*argv: str, environ: dict[str, str] | None = None, detach: bool = True) -> container_pb2.ContainerSpec:
    args = build(["run"]).parse_args(["run", *argv])
    return build_spec(args, environ or {}, detach=detach)


@pytest.mark.parametrize(("text", "expected"), [
    ("512m", 512 << 20), ("1g", 1 << 30), ("1.5g", 3 << 29), ("64MiB", 64 << 20), ("100", 100),
    ("10k", 10240), ("2 GB", 2 << 30),
])
def test_memory_sizes(text: str, expected: int) -> None:
    assert flags.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["12zz", "", "m", "-5m", "1.2.3x"])
def test_bad_memory_names_the_flag(text: str) -> None:
    with pytest.raises(UsageError) as info:
        flags.parse_memory(text)
    assert info.value.exit_code == 125
    assert '"-m, --memory" flag' in info.value.line and text in info.value.line


def test_cpus_are_exact_nano_cpus() -> None:
    assert flags.parse_cpus("1.5") == 1_500_000_000
    assert flags.parse_cpus("0.01") == 10_000_000
    for bad in ("abc", "-1", "0.0000000001", "nan", "inf"):
        with pytest.raises(UsageError, match="--cpus"):
            flags.parse_cpus(bad)


def test_publish_forms() -> None:
    P = flags.Port
    assert flags.parse_publish("80") == [P("", 0, 80, "tcp")]
    assert flags.parse_publish("8080:80") == [P("", 8080, 80, "tcp")]
    assert flags.parse_publish("127.0.0.1:8080:80/udp") == [P("127.0.0.1", 8080, 80, "udp")]
    assert flags.parse_publish("127.0.0.1::80") == [P("127.0.0.1", 0, 80, "tcp")]
    assert flags.parse_publish("[::1]:53:53/udp") == [P("::1", 53, 53, "udp")]
    assert flags.parse_publish("8000-8001:80-81") == [P("", 8000, 80, "tcp"), P("", 8001, 81, "tcp")]
    assert flags.parse_publish("0:80") == [P("", 0, 80, "tcp")]


@pytest.mark.parametrize("text", ["99999:80", "80:0", "80:99999", "x:80", "1.2.3.400:80:80", "80/icmp",
                                  "8000-8002:80-81", "1:2:3:4", ":"])
def test_bad_publish(text: str) -> None:
    with pytest.raises(UsageError, match=r"-p, --publish"):
        flags.parse_publish(text)


def test_volumes_mounts_tmpfs() -> None:
    M = mounts.MountSpec
    assert mounts.parse_volume("/src:/dst") == M("bind", "/src", "/dst", False, "", origin="binds")
    assert mounts.parse_volume("/src:/dst:ro") == M("bind", "/src", "/dst", True, "", origin="binds")
    assert mounts.parse_mount("type=bind,source=/a,target=/b,readonly") == M("bind", "/a", "/b", True, "", origin="mounts")
    assert mounts.parse_mount("type=bind,src=/a,dst=/b,ro=false") == M("bind", "/a", "/b", False, "", origin="mounts")
    assert mounts.parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770") == M(
        "tmpfs", "", "/t", False, f"size={64 << 20},mode=1770", origin="mounts")
    assert mounts.parse_tmpfs("/run:rw,noexec,size=64m") == M("tmpfs", "", "/run", False, "rw,noexec,size=64m",
                                                             origin="tmpfs")
    assert mounts.parse_tmpfs("/ro:ro").read_only
    for bad in ("rel", "/a:rel", "/a:/b:xx", "a:b:c:d", "vol:/d:rshared", "/a:/b:ro,rw"):
        with pytest.raises(UsageError, match="--volume"):
            mounts.parse_volume(bad)
    for bad in ("type=bind,target=/x", "type=tmpfs,source=/a,target=/x",
                "type=bind,source=/a,target=/b,tmpfs-size=1m", "type=tmpfs,target=rel", "type=tmpfs,target=/x,bogus=1"):
        with pytest.raises(UsageError, match="--mount"):
            mounts.parse_mount(bad)


def test_restart_policies() -> None:
    assert flags.parse_restart("no") == ("no", 0)
    assert flags.parse_restart("always") == ("always", 0)
    assert flags.parse_restart("on-failure:3") == ("on-failure", 3)
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(UsageError, match="--restart"):
            flags.parse_restart(bad)


def test_env_files_then_flags_and_client_passthrough(tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text("# comment\n\nA=1\nFROM_CLIENT\nUNSET_HERE\n  B=two words\n")
    env = flags.parse_env(["C=3", "HOME_X", "A=override"], [str(f)], {"FROM_CLIENT": "x", "HOME_X": "/h"})
    assert env == ["A=1", "FROM_CLIENT=x", "B=two words", "C=3", "HOME_X=/h", "A=override"]
    with pytest.raises(UsageError, match="--env-file"):
        flags.parse_env([], [str(tmp_path / "missing")], {})
    with pytest.raises(UsageError, match="--env"):
        flags.parse_env(["BAD KEY=1"], [], {})


def test_other_validators() -> None:
    assert flags.parse_labels(["a=1", "b", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
    assert flags.parse_log_opts(["max-size=10m", "max-file=3"]) == ("10m", 3)
    assert flags.parse_add_host("db:10.0.0.2") == "db:10.0.0.2"
    assert flags.parse_add_host("v6=::1") == "v6:::1"
    assert flags.parse_add_host("gw:host-gateway") == "gw:host-gateway"
    assert flags.parse_dns("1.1.1.1") == "1.1.1.1"
    assert flags.validate_name("/web_1.a-b") == "web_1.a-b"
    assert flags.parse_signal("SIGUSR1", "--stop-signal") == "SIGUSR1"
    assert flags.parse_signal("term", "--stop-signal") == "term"
    assert flags.parse_signal("9", "--stop-signal") == "9"
    for fn, bad in ((flags.parse_log_opts, ["max-size=big"]), (flags.parse_log_opts, ["mode=x"]),
                    (flags.parse_log_opts, ["max-file=3"]), (flags.parse_labels, ["=v"])):
        with pytest.raises(UsageError):
            fn(bad)  # type: ignore[operator]
    for bad_host in ("nohost", "h:1.2.3", ":1.1.1.1"):
        with pytest.raises(UsageError, match="--add-host"):
            flags.parse_add_host(bad_host)
    with pytest.raises(UsageError, match="--dns"):
        flags.parse_dns("dns.example")
    for bad_name in ("a", "bad name", "-x", "x/y", ""):
        with pytest.raises(UsageError, match="invalid container name"):
            flags.validate_name(bad_name)
    for bad_sig in ("SIGNOPE", "0", "65", "x1"):
        with pytest.raises(UsageError, match="--stop-signal"):
            flags.parse_signal(bad_sig, "--stop-signal")


def test_full_spec_mapping(tmp_path: Path) -> None:
    envf = tmp_path / "e"
    envf.write_text("FROMFILE=1\n")
    s = spec_of(
        "--name", "web", "-e", "A=1", "-e", "PASS", "--env-file", str(envf), "-w", "/srv", "-u", "1000:1000",
        "-h", "box", "--entrypoint", "/bin/sh", "--network", "none", "-p", "8080:80", "-P",
        "-v", "/src:/dst:ro", "--mount", "type=tmpfs,target=/t", "--tmpfs", "/run", "--read-only",
        "-m", "64m", "--cpus", "0.5", "--pids-limit", "100", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD",
        "--stop-signal", "SIGINT", "--stop-timeout", "3", "--restart", "on-failure:3",
        "--add-host", "db:10.0.0.2", "--dns", "8.8.8.8", "-l", "a=b", "--log-opt", "max-size=1m",
        "--log-opt", "max-file=2", "busybox", "-c", "echo hi",
        environ={"PASS": "through"},
    )
    assert (s.name, s.image, list(s.cmd), s.cmd_set) == ("web", "busybox", ["-c", "echo hi"], True)
    assert (list(s.entrypoint), s.entrypoint_set) == (["/bin/sh"], True)
    assert list(s.env) == ["FROMFILE=1", "A=1", "PASS=through"]
    assert (s.working_dir, s.user, s.hostname, s.network_mode) == ("/srv", "1000:1000", "box", "none")
    assert [(p.host_port, p.container_port, p.protocol) for p in s.port_bindings] == [(8080, 80, "tcp")]
    assert s.publish_all and s.read_only_rootfs
    assert [(m.type, m.source, m.target, m.read_only) for m in s.mounts] == [
        ("bind", "/src", "/dst", True), ("tmpfs", "", "/t", False), ("tmpfs", "", "/run", False)]
    assert (s.memory, s.nano_cpus, s.pids_limit) == (64 << 20, 500_000_000, 100)
    assert (list(s.cap_add), list(s.cap_drop)) == (["NET_ADMIN"], ["MKNOD"])
    assert (s.stop_signal, s.HasField("stop_timeout"), s.stop_timeout) == ("SIGINT", True, 3)
    assert (s.restart_policy.name, s.restart_policy.maximum_retry_count) == ("on-failure", 3)
    assert (list(s.extra_hosts), list(s.dns), dict(s.labels)) == (["db:10.0.0.2"], ["8.8.8.8"], {"a": "b"})
    assert (s.log_max_size, s.log_max_file, s.auto_remove) == ("1m", 2, False)


def test_spec_defaults_and_rm() -> None:
    s = spec_of("busybox")
    assert (s.cmd_set, s.entrypoint_set, s.HasField("stop_timeout"), s.memory, s.network_mode) == (
        False, False, False, 0, "")
    assert spec_of("--entrypoint", "", "busybox").entrypoint == [""]
    assert spec_of("--rm", "busybox").auto_remove  # detached: the daemon removes
    assert not spec_of("--rm", "busybox", detach=False).auto_remove  # foreground: the client removes
    assert spec_of("--pids-limit", "-1", "busybox").pids_limit == -1
    assert spec_of("--pids-limit", "0", "busybox").pids_limit == -1
    with pytest.raises(UsageError, match="--stop-timeout"):
        spec_of("--stop-timeout", "-5", "busybox")
    with pytest.raises(UsageError, match="--restart and --rm"):
        spec_of("--rm", "--restart", "always", "busybox")
    with pytest.raises(UsageError, match="duplicate mount point"):
        spec_of("-v", "/a:/x", "--tmpfs", "/x", "busybox")


def test_argparse_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError) as info:
        build(full=True).parse_args(["run", "--no-such-flag", "busybox"])
    assert info.value.exit_code == 125
    with pytest.raises(UsageError):
        build(["nosuchverb"]).parse_args(["nosuchverb"])


def test_only_the_verb_being_run_gets_its_flags() -> None:
    assert build(["-a", "/x.sock", "ps", "-a"]).parse_args(["-a", "/x.sock", "ps", "-a"]).all is True
    assert build(["image", "ls"]).parse_args(["image", "ls", "-q"]).quiet is True
    with pytest.raises(UsageError):  # run's flags were not built for `ps`
        build(["ps"]).parse_args(["run", "--rm", "busybox"])
    help_text = build([]).format_help()
    for verb in ("run", "ps", "images", "events", "completion"):
        assert verb in help_text
    from ctrctl.completion import bash_script

    script = bash_script()
    assert "--stop-timeout" in script and "--no-trunc" in script and '"image ls")' in script


def test_help_and_flag_errors_do_not_import_grpc() -> None:
    """`ctrctl --help` and a rejected flag never load grpc (it costs ~80 ms of start-up)."""
    code = (
        "import sys, io, contextlib\n"
        "from ctrctl.main import main\n"
        "buf = io.StringIO()\n"
        "try:\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'run' in buf.getvalue()\n"
        "assert not any(m.startswith('google') for m in sys.modules)\n"
        "assert main(['run', '--memory', '12zz', 'busybox']) == 125\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'grpc'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_dns_search_ip_and_mac_flags_reach_the_spec() -> None:
    spec = spec_of("--network", "app", "--dns-search", "a.test", "--dns-search", "b.test", "--ip", "10.5.0.9",
                   "--mac-address", "02:42:ac:11:00:09", "busybox")
    assert list(spec.dns_search) == ["a.test", "b.test"]
    assert (spec.ip_address, spec.mac_address, spec.network_mode) == ("10.5.0.9", "02:42:ac:11:00:09", "app")
    assert not spec_of("busybox").dns_search and spec_of("busybox").ip_address == ""
