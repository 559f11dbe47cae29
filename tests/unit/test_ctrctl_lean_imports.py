"""What a ctrctl verb imports before it talks to the daemon: the modules a command line does not
need are imported by the flags that need them (each deferral's measurement is written where it
is). Fresh interpreters: what is checked is sys.modules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run(code: str) -> list[str]:
    """`code` in a fresh interpreter started as the installed ctrctl starts (-S: no other
    package's .pth start-up code, which may import anything), on this one's sys.path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-S", "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_a_run_without_address_flags_does_not_import_ipaddress() -> None:
    lines = _run("""
        import sys
        from ctrctl import flags
        from ctrctl.parser import build
        from ctrctl.spec import build_spec
        argv = ["run", "--rm", "--network", "none", "-p", "8080:80", "-e", "A=1", "busybox", "true"]
        spec = build_spec(build(argv).parse_args(argv), {}, detach=True)
        print("ipaddress" in sys.modules, spec.image)
        assert flags.parse_dns("1.1.1.1") == "1.1.1.1"
        print("ipaddress" in sys.modules)
    """)
    assert lines == ["False busybox", "True"]


def test_json_is_imported_by_what_reads_or_prints_json() -> None:
    lines = _run("""
        import sys
        from ctrctl import cmd_run, cmd_system, format
        from ctrctl.parser import build
        from ctrctl.spec import build_spec
        argv = ["run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true"]
        build_spec(build(argv).parse_args(argv), {}, detach=True)
        print("json" in sys.modules)
        assert format.quote('say "hi"') == '"say \\\\"hi\\\\""'
        print("json" in sys.modules)
    """)
    assert lines == ["False", "True"]


def test_the_connection_does_not_import_the_socket_module() -> None:
    # ctrctl.h2grpc and the reachability probe use `_socket`: `socket` also loads selectors and array
    lines = _run("""
        import sys
        from ctrctl import cmd_run, h2grpc
        from ctrctl.client import Client, reachable
        print(reachable("/nonexistent/ctrd.sock"))
        try:
            h2grpc.Channel("/nonexistent/ctrd.sock").connect()
        except h2grpc.RpcError as exc:
            print(exc.code().name)
        print("socket" in sys.modules, "selectors" in sys.modules)
    """)
    assert lines == ["False", "UNAVAILABLE", "False False"]
