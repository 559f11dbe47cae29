#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (as root): install, check generated code, lint,
# type-check, import contracts, then the unit, integration and e2e tiers.
set -euo pipefail
cd "$(dirname "$0")/.."
CTRD_EXTRAS=bench scripts/install-deps.sh  # bench: matplotlib, for the tests of the bench's plots
# the venv install-deps.sh made comes first: its python3, pytest, ruff, mypy and the commands
export PATH="${CTRD_VENV:-/opt/ctrd}/bin:$PATH"
python3 protos/generate.py --check
ruff check .
mypy
lint-imports
python3 -m pytest -q -p no:cacheprovider tests "$@"
