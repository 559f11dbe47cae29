"""runtime.console without a container: a pty from the host's devpts, its size, and runc's
console-socket message (name + SCM_RIGHTS) between two ends of a socketpair."""

from __future__ import annotations

import os
import socket

import pytest

from runtime import console
from runtime.errors import SpecError
from runtime.spec_process import ProcessSpec


def test_open_pty_gives_a_connected_pair_with_a_settable_size() -> None:
    master, slave = console.open_pty("/dev/ptmx")
    try:
        assert os.isatty(slave)
        console.set_size(master, 40, 132)
        assert console.get_size(slave) == (40, 132)
        os.write(master, b"ping\n")
        assert os.read(slave, 100) == b"ping\n"
    finally:
        os.close(master)
        os.close(slave)


def test_the_master_travels_over_the_console_socket() -> None:
    master, slave = console.open_pty("/dev/ptmx")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        console.send_master(a.detach(), master)
        received = console.recv_master(b)
        try:
            os.write(slave, b"from-slave")
            assert os.read(received, 100) == b"from-slave"
        finally:
            os.close(received)
    finally:
        b.close()
        os.close(master)
        os.close(slave)


def test_recv_master_without_a_descriptor_is_an_error() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        a.sendall(b"/dev/ptmx")
        with pytest.raises(OSError, match="no file descriptor"):
            console.recv_master(b)


def test_console_size_from_the_spec() -> None:
    p = ProcessSpec.from_oci({"args": ["sh"], "terminal": True, "consoleSize": {"height": 25, "width": 80}})
    assert (p.terminal, p.console_size) == (True, (25, 80))
    assert ProcessSpec.from_oci({"args": ["sh"], "consoleSize": {"height": 0, "width": 0}}).console_size is None
    assert ProcessSpec.from_oci({"args": ["sh"]}).console_size is None
    with pytest.raises(SpecError, match=r"process.consoleSize.width"):
        ProcessSpec.from_oci({"args": ["sh"], "consoleSize": {"height": 5, "width": -1}})
    with pytest.raises(SpecError, match=r"process.consoleSize"):
        ProcessSpec.from_oci({"args": ["sh"], "consoleSize": [5, 5]})
