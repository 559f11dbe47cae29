"""Regenerate the Python code for every .proto under protos/ (the only codegen entry point).

    python protos/generate.py          # write *_pb2.py, *_pb2.pyi, *_pb2_grpc.py, *_pb2_grpc.pyi
    python protos/generate.py --check  # exit 1 when the committed files differ from a fresh generation
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out: Path) -> list[Path]:
    from grpc_tools import protoc  # dev dependency only

    protos = sorted(p.relative_to(HERE) for p in HERE.rglob("*.proto"))
    # The shim API travels over the shim's own framing, never gRPC: no grpc stubs for it, so that
    # nothing in shimd can import grpc by accident.
    public = [str(p) for p in protos if p.parts[:2] != ("ctrd", "shim")]
    private = [str(p) for p in protos if p.parts[:2] == ("ctrd", "shim")]
    base = ["protoc", f"-I{HERE}", f"--python_out={out}", f"--mypy_out={out}"]
    grpc_out = [f"--grpc_python_out={out}", f"--mypy_grpc_out=only_async:{out}"]
    for args in (base + grpc_out + public, base + private):
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    return [p for p in out.rglob("*") if p.name.endswith(SUFFIXES)]


def main() -> int:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        produced = generate(out)
        stale: list[str] = []
        for src in produced:
            rel = src.relative_to(out)
            dst = HERE / rel
            if check:
                if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                    stale.append(str(rel))
            else:
                shutil.copyfile(src, dst)
        wanted = {p.relative_to(out) for p in produced}
        extra = [p.relative_to(HERE) for p in HERE.rglob("*") if p.name.endswith(SUFFIXES) and p.relative_to(HERE) not in wanted]
        if check:
            stale += [f"{p} (no .proto)" for p in extra]
            if stale:
                print("generated code is stale; run `python protos/generate.py`:\n  " + "\n  ".join(stale), file=sys.stderr)
                return 1
            print(f"protos: {len(produced)} generated files up to date")
        else:
            for p in extra:
                (HERE / p).unlink()
            print(f"protos: wrote {len(produced)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
