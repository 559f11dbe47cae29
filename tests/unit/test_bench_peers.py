"""bench.peers: detection and install hints with a fake probe (no real binaries looked up)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.peers import PEER_SPECS, describe, detect, install_hint


class FakeProbe:
    def __init__(self, present: dict[str, str], versions: dict[str, str]) -> None:
        self.present = present
        self.versions = versions
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return self.present.get(name)

    def output(self, argv: Sequence[str]) -> str | None:
        self.calls.append(list(argv))
        return self.versions.get(argv[0])


def test_all_present_gives_versions_and_no_hint() -> None:
    names = {b for spec in PEER_SPECS for b in spec.binaries}
    probe = FakeProbe({n: f"/usr/bin/{n}" for n in names},
                      {f"/usr/bin/{n}": f"{n} version 1.0\nmore" for n in names})
    peers = detect(probe)
    assert all(p.present for p in peers.values())
    assert peers["runc"].version == "runc version 1.0"
    assert install_hint(peers) is None
    assert ["/usr/bin/containerd", "--version"] in probe.calls


def test_missing_peers_are_named_with_their_debian_package() -> None:
    probe = FakeProbe({"unshare": "/usr/bin/unshare", "chroot": "/usr/sbin/chroot", "runc": "/usr/sbin/runc",
                       "containerd": "/usr/bin/containerd"}, {})
    peers = detect(probe)
    assert peers["runc"].present
    assert not peers["containerd"].present
    assert set(peers["containerd"].missing) == {"ctr", "containerd-shim-runc-v2"}
    assert not peers["docker"].present
    assert install_hint(peers) == "apt-get install containerd docker.io hyperfine"
    text = "\n".join(describe(peers))
    assert "docker" in text and "MISSING" in text and "docker.io" in text


def test_docker_prefers_the_client_shipped_beside_dockerd() -> None:
    probe = FakeProbe({"dockerd": "/usr/sbin/dockerd", "docker": "/usr/local/bin/docker",
                       "/usr/bin/docker": "/usr/bin/docker"}, {"/usr/sbin/dockerd": "Docker version 20.10"})
    peers = detect(probe)
    assert peers["docker"].present
    assert peers["docker"].paths["docker"] == "/usr/bin/docker"
    assert peers["docker"].version == "Docker version 20.10"


def test_a_client_without_its_daemon_is_not_a_peer() -> None:
    probe = FakeProbe({"docker": "/usr/local/bin/docker"}, {})
    peers = detect(probe)
    assert not peers["docker"].present
    assert peers["docker"].missing == ("dockerd",)
