"""The whole command line as argparse parsers (argparse only: `ctrctl --help` stays cheap).

Every verb records `handler="module:function"`; main imports that module only when the verb runs,
so the gRPC client and the generated messages are loaded by the verbs that talk to the daemon and by nothing else.
Flag values are kept as strings here and validated in ctrctl.flags with docker's wording.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

from ctrctl.errors import UsageError

DEFAULT_ADDRESS = "/run/ctrd/ctrd.sock"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and docker's exit code 125, and the help is laid
    out to the terminal's width without importing shutil (`_formatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _formatter)  # verbs' parsers come through here too
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's HelpFormatter with the width it would compute itself (the terminal's columns
    minus 2), given to it.

    argparse makes a formatter for every add_argument (to check the flag's metavar), and a formatter
    without a width imports shutil (which imports zlib, bz2 and lzma) and asks it for the terminal
    size. Measured 2026-12-06 (CPython 3.11.7, .pyc compiled, perf_counter in a fresh `python3 -S`,
    runs interleaved): building and parsing `ctrctl run --rm --network none IMG true` took
    4.8 / 5.0 / 4.8 ms with argparse's own width and 2.9 / 2.7 / 2.8 ms with this one."""
    return argparse.HelpFormatter(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, by the same rules: $COLUMNS when it is a positive
    number, else the size of the terminal on the original stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Sink:
    """Stands in for the parser of a verb that is not being run: its flags are never built
    (argparse costs ~0.1 ms per flag, and `ctrctl ps` should not pay for `run`'s forty)."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_defaults(self, **kwargs: Any) -> None:
        return None


# NamedTuple, not dataclass: `dataclasses` (with the `inspect` it imports) costs ~7 ms of every
# ctrctl start-up (measured 2026-12-06, -X importtime)
class _Subs(NamedTuple):
    action: Any  # argparse._SubParsersAction, or None under a verb that is not being run
    want: Callable[[str], bool]
    every: bool = True  # register every verb (listing, usage errors), or only the wanted one


def _group(p: Any, title: str = "commands") -> _Subs:
    if isinstance(p, _Sink):
        return _Subs(None, lambda _: False)
    return _Subs(p.add_subparsers(title=title, metavar="COMMAND"), lambda _: True)


def _verb(sub: _Subs, name: str, handler: str, help_: str, aliases: tuple[str, ...] = (),
          add_help: bool = True) -> Any:
    if sub.action is None:
        return _Sink()
    if not sub.every and not (sub.want(name) or any(sub.want(a) for a in aliases)):
        return _Sink()
    p = sub.action.add_parser(name, help=help_, description=help_, aliases=list(aliases), add_help=add_help)
    p.set_defaults(handler=handler)
    if not (sub.want(name) or any(sub.want(a) for a in aliases)):
        return _Sink()
    return p


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb in a command line: the first word that is neither a global flag nor its value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in ("-a", "--address"):
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _session_flags(p: Any) -> None:
    p.add_argument("--detach-keys", default="", help="override the key sequence for detaching (ctrl-p,ctrl-q)")
    p.add_argument("--sig-proxy", type=_bool_flag, nargs="?", const=True, default=True, metavar="BOOL",
                   help="proxy received signals to the process (not with a tty; default true)")


def _container_flags(p: Any, run: bool) -> None:
    # -h is --hostname (docker), so help is --help only.
    p.add_argument("--help", action="help", help="show this help message and exit")
    if run:
        p.add_argument("-d", "--detach", action="store_true", help="run in the background, print the id")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open (fed by attached clients)")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    if run:
        _session_flags(p)
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]", help="set an environment variable")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE", help="read environment variables from a file")
    p.add_argument("-w", "--workdir", default="", help="working directory inside the container")
    p.add_argument("-u", "--user", default="", help="user: uid[:gid] or name[:group]")
    p.add_argument("-h", "--hostname", default="", help="container host name")
    p.add_argument("--entrypoint", default=None, help="override the image's entrypoint")
    p.add_argument("--network", "--net", default="",
                   help="bridge (default), none, host, container:<name|id>, or a network's name")
    p.add_argument("--network-alias", action="append", default=[], metavar="ALIAS",
                   help="another name for the container on its user-defined network")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:][HOST:]PORT[/PROTO]",
                   help="publish a container port on the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish every exposed port on a random port")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:OPTS]",
                   help="bind a host path (absolute SRC), mount a named volume (SRC a name), or an anonymous one (DST alone)")
    p.add_argument("--mount", action="append", default=[], metavar="type=bind|volume|tmpfs,...", help="attach a mount")
    p.add_argument("--volumes-from", action="append", default=[], metavar="CONTAINER[:ro|rw]",
                   help="mount the volumes and binds of another container")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]", help="mount a tmpfs")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("-m", "--memory", default=None, help="memory limit (e.g. 512m)")
    p.add_argument("--cpus", default=None, help="number of CPUs (e.g. 1.5)")
    p.add_argument("--pids-limit", default=None, help="pids limit (-1 unlimited; default 2048)")
    p.add_argument("--cap-add", action="append", default=[], help="add a Linux capability")
    p.add_argument("--cap-drop", action="append", default=[], help="drop a Linux capability")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=unconfined|PROFILE.json, no-new-privileges[=true]")
    p.add_argument("--privileged", action="store_true", help="all capabilities and host devices, no seccomp")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CONTAINER[:PERMS]]",
                   help="add a host device to the container")
    p.add_argument("--device-cgroup-rule", action="append", default=[], metavar="'TYPE MAJOR:MINOR PERMS'",
                   help="allow a device in the container's devices cgroup (e.g. 'c 1:3 rwm')")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]", help="set a ulimit (nofile, nproc, ...)")
    p.add_argument("--sysctl", action="append", default=[], metavar="KEY=VALUE", help="set a namespaced sysctl")
    p.add_argument("--shm-size", default=None, help="size of /dev/shm (default 64m)")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP", help="an additional group (gid or name)")
    p.add_argument("--stop-signal", default="", help="signal to stop the container (default SIGTERM)")
    p.add_argument("--stop-timeout", default=None, help="seconds to wait before killing on stop")
    p.add_argument("--restart", default="", help="no, always, unless-stopped, on-failure[:N]")
    p.add_argument("--add-host", action="append", default=[], metavar="HOST:IP", help="add a line to /etc/hosts")
    p.add_argument("--dns", action="append", default=[], help="set a DNS server")
    p.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN", help="set a DNS search domain")
    p.add_argument("--ip", default="", metavar="IPV4", help="a fixed IPv4 address on a user-defined network")
    p.add_argument("--mac-address", default="", metavar="MAC", help="the container's MAC address (e.g. 92:d0:c6:0a:29:33)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE", help="set a label")
    p.add_argument("--pull", default="missing", choices=("always", "missing", "never"),
                   help="pull the image before creating: always, missing (default), never")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="max-size (default 20m), max-file (default 5), labels, env, labels-regex, env-regex")
    p.add_argument("--log-driver", default="", choices=("json-file", "local", "none"), help="logging driver (json-file)")
    p.add_argument("--health-cmd", default=None, help="command to check health (run with /bin/sh -c)")
    p.add_argument("--health-interval", default=None, help="time between checks (default 30s)")
    p.add_argument("--health-timeout", default=None, help="longest a check may run (default 30s)")
    p.add_argument("--health-retries", default=None, help="failures in a row that make it unhealthy (default 3)")
    p.add_argument("--health-start-period", default=None, help="start-up time when failures do not count (default 0s)")
    p.add_argument("--health-start-interval", default=None, help="time between checks in the start period (default 5s)")
    p.add_argument("--no-healthcheck", action="store_true", help="disable the image's HEALTHCHECK")
    p.add_argument("image", help="image reference")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def _containers(sub: _Subs) -> None:
    c = "ctrctl.cmd_container"
    _container_flags(_verb(sub, "run", "ctrctl.cmd_run:run", "create and start a container", add_help=False), True)
    _container_flags(_verb(sub, "create", "ctrctl.cmd_run:create", "create a container", add_help=False), False)
    p = _verb(sub, "start", "ctrctl.cmd_run:start", "start stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="attach stdout/stderr and wait for the exit code")
    p.add_argument("-i", "--interactive", action="store_true", help="attach the container's stdin")
    p.add_argument("--detach-keys", default="", help="override the key sequence for detaching (ctrl-p,ctrl-q)")
    p.add_argument("containers", nargs="+")
    p = _verb(sub, "attach", "ctrctl.cmd_run:attach", "attach local stdin, stdout and stderr to a running container")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    _session_flags(p)
    p.add_argument("container")
    for name, aliases, help_ in (("stop", (), "stop containers"), ("restart", (), "restart containers")):
        p = _verb(sub, name, f"{c}:{name}", help_, aliases)
        p.add_argument("-t", "--time", "--timeout", dest="time", default=None, help="seconds to wait before killing")
        if name == "stop":
            p.add_argument("-s", "--signal", default="", help="signal to send first")
        p.add_argument("containers", nargs="+")
    p = _verb(sub, "kill", f"{c}:kill", "kill containers")
    p.add_argument("-s", "--signal", default="", help="signal (default SIGKILL)")
    p.add_argument("containers", nargs="+")
    p = _verb(sub, "rm", f"{c}:rm", "remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    p.add_argument("-v", "--volumes", action="store_true", help="remove the container's anonymous volumes too")
    p.add_argument("containers", nargs="+")
    for name, help_ in (("pause", "pause containers"), ("unpause", "unpause containers"),
                        ("wait", "wait for containers to exit, print exit codes")):
        p = _verb(sub, name, f"{c}:{name}", help_)
        if name == "wait":
            p.add_argument("--condition", default="", choices=("not-running", "next-exit", "removed"),
                           help="what to wait for (default not-running)")
        p.add_argument("containers", nargs="+")
    m = "ctrctl.cmd_manage"
    p = _verb(sub, "rename", f"{m}:rename", "rename a container")
    p.add_argument("container")
    p.add_argument("name")
    p = _verb(sub, "update", f"{m}:update", "change a container's resources or restart policy")
    p.add_argument("-m", "--memory", default=None, help="memory limit (e.g. 512m; -1 unlimited)")
    p.add_argument("--cpus", default=None, help="number of CPUs (0 unlimited)")
    p.add_argument("--pids-limit", default=None, help="pids limit (-1 unlimited)")
    p.add_argument("--restart", default=None, help="no, always, unless-stopped, on-failure[:N]")
    p.add_argument("containers", nargs="+")
    p = _verb(sub, "port", f"{m}:port", "list a container's published ports")
    p.add_argument("container")
    p.add_argument("private_port", nargs="?", default="", metavar="PRIVATE_PORT[/PROTO]")
    p = _verb(sub, "ps", "ctrctl.cmd_ps:ps", "list containers")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids and commands")
    p.add_argument("-n", "--last", default=None, help="show the n last created containers (all states)")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created container (all states)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="name, id, status, label, ancestor, network, health, exited, before, since, volume")
    p.add_argument("--format", default="", help="table, json, or a {{.Field}} template")
    p = _verb(sub, "inspect", "ctrctl.cmd_container:inspect", "low-level information as JSON")
    p.add_argument("--type", choices=("container", "image"), default=None)
    p.add_argument("-f", "--format", default="", help="json or a {{.Path}} template")
    p.add_argument("names", nargs="+")
    p = _verb(sub, "logs", "ctrctl.cmd_container:logs", "print a container's logs")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all", help="number of lines from the end, or all")
    p.add_argument("--since", default="", help="duration (10m), RFC3339 or unix time")
    p.add_argument("--until", default="", help="duration (10m), RFC3339 or unix time")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--details", action="store_true", help="show the extra attributes of each line")
    p.add_argument("container")
    p = _verb(sub, "exec", "ctrctl.cmd_exec:exec_", "run a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="run the command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open (a pipe or the terminal)")
    p.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    p.add_argument("--detach-keys", default="", help="keys that detach from the command (default ctrl-p,ctrl-q)")
    p.add_argument("--privileged", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]")
    p.add_argument("-u", "--user", default="")
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = _verb(sub, "top", "ctrctl.cmd_container:top", "processes of a container")
    p.add_argument("container")
    p = _verb(sub, "stats", "ctrctl.cmd_stats:stats", "resource usage of containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true", help="print one table and exit")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("containers", nargs="*")


def _images(sub: _Subs) -> None:
    m = "ctrctl.cmd_image"

    def ls(p: Any) -> None:
        p.add_argument("-a", "--all", action="store_true")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("--no-trunc", action="store_true")
        p.add_argument("--digests", action="store_true", help="show the registry digests")
        p.add_argument("--format", default="", help="table, json, or a {{.Field}} template")

    def rm(p: Any) -> None:
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("images", nargs="+")

    img = _verb(sub, "image", f"{m}:usage", "manage images")
    isub = _group(img)
    p = _verb(isub, "import", f"{m}:import_", "import a root filesystem tarball as an image")
    p.add_argument("-c", "--change", action="append", default=[], help="Dockerfile instruction (ENV, CMD, ...)")
    p.add_argument("-m", "--message", default="")
    p.add_argument("file", help="tarball path, or - for stdin")
    p.add_argument("reference", nargs="?", default="")
    p = _verb(isub, "load", f"{m}:load", "load an image archive (docker save / OCI layout tar)")
    p.add_argument("-i", "--input", default="-", help="archive path (default stdin)")
    p.add_argument("-q", "--quiet", action="store_true")
    ls(_verb(isub, "ls", f"{m}:ls", "list images", ("list",)))
    rm(_verb(isub, "rm", f"{m}:rm", "remove images", ("remove",)))
    p = _verb(isub, "inspect", f"{m}:inspect", "image details as JSON")
    p.add_argument("-f", "--format", default="")
    p.add_argument("images", nargs="+")
    _image_prune(isub)
    ls(_verb(sub, "images", f"{m}:ls", "list images"))
    rm(_verb(sub, "rmi", f"{m}:rm", "remove images"))
    for group, top in ((sub, True), (isub, False)):  # `ctrctl pull` and `ctrctl image pull`, as docker
        _registry(group, top)


def _registry(sub: _Subs, top: bool) -> None:
    m = "ctrctl.cmd_registry"
    p = _verb(sub, "pull", f"{m}:pull", "download an image from a registry")
    p.add_argument("--platform", default="", help="os/arch[/variant] (default: this host's)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image reference")
    p.add_argument("reference", help="NAME[:TAG|@DIGEST]")
    p = _verb(sub, "push", f"{m}:push", "upload an image to a registry")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("reference", help="NAME[:TAG]")
    p = _verb(sub, "tag", f"{m}:tag", "create a tag TARGET that refers to SOURCE")
    p.add_argument("source")
    p.add_argument("target")
    p = _verb(sub, "save", f"{m}:save", "save images to a tar archive (docker save format)")
    p.add_argument("-o", "--output", default="", help="write to a file instead of stdout")
    p.add_argument("images", nargs="+")
    if not top:
        return
    p = _verb(sub, "login", f"{m}:login", "log in to a registry")
    p.add_argument("-u", "--username", default="")
    p.add_argument("-p", "--password", default="")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("server", nargs="?", default="")
    p = _verb(sub, "logout", f"{m}:logout", "log out from a registry")
    p.add_argument("server", nargs="?", default="")


def _networks(sub: _Subs) -> None:
    m = "ctrctl.cmd_network"
    net = _verb(sub, "network", f"{m}:usage", "manage networks")
    nsub = _group(net)
    p = _verb(nsub, "create", f"{m}:create", "create a network")
    p.add_argument("-d", "--driver", default="bridge", help="bridge (the only driver)")
    p.add_argument("--subnet", default="", help="CIDR (default: the first free 10.89.x.0/24)")
    p.add_argument("--gateway", default="", help="the subnet's first address (the only choice)")
    p.add_argument("--internal", action="store_true", help="no traffic in or out of the network")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE", help="driver options")
    p.add_argument("name")
    p = _verb(nsub, "ls", f"{m}:ls", "list networks", ("list",))
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format", default="", help="table, json, or a {{.Field}} template")
    p = _verb(nsub, "inspect", f"{m}:inspect", "network details as JSON")
    p.add_argument("-f", "--format", default="")
    p.add_argument("networks", nargs="+")
    p = _verb(nsub, "rm", f"{m}:rm", "remove networks", ("remove",))
    p.add_argument("networks", nargs="+")
    p = _verb(nsub, "prune", f"{m}:prune", "remove every unused network")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p = _verb(nsub, "connect", f"{m}:connect", "connect a container to a network")
    p.add_argument("--alias", action="append", default=[], help="another name on this network")
    p.add_argument("--ip", default="", help="IPv4 address on this network (e.g., 172.30.100.104)")
    p.add_argument("network")
    p.add_argument("container")
    p = _verb(nsub, "disconnect", f"{m}:disconnect", "disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")


def _volumes(sub: _Subs) -> None:
    m = "ctrctl.cmd_volume"
    vol = _verb(sub, "volume", f"{m}:usage", "manage volumes")
    vsub = _group(vol)
    p = _verb(vsub, "create", f"{m}:create", "create a volume")
    p.add_argument("-d", "--driver", default="local", help="local (the only driver)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="driver options: type, device, o (e.g. type=tmpfs device=tmpfs o=size=64m)")
    p.add_argument("name", nargs="?", default="")
    p = _verb(vsub, "ls", f"{m}:ls", "list volumes", ("list",))
    p.add_argument("-f", "--filter", action="append", default=[], help="name=, label=, dangling=, driver=")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default="", help="table, json, or a {{.Field}} template")
    p = _verb(vsub, "inspect", f"{m}:inspect", "volume details as JSON")
    p.add_argument("-f", "--format", default="")
    p.add_argument("volumes", nargs="+")
    p = _verb(vsub, "rm", f"{m}:rm", "remove volumes", ("remove",))
    p.add_argument("-f", "--force", action="store_true", help="a missing volume is not an error")
    p.add_argument("volumes", nargs="+")
    p = _verb(vsub, "prune", f"{m}:prune", "remove unused anonymous volumes (all unused ones with -a)")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too")
    p.add_argument("--filter", action="append", default=[], help="label=")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")


def _system(sub: _Subs) -> None:
    m = "ctrctl.cmd_system"
    p = _verb(sub, "events", f"{m}:events", "stream daemon events")
    p.add_argument("--since", default="")
    p.add_argument("--until", default="")
    p.add_argument("-f", "--filter", action="append", default=[], help="container=, event=, type=")
    p.add_argument("--format", default="")
    p = _verb(sub, "info", f"{m}:info", "system-wide information")
    p.add_argument("-f", "--format", default="")
    p = _verb(sub, "version", f"{m}:version", "client and server versions")
    p.add_argument("-f", "--format", default="")
    p = _verb(sub, "completion", "ctrctl.completion:completion", "print a shell completion script")
    p.add_argument("shell", choices=("bash", "zsh"))


def _bool_flag(value: str) -> bool:
    v = value.lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"want true or false, not {value!r}")


def _file_verbs(sub: _Subs) -> None:
    m = "ctrctl.cmd_files"
    p = _verb(sub, "cp", f"{m}:cp", "copy files between a container and the host (CONTAINER:PATH, - for a tar)")
    p.add_argument("-a", "--archive", action="store_true", help="keep uid/gid of the source")
    p.add_argument("-L", "--follow-link", action="store_true", help="follow a symlink given as the source")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted (no progress is printed)")
    p.add_argument("src")
    p.add_argument("dst")
    p = _verb(sub, "export", f"{m}:export", "a tar of a container's filesystem")
    p.add_argument("-o", "--output", default="", help="write to a file instead of stdout")
    p.add_argument("container")
    p = _verb(sub, "diff", f"{m}:diff", "files changed in a container's filesystem (A/C/D)")
    p.add_argument("container")
    p = _verb(sub, "commit", f"{m}:commit", "create an image from a container's changes")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-c", "--change", action="append", default=[], help="Dockerfile instruction (CMD, ENV, ...)")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-p", "--pause", nargs="?", const=True, default=True, type=_bool_flag, metavar="BOOL",
                   help="pause the container while committing (default true)")
    p.add_argument("container")
    p.add_argument("reference", nargs="?", default="")


def _prune_flags(p: Any, what: str) -> None:
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--filter", action="append", default=[], help=f"{what}")


def _image_prune(isub: _Subs) -> None:
    p = _verb(isub, "prune", "ctrctl.cmd_cleanup:image_prune", "remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="every image no container uses, not only dangling ones")
    _prune_flags(p, "until=, label=, label!=")


def _files_and_cleanup(sub: _Subs) -> None:
    m = "ctrctl.cmd_cleanup"
    _file_verbs(sub)
    con = _verb(sub, "container", "ctrctl.cmd_cleanup:usage_container", "manage containers")
    csub = _group(con)
    _file_verbs(csub)
    _prune_flags(_verb(csub, "prune", f"{m}:container_prune", "remove every stopped container"), "until=, label=, label!=")
    system = _verb(sub, "system", f"{m}:usage_system", "manage ctrd")
    ssub = _group(system)
    p = _verb(ssub, "df", f"{m}:df", "disk usage")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--format", default="", help="table, json, or a {{.Field}} template")
    p = _verb(ssub, "prune", f"{m}:system_prune", "remove unused data")
    p.add_argument("-a", "--all", action="store_true", help="every unused image, not only dangling ones")
    p.add_argument("--volumes", action="store_true", help="prune volumes too")
    _prune_flags(p, "until=, label=")


def build(argv: Sequence[str] | None = None, *, full: bool = False, every: bool = True) -> Parser:
    """The parser for `argv`: every verb is listed, but only the verb being run gets its flags
    (all of them with full=True, for completion scripts). With every=False only the verb being
    run is registered at all: the other ~70 verbs' parsers cost ~4 of the ~6 ms of building this
    one for `ctrctl run` (timed in-process, 2026-12-06); main parses again with every=True after a
    usage error, so that its message (the list of commands in "invalid choice") stays the same."""
    verb = verb_of(argv) if argv is not None else None
    p = Parser(prog="ctrctl", description="A docker-shaped command line for ctrd.")
    p.add_argument("-a", "--address", default=os.environ.get("CTRD_ADDRESS") or DEFAULT_ADDRESS,
                   help=f"daemon socket (env CTRD_ADDRESS, default {DEFAULT_ADDRESS})")
    p.add_argument("--debug", action="store_true", help="print tracebacks and gRPC details")
    p.set_defaults(handler="")
    sub = _Subs(p.add_subparsers(title="commands", metavar="COMMAND"),
                (lambda _: True) if full else (lambda name: name == verb), every or full or verb is None)
    _containers(sub)
    _images(sub)
    _networks(sub)
    _volumes(sub)
    _system(sub)
    _files_and_cleanup(sub)
    return p
