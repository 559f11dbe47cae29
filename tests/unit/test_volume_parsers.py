"""-v / --mount / --volumes-from for volumes (docker's syntax), and the daemon's name and
local-driver option checks."""

from __future__ import annotations

import pytest

from ctrctl import mounts
from ctrctl.errors import UsageError
from ctrd.errdefs import InvalidArgument
from daemon.volumes import local, names


def test_volume_flag_forms() -> None:
    v = mounts.parse_volume("data:/data")
    assert (v.type, v.source, v.target, v.read_only, v.origin, v.no_copy) == ("volume", "data", "/data", False, "binds", False)
    v = mounts.parse_volume("data:/data:ro,nocopy")
    assert (v.read_only, v.no_copy) == (True, True)
    v = mounts.parse_volume("/anon")  # an anonymous volume
    assert (v.type, v.source, v.target) == ("volume", "", "/anon")
    b = mounts.parse_volume("/src:/dst:ro,rslave")
    assert (b.type, b.read_only, b.propagation) == ("bind", True, "rslave")


def test_mount_volume_keys() -> None:
    m = mounts.parse_mount("type=volume,source=v,destination=/d,readonly,volume-nocopy,volume-opt=type=tmpfs,"
                           "volume-opt=device=tmpfs")
    assert (m.type, m.source, m.target, m.read_only, m.no_copy) == ("volume", "v", "/d", True, True)
    assert m.volume_options == {"type": "tmpfs", "device": "tmpfs"}
    assert mounts.parse_mount("type=volume,dst=/anon").source == ""
    assert mounts.parse_mount("src=/a,dst=/b,bind-propagation=rshared").propagation == "rshared"  # type defaults to bind


@pytest.mark.parametrize("raw,named", [
    ("type=volume,src=v,dst=/d,foo=bar", "unexpected key 'foo'"),
    ("type=volume,src=v,dst=/d,tmpfs-size=1m", "tmpfs-size"),
    ("type=bind,src=/a,dst=/d,volume-nocopy", "volume-nocopy"),
    ("type=tmpfs,dst=/d,bind-propagation=rshared", "bind-propagation"),
    ("type=bind,src=/a,dst=/d,bind-propagation=sideways", "bind-propagation"),
    ("type=volume,src=/abs,dst=/d", "type=bind"),
    ("type=volume,src=v,dst=/d,volume-opt=novalue", "volume-opt"),
    ("type=nfs,dst=/d", "invalid mount type"),
])
def test_mount_refusals_name_the_key(raw: str, named: str) -> None:
    with pytest.raises(UsageError) as exc:
        mounts.parse_mount(raw)
    assert "--mount" in exc.value.line and named in exc.value.line
    assert exc.value.exit_code == 125


def test_volumes_from() -> None:
    assert mounts.parse_volumes_from("c1:ro") == "c1:ro"
    for bad in ("", "c1:rx", ":ro"):
        with pytest.raises(UsageError, match="--volumes-from"):
            mounts.parse_volumes_from(bad)


@pytest.mark.parametrize("name", ["ab", "a.b-c_d", "A1", "0x"])
def test_good_names(name: str) -> None:
    assert names.check_name(name) == name


@pytest.mark.parametrize("name", ["a", "a/b", "..", "../x", ".hidden", "-x", "a b", "", "x" * 2 + "\0"])
def test_bad_names_name_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        names.check_name(name, "mounts.source")
    assert exc.value.message.startswith("mounts.source: ")


def test_random_names_are_64_hex() -> None:
    n = names.random_name()
    assert len(n) == 64 and int(n, 16) >= 0 and n != names.random_name()


def test_local_driver_options() -> None:
    assert local.check_options({}) == {}
    tmpfs = {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,noexec"}
    assert local.check_options(tmpfs) == tmpfs
    opts = local.mount_options(tmpfs)
    assert (opts.fstype, opts.device, opts.flags, opts.data) == ("tmpfs", "tmpfs", local.MS_NOEXEC, "size=64m")
    bind = local.mount_options({"type": "none", "o": "bind,ro", "device": "/srv"})
    assert bind.flags == local.MS_BIND | local.MS_RDONLY and bind.data == ""
    for bad, named in (({"size": "1g"}, '"size"'), ({"type": "tmpfs"}, '"device"'), ({"device": "x"}, '"type"'),
                       ({"type": "none", "device": "/srv"}, "o=bind"), ({"type": "none", "o": "bind", "device": "rel"}, "device")):
        with pytest.raises(InvalidArgument) as exc:
            local.check_options(bad)
        assert exc.value.message.startswith("driver_opts: ") and named in exc.value.message, exc.value.message
