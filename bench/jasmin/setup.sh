#!/usr/bin/env bash
# Installs what `python -m bench.jasmin` needs besides Tidings itself, each in a directory of its own:
#
#   - Jasmin SMS gateway, pinned, in a virtualenv of its own ($JASMIN_VENV, /opt/jasmin-venv),
#     never in Tidings' virtualenv; plus the AMQP spec file its daemons read, which pip does not
#     install (it ships in the source distribution's misc/config/resource/);
#   - the npm `smpp` package, pinned, for the local SMSC bench/jasmin/smsc.js
#     ($JASMIN_SMSC_DIR, /opt/jasmin-smsc; the benchmark runs node with NODE_PATH pointing there).
#
# RabbitMQ must be running on 127.0.0.1 (default port, guest user), and `redis-server`,
# `node`, `npm` and `rabbitmqctl` on PATH. Re-running it is harmless.
#
#   bash bench/jasmin/setup.sh
#
# Why 0.11.0 and not 0.11.1: in 0.11.1 every successful submit_sm_resp raises
# "'SubmitSM' object has no attribute 'response'" (jasmin/managers/listeners.py), so no receipt is
# ever mapped to its message and no delivery receipt reaches a dlr-url (jookies/jasmin#1236).
# 0.11.0 differs from it there and is otherwise the same 0.11 line with the same requirements.
set -euo pipefail

JASMIN_VERSION=0.11.0
SMPP_NPM_VERSION=0.5.1
JASMIN_VENV=${JASMIN_VENV:-/opt/jasmin-venv}
JASMIN_SMSC_DIR=${JASMIN_SMSC_DIR:-/opt/jasmin-smsc}
PYTHON=${JASMIN_PYTHON:-python3.11}  # Jasmin 0.11 needs Python >= 3.8; tested with 3.11

for command in "$PYTHON" node npm rabbitmqctl; do
    command -v "$command" >/dev/null || { echo "setup.sh: \`$command\` is not on PATH" >&2; exit 1; }
done

echo "== Jasmin $JASMIN_VERSION in $JASMIN_VENV"
[ -x "$JASMIN_VENV/bin/python" ] || "$PYTHON" -m venv "$JASMIN_VENV"
"$JASMIN_VENV/bin/pip" install --quiet --disable-pip-version-check "jasmin==$JASMIN_VERSION"

resource="$JASMIN_VENV/share/jasmin/resource"
if [ ! -f "$resource/amqp0-9-1.xml" ]; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    "$JASMIN_VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$scratch" "jasmin==$JASMIN_VERSION"
    tar -xzf "$scratch/jasmin-$JASMIN_VERSION.tar.gz" -C "$scratch"
    mkdir -p "$resource"
    cp "$scratch/jasmin-$JASMIN_VERSION/misc/config/resource/"*.xml "$resource/"
fi

echo "== npm smpp@$SMPP_NPM_VERSION in $JASMIN_SMSC_DIR"
mkdir -p "$JASMIN_SMSC_DIR"
npm install --prefix "$JASMIN_SMSC_DIR" --no-audit --no-fund --silent "smpp@$SMPP_NPM_VERSION"

"$JASMIN_VENV/bin/python" -c "import jasmin; print('jasmin', jasmin.get_release())"
NODE_PATH="$JASMIN_SMSC_DIR/node_modules" node -e "require('smpp'); console.log('npm smpp loads')"
echo "Done. Run: python -m bench.jasmin   (with JASMIN_VENV=$JASMIN_VENV JASMIN_SMSC_DIR=$JASMIN_SMSC_DIR if not the defaults)"
