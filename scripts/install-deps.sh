#!/usr/bin/env bash
# Install everything ctrd and its tests need on a fresh Debian 12 machine (run as root):
# Debian packages (apt-get update first, only when something is missing), then ctrd itself,
# editable, with its dev extras, in a virtual environment of its own on Debian's python3
# ($CTRD_VENV, /opt/ctrd by default), and its commands in /usr/local/bin.
#
# Why Debian's python3 and not whichever python3 is first on PATH: every ctrd process is
# CPU-bound Python (the CLI's start-up and imports, the daemon, the shims, the runtime helper), and
# Debian's 3.11 is built with profile-guided and link-time optimisation and with most extension
# modules linked in. This machine's PATH python3 (pyenv's 3.11.7) is a plain --enable-shared build
# that loads _struct, _socket, _json, math, _datetime ... as separate shared objects (9 dlopens in
# each `ctrctl ps`). Measured 2026-12-07 on this machine, alternating runs: `python3 -S -c pass`
# 13.0 -> 10.8 ms; `ctrctl version` 54.0 -> 43.9 ms p50; `ctrctl ps -a` with 1000 containers
# 78.1 -> 61.4 ms; `ctrctl run --rm` 123.4 -> 113.8 ms; the gRPC create+start+wait+rm cycle
# (daemon, shim and runtime on the interpreter) 40.3 -> 37.0 ms p50, CPU per cycle 56.8 -> 53.3 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CTRD_VENV:-/opt/ctrd}"
# libseccomp2: the runtime compiles linux.seccomp with it; gcc + libc6-dev: the tests build a
# static syscall probe (tests/syscall_probe.c); docker-registry, skopeo, umoci, apache2-utils
# (htpasswd), openssl: the registry tests' peers; iptables: ctrd's firewall chains; docker.io,
# containerd: the peers the runtime and network tests drive ctrd-runtime and ctrd beside;
# docker-compose: a client of the Docker API socket; python3, python3-venv: the interpreter
# and its venv module (ensurepip).
pkgs=(python3 python3-venv busybox-static runc iproute2 procps psmisc libseccomp2 gcc libc6-dev docker-registry skopeo umoci apache2-utils openssl iptables docker.io containerd docker-compose)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
debian_python=$(readlink -f /usr/bin/python3)
if [ -e "$venv" ] && [ "$(readlink -f "$venv/bin/python3" 2>/dev/null)" != "$debian_python" ]; then
  if [ ! -f "$venv/pyvenv.cfg" ]; then
    echo "install-deps: $venv exists and is not a virtual environment (set CTRD_VENV)" >&2
    exit 1
  fi
  echo "recreating $venv on $debian_python"
  /usr/bin/python3 -m venv --clear "$venv"
elif [ ! -e "$venv" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/python3" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[dev${CTRD_EXTRAS:+,$CTRD_EXTRAS}]"
# Byte-compile once (a plain pip install would): every ctrctl call, shim launcher and helper
# otherwise recompiles the sources on start, even where PYTHONDONTWRITEBYTECODE is set.
"$venv/bin/python3" -m compileall -q -j 0 protos/ctrd daemon shimd runtime ctrctl >/dev/null
# An earlier install of ctrd into PATH's python3 (this script's way before 2026-12-07) would shadow
# the commands below (pyenv's shims come before /usr/local/bin): take it out, and its shims.
if path_python=$(command -v python3) && [ "$(readlink -f "$path_python")" != "$debian_python" ] \
    && "$path_python" -m pip show -q ctrd >/dev/null 2>&1; then
  echo "removing the earlier ctrd install from $path_python"
  "$path_python" -m pip uninstall -y -q --root-user-action=ignore ctrd
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
# The commands on PATH. ctrctl, ctrd and ctrd-runtime are the launcher (scripts/bin/ctrctl), which
# runs the python3 beside it: the copies here name the venv's instead (a symlink would make it look
# beside the link, and resolving the link costs a readlink process per call).
for cmd in ctrctl ctrd ctrd-runtime; do
  sed "s|^py=.*|py=$venv/bin/python3|" "$venv/bin/$cmd" > "/usr/local/bin/.$cmd.new"
  chmod 755 "/usr/local/bin/.$cmd.new"
  mv -f "/usr/local/bin/.$cmd.new" "/usr/local/bin/$cmd"
done
ln -sfn "$venv/bin/ctrd-shim" /usr/local/bin/ctrd-shim
