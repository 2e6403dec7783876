#!/usr/bin/env bash
# Runs every test of the suite: lint, the engine tests (pytest), and, where Odoo 18 is importable (or
# ODOO_PATH names its source tree), the addons installed in fresh PostgreSQL databases with their tests.
# Without Odoo it says plainly that the addon tests were skipped, and why. Any failure fails the run.
#
# Environment: PYTHON (default python3), ODOO_PATH (an Odoo 18 source tree), PREPAID_SKIP_INSTALL=1 (do not
# pip install the test requirements and the engine), PREPAID_SKIP_LINT=1, PREPAID_TEST_TAGS (default: every suite addon),
# PGHOST/PGUSER/... as for psql.
#
# --odoo-suites (or PREPAID_ODOO_SUITES=1) runs, instead of all that, Odoo's own tests with the suite installed:
# the suite and Odoo's account, payment, account_payment, portal, sms and payment_demo go into a fresh database
# (with demo data), then Odoo's tests of those six modules run; any failure not listed in
# scripts/odoo_suites_known_failures.txt (what fails on Odoo 18 without the suite) fails the run.
# --odoo-suites-baseline (PREPAID_ODOO_SUITES=baseline) does the same without the suite, to check that list on
# another Odoo 18 tree. Neither is part of the default run: they take the better part of an hour.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
PY=${PYTHON:-python3}
odoo_suites=${PREPAID_ODOO_SUITES:-}
for arg in "$@"; do
    case $arg in
        --odoo-suites) odoo_suites=1 ;;
        --odoo-suites-baseline) odoo_suites=baseline ;;
        -h | --help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "unknown option: $arg (see $0 --help)"; exit 2 ;;
    esac
done
case $odoo_suites in
    "" | 1 | baseline) ;;
    *) echo "PREPAID_ODOO_SUITES must be 1 or baseline, not '$odoo_suites'"; exit 2 ;;
esac
export TZ=UTC
export PYTHONPATH="$root${ODOO_PATH:+:$ODOO_PATH}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export PIP_ROOT_USER_ACTION=ignore
logdir=$(mktemp -d "${TMPDIR:-/tmp}/prepaid-test.XXXXXX")
failed=()
passed_total=0
failed_total=0

step() { printf '\n==== %s\n' "$*"; }

# --- 1. what the tests need -------------------------------------------------------------------------------
if [ "${PREPAID_SKIP_INSTALL:-}" != 1 ]; then
    step "Installing test requirements (requirements-test.txt)"
    # The engine is installed in editable mode from this checkout: the addons declare it as an external
    # dependency by its distribution name (prepaid-engine), which Odoo checks through package metadata.
    if ! $PY -m pip install -q --disable-pip-version-check -r requirements-test.txt \
        || ! $PY -m pip install -q --disable-pip-version-check --no-deps -e .; then
        echo "pip could not install requirements-test.txt and the engine (pip install -e .)"
        exit 2
    fi
    # Odoo's browser tests (tours, HttpCase) drive a headless Chromium; without one Odoo skips them.
    if ! command -v chromium >/dev/null && ! command -v google-chrome >/dev/null \
        && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        step "Installing Chromium for Odoo's browser tests (Debian package chromium)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "could not install chromium: Odoo will skip its browser tests"
    fi
fi

# --- 2. lint ---------------------------------------------------------------------------------------------
if [ "${PREPAID_SKIP_LINT:-}" != 1 ] && [ -z "$odoo_suites" ]; then
    step "Lint: ruff, pylint-odoo mandatory checks, OCA module checks (scripts/lint.sh, through $PY)"
    if PYTHON=$PY scripts/lint.sh; then echo "lint: clean"; else failed+=("lint"); fi
fi

# --- 3. engine tests -------------------------------------------------------------------------------------
if [ -z "$odoo_suites" ]; then
step "Engine tests (pytest tests/)"
$PY -m pytest tests -q -p no:cacheprovider --junitxml="$logdir/engine.xml"
rc=$?
case $rc in
    0) ;;
    5) echo "pytest collected no test: that is a failure here (tests/ must hold the engine tests)"
       failed+=("engine tests (none collected)") ;;
    *) failed+=("engine tests (pytest exit $rc)") ;;
esac
if [ -f "$logdir/engine.xml" ]; then
    read -r ep ef < <($PY - "$logdir/engine.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad)
EOF
)
    passed_total=$((passed_total + ep)); failed_total=$((failed_total + ef))
fi
fi

# --- Odoo's own suites (--odoo-suites) -------------------------------------------------------------------
odoo_modules=account,payment,account_payment,portal,sms,payment_demo
odoo_suites_step() {
    local install=$odoo_modules what="with the suite ($addons)" db="prepaid_odoo_suites_$$" rc tags
    local known=scripts/odoo_suites_known_failures.txt
    if [ "$odoo_suites" = baseline ]; then what="without the suite (baseline)"; else install+=",$addons"; fi
    tags=$(echo "$odoo_modules" | sed 's/\(^\|,\)/\1\//g')
    # One run, as Odoo's own CI does it: each module's at_install tests run as it is installed (the registry
    # then holds the modules installed so far), the post_install tests once everything, the suite included,
    # is installed.
    step "Odoo's own suites: install $odoo_modules $what, run their tests $tags"
    echo "(log: $logdir/odoo-suites.log)"
    run_odoo "$db" "$logdir/odoo-suites.log" -i "$install" --test-tags "$tags" --log-level=test
    # One line per failing test, known (in $known) or new, then "odoo suites: N tests, N failed (...)".
    $PY scripts/odoo_suites_verdict.py "$logdir/odoo-suites.log" "$known" | tee "$logdir/odoo-suites-verdict.txt"
    rc=${PIPESTATUS[0]}
    read -r ot of < <(sed -nE 's/^odoo suites: ([0-9]+) tests, ([0-9]+) failed.*/\1 \2/p' "$logdir/odoo-suites-verdict.txt")
    passed_total=$((passed_total + ${ot:-0} - ${of:-0})); failed_total=$((failed_total + ${of:-0}))
    if [ "$rc" -ne 0 ]; then
        failed+=("Odoo's own suites: failures not in $known")
        grep -E ': (FAIL|ERROR): ' "$logdir/odoo-suites.log" | tail -40
    fi
}

# --- 4. addon tests in Odoo 18 ---------------------------------------------------------------------------
addons=$(find addons -mindepth 2 -maxdepth 2 -name __manifest__.py -printf '%h\n' 2>/dev/null | xargs -rn1 basename | sort | paste -sd, -)
if [ -z "$addons" ]; then
    step "Addon tests: no addon in addons/ yet"
elif ! addons_path=$($PY scripts/odoo_paths.py 2>"$logdir/odoo-why.txt"); then
    step "Addon tests: SKIPPED"
    echo "The addon tests were skipped: $(cat "$logdir/odoo-why.txt")."
    echo "Make Odoo 18 importable by $PY (or set ODOO_PATH to an Odoo 18 source tree) to run them."
    if [ -n "$odoo_suites" ]; then failed+=("Odoo's own suites (no Odoo 18 to run them)"); fi
else
    tags=${PREPAID_TEST_TAGS:-$(echo "$addons" | sed 's/\(^\|,\)/\1\//g')}
    run_odoo() { # db, log, extra args...
        local db=$1 log=$2; shift 2
        dropdb --if-exists "$db" >/dev/null 2>&1
        $PY -m odoo --addons-path="$addons_path" -d "$db" --stop-after-init --http-port="$port" \
            --no-database-list --max-cron-threads=0 "$@" >"$log" 2>&1
        local rc=$?
        dropdb --if-exists "$db" >/dev/null 2>&1
        return $rc
    }
    # Warnings and errors at install are failures too ("installs without warnings"). Odoo's own noise that
    # says nothing about the suite is listed here, one pattern a line.
    # Odoo 18.0's own calls into werkzeug.urls warn under Werkzeug 2.3.x, the version Odoo pins for Python
    # 3.11 (its code, not the suite's: the pattern names Odoo's and Werkzeug's files).
    noise='wkhtmltopdf|Wkhtmltopdf|GeoIP|geoip|unaccent|inotify'
    # Odoo 18's own code (its addons, tests, and http.py's request.redirect) still calls werkzeug.urls.
    noise+="|py\.warnings: \S*(/odoo/((addons|tests)/|http\.py:)|/werkzeug/urls\.py)\S* DeprecationWarning: 'werkzeug\.urls\."

    port=$((18500 + $$ % 400))

    if [ -n "$odoo_suites" ]; then
        odoo_suites_step
    else
    step "Addons: install without demo data ($addons)"
    run_odoo "prepaid_nodemo_$$" "$logdir/nodemo.log" -i "$addons" --without-demo=all --log-level=info
    rc=$?
    bad=$(grep -E ' (WARNING|ERROR|CRITICAL) ' "$logdir/nodemo.log" | grep -Ev "$noise")
    if [ $rc -ne 0 ] || [ -n "$bad" ]; then
        failed+=("install without demo")
        echo "$bad" | head -40
        [ $rc -ne 0 ] && tail -40 "$logdir/nodemo.log"
    else
        echo "installed cleanly without demo data"
    fi

    # payment_demo: Odoo's test payment provider, which the portal's recharge tests pay with.
    step "Addons: install with demo data and run the tests ($tags)"
    run_odoo "prepaid_test_$$" "$logdir/odoo.log" -i "$addons,payment_demo" --test-tags "$tags" --log-level=test
    rc=$?
    grep -E ' (WARNING|ERROR|CRITICAL) |FAIL:|^Traceback|odoo.tests.result' "$logdir/odoo.log" | grep -Ev "$noise" | tail -80
    result=$(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests' "$logdir/odoo.log" | tail -1)
    if [ -z "$result" ]; then
        failed+=("addon tests (no result line; see below)")
        tail -40 "$logdir/odoo.log"
    else
        read -r of oe ot < <(echo "$result" | sed -E 's/([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests/\1 \2 \3/')
        passed_total=$((passed_total + ot - of - oe)); failed_total=$((failed_total + of + oe))
        echo "addon tests: $((ot - of - oe)) passed, $((of + oe)) failed"
        if [ "$ot" -eq 0 ]; then failed+=("addon tests (none ran)"); fi
    fi
    bad=$(grep -E ' (WARNING|ERROR|CRITICAL) ' "$logdir/odoo.log" | grep -Ev "$noise")
    if [ $rc -ne 0 ] || [ -n "$bad" ]; then failed+=("addon install/tests (exit $rc, see warnings/errors above)"); fi
    fi
fi

# --- summary ---------------------------------------------------------------------------------------------
step "Summary (logs in $logdir)"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
fi
echo "total: $passed_total passed, $failed_total failed"
[ ${#failed[@]} -eq 0 ]
