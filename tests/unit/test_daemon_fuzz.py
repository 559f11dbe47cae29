"""Any ContainerSpec either normalises or is refused with InvalidArgument (never another error)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctrd.errdefs import InvalidArgument
from ctrd.v1 import container_pb2 as pb
from daemon.containers.validate import normalize
from tests.daemon_fakes import FakeImageConfig

text = st.text(max_size=40)
paths = st.one_of(text, st.sampled_from(["/", "/tmp", "/proc", "/sys/x", "/data", "rel", "/a/../proc", "/x\0y"]))
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

specs = st.builds(
    pb.ContainerSpec,
    name=st.one_of(text, st.sampled_from(["web", "a", "/ok_1", "x" * 300])),
    image=st.just("busybox"),
    cmd=st.lists(text, max_size=4),
    cmd_set=st.booleans(),
    entrypoint=st.lists(text, max_size=2),
    entrypoint_set=st.booleans(),
    env=st.lists(text, max_size=4),
    working_dir=paths,
    user=text,
    hostname=text,
    labels=st.dictionaries(text, text, max_size=3),
    network_mode=st.one_of(text, st.sampled_from(["bridge", "none", "host", "container:x", "container:"])),
    port_bindings=st.lists(st.builds(pb.PortBinding, host_ip=text, host_port=st.integers(0, 2**32 - 1),
                                     container_port=st.integers(0, 2**32 - 1), protocol=text), max_size=2),
    publish_all=st.booleans(),
    mounts=st.lists(st.builds(pb.Mount, type=st.sampled_from(["bind", "tmpfs", "", "nfs"]), source=paths,
                              target=paths, read_only=st.booleans(), options=text), max_size=2),
    read_only_rootfs=st.booleans(),
    memory=int64,
    nano_cpus=int64,
    pids_limit=int64,
    cap_add=st.lists(text, max_size=2),
    cap_drop=st.lists(text, max_size=2),
    stop_signal=text,
    stop_timeout=ints,
    restart_policy=st.builds(pb.RestartPolicy, name=st.one_of(text, st.sampled_from(["always", "on-failure"])),
                             maximum_retry_count=ints),
    extra_hosts=st.lists(text, max_size=2),
    dns=st.lists(text, max_size=2),
    log_max_size=text,
    log_max_file=ints,
    auto_remove=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs)
def test_create_spec_fuzz(spec: pb.ContainerSpec) -> None:
    try:
        n = normalize(spec, "busybox", FakeImageConfig(), "0123456789ab" + "0" * 52, ncpu=2)
    except InvalidArgument as exc:
        assert exc.message and exc.message == exc.message.strip()
        return
    assert n.path and n.name
