"""Compare the failing tests of a run of Odoo's own suites with the known failures (test.sh --odoo-suites).

Usage: odoo_suites_verdict.py ODOO_TEST_LOG KNOWN_FAILURES_FILE

Prints one line per failing test ("known" or "NEW", then "<addon> <TestClass.test_method>"), one line per
known failure that passed, and a closing line "odoo suites: N tests, N failed (N known, N new)". Exit
status 0 when every failure is known, 1 otherwise (a new failure, a failure the log does not name, or no
result line).
"""

import re
import sys

# "... ERROR <db> odoo.addons.account.tests.test_x: FAIL: TestClass.test_method" (Odoo's OdooTestResult).
FAILURE = re.compile(r" ERROR \S+ odoo\.addons\.(\w+)\.\S*: (?:FAIL|ERROR): (\S+)")
# "... ERROR <db> odoo.tests.suite: ERROR: setUpClass (odoo.addons.portal.tests.test_x.TestClass)".
CLASS_FAILURE = re.compile(
    r" ERROR \S+ \S+: (?:FAIL|ERROR): (setUpClass|tearDownClass) \(odoo\.addons\.(\w+)\.\S*\.(\w+)\)"
)
RESULT = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests")


def read_known(path):
    with open(path, encoding="utf-8") as lines:
        return {line.split("#")[0].strip() for line in lines} - {""}


def main(log_path, known_path):
    with open(log_path, encoding="utf-8", errors="replace") as log:
        text = log.read()
    known = read_known(known_path)
    failing = sorted(
        {f"{m[1]} {m[2]}" for m in FAILURE.finditer(text)}
        | {f"{m[2]} {m[3]}.{m[1]}" for m in CLASS_FAILURE.finditer(text)}
    )
    results = RESULT.findall(text)
    if not results:
        print("odoo suites: no result line in the log (did the run stop early?)")
        return 1
    failures, errors, tests = (int(x) for x in results[-1])
    new = [name for name in failing if name not in known]
    for name in failing:
        print(f"{'NEW  ' if name in new else 'known'} {name}")
    for name in sorted(known - set(failing)):
        print(f"passed {name} (listed in {known_path}: remove it if it keeps passing)")
    unnamed = failures + errors - len(failing)
    print(
        f"odoo suites: {tests} tests, {failures + errors} failed "
        f"({len(failing) - len(new)} known, {len(new)} new)"
    )
    if unnamed > 0:
        print(f"odoo suites: {unnamed} failure(s) the log does not name")
    return 1 if new or unnamed > 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
