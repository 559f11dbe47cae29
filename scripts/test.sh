#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (as root): install, check generated code, lint,
# type-check, import contracts, then the unit, integration and e2e tiers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
python3 protos/generate.py --check
ruff check .
mypy
lint-imports
python3 -m pytest -q -p no:cacheprovider tests "$@"
