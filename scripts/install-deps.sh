#!/usr/bin/env bash
# Install everything ctrd and its tests need on a fresh Debian 12 machine (run as root):
# Debian packages (apt-get update first, only when something is missing) and the Python package
# itself, editable, with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
# libseccomp2: the runtime compiles linux.seccomp with it; gcc + libc6-dev: the tests build a
# static syscall probe (tests/syscall_probe.c); docker-registry, skopeo, umoci, apache2-utils
# (htpasswd), openssl: the registry tests' peers; iptables: ctrd's firewall chains; docker.io,
# containerd: the peers the runtime and network tests drive ctrd-runtime and ctrd beside;
# docker-compose: a client of the Docker API socket.
pkgs=(busybox-static runc iproute2 procps psmisc libseccomp2 gcc libc6-dev docker-registry skopeo umoci apache2-utils openssl iptables docker.io containerd docker-compose)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[dev${CTRD_EXTRAS:+,$CTRD_EXTRAS}]"
# Byte-compile once (a plain pip install would): every ctrctl call, shim launcher and helper
# otherwise recompiles the sources on start, even where PYTHONDONTWRITEBYTECODE is set.
python3 -m compileall -q -j 0 protos/ctrd daemon shimd runtime ctrctl >/dev/null
