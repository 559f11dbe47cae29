#!/usr/bin/env bash
# The main job, as root on a fresh Debian 12 machine: install what ctrd needs (Debian's
# busybox-static included), start ctrd with its default paths (/var/lib/ctrd, /run/ctrd,
# /run/ctrd/ctrd.sock) unless it already runs, and run a first container.
# ctrd keeps running afterwards, like dockerd; stop it with: kill "$(cat /run/ctrd/ctrd.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if ! ctrctl version >/dev/null 2>&1; then
  echo "starting ctrd (log: /var/log/ctrd.log)"
  setsid ctrd >>/var/log/ctrd.log 2>&1 < /dev/null &
  for _ in $(seq 1 100); do
    ctrctl version >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
set -x
ctrctl run --rm busybox echo hello
