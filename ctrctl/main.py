"""`ctrctl`: entry point. Parses the command line, then imports only the verb's module."""

from __future__ import annotations

import gc
import os
import sys
from types import ModuleType

from ctrctl.errors import CliError, UsageError


def main(argv: list[str] | None = None) -> int:
    """`argv=None` is the console script: the process ends here, without the interpreter's
    teardown. Everything is written and closed by then: the
    verbs use `with` for files, their threads are daemon threads, and stdout/stderr are flushed.
    It also starts without the cyclic garbage collector (`_collect_from_here`)."""
    if argv is None:
        gc.disable()
    code = _main(argv)
    if argv is None:
        _flush_quietly()
        try:
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    from ctrctl.parser import build

    words = sys.argv[1:] if argv is None else argv
    parser = build(words, every=False)
    debug = "--debug" in words
    try:
        try:
            args = parser.parse_args(argv)
        except UsageError:
            parser = build(words)  # every verb registered: the usage error reads as it always did
            args = parser.parse_args(argv)
        if not args.handler:
            parser.print_help()
            return 0
        if getattr(args, "format", ""):
            from ctrctl.format import check_template

            check_template(args.format)  # a bad template is a usage error, before any request
        module, _, func = args.handler.partition(":")
        if module != "ctrctl.completion":
            from ctrctl.deferred import defer_protobuf_python_message

            defer_protobuf_python_message()  # ~5-7 ms of protobuf's import the upb backend never uses
        handler = getattr(_verb_module(module), func)
        if argv is None:
            _collect_from_here()
        code: int = handler(args)
        sys.stdout.flush()
        return code
    except CliError as exc:
        _flush_quietly()
        print(exc.line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ctrctl logs x | head`: the reader left; exit quietly like a killed-by-SIGPIPE tool.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        from ctrd import errdefs

        if debug:
            raise
        if isinstance(exc, errdefs.CtrdError):
            print(f"Error: {exc.message}", file=sys.stderr)
        else:
            print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _collect_from_here() -> None:
    """The console script parses its command line and imports the verb's modules with the cyclic
    garbage collector off (everything made so far lives as long as the process: modules,
    classes, the parser); here the collector comes back on, with what exists now frozen (left out
    of every later collection), for the verbs that run for long (logs -f, events, attach).
    Measured 2026-12-06 (A/B runs interleaved, 40 each, CPU p50 from wait4's rusage, against a
    daemon): `ctrctl version` 41.4 -> 38.5 ms, `ctrctl ps -a` 45.7 -> 43.1 ms; turning it back on
    without freezing gave nothing (41.0, 46.8 ms: the collections it had put off ran then), and
    never turning it back on no more than this (39.0, 42.9 ms)."""
    gc.freeze()
    gc.enable()


def _verb_module(name: str) -> ModuleType:
    """The module of the verb being run, by a plain deferred import: each verb loads only its own
    module (the gRPC client and the generated messages come with the verbs that talk to the daemon), and the
    import contracts see every arrow."""
    if name == "ctrctl.cmd_run":
        from ctrctl import cmd_run
        return cmd_run
    if name == "ctrctl.cmd_container":
        from ctrctl import cmd_container
        return cmd_container
    if name == "ctrctl.cmd_ps":
        from ctrctl import cmd_ps
        return cmd_ps
    if name == "ctrctl.cmd_stats":
        from ctrctl import cmd_stats
        return cmd_stats
    if name == "ctrctl.cmd_image":
        from ctrctl import cmd_image
        return cmd_image
    if name == "ctrctl.cmd_registry":
        from ctrctl import cmd_registry
        return cmd_registry
    if name == "ctrctl.cmd_network":
        from ctrctl import cmd_network
        return cmd_network
    if name == "ctrctl.cmd_volume":
        from ctrctl import cmd_volume
        return cmd_volume
    if name == "ctrctl.cmd_system":
        from ctrctl import cmd_system
        return cmd_system
    if name == "ctrctl.cmd_exec":
        from ctrctl import cmd_exec
        return cmd_exec
    if name == "ctrctl.cmd_manage":
        from ctrctl import cmd_manage
        return cmd_manage
    if name == "ctrctl.cmd_files":
        from ctrctl import cmd_files
        return cmd_files
    if name == "ctrctl.cmd_cleanup":
        from ctrctl import cmd_cleanup
        return cmd_cleanup
    if name == "ctrctl.completion":
        from ctrctl import completion
        return completion
    raise ValueError(f"no verb module {name!r}")


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
