"""Create step 1: every refusal is InvalidArgument naming its field; image defaults are merged."""

from __future__ import annotations

from typing import Any

import pytest

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.containers.validate import normalize
from tests.daemon_fakes import FakeImageConfig

CID = "0123456789ab" + "c" * 52


def norm(img: FakeImageConfig | None = None, **kw: Any) -> Any:
    spec = pb.ContainerSpec(image="busybox", **kw)
    return normalize(spec, "busybox", img or FakeImageConfig(), CID, ncpu=2)


def test_defaults_from_the_image() -> None:
    img = FakeImageConfig(env=["PATH=/bin", "A=1"], cmd=["sh"], working_dir="/w", user="nobody", stop_signal="SIGQUIT",
                          exposed_ports=["80/tcp"], labels={"l": "img"})
    n = norm(img, env=["A=2", "B=3"], labels={"k": "v"})
    assert (n.path, n.args) == ("sh", ())
    assert n.config.env == ("PATH=/bin", "A=2", "B=3")
    assert n.config.working_dir == "/w" and n.config.user == "nobody" and n.config.stop_signal == "SIGQUIT"
    assert n.config.hostname == CID[:12]
    assert dict(n.config.labels) == {"l": "img", "k": "v"}
    assert n.config.exposed_ports == ("80/tcp",)
    assert n.host_config.network_mode == "bridge" and n.host_config.restart_policy.name == "no"
    assert n.name and n.config.stop_timeout is None


def test_command_rules() -> None:
    img = FakeImageConfig(entrypoint=["/ep"], cmd=["x"])
    assert (norm(img).path, norm(img).args) == ("/ep", ("x",))
    n = norm(img, cmd=["y", "z"], cmd_set=True)
    assert (n.path, n.args) == ("/ep", ("y", "z"))
    n = norm(img, entrypoint=["/other"], entrypoint_set=True)  # --entrypoint resets the image's Cmd
    assert (n.path, n.args) == ("/other", ())
    n = norm(img, entrypoint=[""], entrypoint_set=True, cmd=["echo", "hi"], cmd_set=True)
    assert (n.path, n.args) == ("echo", ("hi",))
    with pytest.raises(InvalidArgument, match=r"^cmd: no command specified"):
        norm(FakeImageConfig(cmd=[]))
    with pytest.raises(InvalidArgument, match=r"^cmd: the command to run is an empty string"):
        norm(img, entrypoint=["", ""], entrypoint_set=True)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": "-bad"}, "name"),
        ({"name": "a"}, "name"),
        ({"name": "x/y"}, "name"),
        ({"name": "n" * 200}, "name"),
        ({"env": ["=x"]}, "env"),
        ({"env": ["K=" + "x" * 300_000]}, "env"),
        ({"env": [f"K{i}=" + "x" * 1000 for i in range(1024)]}, "env"),
        ({"working_dir": "rel/dir"}, "working_dir"),
        ({"user": "a:b:c"}, "user"),
        ({"hostname": "-bad-"}, "hostname"),
        ({"network_mode": "we ird"}, "network_mode"),
        ({"network_mode": "-x"}, "network_mode"),
        ({"network_aliases": ["a"]}, "network_aliases"),
        ({"network_mode": "app", "network_aliases": ["bad alias"]}, "network_aliases"),
        ({"network_mode": "container:"}, "network_mode"),
        ({"port_bindings": [pb.PortBinding(container_port=0)]}, "port_bindings.container_port"),
        ({"port_bindings": [pb.PortBinding(container_port=80, host_port=70000)]}, "port_bindings.host_port"),
        ({"port_bindings": [pb.PortBinding(container_port=80, protocol="sctp")]}, "port_bindings.protocol"),
        ({"port_bindings": [pb.PortBinding(container_port=80, host_ip="1.2.3")]}, "port_bindings.host_ip"),
        ({"port_bindings": [pb.PortBinding(container_port=80)], "network_mode": "none"}, "port_bindings"),
        ({"mounts": [pb.Mount(type="bind", source="rel", target="/x")]}, "mounts.source"),
        ({"mounts": [pb.Mount(type="bind", source="/nonexistent-ctrd-src", target="/x")]}, "mounts.source"),
        ({"mounts": [pb.Mount(type="bind", source="/tmp", target="x")]}, "mounts.target"),
        ({"mounts": [pb.Mount(type="bind", source="/tmp", target="/proc")]}, "mounts.target"),
        ({"mounts": [pb.Mount(type="bind", source="/tmp", target="/sys/kernel")]}, "mounts.target"),
        ({"mounts": [pb.Mount(type="bind", source="/tmp", target="/a/../proc/x")]}, "mounts.target"),
        ({"mounts": [pb.Mount(type="bind", source="/tmp", target="/")]}, "mounts.target"),
        ({"mounts": [pb.Mount(type="volume", source="a/b", target="/x")]}, "mounts.source"),
        ({"mounts": [pb.Mount(type="tmpfs", target="/t", options="size=lots")]}, "mounts.options"),
        ({"mounts": [pb.Mount(type="tmpfs", target="/t"), pb.Mount(type="tmpfs", target="/t")]}, "mounts.target"),
        ({"memory": 1024}, "memory"),
        ({"memory": -1}, "memory"),
        ({"nano_cpus": 5_000_000_000}, "nano_cpus"),
        ({"nano_cpus": 1}, "nano_cpus"),
        ({"pids_limit": -5}, "pids_limit"),
        ({"cap_add": ["NOT_A_CAP"]}, "cap_add"),
        ({"cap_drop": ["CAP_BOGUS"]}, "cap_drop"),
        ({"stop_signal": "SIGNOPE"}, "stop_signal"),
        ({"stop_signal": "0"}, "stop_signal"),
        ({"stop_signal": "99"}, "stop_signal"),
        ({"stop_timeout": -2}, "stop_timeout"),
        ({"stop_timeout": 10**9}, "stop_timeout"),
        ({"restart_policy": pb.RestartPolicy(name="sometimes")}, "restart_policy"),
        ({"restart_policy": pb.RestartPolicy(name="always", maximum_retry_count=3)}, "restart_policy.maximum_retry_count"),
        ({"restart_policy": pb.RestartPolicy(name="on-failure", maximum_retry_count=-1)}, "restart_policy.maximum_retry_count"),
        ({"restart_policy": pb.RestartPolicy(name="always"), "auto_remove": True}, "auto_remove"),
        ({"extra_hosts": ["nocolon"]}, "extra_hosts"),
        ({"extra_hosts": ["h:not-an-ip"]}, "extra_hosts"),
        ({"dns": ["8.8.8"]}, "dns"),
        ({"log_max_size": "10q"}, "log_max_size"),
        ({"log_max_file": 3}, "log_max_file"),
    ],
)
def test_each_refusal_names_its_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        norm(**kw)
    assert exc.value.message.startswith(field + ":"), exc.value.message


def test_normalised_values() -> None:
    n = norm(
        name="/web.1", stop_signal="kill", stop_timeout=-1, cap_add=["net_admin"], cap_drop=["CAP_CHOWN"],
        mounts=[pb.Mount(type="bind", source="/tmp/", target="/data/", read_only=True),
                pb.Mount(type="tmpfs", target="/t", options="size=1m,mode=1777")],
        restart_policy=pb.RestartPolicy(name="on-failure", maximum_retry_count=3), memory=64 << 20,
        nano_cpus=1_500_000_000, log_max_size="10m", log_max_file=3, extra_hosts=["db:10.0.0.9"],
        port_bindings=[pb.PortBinding(container_port=80, host_port=8080)], network_mode="default",
    )
    assert n.name == "web.1"
    assert n.config.stop_signal == "SIGKILL" and n.config.stop_timeout == -1
    assert n.host_config.cap_add == ("CAP_NET_ADMIN",) and n.host_config.cap_drop == ("CAP_CHOWN",)
    bind, tmpfs = n.host_config.mounts
    assert (bind.source, bind.target, bind.read_only) == ("/tmp", "/data", True)
    assert tmpfs.options == "size=1048576,mode=1777"
    assert n.host_config.restart_policy.maximum_retry_count == 3
    assert n.host_config.log_max_size == 10 << 20 and n.host_config.log_max_file == 3
    assert n.host_config.network_mode == "bridge"
    assert n.host_config.port_bindings[0].host_port == 8080


def test_host_network_discards_ports_with_a_warning() -> None:
    n = norm(network_mode="host", port_bindings=[pb.PortBinding(container_port=80)])
    assert n.host_config.port_bindings == () and n.warnings


def test_a_user_network_takes_ports_and_aliases() -> None:
    n = norm(network_mode="app", network_aliases=["www", "api.local"], port_bindings=[pb.PortBinding(container_port=80)])
    assert n.host_config.network_mode == "app" and n.host_config.network_aliases == ("www", "api.local")
    assert n.host_config.port_bindings[0].container_port == 80


def test_dns_search_ip_and_mac_are_kept_normalised() -> None:
    n = norm(network_mode="app", dns_search=["corp.test", "."], ip_address="10.5.0.9", mac_address="02:AA:bb:cc:dd:EE")
    h = n.host_config
    assert (h.dns_search, h.ip_address, h.mac_address) == (("corp.test", "."), "10.5.0.9", "02:aa:bb:cc:dd:ee")
    assert norm(mac_address="02-42-ac-11-00-09").host_config.mac_address == "02:42:ac:11:00:09"  # default bridge


@pytest.mark.parametrize(("kw", "msg"), [
    ({"dns_search": ["bad domain"]}, "dns_search: invalid search domain 'bad domain'"),
    ({"dns_search": ["a" * 254]}, "dns_search: invalid search domain"),
    ({"ip_address": "10.5.0.9"}, "ip_address: user specified IP address is supported on user defined networks only"),
    ({"ip_address": "10.5.0.9", "network_mode": "host"}, "ip_address: user specified IP"),
    ({"ip_address": "10.5.0.300", "network_mode": "app"}, "ip_address: invalid IPv4 address '10.5.0.300'"),
    ({"ip_address": "fd00::9", "network_mode": "app"}, "ip_address: invalid IPv4 address"),
    ({"mac_address": "02:42:ac:11:00"}, "mac_address: invalid MAC address"),
    ({"mac_address": "zz:42:ac:11:00:02"}, "mac_address: invalid MAC address"),
    ({"mac_address": "01:00:5e:00:00:01"}, "mac_address: '01:00:5e:00:00:01' is a multicast or zero address"),
    ({"mac_address": "00:00:00:00:00:00"}, "multicast or zero"),
    ({"mac_address": "02:42:ac:11:00:02", "network_mode": "none"}, "mac_address: conflicting options"),
    ({"mac_address": "02:42:ac:11:00:02", "network_mode": "container:x"}, "mac_address: conflicting options"),
])
def test_bad_network_options_are_one_error_naming_the_field(kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg):
        norm(**kw)


def test_network_options_survive_the_record() -> None:
    import json

    from daemon.containers.record import host_config_from_json, host_config_to_json

    h = norm(network_mode="app", dns_search=["corp.test"], ip_address="10.5.0.9", mac_address="02:42:ac:11:00:09").host_config
    raw = host_config_to_json(h)
    assert (raw["DnsSearch"], raw["IPv4Address"], raw["MacAddress"]) == (["corp.test"], "10.5.0.9", "02:42:ac:11:00:09")
    assert host_config_from_json(json.loads(json.dumps(raw))) == h
    assert "IPv4Address" not in host_config_to_json(norm().host_config)
