"""linux.seccomp: validation, compilation (checked by running the BPF in a simulator), runc's
ENOSYS stub, the content-hash cache, and where the child loads the filter."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from daemon.security import seccomp as dsec
from daemon.security import seccomp_default
from runtime import defaults, errors, init, seccomp
from runtime import spec as spec_mod
from runtime import syscalls as sc
from runtime.init import ChildConfig
from runtime.seccomp import bpf, cache
from runtime.seccomp import compile as comp
from runtime.seccomp import libseccomp as ls
from tests import seccomp_sim as sim
from tests.unit.test_runtime_setup import FakeSyscalls

DOCKER_CAPS = defaults.default_spec(["true"])["process"]["capabilities"]["bounding"]
X86_64 = ("amd64", "SCMP_ARCH_X86_64")
lib = ls.lib()


def nr(name: str, arch: int = 0) -> int:
    n = lib.syscall_nr(name, arch)
    assert n >= 0, name
    return n


def docker_oci(caps: list[str] = DOCKER_CAPS) -> dict[str, Any]:
    return dsec.resolve(seccomp_default.profile(), caps, machine=X86_64, kernel=(6, 1))


def program(oci: dict[str, Any]) -> bytes:
    return comp.compile_profile(seccomp.parse(oci))


def answer(prog: bytes, name: str, *args: int, arch: int = sim.AUDIT_ARCH_X86_64) -> str:
    return sim.verdict(sim.run(prog, nr(name, arch if arch != sim.AUDIT_ARCH_X86_64 else 0), args, arch))


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda p: p["syscalls"][3].update(action="SCMP_ACT_BOGUS"), "linux.seccomp.syscalls[3].action"),
    (lambda p: p.update(defaultAction="ALLOW"), "linux.seccomp.defaultAction"),
    (lambda p: p.update(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]), "linux.seccomp.architectures[1]"),
    (lambda p: p["syscalls"][2]["args"][0].update(op="SCMP_CMP_ALMOST"), "linux.seccomp.syscalls[2].args[0].op"),
    (lambda p: p["syscalls"][2]["args"][0].update(index=6), "linux.seccomp.syscalls[2].args[0].index"),
    (lambda p: p["syscalls"][2]["args"][0].update(value=-1), "linux.seccomp.syscalls[2].args[0].value"),
    (lambda p: p["syscalls"][1].update(names=[]), "linux.seccomp.syscalls[1].names"),
    (lambda p: p["syscalls"][1].update(action="SCMP_ACT_NOTIFY"), "linux.seccomp.syscalls[1].action"),
    (lambda p: p.update(flags=["SECCOMP_FILTER_FLAG_NEW_LISTENER"]), "linux.seccomp.flags[0]"),
    (lambda p: p.update(defaultErrnoRet=70000), "linux.seccomp.defaultErrnoRet"),
])
def test_bad_field_is_one_invalid_argument_naming_its_path(mutate: Any, field: str) -> None:
    oci = docker_oci()
    mutate(oci)
    with pytest.raises(errors.SpecError) as e:
        seccomp.parse(oci)
    assert e.value.code == "invalid_argument"
    assert e.value.field == field
    assert str(e.value).startswith(f"config.json: {field}: ")


def test_spec_parse_reads_linux_seccomp(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    obj = defaults.default_spec(["true"])
    assert spec_mod.parse(obj, str(tmp_path)).seccomp is None
    obj["linux"]["seccomp"] = docker_oci()
    s = spec_mod.parse(obj, str(tmp_path))
    assert s.seccomp is not None and s.seccomp.default_action == "SCMP_ACT_ERRNO"


def test_docker_default_profile_answers_like_docker() -> None:
    prog = program(docker_oci())
    assert answer(prog, "getpid") == "allow"
    assert answer(prog, "read") == "allow"
    for refused in ("keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
                    "kexec_load", "mount", "umount2", "unshare", "setns", "pivot_root", "init_module", "reboot"):
        assert answer(prog, refused) == "errno:1", refused
    assert answer(prog, "clone3") == "errno:38"
    assert answer(prog, "clone", 0x11) == "allow"  # SIGCHLD: a plain fork
    assert answer(prog, "clone", 0x10000000 | 0x11) == "errno:1"  # CLONE_NEWUSER
    assert answer(prog, "socket", 1) == "allow"  # AF_UNIX
    assert answer(prog, "socket", 38) == "errno:1"  # AF_ALG
    assert answer(prog, "socket", 39) == "allow"
    assert answer(prog, "socket", 40) == "errno:1"  # AF_VSOCK
    assert answer(prog, "personality", 0) == "allow"
    assert answer(prog, "personality", 0x0400000) == "errno:1"
    assert answer(prog, "chroot") == "allow"  # CAP_SYS_CHROOT is in docker's set
    assert answer(prog, "ptrace") == "allow"  # kernel >= 4.8


def test_capability_gated_rules_follow_the_container_caps() -> None:
    admin = program(docker_oci([*DOCKER_CAPS, "CAP_SYS_ADMIN"]))
    assert answer(admin, "mount") == "allow"
    assert answer(admin, "unshare") == "allow"
    assert answer(admin, "clone", 0x10000000 | 0x11) == "allow"
    assert answer(admin, "clone3") == "allow"
    assert answer(admin, "keyctl") == "errno:1"  # never, whatever the caps
    no_chroot = program(docker_oci([c for c in DOCKER_CAPS if c != "CAP_SYS_CHROOT"]))
    assert answer(no_chroot, "chroot") == "errno:1"


def test_i386_syscalls_are_filtered_by_their_own_numbers() -> None:
    prog = program(docker_oci())
    assert answer(prog, "getpid", arch=sim.AUDIT_ARCH_I386) == "allow"
    assert answer(prog, "keyctl", arch=sim.AUDIT_ARCH_I386) == "errno:1"
    assert answer(prog, "socketcall", arch=sim.AUDIT_ARCH_I386) == "allow"


def test_syscalls_newer_than_the_profile_get_enosys_not_eperm() -> None:
    prog = program(docker_oci())
    top = max(n for name in seccomp_default.ALWAYS if (n := lib.syscall_nr(name, sim.AUDIT_ARCH_X86_64)) >= 0)
    assert sim.verdict(sim.run(prog, top + 1)) == "errno:38"
    assert sim.verdict(sim.run(prog, 1000)) == "errno:38"
    assert sim.verdict(sim.run(prog, 1000, arch=sim.AUDIT_ARCH_I386)) == "errno:38"
    # x32 numbers (bit 30) are judged against the x32 table, not the x86_64 one
    assert sim.verdict(sim.run(prog, (1 << 30) | nr("getpid", sim.AUDIT_ARCH_X86_64))) == "allow"


def test_no_stub_where_runc_adds_none() -> None:
    allow = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
             "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}
    assert comp.stub_program(seccomp.parse(allow), lib) == b""
    enosys = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}
    assert comp.stub_program(seccomp.parse(enosys), lib) == b""
    prog = program(allow)
    assert answer(prog, "keyctl") == "errno:1"  # ERRNO without errnoRet is EPERM, as runc
    assert answer(prog, "getpid") == "allow"


def test_rule_actions_and_argument_operators() -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["geteuid"], "action": "SCMP_ACT_LOG"},
        {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_GT"}]},
        {"names": ["dup2"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xF0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"}]},
        # the same index twice: each condition is a rule of its own (OR), as runc does
        {"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
        {"names": ["no_such_syscall_at_all", "getpgrp"], "action": "SCMP_ACT_ERRNO"},
    ]}
    prog = program(oci)
    assert answer(prog, "getppid") == "kill_process"
    assert answer(prog, "getuid") == "trap"
    assert answer(prog, "getgid") == "errno:13"
    assert answer(prog, "geteuid") == "log"
    assert [answer(prog, "dup", v) for v in (5, 6)] == ["allow", "errno:1"]
    assert [answer(prog, "dup2", v) for v in (0x31, 0x13, 0x3F)] == ["errno:1", "allow", "errno:1"]
    assert [answer(prog, "dup3", v) for v in (0, 1, 2, 3)] == ["allow", "errno:7", "errno:7", "allow"]
    assert answer(prog, "getpgrp") == "errno:1"  # an unknown name beside it is skipped, not an error


def test_rules_equal_to_the_default_action_are_skipped() -> None:
    base = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}
    same = copy.deepcopy(base)
    same["syscalls"].append({"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    assert comp.rules_program(seccomp.parse(base), lib) == comp.rules_program(seccomp.parse(same), lib)


def test_compiled_once_per_content_then_read_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.clear_memo()
    p = seccomp.parse(docker_oci())
    key, prog = cache.program(p, str(tmp_path / "c"))
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "c" / f"{key}.bpf").read_bytes() == prog
    calls: list[int] = []
    real = cache.compile_profile
    monkeypatch.setattr(cache, "compile_profile", lambda *a: calls.append(1) or real(*a))
    cache.clear_memo()
    assert cache.program(p, str(tmp_path / "c")) == (key, prog)
    assert cache.program(p, str(tmp_path / "c")) == (key, prog)
    assert calls == []
    other = seccomp.parse(docker_oci([*DOCKER_CAPS, "CAP_SYS_ADMIN"]))
    key2, _ = cache.program(other, str(tmp_path / "c"))
    assert key2 != key and calls == [1]
    # a damaged file is compiled again and replaced
    cache.clear_memo()
    (tmp_path / "c" / f"{key}.bpf").write_bytes(b"\x00" * 5)
    assert cache.program(p, str(tmp_path / "c")) == (key, prog)
    assert calls == [1, 1]
    assert (tmp_path / "c" / f"{key}.bpf").read_bytes() == prog


def test_stub_assembler_refuses_backward_or_far_jumps() -> None:
    with pytest.raises(ValueError):
        bpf.assemble([bpf.Insn(bpf.JMP_JEQ_K, 0, jt="far"), *[bpf.Insn(bpf.RET_K, 0)] * 300, bpf.Label("far")])
    with pytest.raises(ValueError):
        bpf.check(b"\x00" * 12)


class _Loader:
    def __init__(self, s: FakeSyscalls) -> None:
        self.s = s

    def load(self) -> None:
        self.s.calls.append(("seccomp_load",))


def _setup(tmp_path: Path, nnp: bool) -> FakeSyscalls:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    obj = defaults.default_spec(["true"])
    obj["process"]["noNewPrivileges"] = nnp
    spec = spec_mod.parse(obj, str(tmp_path))
    s = FakeSyscalls()
    cfg = ChildConfig(process=spec.process, stdio=(0, 1, 2), sock_fd=-1, spec=None, seccomp=_Loader(s))
    cwd = os.getcwd()
    try:
        init.setup(cfg, s)  # type: ignore[arg-type]
    except errors.RuntimeErr:
        pass  # argv[0] lookup outside a container: the order is what is checked
    finally:
        os.chdir(cwd)
    return s


def test_filter_loaded_before_caps_are_dropped_without_no_new_privs(tmp_path: Path) -> None:
    s = _setup(tmp_path, nnp=False)
    load = s.index(lambda c: c[0] == "seccomp_load")
    assert load < s.index(lambda c: c[0] == "capset")
    assert load < s.index(lambda c: c[0] == "setresuid")


def test_filter_loaded_after_no_new_privs_when_set(tmp_path: Path) -> None:
    s = _setup(tmp_path, nnp=True)
    nnp = s.index(lambda c: c[:2] == ("prctl", sc.PR_SET_NO_NEW_PRIVS))
    assert s.index(lambda c: c[0] == "seccomp_load") > nnp


def test_without_libseccomp_the_container_is_refused_not_run_unfiltered(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> ls.Lib:
        raise ls.LibseccompError(0, "libseccomp is not installed (libseccomp.so.2): not found")

    monkeypatch.setattr(ls, "lib", missing)
    cache.clear_memo()
    with pytest.raises(errors.SetupError, match=r"linux\.seccomp: libseccomp is not installed"):
        seccomp.prepare(seccomp.parse(docker_oci()), None)
    monkeypatch.setattr(seccomp, "supported", lambda: False)
    assert seccomp.features() == {"enabled": False}
