"""The Docker Engine API's pure parts: create-body translation, routing and versions, filters, frames."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from ctrd.errdefs import InvalidArgument
from daemon.dockerapi import filters as flt
from daemon.dockerapi.create import spec_from_docker
from daemon.dockerapi.errors import HTTPError
from daemon.dockerapi.images import shape_image
from daemon.dockerapi.routing import Router
from daemon.dockerapi.streams import MULTIPLEXED, RAW, frame, stream_type

# what `docker run -d -p 8080:80 --name web -e A=1 --memory 64m busybox httpd` sends (CLI 28, trimmed)
CLI_BODY: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
    "ExposedPorts": {"80/tcp": {}}, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": ["A=1"],
    "Cmd": ["httpd"], "Image": "busybox", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
    "Labels": {}, "HostConfig": {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "",
        "VolumesFrom": None, "ConsoleSize": [50, 200], "CapAdd": None, "CapDrop": None, "CgroupnsMode": "",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "",
        "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
        "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
        "Isolation": "", "CpuShares": 0, "Memory": 67108864, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
        "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
        "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [],
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None,
        "ReadonlyPaths": None,
    },
    "NetworkingConfig": {"EndpointsConfig": {}},
}


def test_the_clis_create_body_translates() -> None:
    s = spec_from_docker(json.loads(json.dumps(CLI_BODY)), "web")
    assert (s.name, s.image, list(s.cmd), s.cmd_set, list(s.env)) == ("web", "busybox", ["httpd"], True, ["A=1"])
    assert not s.entrypoint_set and s.network_mode == "bridge" and s.memory == 64 << 20
    assert [(p.host_port, p.container_port, p.protocol) for p in s.port_bindings] == [(8080, 80, "tcp")]
    assert s.restart_policy.name == "no" and s.pids_limit == 0


@pytest.mark.parametrize(("section", "key", "value"), [
    ("HostConfig", "CpuShares", 512), ("HostConfig", "Links", ["a:b"]), ("HostConfig", "PidMode", "host"),
    ("HostConfig", "CpusetCpus", "0"), ("HostConfig", "OomKillDisable", True), ("HostConfig", "Init", True),
    ("", "Domainname", "example.org"),
])
def test_set_unsupported_fields_are_refused_by_name(section: str, key: str, value: Any) -> None:
    body = json.loads(json.dumps(CLI_BODY))
    (body[section] if section else body)[key] = value
    with pytest.raises(InvalidArgument, match=rf"{key}: .*not supported"):
        spec_from_docker(body, "")


def test_unknown_fields_are_ignored_and_docker_meanings_translated() -> None:
    body: dict[str, Any] = {
        "Image": "busybox", "SomethingNew": {"x": 1}, "Entrypoint": [], "StopTimeout": 3,
        "HostConfig": {"PidsLimit": 0, "Binds": ["/srv:/data:ro"], "Tmpfs": {"/run": "size=1m"},
                       "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700}}],
                       "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
                       "ExtraHosts": ["h:1.2.3.4"], "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}]},
        "NetworkingConfig": {"EndpointsConfig": {"app": {"Aliases": ["www", "web"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}}},
    }
    s = spec_from_docker(body, "web")
    assert s.entrypoint_set and list(s.entrypoint) == [""]  # [] resets the image's entrypoint
    assert s.stop_timeout == 3 and s.pids_limit == -1  # docker's 0 = unlimited
    assert [(m.type, m.source, m.target, m.read_only, m.options) for m in s.mounts] == [
        ("bind", "/srv", "/data", True, ""), ("tmpfs", "", "/run", False, "size=1m"),
        ("tmpfs", "", "/t", False, "size=1024,mode=700")]
    v = spec_from_docker({"Image": "busybox", "Volumes": {"/anon": {}}, "HostConfig": {
        "Binds": ["named:/n:ro,nocopy"], "VolumesFrom": ["other:ro"],
        "Mounts": [{"Type": "volume", "Source": "m", "Target": "/m", "VolumeOptions": {"NoCopy": True}}]}}, "")
    assert [(m.type, m.source, m.target, m.read_only, m.no_copy, m.origin) for m in v.mounts] == [
        ("volume", "named", "/n", True, True, "binds"), ("volume", "", "/anon", False, False, "binds"),
        ("volume", "m", "/m", False, True, "mounts")]
    assert list(v.volumes_from) == ["other:ro"]
    assert (s.log_max_size, s.log_max_file) == ("1m", 2)
    assert s.network_mode == "app" and list(s.network_aliases) == ["www"] and s.ip_address == "10.9.0.5"
    assert [(u.name, u.soft, u.hard) for u in s.ulimits] == [("nofile", 10, 20)]


@pytest.mark.parametrize("body", [
    {"Image": ""}, {"Image": "busybox", "Cmd": [1]}, {"Image": "busybox", "HostConfig": {"Binds": ["vol:/d:zz"]}},
    {"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "npipe", "Source": "v", "Target": "/d"}]}},
    {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "syslog"}}},
    {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8000-8010"}]}}},
    [],
])
def test_bad_or_unsupported_bodies_name_the_field(body: Any) -> None:
    with pytest.raises(InvalidArgument):
        spec_from_docker(body, "")


class _Req:
    def __init__(self, method: str, path: str) -> None:
        self.method, self.path, self.api_version, self.params = method, path, "", {}


async def _h(req: Any) -> None:
    return None


def test_routes_bare_and_versioned_with_parameters() -> None:
    r = Router()
    r.add("GET", "/images/{name:.+}/json", _h)
    r.add("GET", "/containers/{id}/json", _h)
    req: Any = _Req("GET", "/v1.41/images/localhost:5000/a/b:1/json")
    assert r.resolve(req) is _h and req.params == {"name": "localhost:5000/a/b:1"} and req.api_version == "1.41"
    req = _Req("HEAD", "/containers/abc/json")
    assert r.resolve(req) is _h and req.params == {"id": "abc"} and req.api_version == "1.47"
    for path, status in (("/v1.48/containers/a/json", 400), ("/v1.23/containers/a/json", 400),
                         ("/containers/a/b/json", 404)):
        with pytest.raises(HTTPError) as exc:
            r.resolve(_Req("GET", path))  # type: ignore[arg-type]
        assert exc.value.status == status
    with pytest.raises(HTTPError) as exc:
        r.resolve(_Req("POST", "/containers/a/json"))  # type: ignore[arg-type]
    assert exc.value.status == 405


def test_filters_both_encodings_and_unknown_keys() -> None:
    assert flt.parse('{"label":{"a=b":true,"c":false}}', frozenset({"label"})) == {"label": ["a=b"]}
    assert flt.parse('{"label":["a=b"]}', frozenset({"label"})) == {"label": ["a=b"]}
    with pytest.raises(InvalidArgument, match="invalid filter 'nope'"):
        flt.parse('{"nope":["x"]}', frozenset({"label"}))
    assert flt.label_matches({"a": "b", "c": ""}, ["a=b", "c"]) and not flt.label_matches({"a": "b"}, ["a=c"])


def test_frames_and_stream_types() -> None:
    f = frame("stderr", b"hi")
    assert f[:8] == struct.pack(">BxxxL", 2, 2) and f[8:] == b"hi"
    assert stream_type("1.47", False) == MULTIPLEXED and stream_type("1.41", False) == RAW
    assert stream_type("1.47", True) == RAW


def test_image_shape_per_version() -> None:
    doc = {"Id": "sha256:x", "Size": 1, "Config": {"Hostname": "", "Domainname": "", "Env": None, "ExposedPorts": None}}
    old = shape_image(json.loads(json.dumps(doc)), (1, 41))
    assert "ContainerConfig" in old and old["Config"]["Tty"] is False and "ExposedPorts" not in old["Config"]
    new = shape_image(json.loads(json.dumps(doc)), (1, 47))
    assert "ContainerConfig" not in new and "Hostname" not in new["Config"]


def test_docker_address_default_off_and_custom() -> None:
    from pathlib import Path

    from daemon import main

    assert main.load(["--exec-root", "/run/x"]).docker_socket == Path("/run/x/docker.sock")
    assert main.load(["--docker-address", ""]).docker_socket is None
    assert main.load(["--docker-address", "/tmp/d.sock"]).docker_socket == Path("/tmp/d.sock")
    with pytest.raises(InvalidArgument, match="docker_address: socket path longer"):
        main.load(["--docker-address", "/" + "x" * 120])
