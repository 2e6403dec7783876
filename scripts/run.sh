#!/usr/bin/env bash
# Runs the product against an Odoo 18 that is already on this machine (importable by python3, or named by
# ODOO_PATH): starts the meter simulator (the demo site), creates the "prepaid" database with the suite and its
# demo data on first run, and serves Odoo on http://127.0.0.1:8069 (admin / admin). Ctrl-C stops both.
#
# The simulator keeps its meters in $PREPAID_STATE_DIR/simulator-$PREPAID_DB.json (default .state/), so a
# restart goes on where it stopped (a new database starts with fresh meters), and takes control requests on
# 127.0.0.1:$PREPAID_SIM_CONTROL (README: "Controlling a running simulator").
#
# Environment: PYTHON, ODOO_PATH, PREPAID_DB (default prepaid), PREPAID_SIM_SPEED (simulated seconds per real
# second, default 60), PREPAID_STATE_DIR (default .state), PREPAID_SIM_CONTROL (control port, default 16900),
# PREPAID_SIM_FRESH=1 (fresh meters, overwriting the state file), PREPAID_SKIP_INSTALL=1 (no pip install);
# extra arguments are passed to Odoo.
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
modules=prepaid_base,prepaid_metering,prepaid_billing,prepaid_portal,prepaid_load_control,payment_demo

statedir=${PREPAID_STATE_DIR:-$root/.state}
mkdir -p "$statedir"
state="$statedir/simulator-$db.json"
new_db=0
if dbs=$(psql -lqt | cut -d'|' -f1); then
    if ! grep -qw -- "$db" <<<"$dbs"; then
        new_db=1
        rm -f "$state"  # a new database has read no meter yet: its meters start fresh
    fi
else
    new_db=1  # psql cannot say: Odoo will try to create it, and the meters' state is kept
fi

simlog=$(mktemp "${TMPDIR:-/tmp}/prepaid-simulator.XXXXXX")
sim_flags=(--speed "${PREPAID_SIM_SPEED:-60}" --state "$state" --control "${PREPAID_SIM_CONTROL:-16900}")
if [ "${PREPAID_SIM_FRESH:-}" = 1 ]; then
    sim_flags+=(--fresh)
fi
$PY -m prepaid_engine.simulator "${sim_flags[@]}" >"$simlog.json" 2>"$simlog" &
sim=$!
# SIGTERM makes the simulator save its meters; wait for it so a quick restart finds them and the ports free.
trap 'kill $sim 2>/dev/null && wait $sim 2>/dev/null; true' EXIT INT TERM
for _ in $(seq 50); do
    grep -q "simulator ready" "$simlog" 2>/dev/null && break
    kill -0 $sim 2>/dev/null || { cat "$simlog" >&2; exit 1; }
    sleep 0.2
done
echo "meter simulator running (site map: $simlog.json, log: $simlog, state: $state)"

if [ "$new_db" = 1 ]; then
    echo "creating database $db with the suite and its demo data (first run only)"
    $PY scripts/odoo_cli.py -c odoo.conf --addons-path="$addons_path" -d "$db" -i "$modules" --stop-after-init
fi
# odoo.conf serves only the database "prepaid" (dbfilter); PREPAID_DB serves its own.
$PY scripts/odoo_cli.py -c odoo.conf --addons-path="$addons_path" -d "$db" --db-filter="^$db\$" "$@"
