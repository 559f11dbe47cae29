"""The console script starts without the cyclic garbage collector and turns it back on, with what
start-up made frozen, just before the verb runs (ctrctl/main.py `_collect_from_here` says why);
main(argv) called as a function leaves the caller's collector alone."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import subprocess
import sys
import textwrap


def test_the_console_script_runs_the_verb_with_the_collector_on_and_start_up_frozen() -> None:
    code = textwrap.dedent("""
        import gc, sys
        from ctrctl import cmd_system, main

        def version(args):
            print("verb", gc.isenabled(), gc.get_freeze_count() > 0, "ctrctl.parser" in sys.modules, flush=True)
            return 7

        cmd_system.version = version
        sys.argv = ["ctrctl", "-a", "/nonexistent.sock", "version"]
        print("before", gc.isenabled(), gc.get_freeze_count(), flush=True)
        main.main()
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 7, out.stderr
    assert out.stdout.splitlines() == ["before True 0", "verb True True True"]


def test_main_as_a_function_leaves_the_collector_as_it_was() -> None:
    from ctrctl.main import main

    frozen = gc.get_freeze_count()
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert main(["-a", "/nonexistent/ctrd.sock", "ps"]) != 0
            assert gc.isenabled() == enabled and gc.get_freeze_count() == frozen
        finally:
            gc.enable()
