"""Work that runs in transactions of its own, retried on concurrency conflicts: the one home of that rule.

Odoo runs every request and cron call in REPEATABLE READ: two transactions that change the same rows (a
prepaid account, a meter) queue on its row lock, and the one that waited fails with a serialization error
once the other commits (its snapshot is older than the other's change). Odoo retries a whole request then,
at most five times, and a cron call at its next run. Two tools here do better for work that knows how to
be retried:

- :func:`run_in_own_transaction`: an operation in a NEW transaction, started when the operation starts,
  committed when it ends (the cashier's top-up: twenty cashiers on one account all go through);
- :func:`commit_retrying`: the CURRENT transaction's work, committed, or rolled back and done again (the
  poll and the command executor store what the field answered without doing the field I/O again).

Both retry on :data:`~odoo.service.model.PG_CONCURRENCY_EXCEPTIONS_TO_RETRY` with a random pause
(:func:`retry_conflicts`). The work must be idempotent against a retry of the *calling* request, which may
come after it committed (the cashier's wizard records the top-up it made and returns it when confirmed
again; readings are unique per meter and time, commands move by their own state).

Tests run inside the test's transaction (its data is not committed, another transaction would not see it):
:func:`owns_transaction` is False there and the work runs inline.
"""

import logging
import random
import threading
import time

from odoo.api import Transaction
from odoo.exceptions import UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

_logger = logging.getLogger(__name__)

DEADLINE = 60.0  # seconds an operation keeps retrying before it gives up
PAUSE_MAX = 1.0  # the longest random pause between two attempts


def owns_transaction(env):
    """Whether code running in ``env`` may end its transaction and start others: not in tests."""
    return not (env.registry.in_test_mode() or getattr(threading.current_thread(), "testing", False))


def retry_conflicts(attempt, *, tries=None, deadline=None, pause=0.02, label="work"):
    """``attempt()`` until it does not raise a concurrency conflict, pausing at random (growing, at most
    :data:`PAUSE_MAX`) between tries; gives up (re-raising) after ``tries`` attempts or ``deadline``
    seconds. ``attempt`` rolls its own transaction back before it raises."""
    started = time.monotonic()
    tryno = 0
    while True:
        tryno += 1
        try:
            return attempt()
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as exc:
            late = deadline is not None and time.monotonic() - started > deadline
            if (tries is not None and tryno >= tries) or late:
                _logger.warning("%s gave up after %s attempts: %s", label, tryno, exc)
                raise
            wait = random.uniform(0, min(PAUSE_MAX, pause * 2**tryno))
            _logger.info("%s met a concurrent update (%s): again in %.2f s", label, exc.pgcode, wait)
            time.sleep(wait)


def run_in_own_transaction(env, operation, *, deadline=DEADLINE):
    """``operation(env2)`` in a new committed transaction (``env2``: ``env`` on a new cursor), retried on
    conflicts until ``deadline``; returns what it returns, which must be plain data (ids), not records of the
    closed cursor. A conflict past the deadline is a UserError saying nothing was done."""
    if not owns_transaction(env):
        with env.cr.savepoint():
            return operation(env)

    def attempt():
        with env.registry.cursor() as cr:
            # The caller's registry, handed over (Environment would look it up under the registry lock).
            cr.transaction = Transaction(env.registry)
            return operation(env(cr=cr))

    try:
        return retry_conflicts(attempt, deadline=deadline, label="operation")
    except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as exc:
        raise UserError(
            env._("The account is busy with other operations: nothing was done, try again.")
        ) from exc


def commit_retrying(env, work, *, tries=5, label="work"):
    """``work()`` in the current transaction of ``env``, committed; on a conflict rolled back (caches
    emptied: the next try reads the rows anew) and done again, up to ``tries`` times. For a cron that ended
    its transaction before its field I/O and stores the results now."""

    def attempt():
        try:
            result = work()
            env.cr.commit()  # pylint: disable=invalid-commit
            return result
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            env.cr.rollback()
            raise

    return retry_conflicts(attempt, tries=tries, pause=0.125, label=label)
