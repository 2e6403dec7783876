"""The suite's bulk-SQL tools, in one place: the hot paths (ledger posting, ingestion, settlement) move
thousands of rows per statement with COPY and array parameters instead of the ORM.

- :func:`copy_text` / :func:`copy_line`: values in PostgreSQL's COPY text format;
- :func:`id_array`: ids as one array literal for ``= ANY(%s::int[])``.
"""

import datetime
from decimal import Decimal

NULL = "\\N"  # COPY's NULL
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value):
    """``value`` in COPY text format: NULL for None (and False), numbers and datetimes as PostgreSQL reads
    them, booleans as t/f, text escaped."""
    if value is None or value is False:
        return NULL
    kind = type(value)
    if kind is Decimal or kind is int:
        return str(value)
    if value is True:
        return "t"
    if kind is datetime.datetime:
        return value.isoformat(sep=" ")
    return str(value).translate(_ESCAPES)


def copy_line(values):
    """One COPY line (tab-separated, newline-terminated) of ``values``."""
    return "\t".join(map(copy_text, values)) + "\n"


def id_array(ids):
    """``ids`` as one PostgreSQL array literal, for ``= ANY(%s::int[])``: the server reads a literal of
    thousands of ids at once, where a Python list becomes an ``ARRAY[..]`` expression of one constant per
    id (several microseconds each to parse)."""
    return "{" + ",".join(map(str, ids)) + "}"
