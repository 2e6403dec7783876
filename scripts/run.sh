#!/usr/bin/env bash
# Runs the product against an Odoo 18 that is already on this machine (importable by python3, or named by
# ODOO_PATH): starts the meter simulator (the demo site), creates the "prepaid" database with the suite and its
# demo data on first run, and serves Odoo on http://127.0.0.1:8069 (admin / admin). Ctrl-C stops both.
#
# Environment: PYTHON, ODOO_PATH, PREPAID_DB (default prepaid), PREPAID_SIM_SPEED (simulated seconds per real
# second, default 60), PREPAID_SKIP_INSTALL=1 (no pip install), extra arguments are passed to Odoo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
db=${PREPAID_DB:-prepaid}
export TZ=UTC
export PYTHONPATH="$root${ODOO_PATH:+:$ODOO_PATH}${PYTHONPATH:+:$PYTHONPATH}"

if [ "${PREPAID_SKIP_INSTALL:-}" != 1 ]; then
    $PY -m pip install -q --disable-pip-version-check -r requirements.txt
    $PY -m pip install -q --disable-pip-version-check --no-deps -e .
fi
if ! addons_path=$($PY scripts/odoo_paths.py); then
    echo "No Odoo 18 here: make it importable by $PY or set ODOO_PATH, or use 'docker compose up --build'." >&2
    exit 2
fi
modules=prepaid_base,prepaid_metering,prepaid_billing

simlog=$(mktemp "${TMPDIR:-/tmp}/prepaid-simulator.XXXXXX")
$PY -m prepaid_engine.simulator --speed "${PREPAID_SIM_SPEED:-60}" >"$simlog.json" 2>"$simlog" &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 50); do
    grep -q "simulator ready" "$simlog" 2>/dev/null && break
    kill -0 $sim 2>/dev/null || { cat "$simlog" >&2; exit 1; }
    sleep 0.2
done
echo "meter simulator running (site map: $simlog.json, log: $simlog)"

if ! psql -lqt | cut -d'|' -f1 | grep -qw "$db"; then
    echo "creating database $db with the suite and its demo data (first run only)"
    $PY -m odoo -c odoo.conf --addons-path="$addons_path" -d "$db" -i "$modules" --stop-after-init
fi
$PY -m odoo -c odoo.conf --addons-path="$addons_path" -d "$db" "$@"
