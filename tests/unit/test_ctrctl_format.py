"""ctrctl: output shapes (durations, ps table, JSON lines, templates, times) and exit-code mapping."""

from __future__ import annotations

import json
import re
import socket
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrctl import errors, format, ps
from ctrctl.client import daemon_error
from ctrctl.errors import UsageError
from ctrd import errdefs

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "Less than a second"), (1, "1 second"), (3, "3 seconds"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (59 * 60, "59 minutes"), (3600, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (13 * 86400, "13 days"),
    (14 * 86400, "2 weeks"), (59 * 86400, "8 weeks"), (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert format.human_duration(seconds) == text


def test_sizes() -> None:
    assert format.human_size(4_260_000) == "4.26MB"
    assert format.human_size(999) == "999B"
    assert format.human_size(1_500) == "1.5kB"
    assert format.bytes_size(1 << 20) == "1MiB"
    assert format.bytes_size(1.5 * (1 << 30)) == "1.5GiB"


def test_tabulate_pads_three_spaces_and_leaves_last_column_ragged() -> None:
    assert format.tabulate([["A", "BB", "C"], ["aaaa", "b", "c"]]) == "A      BB   C\naaaa   b    c\n"


def test_tabulate_rows_of_unequal_length() -> None:
    # a row's last cell is ragged wherever it ends, and does not widen its column for the others
    assert format.tabulate([["a", "bb", "c"], ["aaaa"], ["x", "y"]]) == "a   bb   c\naaaa\nx   y\n"
    assert format.tabulate([["", ""], ["abc", "d  "]]) == "\nabc   d\n"
    assert format.tabulate([]) == "" and format.tabulate([[]]) == "\n"


@given(st.text())
def test_quote_is_json_quoting(text: str) -> None:
    assert format.quote(text) == json.dumps(text, ensure_ascii=False)


def test_templates() -> None:
    obj = {"Names": "web", "State": {"Status": "running", "Pid": 4}, "Env": ["A=1"], "Ok": True}
    assert format.render_template("{{.Names}}\\t{{.State.Status}}", obj) == "web\trunning"
    assert format.render_template("{{json .State}}", obj) == '{"Status":"running","Pid":4}'
    assert format.render_template("{{.Env}} {{.Ok}} {{.Missing}}", obj) == "[A=1] true <no value>"
    table = format.template_rows("table {{.Names}}\\t{{.State.Status}}", [obj], {"Names": "NAMES"})
    assert table == "NAMES   STATUS\nweb     running\n"


def test_parse_time_forms() -> None:
    assert format.parse_time("10m", "--since", NOW) == NOW - 600
    assert format.parse_time("1h30m", "--since", NOW) == NOW - 5400
    assert format.parse_time("1700000000.5", "--since", NOW) == 1_700_000_000.5
    assert format.parse_time("2023-11-14T22:13:20Z", "--since", NOW) == 1_700_000_000
    assert format.parse_time("2023-11-14T22:13:20.123456789+00:00", "--since", NOW) == pytest.approx(
        1_700_000_000.123456)
    assert format.parse_time("", "--since", NOW) == 0.0
    with pytest.raises(UsageError, match="--until"):
        format.parse_time("yesterday", "--until", NOW)
    assert format.parse_go_duration("10x") is None


@dataclass
class Port:
    ip: str = ""
    public_port: int = 0
    private_port: int = 80
    type: str = "tcp"


@dataclass
class Summary:
    id: str = "4f1c0e7a9d2b" + "0" * 52
    names: list[str] = field(default_factory=lambda: ["/web"])
    image: str = "busybox"
    command: str = "sh -c 'while true; do sleep 1; done'"
    created: int = int(NOW - 180)
    state: str = "running"
    status: str = "Up 3 seconds"
    ports: list[Port] = field(default_factory=lambda: [Port("0.0.0.0", 8080, 80), Port(private_port=443)])
    labels: dict[str, str] = field(default_factory=lambda: {"tier": "front"})
    mounts: list[str] = field(default_factory=lambda: ["/srv/data"])
    networks: list[str] = field(default_factory=lambda: ["bridge"])
    local_volumes: int = 0


def test_ps_table() -> None:
    older = Summary(id="a" * 64, names=["/old"], command="true", created=int(NOW - 7200), state="exited",
                    status="Exited (0) 2 minutes ago", ports=[])
    out = ps.render([older, Summary()], fmt="", quiet=False, trunc=True, now=NOW)
    lines = out.splitlines()
    assert lines[0].split("   ") == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                                    "NAMES"] or lines[0].startswith("CONTAINER ID   IMAGE     COMMAND")
    assert lines[1].startswith("4f1c0e7a9d2b   busybox   \"sh -c 'while true; …\"   3 minutes ago   Up 3 seconds")
    assert lines[1].endswith("0.0.0.0:8080->80/tcp, 443/tcp   web")
    assert lines[2].startswith("aaaaaaaaaaaa   busybox   \"true\"") and lines[2].endswith("old")
    # Columns line up: every row's NAMES starts at the header's NAMES offset.
    col = lines[0].index("NAMES")
    assert lines[1][col:] == "web" and lines[2][col:] == "old"


def test_ps_no_trunc_quiet_json_template() -> None:
    s = Summary()
    full = ps.render([s], fmt="", quiet=False, trunc=False, now=NOW)
    assert s.id in full and json.dumps(s.command) in full
    assert ps.render([s], fmt="", quiet=True, trunc=True) == s.id[:12] + "\n"
    assert ps.render([s], fmt="", quiet=True, trunc=False) == s.id + "\n"
    line = ps.render([s], fmt="json", quiet=False, trunc=True, now=NOW)
    assert line.count("\n") == 1
    obj = json.loads(line)
    assert obj["ID"] == s.id[:12] and obj["Names"] == "web" and obj["State"] == "running"
    assert obj["Status"] == "Up 3 seconds" and obj["RunningFor"] == "3 minutes ago"
    assert obj["Ports"] == "0.0.0.0:8080->80/tcp, 443/tcp" and obj["Command"] == '"sh -c \'while true; …"'
    assert obj["Labels"] == "tier=front"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+", obj["CreatedAt"])
    assert ps.render([s], fmt="{{.ID}}:{{.Names}}", quiet=False, trunc=True) == s.id[:12] + ":web\n"


def test_ps_mounts_and_local_volumes() -> None:
    s = Summary(mounts=["pgdata", "/srv/some/long/host/path"], local_volumes=1)
    fmt = "{{.Mounts}} {{.LocalVolumes}}"
    assert ps.render([s], fmt=fmt, quiet=False, trunc=True) == "pgdata,/srv/some/long… 1\n"  # docker's Ellipsis(15)
    assert ps.render([s], fmt=fmt, quiet=False, trunc=False) == "pgdata,/srv/some/long/host/path 1\n"
    assert ps.render([s], fmt="table {{.LocalVolumes}}", quiet=False, trunc=True) == "LOCAL VOLUMES\n1\n"


def test_ps_filters() -> None:
    web, db = Summary(), Summary(id="b" * 64, names=["/db"], state="exited", labels={})
    f = ps.parse_filters(["name=we", "status=running", "label=tier=front"])
    assert f.match(web) and not f.match(db)
    assert f.for_daemon() == {"status": "running", "label": "tier=front"}  # name: a regexp, matched here
    both = ps.parse_filters(["name=web", "name=db"])
    assert both.match(web) and both.match(db) and both.for_daemon() == {}
    assert ps.parse_filters(["id=bbb"]).match(db) and not ps.parse_filters(["label=tier"]).match(db)
    for bad in ("nope=1", "status=sleeping", "name"):
        with pytest.raises(UsageError):
            ps.parse_filters([bad])


def test_ports_text_ipv6() -> None:
    assert ps.ports_text([Port("::", 8080, 80), Port("::", 8080, 80)]) == "[::]:8080->80/tcp"


@pytest.mark.parametrize(("exc", "default", "code", "line"), [
    (errdefs.InvalidArgument('exec: "x": not found', reason="exec-not-found"), 125, 127, 'Error: exec: "x": not found'),
    (errdefs.FailedPrecondition("exec: permission denied", reason="exec-not-invokable"), 125, 126,
     "Error: exec: permission denied"),
    (errdefs.InvalidArgument("invalid memory"), 125, 125, "Error: invalid memory"),
    (errdefs.Internal("boom"), 1, 1, "Error: boom"),
])
def test_exit_code_mapping(exc: errdefs.CtrdError, default: int, code: int, line: str) -> None:
    err = daemon_error(exc, default)
    assert (err.exit_code, err.line) == (code, line)


def test_not_found_wording() -> None:
    assert daemon_error(errdefs.NotFound("no such container: foo"), 1, container="foo").line == (
        "Error: No such container: foo")
    assert daemon_error(errdefs.NotFound("gone"), 1, image="img").line == "Error: No such image: img"
    assert errors.Unreachable("/x.sock").line == "Cannot connect to ctrd at /x.sock: is the daemon running?"
    assert errors.Unreachable("/x.sock").exit_code == 1


def test_unreachable_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctrctl import client

    assert client.reachable(str(tmp_path / "absent.sock")) is False
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(tmp_path / "s.sock"))
        listener.listen()
        assert client.reachable(str(tmp_path / "s.sock")) is True
    finally:
        listener.close()

    class Denied(socket.socket):  # a socket the kernel refuses to connect (as for a non-root user)
        def connect(self, addr: object) -> None:
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(client, "_socket", types.SimpleNamespace(
        socket=Denied, AF_UNIX=socket.AF_UNIX, SOCK_STREAM=socket.SOCK_STREAM))
    with pytest.raises(errors.CliError, match="permission denied while trying to connect"):
        client.reachable(str(tmp_path / "s.sock"))


def test_import_progress_bar_only_on_a_tty(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from ctrctl.cmd_image import _Progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    quiet = _Progress("Importing", 1000)
    quiet.add(500)
    quiet.close()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = _Progress("Importing", 4_000_000)
    bar.add(1_000_000)
    bar.add(3_000_000)
    bar.close()
    err = capsys.readouterr().err
    assert err.startswith("\rImporting [==========>")
    assert err.endswith("[" + "=" * 40 + "] 4MB/4MB\n")


def test_zsh_completion_wraps_bash() -> None:
    from ctrctl.completion import zsh_script

    script = zsh_script()
    assert script.startswith("#compdef ctrctl\n") and "bashcompinit" in script and "complete -F _ctrctl" in script


def test_ps_new_filters_go_to_the_daemon_with_their_values_joined() -> None:
    f = ps.parse_filters(["health=healthy", "health=starting", "exited=0", "before=web", "volume=/data",
                          "network=app", "ancestor=busybox", "since=db"])
    assert f.for_daemon() == {"health": "healthy\nstarting", "exited": "0", "before": "web", "volume": "/data",
                              "network": "app", "ancestor": "busybox", "since": "db"}
    assert f.match(Summary())  # the daemon decided these
    for bad in ("health=fine", "exited=x", "before=", "volume="):
        with pytest.raises(UsageError):
            ps.parse_filters([bad])


def test_ps_template_placeholders() -> None:
    s = Summary(labels={"tier": "front", "com.x": "1"})
    out = ps.render([s], fmt='{{.Label "com.x"}}|{{.Label "nope"}}|{{.Mounts}}|{{.Networks}}', quiet=False,
                    trunc=True)
    assert out == "1||/srv/data|bridge\n"
    table = ps.render([s], fmt="table {{.Names}}\t{{.Networks}}\t{{.Mounts}}", quiet=False, trunc=True)
    assert table.splitlines()[0].split() == ["NAMES", "NETWORKS", "MOUNTS"]
