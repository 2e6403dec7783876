"""The suite's bulk-SQL tools, in one place: the hot paths (ledger posting, ingestion, settlement) move
thousands of rows per statement with COPY and array parameters instead of the ORM.

- :func:`copy_text` / :func:`copy_line`: values in PostgreSQL's COPY text format;
- :func:`id_array`: ids as one array literal for ``= ANY(%s::int[])``;
- :func:`insert_rows` / :func:`update_rows`: thousands of rows of an Odoo model's table inserted or updated by
  one statement over ``unnest`` of one array literal per column (the caller invalidates the ORM's cache);
- :func:`copy_to_temp`: COPY lines into a session temporary table (one statement moves them into place);
- :func:`batch_planner`: the planner settings of the bulk statements;
- :func:`gc_paused`: Python's cyclic garbage collector paused during a batch;
- :func:`next_names`: ``count`` names drawn from an ``ir.sequence`` in one query.
"""

import datetime
import gc
import io
from contextlib import contextmanager
from decimal import Decimal

from odoo.tools import SQL

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


def copy_to_temp(cr, table, columns, lines):
    """COPY ``lines`` (COPY text lines, :func:`copy_line`) into the session temporary table ``table`` of
    ``columns`` (``(name, SQL type)`` pairs), created on first use, emptied at each commit and before each
    use; one ``INSERT .. SELECT`` or ``UPDATE .. FROM`` then moves the rows into place. COPY carries a batch
    of thousands of rows in a few milliseconds where array parameters cost tens (the server parses array
    literals value by value)."""
    cr.execute(
        SQL(
            "CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS",
            SQL.identifier(table),
            SQL(", ").join(SQL("%s %s", SQL.identifier(name), SQL(kind)) for name, kind in columns),
        )
    )
    cr.execute(SQL("TRUNCATE %s", SQL.identifier(table)))
    cr.copy_from(io.StringIO("".join(lines)), table, columns=[name for name, _kind in columns])


def id_array(ids):
    """``ids`` as one PostgreSQL array literal, for ``= ANY(%s::int[])``: the server reads a literal of
    thousands of ids at once, where a Python list becomes an ``ARRAY[..]`` expression of one constant per
    id (several microseconds each to parse)."""
    return "{" + ",".join(map(str, ids)) + "}"


def array_literal(values):
    """``values`` as one PostgreSQL array literal (cast by the caller: ``%s::numeric[]``): every element
    quoted and escaped, None as NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if value is None else '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for value in values
        )
        + "}"
    )


def _unnest(model, fnames, rows):
    """``unnest(<one typed array per column>) AS u(<fnames>)`` of ``rows`` (tuples in ``fnames`` order)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fnames]
    arrays = SQL(", ").join(
        SQL("%s::%s[]", array_literal(column), SQL(model._fields[fname].column_type[1]))
        for fname, column in zip(fnames, columns, strict=True)
    )
    return SQL("unnest(%s) AS u(%s)", arrays, SQL(", ").join(SQL.identifier(f) for f in fnames))


def insert_rows(model, fnames, rows, on_conflict=None, returning=("id",)):
    """Insert ``rows`` (tuples in ``fnames`` order; False means NULL) into ``model``'s table in one
    statement; ``on_conflict`` an SQL clause (``ON CONFLICT (...) DO NOTHING``). Returns the rows of
    ``returning``. No ORM: no defaults, computes or access checks; the caller fills what the table needs."""
    if not rows:
        return []
    rows = [tuple(None if value is False else value for value in row) for row in rows]
    names = SQL(", ").join(SQL.identifier(f) for f in fnames)
    return model.env.execute_query(
        SQL(
            "INSERT INTO %s (%s) SELECT %s FROM %s %s RETURNING %s",
            SQL.identifier(model._table),
            names,
            names,
            _unnest(model, fnames, rows),
            on_conflict or SQL(),
            SQL(", ").join(SQL.identifier(f) for f in returning),
        )
    )


def update_rows(model, fnames, rows):
    """Update ``fnames`` of the records whose id is each row's first value (rows: ``(id, *values)``) in one
    statement. The caller invalidates the ORM's cache of those fields."""
    if not rows:
        return
    rows = [tuple(None if value is False else value for value in row) for row in rows]
    model.env.cr.execute(
        SQL(
            "UPDATE %s t SET %s FROM %s WHERE t.id = u.id",
            SQL.identifier(model._table),
            SQL(", ").join(SQL("%s = u.%s", SQL.identifier(f), SQL.identifier(f)) for f in fnames),
            _unnest(model, ["id", *fnames], rows),
        )
    )


# Planner settings for the bulk statements of ingestion and settlement (see batch_planner).
BATCH_PLANNER_SETTINGS = (("jit", "off"), ("random_page_cost", "1.1"))


@contextmanager
def batch_planner(cr):
    """Plan the block's statements for batches (the settings go back to what they were after it; a rollback
    to a savepoint or of the transaction restores them anyway). Ingestion and settlement read and write the
    rows of one batch, a few thousand rows of tables of a hundred thousand, through their indexes:

    - ``jit = off``: their estimated cost passes ``jit_above_cost``, and compiling their expressions costs
      tens of milliseconds a statement (several microseconds a reading) for nothing; JIT pays off for long
      scans and aggregates, not for index lookups;
    - ``random_page_cost = 1.1``: the rows they touch are cached, so an index lookup costs about what a
      sequential page does; with the default (4, a spinning disk) the planner scans and hashes a whole table
      to update 2,000 of its rows, three times slower.
    """
    names = [name for name, _value in BATCH_PLANNER_SETTINGS]
    cr.execute(
        SQL(
            "SELECT %s",
            SQL(", ").join(
                SQL("current_setting(%s), set_config(%s, %s, true)", name, name, value)
                for name, value in BATCH_PLANNER_SETTINGS
            ),
        )
    )
    previous = cr.fetchone()[::2]
    yield
    cr.execute(
        SQL(
            "SELECT %s",
            SQL(", ").join(
                SQL("set_config(%s, %s, true)", name, value)
                for name, value in zip(names, previous, strict=True)
            ),
        )
    )


@contextmanager
def gc_paused():
    """Run the block with Python's cyclic garbage collector paused (if it was running; it runs again after
    the block, errors included). A bulk batch allocates hundreds of thousands of short-lived objects that
    reference counting frees by itself; each 700 allocations set off a collection, and every so often a
    full one that walks every object of the registry (over 100 ms in a loaded server, several microseconds
    a reading) for garbage that is not there. Cycles made meanwhile are collected after the block."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def next_names(env, code, count):
    """``count`` names from the sequence of ``code`` (the user's company's, else the shared one), as
    ``next_by_code`` draws them one by one: a standard sequence without date ranges gives all its numbers
    in one ``nextval`` query; any other kind is drawn name by name. ``["/", ...]`` without a sequence."""
    if count <= 0:
        return []
    domain = [("code", "=", code), ("company_id", "in", [env.company.id, False])]
    sequence = env["ir.sequence"].sudo().search(domain, order="company_id", limit=1)
    if not sequence:
        return ["/"] * count
    if sequence.implementation != "standard" or sequence.use_date_range:
        return [sequence._next() for _i in range(count)]
    rows = env.execute_query(
        SQL("SELECT nextval(%s) FROM generate_series(1, %s)", f"ir_sequence_{sequence.id:03d}", count)
    )
    prefix, suffix = sequence._get_prefix_suffix()
    return [f"{prefix}{number:0{sequence.padding}d}{suffix}" for (number,) in rows]
