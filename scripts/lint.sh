#!/usr/bin/env bash
# Lint: ruff (lint + format check) over the whole tree, pylint-odoo's mandatory checks and the OCA module
# checks over every addon. Used by pre-commit (.pre-commit-config.yaml) and by scripts/test.sh.
#
# Every tool runs as a module of PYTHON (default python3), the interpreter requirements-test.txt was installed
# into, so `PYTHON=/path/to/venv/bin/python` lints with that venv's ruff, pylint and OCA checks whatever is on
# PATH.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
missing=()
for module in ruff pylint pylint_odoo oca_pre_commit_hooks; do
    $PY -c "import $module" 2>/dev/null || missing+=("$module")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "lint: $PY cannot import ${missing[*]}: install requirements-test.txt into it ($PY -m pip install -r requirements-test.txt)"
    exit 1
fi
rc=0
$PY -m ruff check . || rc=1
$PY -m ruff format --check . || rc=1
addons=$(find addons -mindepth 2 -maxdepth 2 -name __manifest__.py -printf '%h\n' 2>/dev/null | sort)
if [ -n "$addons" ]; then
    # shellcheck disable=SC2086
    $PY -m pylint --rcfile=.pylintrc $addons || rc=1
    # shellcheck disable=SC2086
    $PY -m oca_pre_commit_hooks --disable=xml-attribute-translatable,manifest-maintainers-list,missing-readme $addons || rc=1
fi
exit $rc
