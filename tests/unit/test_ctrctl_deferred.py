"""ctrctl.deferred: a module imported on first use (protobuf's pure-Python message class, which the
upb backend never runs). Each case runs in a fresh interpreter: what it checks is sys.modules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _run(code: str, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_generated_messages_work_without_importing_python_message_under_upb() -> None:
    lines = _run("""
        import sys
        from ctrctl.deferred import PROTOBUF_PYTHON_MESSAGE, DeferredModule, defer_protobuf_python_message
        assert defer_protobuf_python_message()
        from ctrd.v1 import container_pb2, image_pb2, system_pb2
        from google.protobuf.internal import api_implementation
        spec = container_pb2.ContainerSpec(image="busybox", cmd=["true"], labels={"a": "b"})
        again = container_pb2.ContainerSpec.FromString(spec.SerializeToString())
        assert again == spec and str(again) == str(spec) and "busybox" in str(spec)
        assert system_pb2.VersionResponse(version="1").version == "1"
        stand_in = sys.modules[PROTOBUF_PYTHON_MESSAGE]
        print(api_implementation.Type(), type(stand_in) is DeferredModule,
              "_deferred_real" in vars(stand_in))
    """)
    backend, deferred, loaded = lines[-1].split()
    if backend == "upb":
        assert (deferred, loaded) == ("True", "False")
    else:  # the pure-Python backend uses the module: it is the real one, loaded through the stand-in
        assert loaded == "True" or deferred == "False"


def test_reading_an_attribute_imports_the_real_module_by_the_import_system() -> None:
    lines = _run("""
        import sys, importlib
        from ctrctl.deferred import PROTOBUF_PYTHON_MESSAGE as NAME, defer
        assert defer(NAME)
        stand_in = sys.modules[NAME]
        spec = importlib.util.find_spec(NAME)
        # what the import system reads of a module in sys.modules imports nothing
        assert stand_in.__spec__.origin == spec.origin and stand_in.__file__ == spec.origin
        assert stand_in.__name__ == NAME and stand_in.__loader__ is spec.loader
        import google.protobuf.internal.python_message as via_import
        assert via_import is stand_in and "_deferred_real" not in vars(stand_in)
        helper = stand_in._AttachFieldHelpers
        real = sys.modules[NAME]
        assert real is not stand_in and type(real).__name__ == "module"
        assert helper is real._AttachFieldHelpers
        from google.protobuf.internal import python_message
        assert python_message is real
        assert stand_in.load() is real  # once
        print("ok")
    """)
    assert lines == ["ok"]


def test_an_imported_or_missing_module_is_not_deferred() -> None:
    lines = _run("""
        import json, sys
        from ctrctl.deferred import defer
        print(defer("json"), sys.modules["json"] is json, defer("ctrctl_no_such_module"),
              defer("ctrctl_no_such_package.module"), "ctrctl_no_such_module" in sys.modules)
    """)
    assert lines == ["False True False False False"]


def test_the_pure_python_backend_still_works_through_the_stand_in() -> None:
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    lines = _run("""
        import sys
        from ctrctl.deferred import defer_protobuf_python_message
        defer_protobuf_python_message()
        from ctrd.v1 import container_pb2
        from google.protobuf.internal import api_implementation
        spec = container_pb2.ContainerSpec(image="busybox", cmd=["true"])
        assert container_pb2.ContainerSpec.FromString(spec.SerializeToString()) == spec
        print(api_implementation.Type(), type(sys.modules["google.protobuf.internal.python_message"]).__name__)
    """, env=env)
    assert lines == ["python module"]


def test_a_circular_read_while_the_real_module_loads_reads_it_half_made(tmp_path: Path) -> None:
    """The real module's import reads the stand-in (through a module holding it): as with any
    circular import, it sees what has been defined so far, instead of waiting on itself."""
    (tmp_path / "circ_holder.py").write_text("import circ_real\n")
    (tmp_path / "circ_real.py").write_text(
        "EARLY = 1\nimport circ_holder\nSEEN = circ_holder.circ_real.EARLY\nLATE = 2\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from ctrctl.deferred import defer
        assert defer("circ_real")
        import circ_holder
        stand_in = circ_holder.circ_real
        print(stand_in.LATE, stand_in.SEEN, sys.modules["circ_real"] is not stand_in)
    """)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "1", "True"]
