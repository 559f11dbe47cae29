"""The child's setup sequence, run against a recording fake of the kernel (no root needed)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from runtime import caps, creds, defaults, errors, init, rootfs, spec_rootfs
from runtime import spec as spec_mod
from runtime import syscalls as sc
from runtime.init import ChildConfig


class FakeSyscalls:
    """Records every call; touches nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fds: dict[int, str] = {}
        self.via_fd: list[str] = []  # targets mounted through /proc/self/fd/N

    def open_in_root(self, root: str, path: str) -> int:
        fd = 1000 + len(self.fds)
        self.fds[fd] = root + "/" + path.lstrip("/") if path.strip("/") else root
        return fd

    def close(self, fd: int) -> None:
        assert fd in self.fds

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        if target.startswith("/proc/self/fd/"):
            target = self.fds[int(target.rsplit("/", 1)[1])]
            self.via_fd.append(target)
        self.calls.append(("mount", source, target, fstype, flags, data))

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> int:
            self.calls.append((name, *args))
            return 0

        return record

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def index(self, pred: Any) -> int:
        for i, c in enumerate(self.calls):
            if pred(c):
                return i
        raise AssertionError("call not recorded")


def _spec(tmp_path: Path, **process: Any) -> spec_mod.Spec:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    obj = defaults.default_spec(["true"])
    obj["hostname"] = "box"
    obj["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0"}
    obj["process"].update(process)
    return spec_mod.parse(obj, str(tmp_path))


def _run(tmp_path: Path, **process: Any) -> tuple[FakeSyscalls, tuple[str, list[str], dict[str, str]]]:
    spec = _spec(tmp_path, **process)
    s = FakeSyscalls()
    cfg = ChildConfig(process=spec.process, stdio=(0, 1, 2), sock_fd=-1, spec=spec,
                      unshare_flags=sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET,
                      cgroup_sources=(("pids", "/sys/fs/cgroup/pids/ctrd/x"),))
    cwd = os.getcwd()
    try:
        result = init.setup(cfg, s)  # type: ignore[arg-type]
    finally:
        os.chdir(cwd)
    return s, result


def test_setup_order(tmp_path: Path) -> None:
    s, (path, argv, env) = _run(tmp_path, noNewPrivileges=True, user={"uid": 4242, "gid": 4243})
    root = str(tmp_path / "rootfs")
    unshare = s.index(lambda c: c[0] == "unshare")
    first_mount = s.index(lambda c: c[0] == "mount")
    assert unshare < first_mount
    assert s.calls[first_mount] == ("mount", "", "/", "", sc.MS_PRIVATE | sc.MS_REC, "")
    assert s.calls[first_mount + 1] == ("mount", root, root, "bind", sc.MS_BIND | sc.MS_REC, "")
    proc = s.index(lambda c: c[0] == "mount" and c[2] == root + "/proc")
    assert root + "/proc" in s.via_fd and root + "/dev" in s.via_fd  # never a path string (CVE-2021-30465)
    nodes = s.index(lambda c: c[0] == "mknod" and c[1] == root + "/dev/null")
    pivot = s.index(lambda c: c[0] == "pivot_root")
    detach = s.index(lambda c: c[0] == "umount2")
    host = s.index(lambda c: c[0] == "sethostname")
    sysctl = s.index(lambda c: c[0] == "write_file" and c[1].startswith("/proc/sys/net"))
    ro_sys = s.index(lambda c: c[0] == "mount" and c[2] == "/proc/sys" and c[4] & sc.MS_REMOUNT)
    mask = s.index(lambda c: c[0] == "mount" and c[2] == "/proc/timer_list")
    rlimit_umask = s.index(lambda c: c[0] == "umask")
    bounding = s.index(lambda c: c[0] == "prctl" and c[1] == sc.PR_CAPBSET_DROP)
    uid = s.index(lambda c: c[0] == "setresuid")
    capset = s.index(lambda c: c[0] == "capset")
    nnp = s.index(lambda c: c[0] == "prctl" and c[1] == sc.PR_SET_NO_NEW_PRIVS)
    chdir = s.index(lambda c: c == ("chdir", "/"))
    assert proc < nodes < pivot < detach < host < sysctl < ro_sys < mask < rlimit_umask
    assert rlimit_umask < bounding < uid < capset < nnp
    assert s.calls.index(("setgroups", [])) < s.calls.index(("setresgid", 4243)) < uid
    assert chdir > detach
    assert s.calls[pivot] == ("pivot_root", ".", ".")
    assert path.endswith("/true") and argv == ["true"]
    assert env["HOME"] == "/"  # no passwd entry for uid 4242
    assert s.calls[host] == ("sethostname", "box")


def test_capabilities_exactly_as_specified(tmp_path: Path) -> None:
    s, _ = _run(tmp_path)
    want = caps.mask(defaults.CAPABILITIES)
    dropped = {c[2] for c in s.calls if c[:2] == ("prctl", sc.PR_CAPBSET_DROP)}
    assert dropped == {n for n in range(caps.LAST_CAP + 1) if not want & (1 << n)}
    assert ("capset", want, want, 0) in s.calls
    assert ("prctl", sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL) in s.calls
    assert not any(c[:2] == ("prctl", sc.PR_SET_NO_NEW_PRIVS) for c in s.calls)


def test_ambient_raised_only_when_permitted_and_inheritable(tmp_path: Path) -> None:
    # `runc spec` lists ambient caps with no inheritable set: the kernel would refuse to raise
    # them, so they are skipped (as runc does); inheritable ones are raised.
    cap_set = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    s, _ = _run(tmp_path, capabilities={"bounding": cap_set, "effective": cap_set, "permitted": cap_set,
                                        "inheritable": ["CAP_KILL"], "ambient": cap_set})
    raised = {c[3] for c in s.calls if c[:3] == ("prctl", sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE)}
    assert raised == {caps.NUMBERS["CAP_KILL"]}


def test_cgroup_mount_is_one_readonly_bind_per_controller(tmp_path: Path) -> None:
    s, _ = _run(tmp_path)
    root = str(tmp_path / "rootfs")
    target = root + "/sys/fs/cgroup/pids"
    assert ("mount", "/sys/fs/cgroup/pids/ctrd/x", target, "bind", sc.MS_BIND, "") in s.calls
    remount = next(c for c in s.calls if c[0] == "mount" and c[2] == target and c[4] & sc.MS_REMOUNT)
    assert remount[4] & sc.MS_RDONLY


def test_exec_lookup_errors_match_runc() -> None:
    with pytest.raises(errors.ExecError) as ei:
        creds.lookup("nosuchcmd", {"PATH": "/usr/bin:/bin"})
    assert str(ei.value) == 'exec: "nosuchcmd": executable file not found in $PATH'
    assert ei.value.reason == "exec-not-found"
    with pytest.raises(errors.ExecError) as ei:
        creds.lookup("/no/such", {})
    assert str(ei.value) == 'exec: "/no/such": stat /no/such: no such file or directory'
    with pytest.raises(errors.ExecError) as ei:
        creds.lookup("/etc/passwd", {})
    assert ei.value.reason == "exec-not-invokable"
    assert str(ei.value) == 'exec: "/etc/passwd": permission denied'
    assert creds.lookup("true", {}).endswith("/true")


def test_exec_error_for_execve_errno() -> None:
    assert creds.exec_error("x", errno.ENOEXEC).reason == "exec-not-invokable"
    assert creds.exec_error("x", errno.ENOENT).reason == "exec-not-found"


def test_home_is_read_from_the_container_passwd_as_data(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n1000:x:0:0::/evil:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n")
    assert creds.home_of(1000, str(passwd)) == "/home/u"
    assert creds.home_of(0, str(passwd)) == "/root"
    assert creds.home_of(42, str(passwd)) == "/"


def test_resolve_in_root_never_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "rel").symlink_to("../../../../etc")
    (root / "a" / "up").symlink_to("..")
    r = str(root)
    assert rootfs.resolve_in_root(r, "/abs/passwd") == r + "/etc/passwd"
    assert rootfs.resolve_in_root(r, "/rel/x") == r + "/etc/x"
    assert rootfs.resolve_in_root(r, "/../../..") == r
    assert rootfs.resolve_in_root(r, "/a/up/a/up/abs") == r + "/etc"
    (root / "loop").symlink_to("loop")
    with pytest.raises(errors.SetupError, match="too many levels"):
        rootfs.resolve_in_root(r, "/loop")


def test_proc_must_not_be_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "proc").symlink_to("/tmp")
    m = spec_rootfs.Mount("/proc", "proc", "proc", 0, 0, (), "")
    with pytest.raises(errors.SetupError, match="symlink"):
        rootfs.mount_one(FakeSyscalls(), str(root), m)  # type: ignore[arg-type]


def test_child_interpreter_cannot_import(tmp_path: Path) -> None:
    """After _isolate_interpreter no module can be loaded (container files are never code)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            import sys

            init._isolate_interpreter()
            try:
                import xml.dom.minidom  # noqa: F401
            except ImportError:
                # and nothing is left for a finder to use: no finders, hooks, cached entries or path
                code = 0 if not (sys.meta_path or sys.path_hooks or sys.path_importer_cache or sys.path) else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_describe_maps_errors_to_kinds() -> None:
    assert init.describe(errors.ExecError("e", reason="exec-not-found")) == ("exec", "e", "exec-not-found")
    kind, msg, _ = init.describe(OSError(errno.EPERM, "mount: Operation not permitted", "/x"))
    assert kind == "setup" and "/x" in msg and "operation not permitted" in msg


def test_dev_links_and_nodes(tmp_path: Path) -> None:
    s = FakeSyscalls()
    rootfs.make_devices(s, str(tmp_path), ())  # type: ignore[arg-type]
    nodes = {c[1]: c for c in s.calls if c[0] == "mknod"}
    assert set(nodes) == {str(tmp_path) + p for p, _, _ in rootfs.DEFAULT_DEVICES}
    null = nodes[str(tmp_path) + "/dev/null"]
    assert stat.S_ISCHR(null[2]) and null[3] == os.makedev(1, 3)
    links = {c[2]: c[1] for c in s.calls if c[0] == "symlink"}
    assert links[str(tmp_path) + "/dev/ptmx"] == "pts/ptmx"
    assert links[str(tmp_path) + "/dev/fd"] == "/proc/self/fd"


def test_runtime_interpreter_is_refused_through_shebang_chains(tmp_path: Path) -> None:
    target = tmp_path / "python"
    target.write_text("binary")
    st = target.stat()
    own = (st.st_dev, st.st_ino)
    one = tmp_path / "one"
    one.write_text(f"#!{target} -x\n")
    two = tmp_path / "two"
    two.write_text(f"#! {one}\n")
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    for p in (target, one, two):
        with pytest.raises(errors.ExecError, match="own interpreter") as ei:
            creds.refuse_runtime_binary("x", str(p), own)
        assert ei.value.reason == "exec-not-invokable"
    creds.refuse_runtime_binary("x", str(plain), own)
    creds.refuse_runtime_binary("x", str(tmp_path / "missing"), own)


def test_only_procfs_goes_on_proc_and_only_lxcfs_files_or_procfs_inside_it(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "proc").mkdir(parents=True)
    r = str(root)

    def check(dest: str, typ: str, source: str = "/tmp") -> None:
        m = spec_rootfs.Mount(dest, typ, source, sc.MS_BIND if typ == "bind" else 0, 0, (), "")
        rootfs.check_proc_mount(r, m, rootfs.resolve_in_root(r, dest))

    check("/proc", "proc", "proc")
    check("/proc/uptime", "bind")  # lxcfs
    check("/proc/sys", "bind", "/proc/sys")  # procfs bound onto itself
    for dest, typ in (("/proc", "bind"), ("/proc", "tmpfs"), ("/proc/kcore", "bind"), ("/proc/sys", "tmpfs"),
                      ("//proc/./sys/../kcore", "bind")):
        with pytest.raises(errors.SetupError, match="/proc"):
            check(dest, typ)
    (root / "data").symlink_to("../proc")
    with pytest.raises(errors.SetupError, match="because it is /proc"):
        check("/data", "bind")


def _setup_recording_placed(cfg: ChildConfig, monkeypatch: pytest.MonkeyPatch) -> FakeSyscalls:
    """init.setup with a fake socket: each read of PLACED is recorded among the syscalls."""
    s = FakeSyscalls()
    monkeypatch.setattr(init, "_await_placed", lambda sock: s.calls.append(("placed",)))
    cwd = os.getcwd()
    try:
        init.setup(cfg, s, sock=object())  # type: ignore[arg-type]
    finally:
        os.chdir(cwd)
    assert s.names().count("placed") == 1  # never twice
    return s


@pytest.mark.parametrize("with_cgroup_mount", [True, False])
def test_a_child_placed_late_reads_placed_once_before_it_needs_its_cgroup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_cgroup_mount: bool) -> None:
    """The parent makes the cgroup while the child sets up (runtime.create): the child waits for
    PLACED once, before its cgroup mount, or (without one) before it is ready."""
    spec = _spec(tmp_path)
    if not with_cgroup_mount:
        spec = spec._replace(mounts=tuple(m for m in spec.mounts if m.type not in ("cgroup", "cgroup2")))
    cfg = ChildConfig(process=spec.process, stdio=(0, 1, 2), sock_fd=-1, spec=spec,
                      unshare_flags=sc.CLONE_NEWNS | sc.CLONE_NEWCGROUP,
                      cgroup_sources=(("pids", "/sys/fs/cgroup/pids/ctrd/x"),), placed_late=True)
    s = _setup_recording_placed(cfg, monkeypatch)
    # the cgroup namespace comes first here, and it needs the placement too: one read serves both
    assert s.index(lambda c: c == ("unshare", sc.CLONE_NEWCGROUP)) > s.index(lambda c: c == ("placed",))
    cfg = cfg._replace(unshare_flags=sc.CLONE_NEWNS)
    s = _setup_recording_placed(cfg, monkeypatch)
    placed = s.index(lambda c: c == ("placed",))
    assert placed > s.index(lambda c: c[0] == "mount")  # the rootfs setup has begun meanwhile
    if with_cgroup_mount:
        assert placed < s.index(lambda c: c[0] == "mount" and c[2].endswith("/sys/fs/cgroup/pids"))
    else:
        assert placed > s.index(lambda c: c[0] == "pivot_root")  # at the end of the setup
    assert not init.needs_placed(cfg._replace(placed_late=False))
    assert not init.needs_placed(cfg._replace(userns=True))
