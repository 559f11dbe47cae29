"""The cgroup v2 device program, run in a small interpreter of the instructions it uses: the
same answers as the v1 devices controller gives for docker's default rules."""

from __future__ import annotations

import struct

import pytest

from runtime.cgroup_v2_devices import program
from runtime.spec_resources import RUNTIME_DEVICES, DeviceRule

BLOCK, CHAR = 1, 2
MKNOD, READ, WRITE = 1, 2, 4


def run(code: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    ctx = struct.pack("<III", access << 16 | dev_type, major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    for _ in range(10_000):
        op, regs_byte, off, imm = insns[pc]
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if op == 0x61:
            assert src == 1, "loads only from the context"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == 0x54:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif op == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif op == 0xB7:
            regs[dst] = imm
        elif op == 0x55:
            if regs[dst] != imm:
                pc += off
        elif op == 0x5D:
            if regs[dst] != regs[src]:
                pc += off
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("no exit")


DOCKER = [DeviceRule(False, "a", -1, -1, "rwm"), DeviceRule(True, "c", 1, 3, "rwm"), DeviceRule(True, "c", 1, 5, "rwm"),
          DeviceRule(True, "c", 136, -1, "rwm"), DeviceRule(True, "c", 10, 200, "rw"), *RUNTIME_DEVICES]


@pytest.mark.parametrize(("dev", "access", "allowed"), [
    ((CHAR, 1, 3), READ | WRITE, 1),          # /dev/null
    ((CHAR, 136, 7), READ | WRITE, 1),        # a pts node: minor wildcard
    ((CHAR, 10, 200), READ, 1),               # tun: rw allowed...
    ((CHAR, 10, 200), MKNOD, 0),              # ...but not mknod
    ((CHAR, 10, 200), READ | MKNOD, 0),
    ((BLOCK, 8, 0), READ, 0),                 # a disk: denied by the first rule
    ((CHAR, 1, 1), READ, 0),                  # /dev/mem
    ((BLOCK, 1, 3), READ, 0),                 # right numbers, wrong type
])
def test_docker_rules(dev: tuple[int, int, int], access: int, allowed: int) -> None:
    assert run(program(DOCKER), dev[0], access, dev[1], dev[2]) == allowed


def test_later_rules_override_earlier_and_no_match_denies() -> None:
    rules = [DeviceRule(True, "a", -1, -1, "rwm"), DeviceRule(False, "c", 1, 3, "w")]
    code = program(rules)
    assert run(code, CHAR, READ, 1, 3) == 1
    assert run(code, CHAR, WRITE, 1, 3) == 0
    assert run(code, BLOCK, WRITE, 8, 0) == 1
    assert run(program([DeviceRule(True, "c", 1, 3, "r")]), CHAR, READ, 1, 5) == 0
