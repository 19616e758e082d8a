#!/usr/bin/env bash
# Installs the test dependencies and runs lint, types and the whole suite on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh test
bash scripts/services.sh
echo "== ruff"
.venv/bin/ruff check tidings tests bench
.venv/bin/ruff format --check tidings tests bench
echo "== mypy --strict tidings"
.venv/bin/mypy --strict tidings
echo "== pytest (SQLite and PostgreSQL)"
# Database-backed tests run once per backend, the rest once; two test processes (pytest-xdist),
# each with databases of its own, keep a two-core machine busy. A module's tests stay together.
.venv/bin/python -m pytest -q -p no:cacheprovider -n "${TIDINGS_TEST_PROCESSES:-2}" --dist loadscope "$@"
