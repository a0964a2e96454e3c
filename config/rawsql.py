"""Model rows read and written with hand-written SQL, for the hot paths where building a statement with the ORM
costs more than running it: on the trigger API, a one-row ORM query took about 0.5 ms of CPU in the web process
and the same statement through a cursor 0.12 ms (docs/benchmarks.md, "Trigger API"). The rows still become model
instances through the fields' own conversions (JSON, dates on SQLite), so the code that uses them does not change.

Only for a few statements a request, each with a test through the code that uses it on both databases; everything
else uses the ORM.
"""

from contextlib import contextmanager
from functools import cache

import psycopg
from django.conf import settings
from django.db import InterfaceError, NotSupportedError, OperationalError, connection
from django.db.models import Model


@contextmanager
def cursor():
    """A cursor for the hot statements. On PostgreSQL each statement is prepared on the connection the first time
    it runs and executed by name after (server-side parameters): PostgreSQL parses and plans it once a connection,
    not once a call (planning the trigger's campaign read took 0.2 to 1.4 ms, running it 0.1 ms).
    DATABASE_PREPARED_STATEMENTS=false turns this off, for a pooler in transaction mode that does not keep them.
    Django's wrapper stays around it (its errors, the queries tests capture)."""
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        with connection.cursor() as plain:
            yield plain
        return
    # As Django's own cursor(): a kept-alive connection that broke while idle is replaced, not used.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        prepared = _PreparedCursor(connection.connection)
    wrapped = connection._prepare_cursor(prepared)
    try:
        yield wrapped
    except NotSupportedError:
        # "cached plan must not change result type": a migration changed a table since the statement was prepared.
        # A rollback empties psycopg's cache of them; outside a transaction there is none, so the connection goes
        # and the next statement prepares afresh on a new one. This call fails; the next ones do not.
        if connection.get_autocommit():
            connection.close()
        raise
    finally:
        prepared.close()


def execute_unchecked(sql: str, params: list) -> int:
    """Run one statement in a transaction of its own (autocommit) and return its row count, without the round trip
    of the request's health check before it (CONN_HEALTH_CHECKS' `SELECT 1`, a fifth of the open pixel's time): a
    kept-alive connection that the statement finds broken is replaced and the statement sent once more. Only for a
    statement that may run twice should its first answer be lost with the connection (a counter). Inside a
    transaction, it is one more statement of it."""
    return _unchecked(sql, params, lambda executed: executed.rowcount)


def fetchone_unchecked(sql: str, params: list) -> tuple | None:
    """As execute_unchecked, for a read: its first row, or None."""
    return _unchecked(sql, params, lambda executed: executed.fetchone())


def _unchecked(sql: str, params: list, result):
    if connection.connection is not None and not connection.in_atomic_block:
        connection.health_check_done = True  # Django's own flag: as if checked already this request
        try:
            return _run(sql, params, result)
        except (OperationalError, InterfaceError):
            raw = connection.connection
            if raw is not None and not (getattr(raw, "broken", False) or getattr(raw, "closed", False)):
                raise  # the statement failed, not the connection
            connection.close()  # the server went away while it was idle (a restart): the next connection is new
    return _run(sql, params, result)


def _run(sql: str, params: list, result):
    with cursor() as executed:
        executed.execute(sql, params)
        return result(executed)


class _PreparedCursor(psycopg.Cursor):
    """psycopg's cursor with server-side parameters, every statement prepared (psycopg keeps the last 100 of a
    connection, by their text)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def placeholders(count: int) -> str:
    """`%s, %s, ...`: the parameters of a row of `count` values."""
    return ", ".join(["%s"] * count)


def text_array(values) -> str:
    """A PostgreSQL array literal of the strings `values` (str only: no NULL element), for a `%s::text[]`
    parameter. Django's cursors bind on the client, where psycopg quotes a list element by element in Python:
    this is half its cost for a chunk's 3,000 identities, and PostgreSQL reads it as fast (bench of the import,
    docs/benchmarks.md)."""
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


def one_of(column: str, values: list) -> tuple[str, list]:
    """`column` among `values`: (SQL, parameters). On PostgreSQL `column = ANY(%s)` with one array parameter, so
    the statement's text, and its prepared plan, is the same whatever the number of values; elsewhere an IN list."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({placeholders(len(values))})", list(values)


def columns(model: type[Model], names: list[str], alias: str) -> str:
    """`alias.column, ...` (`column, ...` without an alias) for the model's fields `names` (attribute names:
    `campaign_id` for a foreign key)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{model._meta.get_field(_field_name(model, name)).column}" for name in names)


def instance(model: type[Model], names: list[str], values) -> Model:
    """A model instance from a row's `values` for the fields `names`, converted as the ORM converts them; the
    fields not read are deferred (loaded on first use, by a query: read what the code uses)."""
    ordered, conversions = _conversions(model, tuple(names), connection.vendor)
    converted = {}
    for (attname, column, converters), value in zip(conversions, values, strict=True):
        if value is not None:
            for convert in converters:
                value = convert(value, column, connection)
        converted[attname] = value
    return model.from_db(connection.alias, ordered, [converted[name] for name in ordered])


@cache
def _conversions(model: type[Model], names: tuple[str, ...], vendor: str):
    """For `instance`, made once a model, field list and database: the attribute names in the model's order (as
    from_db takes them) and, for each name, its column and the converters of its values."""
    conversions = []
    for name in names:
        field = model._meta.get_field(_field_name(model, name))
        column = field.get_col(model._meta.db_table)
        converters = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        conversions.append((field.attname, column, converters))
    wanted = {attname for attname, _, _ in conversions}
    ordered = [field.attname for field in model._meta.concrete_fields if field.attname in wanted]
    return ordered, conversions


def insert(model: type[Model], rows: list[Model]) -> None:
    """Insert `rows` (new instances of `model`) in one statement and set their primary keys, as bulk_create does,
    with each field's own preparation (defaults, auto_now_add, JSON); no signals, as bulk_create."""
    if not rows:
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    one_row = f"({placeholders(len(fields))})"
    params = []
    for row in rows:
        # As bulk_create: a foreign key set to an instance saved since takes its primary key now.
        row._prepare_related_fields_for_save(operation_name="insert")
        params.extend(field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES {', '.join([one_row] * len(rows))} RETURNING {quote(model._meta.pk.column)}"
    )
    with cursor() as executing:
        executing.execute(sql, params)
        keys = [key for (key,) in executing.fetchall()]
    # PostgreSQL and SQLite return the inserted rows' keys in the order of VALUES for a single multi-row INSERT.
    for row, key in zip(rows, keys, strict=True):
        row.pk = key
        row._state.adding = False
        row._state.db = connection.alias


def fetch(model: type[Model], names: list[str], sql: str, params) -> list[Model]:
    """Run `sql`, whose columns are the fields `names` of `model` in that order, and make each row an instance."""
    with cursor() as executing:
        executing.execute(sql, params)
        return [instance(model, names, row) for row in executing.fetchall()]


def value(model: type[Model], name: str, given):
    """A parameter for a comparison with the field `name`, as the ORM would pass it (a UUID without dashes and a
    date as text on SQLite)."""
    return model._meta.get_field(_field_name(model, name)).get_db_prep_value(given, connection)


def update(model: type[Model], rows: list[Model], names: list[str], *, where: str = "", params=()) -> int:
    """Write the fields `names` of each of `rows` (each its own values) with `UPDATE ... FROM` the rows' values, where
    `where` also holds (columns of the table as `t.column`): on PostgreSQL one statement whose text does not depend
    on the number of rows (one array a column, unnested, so one prepared plan), on SQLite one per 200 rows. Returns
    the rows written. The ORM's bulk_update writes a CASE WHEN per field, which it builds and compiles per row.
    Values are cast to the columns' types: a text longer than its column is cut there, so callers bound it first."""
    if not rows:
        return 0
    fields = [model._meta.pk, *(model._meta.get_field(_field_name(model, name)) for name in names)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields[1:])
    condition = f" AND ({where})" if where else ""
    head = f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} FROM "  # noqa: S608
    match = f" WHERE t.{quote(model._meta.pk.column)} = v.{quote(model._meta.pk.column)}{condition}"
    written = 0
    with cursor() as executing:
        if connection.vendor == "postgresql":
            # One array a column, unnested: the same statement text (one prepared plan) whatever the number of rows.
            arrays = ", ".join(f"CAST(%s AS {field.db_type(connection)}[])" for field in fields)
            names_sql = ", ".join(quote(field.column) for field in fields)
            columns_values = [
                [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows] for field in fields
            ]
            executing.execute(f"{head}unnest({arrays}) AS v ({names_sql}){match}", [*columns_values, *params])
            return executing.rowcount
        first = "SELECT " + ", ".join(f"%s AS {quote(field.column)}" for field in fields)
        other = f"SELECT {placeholders(len(fields))}"
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            values = []
            for row in chunk:
                values.extend(field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields)
            # A UNION of one-row SELECTs rather than VALUES: SQLite then names its columns. And no WITH: SQLite's
            # driver gives no row count for a statement that starts with one.
            sql = f"{head}({' UNION ALL '.join([first] + [other] * (len(chunk) - 1))}) AS v{match}"
            executing.execute(sql, [*values, *params])
            written += executing.rowcount
    return written


def _field_name(model: type[Model], name: str) -> str:
    """The field an attribute name belongs to: `campaign_id` is the field `campaign`."""
    for field in model._meta.concrete_fields:
        if field.attname == name:
            return field.name
    return name
