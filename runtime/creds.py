"""Process-level setup shared by a container's init and its exec'd processes:
rlimits, oom score, umask, user and groups, capabilities, no_new_privs, cwd, and argv[0] lookup.
"""

from __future__ import annotations

import errno
import os
import stat

from ctrd.reasons import EXEC_NOT_FOUND, EXEC_NOT_INVOKABLE
from runtime import caps
from runtime import syscalls as sc
from runtime.errors import ExecError, SetupError
from runtime.spec_process import ProcessSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runtime.syscalls import Syscalls

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_INTERPRETERS = 5  # the kernel follows at most 4 levels of #! (BINPRM_MAX_RECURSION)


def _own_exe() -> tuple[int, int]:
    st = os.stat("/proc/self/exe")
    return st.st_dev, st.st_ino


# The interpreter running this runtime (read once, before any fork): a container must never get
# it executed, or it could hold it open and rewrite the host's python (CVE-2019-5736).
SELF_EXE = _own_exe()


def limits(s: Syscalls, p: ProcessSpec) -> None:
    if p.oom_score_adj is not None:
        s.write_file("/proc/self/oom_score_adj", str(p.oom_score_adj).encode())
    for r in p.rlimits:
        try:
            s.setrlimit(r.type, r.soft, r.hard)
        except (OSError, ValueError) as exc:
            raise SetupError(f"setrlimit {r.type} to {r.soft}/{r.hard}: {exc}") from exc
    s.umask(0o022 if p.umask is None else p.umask)


def identity(s: Syscalls, p: ProcessSpec) -> None:
    """Bounding set, then user and groups (keeping capabilities across setuid), then the exact
    effective/permitted/inheritable sets and the ambient set, then no_new_privs."""
    c = p.capabilities
    if c is not None:
        keep = caps.mask(c.bounding)
        for n in range(caps.LAST_CAP + 1):
            if not keep & (1 << n):
                s.prctl(sc.PR_CAPBSET_DROP, n)
        s.prctl(sc.PR_SET_KEEPCAPS, 1)
    s.setgroups(list(p.additional_gids))
    s.setresgid(p.gid)
    s.setresuid(p.uid)
    if c is not None:
        s.prctl(sc.PR_SET_KEEPCAPS, 0)
        s.capset(caps.mask(c.effective), caps.mask(c.permitted), caps.mask(c.inheritable))
        s.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        # The kernel only raises an ambient capability that is both permitted and inheritable;
        # like runc, skip the others (`runc spec` lists ambient caps without an inheritable set).
        raisable = caps.mask(c.permitted) & caps.mask(c.inheritable)
        for n in caps.numbers(c.ambient):
            if raisable & (1 << n):
                s.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, n)
    if p.no_new_privileges:
        s.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


def enter_cwd(s: Syscalls, cwd: str) -> None:
    try:
        s.chdir(cwd)
    except OSError as exc:
        raise SetupError(f"chdir to cwd ({cwd!r}) set in config.json failed: {os.strerror(exc.errno or 0).lower()}")
    # A cwd reached through a leaked host fd resolves outside our root (CVE-2024-21626).
    try:
        here = os.getcwd()
    except OSError:
        here = ""
    if not here.startswith("/"):
        raise SetupError(f"cwd {cwd!r} is outside the container")


def environ(p: ProcessSpec, home: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in p.env:
        k, _, v = item.partition("=")
        env[k] = v
    env.setdefault("HOME", home)
    return env


def home_of(uid: int, passwd_path: str = "/etc/passwd") -> str:
    """HOME from the container's passwd, read as data (never through NSS: that would load the
    container's libraries into this process)."""
    try:
        with open(passwd_path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return "/"
    for line in data.split(b"\n"):
        fields = line.split(b":")
        if len(fields) >= 6 and fields[2] == str(uid).encode():
            return fields[5].decode(errors="replace") or "/"
    return "/"


def _invokable(path: str) -> int:
    """0 if path is an executable regular file, else the errno execve would give."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.errno or errno.ENOENT
    if stat.S_ISDIR(st.st_mode) or not stat.S_ISREG(st.st_mode):
        return errno.EACCES
    if not os.access(path, os.X_OK):
        return errno.EACCES
    return 0


def lookup(argv0: str, env: dict[str, str]) -> str:
    """Resolve argv[0] like Go's exec.LookPath, with runc's (and so docker's) error texts."""
    if "/" in argv0:
        err = _invokable(argv0)
        if err == 0:
            return argv0
        raise exec_error(argv0, err, stat_path=argv0)
    denied = False
    for d in (env.get("PATH") or DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", argv0)
        err = _invokable(cand)
        if err == 0:
            return cand
        denied = denied or (err == errno.EACCES and os.path.exists(cand))
    if denied:
        raise exec_error(argv0, errno.EACCES)
    raise ExecError(f'exec: "{argv0}": executable file not found in $PATH', reason=EXEC_NOT_FOUND)


def refuse_runtime_binary(argv0: str, path: str, own: tuple[int, int] = SELF_EXE) -> None:
    """Refuse to execve our own interpreter, directly (/proc/self/exe) or as a #! interpreter."""
    for _ in range(_MAX_INTERPRETERS):
        try:
            st = os.stat(path)
        except OSError:
            return
        if (st.st_dev, st.st_ino) == own:
            raise ExecError(f'exec: "{argv0}": refusing to execute the runtime\'s own interpreter',
                            reason=EXEC_NOT_INVOKABLE)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return  # execute-only: the kernel will read it, we cannot; nothing to follow
        try:
            head = os.read(fd, 256)
        finally:
            os.close(fd)
        if not head.startswith(b"#!"):
            return
        line = head[2:].split(b"\n", 1)[0].strip()
        if not line:
            return
        path = line.split()[0].decode(errors="replace")


def exec_error(argv0: str, err: int, stat_path: str = "") -> ExecError:
    text = os.strerror(err).lower()
    if err in (errno.ENOENT, errno.ENOTDIR):
        where = f"stat {stat_path}: " if stat_path else ""
        return ExecError(f'exec: "{argv0}": {where}{text}', reason=EXEC_NOT_FOUND)
    return ExecError(f'exec: "{argv0}": {text}', reason=EXEC_NOT_INVOKABLE)
