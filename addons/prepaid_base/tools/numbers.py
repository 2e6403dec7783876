"""Numbers from callers, judged before the ORM sees them: the ORM rounds a float field's value (NaN and the
infinities raise a ValueError there, a server error over RPC) and PostgreSQL refuses an integer beyond its
column (another server error). :func:`check_numbers` turns both into a ValidationError naming the field."""

import math

from odoo.exceptions import ValidationError

MAX_NUMBER = 1e9  # no amount, price, power or count of the suite's settings comes near it
MAX_TEXT = "1,000,000,000"


def check_numbers(model, vals_list, fnames, limit=MAX_NUMBER):
    """Refuse, in ``vals_list`` (dicts of a create or a write on ``model``), any of ``fnames`` that is not a
    finite number below ``limit`` in absolute value."""
    for vals in vals_list:
        for fname in fnames:
            if fname not in vals or vals[fname] in (None, False):
                continue
            try:
                value = float(vals[fname])
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value) or abs(value) >= limit:
                raise ValidationError(
                    model.env._(
                        "%(field)s must be a number below %(max)s, not %(value)s.",
                        field=model._fields[fname]._description_string(model.env),
                        max=MAX_TEXT,
                        value=vals[fname],
                    )
                )
