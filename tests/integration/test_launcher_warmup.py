"""The shim launcher's warm-up covers the interactive paths (attach, terminal, streaming exec).

Every shim is forked from the launcher after its warm-up and gc.freeze(): a module a shim imports
on first use, or a function it runs for the first time, costs each shim private copies of the
pages involved. A fresh interpreter runs the launcher's `prewarm()`, then (1) the attach and
terminal functions must already be quickened (CPython specialises a function's bytecode in place
after a few calls: done in the launcher, it is shared; done in a shim, it is that shim's copy), and
(2) a shim's interactive life driven by this test's own client (`-it` with stdin_once, `-i`, a
resize, a second client, a streaming `exec -it`) must import no module the launcher has not.
No root: the "container" is the warm-up's /bin/sh stand-in, its pty from the host's devpts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

_DRIVER = textwrap.dedent('''
    import sys
    from shimd.launch import launcher
    launcher.prewarm()
    launcher_modules = set(sys.modules)

    import asyncio, json, socket, tempfile
    from pathlib import Path
    from ctrd.shim import attachwire
    from ctrd.shim.v1 import shim_pb2
    from shimd import attach, console, execs, logs, prctl, task as task_mod
    from shimd.launch import warmup
    from shimd.loop import new_loop
    from shimd.reaper import Reaper

    HOT = [attach.Fanout._on_accept, attach.Fanout.add, attach.Fanout.publish, attach.Fanout.on_frame,
           attach.Client.__init__, attach.Client._on_readable, attach.Client.send, attach.Client.close,
           attach.StdinSink.write, console.pair, console.take_master, console.resize,
           task_mod.Task.create, task_mod.Task.resize_now, execs.ExecProcess.start, logs.LogPump._on_readable]
    cold = [f.__qualname__ for f in HOT if f.__code__._co_code_adaptive == f.__code__.co_code]
    driver_modules = set(sys.modules) - launcher_modules

    async def frames_until(sock, want_kind, marker=b""):
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while True:
            for kind, data in attachwire.take_frames(buf):
                if kind == want_kind and marker in data:
                    return
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 60)
            if not chunk:
                raise ConnectionError(f"attach socket closed before frame {want_kind} {marker!r}")
            buf += chunk

    async def connect(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, path)
        return s

    async def life(state, terminal):
        reaper = Reaper()
        reaper.install(asyncio.get_running_loop())
        bundle = state / "bundle"
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps({"process": {"args": ["sh"], "terminal": terminal}}))
        (bundle / warmup._INTERACTIVE).touch()
        t = task_mod.Task("c1", state, reaper, warmup._sh_backend)
        send = asyncio.get_running_loop().sock_sendall
        try:
            await t.create(shim_pb2.CreateRequest(id="c1", bundle=str(bundle), runtime="sh", log_path=str(state / "log"),
                                                  terminal=terminal, open_stdin=True, stdin_once=True))
            await t.start()
            first = await connect(str(state / attachwire.SOCKET_FILE))
            if terminal:
                await send(first, attachwire.resize(30, 100))
            await send(first, attachwire.frame(attachwire.STDIN, b"hello\\n"))
            await frames_until(first, attachwire.STDOUT, b"hello")
            if terminal:
                await t.resize(31, 101)
                e = t.create_exec(shim_pb2.CreateExecRequest(exec_id="e1", args=["/bin/cat"], terminal=True,
                                                             open_stdin=True, rows=24, cols=80))
                streamed = await connect(e.io_path)
                await t.start_exec("e1")
                await send(streamed, attachwire.frame(attachwire.STDIN, b"in exec\\n"))
                await frames_until(streamed, attachwire.STDOUT, b"in exec")
                await t.resize_exec("e1", 25, 81)
                await send(streamed, attachwire.frame(attachwire.STDIN, b"\\x04"))
                await frames_until(streamed, attachwire.EXIT)
                streamed.close()
                await t.wait_exec("e1")
            second = await connect(str(state / attachwire.SOCKET_FILE))
            first.close()  # a detach: the container goes on
            # one write (stdin_once: the EOF ends the input): with a terminal the ^D ends cat, and
            # the container may be gone (its stream closed) before a second write's drain
            await send(second, attachwire.frame(attachwire.STDIN, b"again\\n" + (b"\\x04" if terminal else b""))
                       + attachwire.frame(attachwire.STDIN_EOF))
            await frames_until(second, attachwire.EXIT)
            second.close()
            await t.wait()
            await t.delete()
        finally:
            await t.shutdown()
            reaper.uninstall()

    prctl.set_child_subreaper(True)  # the shim is the subreaper of its container
    for terminal in (True, False):
        with tempfile.TemporaryDirectory(prefix="ctrd-t-", dir="/tmp") as tmp:
            loop = new_loop()
            try:
                loop.run_until_complete(asyncio.wait_for(life(Path(tmp), terminal), 120))
            finally:
                loop.close()
    print(json.dumps({"cold": cold, "new_modules": sorted(set(sys.modules) - launcher_modules - driver_modules)}))
''')


@pytest.mark.skipif(not hasattr((lambda: None).__code__, "_co_code_adaptive"), reason="no adaptive bytecode")
def test_a_shim_attached_to_a_terminal_finds_its_code_warm_and_imported() -> None:
    r = subprocess.run([sys.executable, "-c", _DRIVER], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["cold"] == [], "the launcher's warm-up does not run these attach/terminal functions"
    assert result["new_modules"] == [], "imported on the attach/terminal path after the launcher's warm-up"
