#!/usr/bin/env bash
# Installs Tidings into .venv and runs it on its embedded default: SQLite + the carrier simulator,
# API and worker in one process, HTTP on 127.0.0.1:8080 and HTTPS (local CA) on 127.0.0.1:8443.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
exec .venv/bin/tidings serve --tls "$@"
