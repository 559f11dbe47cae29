"""ctrctl: --health-*, --log-driver, rename/update/port/wait flag handling (no daemon)."""

from __future__ import annotations

import pytest

from ctrctl import cmd_manage
from ctrctl.errors import UsageError
from ctrctl.parser import build
from tests.unit.test_ctrctl_flags import spec_of


def test_health_flags_to_the_spec() -> None:
    s = spec_of("--health-cmd", "test -e /ok || exit 1", "--health-interval", "1s", "--health-timeout", "500ms",
                "--health-retries", "2", "--health-start-period", "1m30s", "--health-start-interval", "0", "busybox")
    h = s.healthcheck
    assert list(h.test) == ["CMD-SHELL", "test -e /ok || exit 1"]
    assert (h.interval, h.timeout, h.retries, h.start_period, h.start_interval) == (10**9, 5 * 10**8, 2, 90 * 10**9, 0)
    only = spec_of("--health-retries", "5", "busybox")  # the image's command, another retry count
    assert only.HasField("healthcheck") and list(only.healthcheck.test) == [] and only.healthcheck.retries == 5
    assert not spec_of("busybox").HasField("healthcheck")
    assert spec_of("--no-healthcheck", "busybox").no_healthcheck


@pytest.mark.parametrize("argv, needle", [
    (("--no-healthcheck", "--health-cmd", "true"), "--no-healthcheck conflicts"),
    (("--health-interval", "10"), '"--health-interval" flag'),
    (("--health-timeout", "1us"), "at least 1ms"),
    (("--health-retries", "x"), '"--health-retries" flag'),
    (("--health-retries", "-1"), "must not be negative"),
    (("--health-cmd", " "), '"--health-cmd" flag'),
    (("--log-driver", "none", "--log-opt", "max-size=1m"), "takes no options"),
])
def test_bad_health_and_log_flags(argv: tuple[str, ...], needle: str) -> None:
    with pytest.raises(UsageError) as e:
        spec_of(*argv, "busybox")
    assert needle in e.value.line


def test_log_attr_opts_flags() -> None:
    s = spec_of("--log-opt", "labels=tier", "--log-opt", "env=A,B", "--log-opt", "max-size=1m", "busybox")
    assert dict(s.log_opts) == {"labels": "tier", "env": "A,B"} and s.log_max_size == "1m"
    with pytest.raises(UsageError, match="unknown log opt"):
        spec_of("--log-opt", "colour=red", "busybox")


def test_log_driver_flag() -> None:
    assert spec_of("--log-driver", "local", "busybox").log_driver == "local"
    assert spec_of("busybox").log_driver == ""
    with pytest.raises(UsageError):
        spec_of("--log-driver", "syslog", "busybox")


def test_update_request_only_carries_what_was_given() -> None:
    args = build(["update"]).parse_args(["update", "-m", "64m", "--cpus", "0.5", "web"])
    req = cmd_manage.update_request(args)
    assert req.memory == 64 << 20 and req.nano_cpus == 5 * 10**8
    assert not req.HasField("pids_limit") and not req.HasField("restart_policy")
    req = cmd_manage.update_request(build(["update"]).parse_args(["update", "--restart", "on-failure:3",
                                                                  "--pids-limit", "-1", "-m", "-1", "a", "b"]))
    assert (req.restart_policy.name, req.restart_policy.maximum_retry_count, req.pids_limit, req.memory) == (
        "on-failure", 3, -1, -1)
    with pytest.raises(UsageError, match="one or more flags"):
        cmd_manage.update_request(build(["update"]).parse_args(["update", "web"]))
    with pytest.raises(UsageError):
        cmd_manage.update_request(build(["update"]).parse_args(["update", "--restart", "sometimes", "web"]))


def test_port_lines_as_docker_prints_them() -> None:
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
             "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}], "443/tcp": None}
    assert cmd_manage.port_lines(ports) == ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080",
                                            "80/tcp -> [::]:8080"]
    assert cmd_manage.port_lines(ports, "80") == ["0.0.0.0:8080", "[::]:8080"]
    assert cmd_manage.port_lines(ports, "53/udp") == ["127.0.0.1:5353"]
    assert cmd_manage.port_lines(ports, "443") == []
    with pytest.raises(UsageError):
        cmd_manage.port_lines(ports, "http")


def test_wait_condition_and_logs_details_flags() -> None:
    a = build(["wait"]).parse_args(["wait", "--condition", "removed", "web"])
    assert a.condition == "removed"
    assert build(["wait"]).parse_args(["wait", "web"]).condition == ""
    with pytest.raises(UsageError):
        build(["wait"]).parse_args(["wait", "--condition", "soon", "web"])
    assert build(["logs"]).parse_args(["logs", "--details", "web"]).details
