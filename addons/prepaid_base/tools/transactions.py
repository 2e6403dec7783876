"""Money operations that run in a transaction of their own.

Odoo runs every request in REPEATABLE READ: two transactions that change the same prepaid account queue on
its row lock, and the one that waited fails with a serialization error once the other commits (its snapshot
is older than the other's change). Odoo retries the whole request then, at most five times: twenty cashiers
topping up one account at once would exhaust that. :func:`run_in_own_transaction` runs one operation in a
transaction of its own, started when the operation starts, committed when it ends, and retried on such
conflicts with a random pause until a deadline: the operations on one account queue up and all go through.

The operation must be idempotent against a retry of the *calling* request (which may come after the
operation committed): the cashier's wizard records the top-up it made and returns that one when confirmed
again.
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


def run_in_own_transaction(env, operation, *, deadline=DEADLINE):
    """``operation(env2)`` in a new committed transaction (``env2``: ``env`` on a new cursor); returns what it
    returns, which must be plain data (ids), not records of the closed cursor.

    Tests run it inline, in a savepoint of the test's own transaction (a test's data is not committed, another
    transaction would not see it)."""
    if env.registry.in_test_mode() or getattr(threading.current_thread(), "testing", False):
        with env.cr.savepoint():
            return operation(env)
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            with env.registry.cursor() as cr:
                # The caller's registry, handed over (Environment would look it up under the registry lock).
                cr.transaction = Transaction(env.registry)
                return operation(env(cr=cr))
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as exc:
            if time.monotonic() - started > deadline:
                _logger.warning("gave up after %s attempts in %.0f s: %s", attempt, deadline, exc)
                raise UserError(
                    env._("The account is busy with other operations: nothing was done, try again.")
                ) from exc
            time.sleep(random.uniform(0, min(PAUSE_MAX, 0.02 * 2**attempt)))
