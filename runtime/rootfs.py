"""Building the container's filesystem view inside its new mount namespace.

Every destination is resolved inside the rootfs (symlinks are followed as if the rootfs were
`/`, never out of it). Runs in the child only; all kernel calls go through `Syscalls`.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime import syscalls as sc
from runtime.errors import SetupError
from runtime.spec import Spec
from runtime.spec_rootfs import Device, Mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from runtime.syscalls import Syscalls

DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEV_LINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"), ("pts/ptmx", "/dev/ptmx"),
)
_KEEP_FLAGS = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC  # statvfs ST_* share these bit values
_MAX_LINKS = 40


def resolve_in_root(root: str, path: str) -> str:
    """The host path of `path` as seen from inside `root`: symlinks are resolved against root and
    `..` never climbs above it (a userspace securejoin; the last component need not exist)."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join([*resolved, part])
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise SetupError(f"too many levels of symbolic links in {path}")
            try:
                target = os.readlink(candidate)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                parts.insert(0, part)  # no longer a symlink (renamed meanwhile): look again
                continue
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return root + ("/" + "/".join(resolved) if resolved else "")


def mkdir_all(s: Syscalls, root: str, host_path: str, mode: int = 0o755) -> None:
    """The missing directories of `host_path` (already resolved inside root), each made with
    mkdirat in its parent opened inside root: a component raced into a symlink to the host gets
    nothing created outside (CVE-2024-45310)."""
    rel = host_path[len(root):].strip("/")
    done: list[str] = []
    for part in rel.split("/") if rel else []:
        cur = root + "/" + "/".join([*done, part])
        if not os.path.lexists(cur):
            s.mkdir_in_root(root, "/".join(done), part, mode)
        elif not os.path.isdir(cur):
            raise SetupError(f"mount destination {cur[len(root):]} is not a directory")
        done.append(part)


def _ensure_target(s: Syscalls, root: str, target: str, is_dir: bool) -> None:
    if is_dir:
        mkdir_all(s, root, target)
        return
    mkdir_all(s, root, os.path.dirname(target))
    if not os.path.lexists(target):
        rel = target[len(root):].strip("/")
        s.touch_in_root(root, os.path.dirname(rel), os.path.basename(rel))


def _kept_flags(path: str) -> int:
    try:
        return os.statvfs(path).f_flag & _KEEP_FLAGS
    except OSError:
        return 0


def prepare_root(s: Syscalls, spec: Spec) -> None:
    """Propagation, then make the rootfs a mount point (pivot_root needs one)."""
    s.mount("", "/", "", spec.rootfs_propagation, "")
    s.mount(spec.root, spec.root, "bind", sc.MS_BIND | sc.MS_REC, "")


def mount_all(s: Syscalls, spec: Spec, cgroup_sources: Sequence[tuple[str, str]],
              before_cgroup: Callable[[], None] | None = None) -> None:
    """`before_cgroup`: called before a cgroup mount (the child's cgroup must exist by then)."""
    dev_is_tmpfs = False
    for m in spec.mounts:
        if m.type == "cgroup" or m.type == "cgroup2":
            if before_cgroup is not None:
                before_cgroup()
            _mount_cgroup(s, spec.root, m, cgroup_sources)
            continue
        mount_one(s, spec.root, m)
        if m.destination == "/dev" and m.type == "tmpfs":
            dev_is_tmpfs = True
    if dev_is_tmpfs:
        make_devices(s, spec.root, spec.devices)


# What may be mounted inside /proc besides procfs itself (runc's list: lxcfs's files, and procfs
# binds): anything else there could hide a file the kernel or an LSM relies on (CVE-2019-16884).
PROC_ALLOWED = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
    "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
})


def _is_procfs(path: str) -> bool:
    try:
        return os.path.realpath(path).startswith("/proc/") and os.statvfs(path).f_fsid == os.statvfs("/proc").f_fsid
    except OSError:
        return False


def check_proc_mount(root: str, m: Mount, target: str) -> None:
    """/proc and /sys are the kernel's: procfs and sysfs go on the real directories only (no
    symlink anywhere on the way: CVE-2019-19921), and nothing else goes on or inside /proc
    except the files lxcfs serves and binds of procfs itself (CVE-2019-16884)."""
    dest = os.path.normpath("/" + m.destination.lstrip("/"))
    kernel_fs = m.type in ("proc", "sysfs") or dest in ("/proc", "/sys")
    if kernel_fs and (os.path.islink(root + dest) or target != root + dest):
        raise SetupError(f"{m.destination} must be mounted on an ordinary directory, not a symlink")
    inside = "/" + target[len(root):].lstrip("/")
    if inside == "/proc" and m.type != "proc":
        raise SetupError(f"{m.destination} cannot be mounted because it is /proc (only procfs goes there)")
    procfs_bind = m.is_bind and _is_procfs(m.source)
    if inside.startswith("/proc/") and m.type != "proc" and inside not in PROC_ALLOWED and not procfs_bind:
        raise SetupError(f"{m.destination} cannot be mounted because it is inside /proc")


def _mount_at(s: Syscalls, root: str, target: str, source: str, fstype: str, flags: int, data: str) -> None:
    """mount(2) onto `target` through a descriptor opened inside root: a component swapped for a
    symlink after resolve_in_root cannot send the mount to the host (CVE-2021-30465)."""
    fd = s.open_in_root(root, target[len(root):] or "/")
    try:
        s.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
    finally:
        s.close(fd)


def mount_one(s: Syscalls, root: str, m: Mount) -> None:
    target = resolve_in_root(root, m.destination)
    check_proc_mount(root, m, target)
    if m.is_bind:
        try:
            src_is_dir = os.path.isdir(m.source)
        except OSError:
            src_is_dir = False
        if not os.path.exists(m.source):
            raise SetupError(f"bind mount source {m.source} does not exist")
        _ensure_target(s, root, target, src_is_dir)
        _mount_at(s, root, target, m.source, "bind", sc.MS_BIND | (m.flags & sc.MS_REC), "")
        extra = m.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        if extra:
            _mount_at(s, root, target, "", "", sc.MS_BIND | sc.MS_REMOUNT | extra | _kept_flags(target), "")
    else:
        mkdir_all(s, root, target)
        try:
            _mount_at(s, root, target, m.source or m.type, m.type, m.flags & ~sc.MS_REMOUNT, m.data)
        except OSError as exc:
            if m.type == "sysfs" and exc.errno in (errno.EPERM, errno.EBUSY):
                # No private network namespace: bind the host's /sys read-only instead (as runc does).
                _mount_at(s, root, target, "/sys", "bind", sc.MS_BIND | sc.MS_REC, "")
                _mount_at(s, root, target, "", "", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _KEEP_FLAGS, "")
            else:
                raise
    for p in m.propagation:
        _mount_at(s, root, target, "", "", p, "")


def _mount_cgroup(s: Syscalls, root: str, m: Mount, sources: Sequence[tuple[str, str]]) -> None:
    """Show the container its own cgroup directories, read-only unless asked otherwise.

    v1: a tmpfs with one bind mount per managed controller; v2: the leaf directory itself."""
    target = resolve_in_root(root, m.destination)
    mkdir_all(s, root, target)
    ro = m.flags & sc.MS_RDONLY
    flags = (m.flags & _KEEP_FLAGS) | ro
    if len(sources) == 1 and sources[0][0] == "":
        s.mount(sources[0][1], target, "bind", sc.MS_BIND, "")
        s.mount("", target, "", sc.MS_BIND | sc.MS_REMOUNT | flags | _kept_flags(target), "")
        return
    s.mount("tmpfs", target, "tmpfs", m.flags & _KEEP_FLAGS, "mode=755")
    for name, host in sources:
        sub = f"{target}/{name}"
        s.mkdir(sub, 0o755)
        s.mount(host, sub, "bind", sc.MS_BIND, "")
        # _kept_flags: in a user namespace the host mount's nosuid/nodev/noexec are locked.
        s.mount("", sub, "", sc.MS_BIND | sc.MS_REMOUNT | flags | _kept_flags(sub), "")
    if ro:
        s.mount("", target, "", sc.MS_REMOUNT | flags, "mode=755")


def make_devices(s: Syscalls, root: str, devices: Sequence[Device]) -> None:
    # Every path through resolve_in_root: an image whose /dev is a symlink must not make us
    # create nodes on the host (CVE-2026-41579).
    for path, major, minor in DEFAULT_DEVICES:
        target = resolve_in_root(root, path)
        if not os.path.lexists(target) and _mknod(s, target, stat.S_IFCHR | 0o666, os.makedev(major, minor), path):
            s.chmod(target, 0o666)
    for d in devices:
        target = resolve_in_root(root, d.path)
        mkdir_all(s, root, os.path.dirname(target))
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.type]
        if os.path.lexists(target):
            continue
        if _mknod(s, target, kind | (d.file_mode & 0o7777), os.makedev(d.major, d.minor), d.path):
            s.chmod(target, d.file_mode & 0o7777)
            s.chown(target, d.uid, d.gid)
    for src, link in DEV_LINKS:
        target = resolve_in_root(root, link)
        if not os.path.lexists(target):
            s.symlink(src, target)


def _mknod(s: Syscalls, target: str, mode: int, device: int, host_path: str) -> bool:
    """Make a device node; True when made. In a user namespace mknod is not allowed: bind the
    host's node at the same path instead (as runc), which keeps its owner and mode."""
    try:
        s.mknod(target, mode, device)
        return True
    except PermissionError:
        if not os.path.exists(host_path):
            raise SetupError(f"device {host_path}: mknod not permitted and no such device on the host") from None
        s.touch(target)
        s.mount(host_path, target, "bind", sc.MS_BIND, "")
        return False


def pivot(s: Syscalls, root: str) -> None:
    """pivot_root(".", ".") then detach the old root stacked on top (runc's trick: no put_old dir)."""
    s.chdir(root)
    s.pivot_root(".", ".")
    s.mount("", ".", "", sc.MS_SLAVE | sc.MS_REC, "")
    s.umount2(".", sc.MNT_DETACH)
    s.chdir("/")


def readonly_path(s: Syscalls, path: str) -> None:
    if not os.path.lexists(path):
        return
    s.mount(path, path, "bind", sc.MS_BIND | sc.MS_REC, "")
    s.mount("", path, "", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC | _kept_flags(path), "")


def mask_path(s: Syscalls, path: str) -> None:
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        s.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "")
    else:
        s.mount("/dev/null", path, "bind", sc.MS_BIND, "")


def verify_dev_null() -> None:
    """Masks bind /dev/null: it must be the real 1:3 char device, not a planted file or symlink."""
    st = os.lstat("/dev/null")
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 1 or os.minor(st.st_rdev) != 3:
        raise SetupError("/dev/null in the container is not the null device")


def readonly_root(s: Syscalls) -> None:
    s.mount("", "/", "", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _kept_flags("/"), "")
