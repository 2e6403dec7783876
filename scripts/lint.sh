#!/usr/bin/env bash
# Lint: ruff (lint + format check) over the whole tree, pylint-odoo's mandatory checks and the OCA module
# checks over every addon. Used by pre-commit (.pre-commit-config.yaml) and by scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
ruff check . || rc=1
ruff format --check . || rc=1
addons=$(find addons -mindepth 2 -maxdepth 2 -name __manifest__.py -printf '%h\n' 2>/dev/null | sort)
if [ -n "$addons" ]; then
    # shellcheck disable=SC2086
    pylint --rcfile=.pylintrc $addons || rc=1
    # shellcheck disable=SC2086
    oca-checks-odoo-module --disable=xml-attribute-translatable,manifest-maintainers-list,missing-readme $addons || rc=1
fi
exit $rc
